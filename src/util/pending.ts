/**
 * Requests sent to another process and waiting for its answer, by id: the workers' mesh and the fleet's peer link
 * both carry a u32 request id in their frames (src/cluster/frames.ts), so ids wrap there rather than overflow it.
 * Each request is settled once, by whichever comes first: its answer, its timer, or its caller (a link that went
 * down). `E` is what the caller keeps with each request to decide those.
 */
export class PendingRequests<E> {
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; timer: NodeJS.Timeout; entry: E }>();
  private nextId = 1;

  constructor(private readonly timeoutMs: number) {}

  /** Registers a request and has `send` send it with its id; after timeoutMs it resolves with `onTimeout(entry)`. */
  start(entry: E, onTimeout: (entry: E) => unknown, send: (id: number) => void): Promise<unknown> {
    const id = this.nextId;
    this.nextId = id === 0xffffffff ? 1 : id + 1;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle(id, onTimeout(entry)), this.timeoutMs);
      this.pending.set(id, { resolve, timer, entry });
      send(id);
    });
  }

  /** The entry of a request still waiting. */
  get(id: number): E | undefined {
    return this.pending.get(id)?.entry;
  }

  /** Resolves request `id` with `v`, if it is still waiting. */
  settle(id: number, v: unknown): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(v);
  }

  /** Resolves every waiting request whose entry `matches`, each with `value(entry)`. */
  settleWhere(matches: (entry: E) => boolean, value: (entry: E) => unknown): void {
    for (const [id, p] of this.pending) if (matches(p.entry)) this.settle(id, value(p.entry));
  }
}
