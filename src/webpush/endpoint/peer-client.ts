import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import type { Notification } from '../../store/index.js';

/**
 * Calls to other nodes' internal API. Every call is bounded in time; a failure is an answer, not a throw.
 * Peers reached over https are verified against the system CAs plus PUSHGATE_ROUTER_CA (a fleet's own CA).
 */
export class PeerClient {
  private readonly headers: Record<string, string>;
  private readonly http = new HttpAgent({ keepAlive: true });
  private readonly https: HttpsAgent;

  constructor(
    secret: string | null,
    private readonly timeoutMs = 3000,
    ca: string | Buffer | null = null,
  ) {
    this.headers = secret ? { authorization: `Bearer ${secret}` } : {};
    this.https = new HttpsAgent({ keepAlive: true, ...(ca ? { ca: [...rootCertificates, ca.toString()] } : {}) });
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
      const tls = url.startsWith('https:');
      const headers = body ? { ...this.headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : this.headers;
      const options = { method, headers, agent: tls ? this.https : this.http, signal: AbortSignal.timeout(this.timeoutMs) };
      const req = (tls ? httpsRequest : httpRequest)(url, options, (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
        res.once('error', () => resolve(0));
      });
      req.once('error', () => resolve(0));
      req.end(body);
    });
  }

  /** Closes kept-alive connections to peers. */
  close(): void {
    this.http.destroy();
    this.https.destroy();
  }
}
