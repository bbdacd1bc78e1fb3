// Sends identify, track, page, screen, group and alias with @rudderstack/rudder-sdk-node,
// configured as a customer would but for the data plane URL (UP_HOST) and the write key
// (UP_WRITE_KEY); its default gzip stays on. Flushes and waits for every call's callback.
// Prints a JSON summary; exits 1 when the SDK reports any error.
import Analytics from '@rudderstack/rudder-sdk-node';
import { calls, config, describe, finish } from './common.mjs';

const { host, writeKey, run, ids } = config();
const summary = { sdk: '@rudderstack/rudder-sdk-node', run, ...ids, sent: [], errors: [] };
const client = new Analytics(writeKey, {
  dataPlaneUrl: host,
  logLevel: 'error',
  errorHandler: (e) => summary.errors.push(`errorHandler: ${describe(e)}`),
});

const delivered = calls(ids).map(
  ([type, params]) =>
    new Promise((resolve) => {
      client[type](params, (err) => {
        summary.sent.push({ type });
        if (err) summary.errors.push(`${type}: ${describe(err)}`);
        resolve();
      });
    }),
);

try {
  await client.flush();
} catch (e) {
  summary.errors.push(`flush: ${describe(e)}`);
}
await Promise.all(delivered);
finish(summary);
