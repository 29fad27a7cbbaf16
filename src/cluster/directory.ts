/**
 * The primary's directory of connected clients: uaid → the worker holding its newest connection. Pure (no IPC),
 * so the takeover rules are tested without processes. The store stays the source of truth for subscriptions and
 * messages; this only says where a connected client is, so a push need not read the store to find it.
 */
export interface Holder {
  worker: number;
  connectedAt: number;
}

export class ClientDirectory {
  private readonly byUaid = new Map<string, Holder>();

  /**
   * Records a connection. Returns the connection that must be dropped because a newer one of the same uaid
   * now exists on another worker (autopush's takeover rule: the newest hello wins), or null.
   */
  attach(uaid: string, worker: number, connectedAt: number): { worker: number; olderThan: number } | null {
    const held = this.byUaid.get(uaid);
    if (!held || held.worker === worker) {
      // The worker itself closes an older local connection of the same uaid (ClientRegistry.add).
      if (!held || held.connectedAt <= connectedAt) this.byUaid.set(uaid, { worker, connectedAt });
      return null;
    }
    if (held.connectedAt <= connectedAt) {
      this.byUaid.set(uaid, { worker, connectedAt });
      return { worker: held.worker, olderThan: connectedAt };
    }
    // A late attach of an older connection: it is the one to go.
    return { worker, olderThan: held.connectedAt };
  }

  /** Forgets a connection only if it is still the recorded one (a takeover may have replaced it). */
  detach(uaid: string, worker: number, connectedAt: number): void {
    const held = this.byUaid.get(uaid);
    if (held && held.worker === worker && held.connectedAt === connectedAt) this.byUaid.delete(uaid);
  }

  holder(uaid: string): number | undefined {
    return this.byUaid.get(uaid)?.worker;
  }

  /** A worker died: none of its clients are connected any more. */
  forgetWorker(worker: number): void {
    for (const [uaid, held] of this.byUaid) if (held.worker === worker) this.byUaid.delete(uaid);
  }

  get size(): number {
    return this.byUaid.size;
  }
}
