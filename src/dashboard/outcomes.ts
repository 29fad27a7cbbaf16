import { Errno } from '../webpush/protocol/errors.js';
import type { DashboardRecord } from '../store/index.js';
import type { MessageView as RecordView } from './web/view.js';

/**
 * The dashboard's vocabulary, pure and without I/O: the outcomes a message can have, what each means and what a
 * developer can do about it, the errno advice (keyed by the one errno table in src/webpush/protocol/errors.ts),
 * the API view of a record, and the per-hour counts.
 */

export const OUTCOMES = {
  delivered: 'Handed to the connected browser; delivered_at is set once the browser acknowledged it (RFC 8030 §6.2).',
  stored: 'The browser was not connected: the message waits (up to its TTL) until it connects. Nothing to do unless it stays stored.',
  delivered_from_storage: 'Stored first, then delivered and acknowledged when the browser connected. The latency shows how long it waited.',
  expired: 'Stored, but its TTL ended before the browser connected; it was never delivered. Send with a longer TTL if it still matters.',
  dropped: 'TTL 0 and no browser connected at that moment: RFC 8030 §5.2 says such a message is not kept. Use a TTL above 0 to queue it.',
  replaced: 'A newer message with the same Topic replaced it while it waited (RFC 8030 §5.4). Expected when you use Topic for "latest state" messages.',
  deleted: 'You deleted it with DELETE on its Location (RFC 8030 §7.3) before it was delivered.',
  bridged: "Sent on to the mobile push provider (FCM, APNs or ADM), which accepted it; delivery to the device is the provider's part.",
  rejected: 'Refused with the HTTP status and errno shown; the errno table below says why and what to do.',
} as const;

export type Outcome = keyof typeof OUTCOMES;

export function isOutcome(v: string): v is Outcome {
  return Object.hasOwn(OUTCOMES, v);
}

/** Advice per errno: what a developer sees in the table and what to do. */
const ERRNO_ADVICE: Record<number, string> = {
  101: 'The payload needs its encryption headers (Content-Encoding: aes128gcm, RFC 8291). Use a Web Push library.',
  102: 'The endpoint URL is not one this server issued (or it was mistyped). Check the subscription you saved.',
  103: "The browser's registration is gone: delete this subscription on your server.",
  104: 'The encrypted body is larger than this server accepts (PUSHGATE_MAX_DATA_BYTES, 5630 bytes by default, as autopush). Send less, or send a notice and fetch the content.',
  105: 'The subscription was reset (too many messages waiting, or the mobile token died): delete it; the browser subscribes again.',
  106: 'The subscription no longer exists (the user unsubscribed): delete it on your server.',
  108: 'The bridge registration is for a router type this server does not know.',
  109: 'VAPID failed: the token is invalid, expired, has the wrong aud, or the key is not the one the subscription was created with (RFC 8292).',
  110: 'The encryption headers (Content-Encoding, Encryption, Crypto-Key) or the legacy VAPID scheme without Crypto-Key p256ecdsa could not be read (RFC 8291, RFC 8292).',
  111: 'A required header is missing or unreadable, usually TTL (RFC 8030 §5.2).',
  113: 'The Topic is longer than 32 characters or uses characters outside the URL-safe base64 alphabet (RFC 8030 §5.4).',
  114: 'The TTL is negative (RFC 8030 §5.2: seconds, 0 or more); autopush answers this errno too.',
  201: 'Slow down: retry after the Retry-After seconds.',
  202: 'A temporary problem: retry now.',
  900: 'The mobile bridge is not configured for this app, or the provider refused the message.',
  901: "The server's credentials for the push provider were refused: tell the operator.",
  902: 'The push provider could not be reached: retry later.',
  903: 'The push provider did not answer in time: retry later.',
  999: 'An unexpected error on the server: retry later and tell the operator if it persists.',
};

/** One row per distinct errno of the table, with its status(es) and advice. */
export function errnoGlossary(): { errno: number; statuses: number[]; advice: string }[] {
  const byErrno = new Map<number, Set<number>>();
  for (const { status, errno } of Object.values(Errno)) {
    const set = byErrno.get(errno) ?? new Set<number>();
    set.add(status);
    byErrno.set(errno, set);
  }
  return [...byErrno.entries()]
    .sort(([a], [b]) => a - b)
    .map(([errno, statuses]) => ({ errno, statuses: [...statuses].sort(), advice: ERRNO_ADVICE[errno] ?? '' }));
}

/** A record as the API shows it. */
export type MessageView = RecordView<Outcome>;

/**
 * A record's outcome at `now`: one still `stored` after its TTL ended was never acknowledged (an ack would have
 * replaced the outcome), so it expired. Deriving this at read time costs the store no sweep of its own.
 */
export function effectiveOutcome(r: DashboardRecord, now: number): Outcome {
  if (r.outcome === 'stored' && r.ttl !== null && r.receivedAt + r.ttl * 1000 <= now) return 'expired';
  return isOutcome(r.outcome) ? r.outcome : 'rejected';
}

export function toView(r: DashboardRecord, now: number): MessageView {
  return {
    id: r.id,
    received_at: new Date(r.receivedAt).toISOString(),
    ttl: r.ttl,
    topic: r.topic,
    urgency: r.urgency,
    size: r.size,
    subscription: r.subscription,
    outcome: effectiveOutcome(r, now),
    status: r.status,
    errno: r.errno,
    detail: r.detail,
    delivered_at: r.deliveredAt !== null ? new Date(r.deliveredAt).toISOString() : null,
    latency_ms: r.deliveredAt !== null ? r.deliveredAt - r.receivedAt : null,
  };
}

export interface HourStats {
  /** Start of the hour, ISO 8601. */
  hour: string;
  counts: Record<Outcome, number>;
}

const HOUR = 3_600_000;

/** Counts by outcome for each of the last `hours` hours (oldest first), every hour present even when empty. */
export function hourlyStats(records: DashboardRecord[], now: number, hours: number): HourStats[] {
  const current = Math.floor(now / HOUR) * HOUR;
  const first = current - (hours - 1) * HOUR;
  const zero = (): Record<Outcome, number> => Object.fromEntries(Object.keys(OUTCOMES).map((o) => [o, 0])) as Record<Outcome, number>;
  const buckets = Array.from({ length: hours }, (_, i) => ({ hour: new Date(first + i * HOUR).toISOString(), counts: zero() }));
  for (const r of records) {
    const i = Math.floor((r.receivedAt - first) / HOUR);
    if (i >= 0 && i < hours) buckets[i]!.counts[effectiveOutcome(r, now)]++;
  }
  return buckets;
}
