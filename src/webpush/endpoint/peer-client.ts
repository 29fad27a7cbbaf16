import http from 'node:http';
import https from 'node:https';
import type { Notification } from '../../store/index.js';

/**
 * Calls to other nodes' internal API. Every call is bounded in time; a failure is an answer, not a throw.
 * Calls go over kept-alive HTTP/1.1 connections (one pool per peer, node:http's Agent): the per-message cost
 * of the endpoint → connection hop is one request on an open socket, not a connection set-up (issue 13).
 */
export class PeerClient {
  private readonly headers: Record<string, string>;
  /** Sockets kept open per peer; requests beyond this queue in the agent until one is free. */
  private static readonly SOCKETS_PER_PEER = 32;
  private readonly agents = {
    http: new http.Agent({ keepAlive: true, maxSockets: PeerClient.SOCKETS_PER_PEER, scheduling: 'lifo' }),
    https: new https.Agent({ keepAlive: true, maxSockets: PeerClient.SOCKETS_PER_PEER, scheduling: 'lifo' }),
  };

  constructor(
    secret: string | null,
    private readonly timeoutMs = 3000,
  ) {
    this.headers = secret ? { authorization: `Bearer ${secret}` } : {};
  }

  /** Closes the kept-alive connections (gateway shutdown). */
  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
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
  private call(method: string, url: string, body?: string): Promise<number> {
    return new Promise((resolve) => {
      let target: URL;
      try {
        target = new URL(url);
      } catch {
        return resolve(0);
      }
      const tls = target.protocol === 'https:';
      const headers = body ? { ...this.headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : this.headers;
      const req = (tls ? https : http).request(target, { method, headers, agent: tls ? this.agents.https : this.agents.http }, (res) => {
        res.on('error', () => finish(0));
        res.on('end', () => finish(res.statusCode ?? 0));
        res.resume();
      });
      const timer = setTimeout(() => req.destroy(new Error('peer timeout')), this.timeoutMs);
      const finish = (status: number) => {
        clearTimeout(timer);
        resolve(status);
      };
      req.on('error', () => finish(0));
      req.end(body);
    });
  }
}
