import { describe, expect, it } from 'vitest';
import { effectiveOutcome, errnoGlossary, hourlyStats, OUTCOMES, toView } from '../../src/dashboard/outcomes.js';
import type { DashboardRecord } from '../../src/store/index.js';
import { Errno } from '../../src/webpush/protocol/errors.js';

/** The dashboard's vocabulary without sockets: expiry at read time, the view, the hourly counts, the errno advice. */
const HOUR = 3_600_000;
const rec = (receivedAt: number, over: Partial<DashboardRecord> = {}): DashboardRecord => ({
  keyHash: 'k',
  ref: String(receivedAt),
  id: 'm',
  receivedAt,
  ttl: 60,
  topic: null,
  urgency: 'normal',
  size: 1,
  subscription: 's',
  outcome: 'stored',
  status: null,
  errno: null,
  detail: null,
  deliveredAt: null,
  ...over,
});

describe('dashboard outcomes', () => {
  it('turns a stored record into expired once its TTL has passed, and nothing else', () => {
    expect(effectiveOutcome(rec(0, { ttl: 60 }), 59_999)).toBe('stored');
    expect(effectiveOutcome(rec(0, { ttl: 60 }), 60_000)).toBe('expired');
    expect(effectiveOutcome(rec(0, { ttl: 60, outcome: 'delivered_from_storage', deliveredAt: 5 }), 1e9)).toBe('delivered_from_storage');
  });

  it('shows times as ISO 8601 and the latency from acceptance to ack', () => {
    const v = toView(rec(1000, { outcome: 'delivered', deliveredAt: 1250 }), 2000);
    expect(v).toMatchObject({ received_at: new Date(1000).toISOString(), delivered_at: new Date(1250).toISOString(), latency_ms: 250, outcome: 'delivered' });
    expect(Object.keys(v)).not.toContain('keyHash');
  });

  it('counts per hour for every hour of the window, oldest first, ignoring what is outside it', () => {
    const now = 100 * HOUR + 30 * 60_000;
    const stats = hourlyStats([rec(now - 10, { outcome: 'rejected' }), rec(now - HOUR, { outcome: 'dropped' }), rec(now - 80 * HOUR)], now, 72);
    expect(stats).toHaveLength(72);
    expect(stats[71]!.hour).toBe(new Date(100 * HOUR).toISOString());
    expect(stats[71]!.counts.rejected).toBe(1);
    expect(stats[70]!.counts.dropped).toBe(1);
    expect(stats.reduce((n, h) => n + Object.values(h.counts).reduce((a, b) => a + b, 0), 0)).toBe(2);
    expect(Object.keys(stats[0]!.counts).sort()).toEqual(Object.keys(OUTCOMES).sort());
  });

  it('has advice for every errno of the one errno table', () => {
    const glossary = errnoGlossary();
    expect(glossary.map((g) => g.errno)).toEqual([...new Set(Object.values(Errno).map((e) => e.errno))].sort((x, y) => x - y));
    for (const g of glossary) expect(g.advice.length).toBeGreaterThan(10);
  });
});
