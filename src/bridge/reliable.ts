import type { Metrics } from '../ops/metrics.js';
import { type Bridge, type BridgeMessage, type BridgeResult, isTransient } from './types.js';

/**
 * What every bridge shares: a cap on concurrent requests per app, a bounded queue behind it, retries of
 * transient failures with exponential backoff and full jitter (honouring the provider's Retry-After when it
 * is short), and per-bridge metrics. Wraps one provider bridge and is itself a Bridge.
 *
 * The queue is bounded (in flight + waiting ≤ maxQueued) so that a provider that stops answering costs
 * bounded memory and its senders hear at once: beyond the bound a send ends `retry-later` 503 with a
 * Retry-After without waiting, instead of queueing for minutes behind requests that will time out.
 */
export interface RetryPolicy {
  maxConcurrent: number;
  /** Attempts in all, the first included. */
  maxAttempts: number;
  baseDelayMs: number;
  /** A wait longer than this is not done here: the outcome (with its Retry-After) goes back to the caller. */
  maxDelayMs: number;
  /** Sends in flight plus waiting for a slot; beyond it a send is refused at once. */
  maxQueued: number;
  /** Retry-After (seconds) given with a refusal for a full queue. */
  queueFullRetryAfter: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxConcurrent: 256, maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 2000, maxQueued: 1024, queueFullRetryAfter: 10 };

export class ReliableBridge implements Bridge {
  readonly type;
  readonly appId;
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly inner: Bridge,
    private readonly policy: RetryPolicy,
    private readonly metrics: Metrics,
    /** Injected for tests: how to wait. */
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {
    this.type = inner.type;
    this.appId = inner.appId;
  }

  validateToken(token: string): boolean {
    return this.inner.validateToken(token);
  }

  private async acquire(): Promise<void> {
    if (this.active < this.policy.maxConcurrent) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }

  /** The wait before attempt n+1: the provider's Retry-After, or full jitter over an exponential ceiling. */
  delayFor(result: BridgeResult, attempt: number): number {
    if (result.outcome === 'retry-later' && result.retryAfter !== null) return result.retryAfter * 1000;
    return Math.random() * this.policy.baseDelayMs * 2 ** (attempt - 1);
  }

  /** Sends in flight plus those waiting for a slot. */
  get queued(): number {
    return this.active + this.waiting.length;
  }

  async send(message: BridgeMessage): Promise<BridgeResult> {
    const labels = { type: this.type, app: this.appId };
    if (this.queued >= this.policy.maxQueued) {
      this.metrics.bridgeFailed.inc({ ...labels, reason: 'queue_full' });
      return {
        outcome: 'retry-later',
        reason: `the ${this.type} app ${this.appId} has ${this.queued} sends queued`,
        status: 503,
        retryAfter: this.policy.queueFullRetryAfter,
      };
    }
    await this.acquire();
    try {
      for (let attempt = 1; ; attempt++) {
        const end = this.metrics.bridgeLatency.startTimer({ type: this.type });
        const result = await this.inner.send(message);
        end();
        if (isTransient(result) && attempt < this.policy.maxAttempts) {
          const delay = this.delayFor(result, attempt);
          if (delay <= this.policy.maxDelayMs) {
            this.metrics.bridgeRetries.inc(labels);
            await this.sleep(delay);
            continue;
          }
        }
        if (result.outcome === 'delivered') this.metrics.bridgeSent.inc(labels);
        else this.metrics.bridgeFailed.inc({ ...labels, reason: result.outcome === 'misconfigured' ? `errno_${result.errno}` : result.outcome });
        return result;
      }
    } finally {
      this.release();
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
