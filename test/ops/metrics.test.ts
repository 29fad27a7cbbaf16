import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/ops/metrics.js';

describe('counters on the message path (tallied, handed to prom-client when read)', () => {
  it('reads the same counts as prom-client would, through get() and the exposition, across reads', async () => {
    const m = new Metrics();
    m.notifications.inc({ outcome: 'acked', path: 'direct' });
    m.notifications.inc({ outcome: 'acked', path: 'direct' }, 3);
    m.notifications.inc({ outcome: 'acked', path: 'stored' });
    // The same label set in another key order is the same series.
    m.notifications.inc({ path: 'direct', outcome: 'acked' });
    m.httpRequests.inc({ route: '/wpush/:apiVersion/:token', status: String(201) });
    expect((await m.notifications.get()).values).toEqual([
      { labels: { outcome: 'acked', path: 'direct' }, value: 5 },
      { labels: { outcome: 'acked', path: 'stored' }, value: 1 },
    ]);
    // Counted after a read: the next read adds it once, not again what was read before.
    m.notifications.inc({ outcome: 'acked', path: 'direct' });
    const text = await m.registry.metrics();
    expect(text).toContain('pushgate_notifications_total{outcome="acked",path="direct"} 6\n');
    expect(text).toContain('pushgate_notifications_total{outcome="acked",path="stored"} 1\n');
    expect(text).toContain('pushgate_http_requests_total{route="/wpush/:apiVersion/:token",status="201"} 1\n');
    expect((await m.registry.getMetricsAsJSON()).find((x) => x.name === 'pushgate_notifications_total')?.values).toHaveLength(2);
  });

  it('refuses what prom-client refuses, and forgets its tallies on reset', async () => {
    const m = new Metrics();
    expect(() => m.notifications.inc({ bogus: 'x' } as never)).toThrow(/not included in initial labelset/);
    expect(() => m.notifications.inc({ outcome: 'acked', path: 'direct' }, -1)).toThrow(/not possible to decrease/);
    m.clientMessages.inc({ type: 'ack' }, 2);
    m.clientMessages.reset();
    m.clientMessages.inc({ type: 'ack' });
    expect((await m.clientMessages.get()).values).toEqual([{ labels: { type: 'ack' }, value: 1 }]);
  });
});
