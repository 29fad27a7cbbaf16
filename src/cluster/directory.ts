/**
 * A worker's replica of where its siblings' clients are: uaid → the sibling worker holding its newest connection.
 * Every worker keeps one, fed by the attach/detach frames its siblings send it directly (mesh.ts), so a push asks no
 * other process where a client is. Pure (no sockets), so the takeover rules are tested without processes. The store
 * stays the source of truth for subscriptions and messages; a stale entry only costs a hop answered `absent`.
 */
export interface Holder {
  worker: number;
  connectedAt: number;
}

/**
 * autopush's takeover rule, the newest hello wins, made total so every worker decides alike whatever order the
 * frames arrive in: equal connectedAt on two workers goes to the higher worker index.
 */
export function supersedes(a: Holder, b: Holder): boolean {
  return a.connectedAt > b.connectedAt || (a.connectedAt === b.connectedAt && a.worker > b.worker);
}

export class ClientDirectory {
  private readonly byUaid = new Map<string, Holder>();

  /** Records a sibling's connection, unless the one recorded for the uaid supersedes it. */
  attach(uaid: string, worker: number, connectedAt: number): void {
    const held = this.byUaid.get(uaid);
    const next = { worker, connectedAt };
    if (!held || held.worker === worker || supersedes(next, held)) this.byUaid.set(uaid, next);
  }

  /** Forgets a connection only if it is still the recorded one (a takeover may have replaced it). */
  detach(uaid: string, worker: number, connectedAt: number): void {
    const held = this.byUaid.get(uaid);
    if (held && held.worker === worker && held.connectedAt === connectedAt) this.byUaid.delete(uaid);
  }

  get(uaid: string): Holder | undefined {
    return this.byUaid.get(uaid);
  }

  /** A sibling died or its link went down: none of its clients are known to be connected any more. */
  forgetWorker(worker: number): void {
    for (const [uaid, held] of this.byUaid) if (held.worker === worker) this.byUaid.delete(uaid);
  }

  get size(): number {
    return this.byUaid.size;
  }
}
