/**
 * Megaphone broadcast versions for the websocket door (BroadcastSource), from one of two feeds:
 * - a Megaphone service, polled as autoconnect polls it (autoconnect-common megaphone.rs): GET the URL,
 *   expect `{"broadcasts": {id: version}}`, 1 s timeout, every PUSHGATE_MEGAPHONE_POLL_INTERVAL seconds;
 * - or Pushgate's own Megaphone-compatible API (routes.ts), whose versions live in the store so that every
 *   peer of a fleet serves the same ones: each peer re-reads the store at the same interval.
 * As autoconnect's BroadcastChangeTracker, versions are only added or changed, never removed by a poll.
 */
import type { Metrics } from '../../ops/metrics.js';
import type { Store } from '../../store/index.js';
import { BroadcastVersions } from './source.js';

/** autoconnect's reqwest client timeout for Megaphone. */
export const MEGAPHONE_TIMEOUT_MS = 1000;
/** Megaphone's own limits (megaphone http.rs): broadcaster ≤ 64, channel ≤ 128 url-safe characters, version ≤ 200 ASCII. */
export const BROADCASTER_ID = /^[A-Za-z0-9\-_]{1,64}$/;
export const BCHANNEL_ID = /^[A-Za-z0-9\-_]{1,128}$/;
export const MAX_VERSION_LENGTH = 200;
/** Bounds on what a poll accepts, so a broken or hostile Megaphone cannot grow memory without limit. */
const MAX_RESPONSE_BYTES = 1 << 20;
const MAX_BROADCASTS = 10_000;

type Log = { warn(obj: object, msg: string): void };

export function isVersion(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_VERSION_LENGTH && Buffer.byteLength(v) === v.length;
}

/** Megaphone's GET /v1/broadcasts answer, checked; null when it is not one. */
export function parseMegaphoneResponse(json: unknown): Record<string, string> | null {
  if (typeof json !== 'object' || json === null) return null;
  const broadcasts = (json as { broadcasts?: unknown }).broadcasts;
  if (typeof broadcasts !== 'object' || broadcasts === null || Array.isArray(broadcasts)) return null;
  const entries = Object.entries(broadcasts as Record<string, unknown>);
  if (entries.length > MAX_BROADCASTS) return null;
  const out: Record<string, string> = {};
  for (const [id, version] of entries) {
    if (!isVersion(version) || id.length > 193) return null;
    out[id] = version;
  }
  return out;
}

/** The current versions and who wants to hear about changes: the BroadcastSource the session reads. */

/** Reads a response body up to a bound; null when it is larger. */
async function boundedText(res: Response, limit: number): Promise<string | null> {
  if (!res.body) return '';
  const reader: ReadableStreamDefaultReader<Uint8Array> = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export type PollOutcome = 'ok' | 'timeout' | 'connect' | 'http' | 'invalid' | 'store_error';

/** One read of a Megaphone service (autoconnect megaphone.rs `updater`). */
export async function pollMegaphone(
  url: string,
  token: string | null,
  timeoutMs = MEGAPHONE_TIMEOUT_MS,
): Promise<{ outcome: PollOutcome; broadcasts?: Record<string, string> }> {
  let res: Response;
  try {
    // autopush-rs 1.83 no longer sends its (deprecated) token; Megaphone itself requires a reader's Bearer
    // token on this route, so Pushgate sends one when it has one.
    res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const name = (err as Error).name;
    return { outcome: name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'connect' };
  }
  if (!res.ok) {
    await res.body?.cancel();
    return { outcome: 'http' };
  }
  let text: string | null;
  try {
    text = await boundedText(res, MAX_RESPONSE_BYTES);
  } catch (err) {
    return { outcome: (err as Error).name === 'TimeoutError' ? 'timeout' : 'connect' };
  }
  if (text === null) return { outcome: 'invalid' };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { outcome: 'invalid' };
  }
  const broadcasts = parseMegaphoneResponse(json);
  return broadcasts ? { outcome: 'ok', broadcasts } : { outcome: 'invalid' };
}

export interface BroadcastOptions {
  store: Store;
  metrics: Metrics;
  log: Log;
  megaphoneUrl: string | null;
  megaphoneToken: string | null;
  pollIntervalSeconds: number;
}

/**
 * The broadcast feed a gateway runs: `megaphone` (a URL is set), `store` (no URL, a token: Pushgate's own
 * API, see routes.ts) or `none` (no broadcasts; hello answers every requested id as unknown).
 */
export class Broadcasts {
  readonly source = new BroadcastVersions();
  readonly mode: 'megaphone' | 'store' | 'none';
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: BroadcastOptions) {
    this.mode = opts.megaphoneUrl ? 'megaphone' : opts.megaphoneToken ? 'store' : 'none';
  }

  /** One refresh from the feed; never throws (a failed poll keeps the versions known so far). */
  async refresh(): Promise<PollOutcome | null> {
    if (this.mode === 'none') return null;
    let outcome: PollOutcome;
    if (this.mode === 'megaphone') {
      const result = await pollMegaphone(this.opts.megaphoneUrl!, this.opts.megaphoneToken);
      outcome = result.outcome;
      if (result.broadcasts) this.source.update(result.broadcasts);
    } else {
      try {
        this.source.update(await this.opts.store.getBroadcasts());
        outcome = 'ok';
      } catch {
        outcome = 'store_error';
      }
    }
    this.opts.metrics.megaphoneRefreshes.inc({ source: this.mode, outcome });
    if (outcome !== 'ok') this.opts.log.warn({ source: this.mode, outcome }, 'broadcast versions not refreshed');
    return outcome;
  }

  /** Reads the versions once (as autoconnect does before it serves), then every poll interval. */
  async start(): Promise<void> {
    if (this.mode === 'none' || this.timer) return;
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.opts.pollIntervalSeconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** What the store holds now (GET /v1/broadcasts answers the fleet's truth, not this peer's last read). */
  storedVersions(): Promise<Record<string, string>> {
    return this.opts.store.getBroadcasts();
  }

  /** A version set through Pushgate's API: stored for the fleet, and served by this peer at once. */
  async put(id: string, version: string): Promise<boolean> {
    const created = await this.opts.store.putBroadcast(id, version);
    this.source.update({ [id]: version });
    return created;
  }
}
