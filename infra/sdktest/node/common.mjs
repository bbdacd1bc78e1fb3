// Shared by the sender scripts that infra/sdktest drives: the configuration comes from the
// environment, the ids are derived from UP_RUN (so the Go test knows them in advance), and
// the outcome is one JSON summary on stdout (logs go to stderr).

export function config() {
  const need = (name) => {
    const v = process.env[name];
    if (!v) {
      console.error(`${name} is not set (UP_HOST, UP_WRITE_KEY and UP_RUN are required)`);
      process.exit(2);
    }
    return v;
  };
  const host = need('UP_HOST');
  const writeKey = need('UP_WRITE_KEY');
  const run = need('UP_RUN');
  return { host, writeKey, run, ids: ids(run) };
}

// ids must match func idsFor in infra/sdktest/sdk_test.go.
export function ids(run) {
  return {
    userId: `${run}-user`,
    groupId: `${run}-group`,
    previousId: `${run}-anon`,
    email: `${run}@example.com`,
  };
}

// The six calls, as plain Segment-spec fields both Node SDKs take.
export function calls(ids) {
  return [
    ['identify', { userId: ids.userId, traits: { name: 'Ada Lovelace', email: ids.email, plan: 'pro', logins: 3 } }],
    ['track', { userId: ids.userId, event: 'Order Completed', properties: { revenue: 42.5, currency: 'USD' } }],
    ['page', { userId: ids.userId, name: 'Intro', category: 'Docs', properties: { url: 'https://x.test/intro' } }],
    ['screen', { userId: ids.userId, name: 'Home', properties: { variant: 'a' } }],
    ['group', { userId: ids.userId, groupId: ids.groupId, traits: { name: 'Acme' } }],
    ['alias', { userId: ids.userId, previousId: ids.previousId }],
  ];
}

export function describe(err) {
  if (!err) return '';
  if (err instanceof Error) return err.stack || err.message;
  try {
    return JSON.stringify(err);
  } catch {
    return String(err);
  }
}

// finish prints the summary and exits non-zero when an SDK reported an error.
export function finish(summary) {
  process.stdout.write(JSON.stringify(summary) + '\n');
  process.exit(summary.errors.length > 0 ? 1 : 0);
}
