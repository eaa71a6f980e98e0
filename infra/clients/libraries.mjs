// Sends product events to churnsignal with the real Segment and RudderStack Node libraries,
// configured as a customer would: the host is churnsignal's /webhooks/product, the write key
// is PRODUCT_WEBHOOK_SECRET. Usage: node libraries.mjs BASE_URL WRITE_KEY COUNT
import { Analytics } from '@segment/analytics-node';
import RudderAnalytics from '@rudderstack/rudder-sdk-node';

const [base, writeKey, countArg] = process.argv.slice(2);
const count = Number(countArg || 25);
// Segment's library posts to new URL('/v1/batch', host): just the host. RudderStack's appends
// /v1/batch to the data plane URL: churnsignal's product webhook.
const day = 24 * 3600 * 1000;

const segment = new Analytics({ writeKey, host: base, flushAt: 10, maxRetries: 2 });
segment.on('error', (err) => { console.error('segment error', err); process.exitCode = 1; });
segment.group({ userId: 'seg-u1', groupId: 'segment-co', traits: { name: 'Segment Co', seats: 10 } });
segment.identify({ userId: 'seg-u2', traits: { email: 'u2@segment-co.example', company: { id: 'segment-co' } } });
for (let i = 0; i < count; i++) {
  segment.track({
    userId: `seg-u${(i % 5) + 1}`,
    event: i % 2 ? 'Report Created' : 'Signed In',
    properties: { n: i },
    context: { groupId: 'segment-co' },
    timestamp: new Date(Date.now() - (i % 20) * day),
  });
}
await segment.closeAndFlush({ timeout: 10000 });

const rudder = new RudderAnalytics(writeKey, { dataPlaneUrl: `${base}/webhooks/product`, flushAt: 10, logLevel: 'error', retryCount: 1 });
const done = (err) => { if (err) { console.error('rudder error', err.message || err); process.exitCode = 1; } };
rudder.group({ userId: 'rs-u1', groupId: 'rudder-co', traits: { name: 'Rudder Co', seats: 4 } }, done);
for (let i = 0; i < count; i++) {
  rudder.track({
    userId: `rs-u${(i % 3) + 1}`,
    event: 'Dashboard Shared',
    properties: { n: i },
    context: { groupId: 'rudder-co' },
    timestamp: new Date(Date.now() - (i % 10) * day),
  }, done);
}
await new Promise((resolve) => rudder.flush((err) => { done(err); resolve(); }));
console.log(`sent ${count} tracks through each library`);
