import type { Notification } from '../../store/index.js';

/** Calls to other nodes' internal API. Every call is bounded in time; a failure is an answer, not a throw. */
export class PeerClient {
  private readonly headers: Record<string, string>;

  constructor(
    secret: string | null,
    private readonly timeoutMs = 3000,
  ) {
    this.headers = secret ? { authorization: `Bearer ${secret}` } : {};
  }

  /**
   * Hands a notification to the node holding the client: `delivered` once written to the client's socket,
   * `busy` when the client is there but reads from storage, `gone` when the node does not hold it or
   * cannot be reached.
   */
  async push(peerUrl: string, n: Notification): Promise<'delivered' | 'busy' | 'gone'> {
    const status = await this.call('PUT', `${peerUrl}/push/${n.uaid}`, JSON.stringify(n));
    return status === 200 ? 'delivered' : status === 409 ? 'busy' : 'gone';
  }

  /** Tells the node holding the client that storage has new messages for it; true when the client is there. */
  async notify(peerUrl: string, uaid: string): Promise<boolean> {
    return (await this.call('PUT', `${peerUrl}/notif/${uaid}`)) === 200;
  }

  /** Asks a node to drop its connection of a uaid older than connectedAt (the client moved here). */
  async dropOlder(peerUrl: string, uaid: string, connectedAt: number): Promise<boolean> {
    return (await this.call('DELETE', `${peerUrl}/notif/${uaid}/${connectedAt}`)) === 200;
  }

  /** The response status, or 0 when the node could not be reached in time. */
  private async call(method: string, url: string, body?: string): Promise<number> {
    try {
      const res = await fetch(url, {
        method,
        headers: body ? { ...this.headers, 'content-type': 'application/json' } : this.headers,
        body: body ?? null,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      await res.arrayBuffer();
      return res.status;
    } catch {
      return 0;
    }
  }
}
