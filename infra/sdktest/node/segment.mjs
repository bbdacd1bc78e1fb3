// Sends identify, track, page, screen, group and alias with @segment/analytics-node, configured
// as a customer would but for the host (UP_HOST) and the write key (UP_WRITE_KEY), then awaits
// closeAndFlush(). Prints a JSON summary; exits 1 when the SDK reports any error.
import { Analytics } from '@segment/analytics-node';
import { calls, config, describe, finish } from './common.mjs';

const { host, writeKey, run, ids } = config();
const analytics = new Analytics({ writeKey, host });

const summary = { sdk: '@segment/analytics-node', run, ...ids, sent: [], http: [], errors: [] };
analytics.on('error', (e) => summary.errors.push(`error event: ${describe(e?.reason ?? e)}`));
// What the SDK put on the wire, and what it got back: shows its retries.
analytics.on('http_request', (r) => summary.http.push({ request: r.url, retry: r.headers['X-Retry-Count'] ?? '0' }));
analytics.on('http_response', (r) => summary.http.push({ response: r.status }));

const delivered = calls(ids).map(
  ([type, params]) =>
    new Promise((resolve) => {
      analytics[type](params, (err, ctx) => {
        const messageId = ctx?.event?.messageId;
        summary.sent.push({ type, messageId });
        if (err) summary.errors.push(`${type} ${messageId}: ${describe(err)}`);
        resolve();
      });
    }),
);

await analytics.closeAndFlush();
await Promise.all(delivered);
finish(summary);
