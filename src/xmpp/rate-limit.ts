import { BoundedMap } from '../util/bounded-map.js';

/**
 * A token bucket per push node: an XMPP server that publishes faster than the configured rate is told
 * `wait`/`resource-constraint` (mod_push_appserver and fpush do the same), which never costs the user the
 * registration. Buckets live in memory, bounded in number.
 */
export class NodeRateLimiter {
  private readonly buckets;

  constructor(
    /** Sustained publishes per minute per node (0 disables the limit). */
    private readonly perMinute: number,
    /** Publishes allowed in a burst. */
    private readonly burst: number,
    maxNodes = 100_000,
  ) {
    this.buckets = new BoundedMap<string, { tokens: number; at: number }>(maxNodes);
  }

  take(node: string, now = Date.now()): boolean {
    if (this.perMinute <= 0) return true;
    let b = this.buckets.get(node);
    if (!b) {
      b = { tokens: this.burst, at: now };
      this.buckets.set(node, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 60_000) * this.perMinute);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
