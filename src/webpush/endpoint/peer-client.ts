import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import type { Notification } from '../../store/index.js';
import { PEER_BATCH_MAX, PEER_NO_ANSWER, peerOutcome } from '../connection/peer-server.js';

/**
 * Calls to other nodes' internal API. Every call is bounded in time; a failure is an answer, not a throw.
 * Calls go over kept-alive HTTP/1.1 connections (one pool per peer, node:http's Agent): the per-message cost
 * of the endpoint → connection hop is one request on an open socket, not a connection set-up (issue 13).
 * When every socket to a peer is busy, pushes wait and go out together as one `PUT /push` batch as soon as a
 * socket frees: under load the hop costs one request per batch, not per message.
 */

/** What a push hop answers (peer-server.ts's PEER_STATUS read back): `absent` also when the node cannot be reached in time. */
export type PushOutcome = ReturnType<typeof peerOutcome>;

export class PeerClient {
  private readonly headers: Record<string, string>;
  private readonly agents;
  /** Per peer: requests in flight, and pushes waiting for a free socket. */
  private readonly peers = new Map<string, { inflight: number; waiting: { n: Notification; resolve: (o: PushOutcome) => void }[] }>();

  constructor(
    secret: string | null,
    private readonly timeoutMs = 3000,
    /** A PEM CA trusted beside the system CAs for peers reached over https (PUSHGATE_ROUTER_CA). */
    ca: string | Buffer | null = null,
    /** Sockets kept open per peer; pushes beyond this many in flight are batched. */
    private readonly socketsPerPeer = 32,
  ) {
    this.headers = secret ? { authorization: `Bearer ${secret}` } : {};
    this.agents = {
      http: new http.Agent({ keepAlive: true, maxSockets: socketsPerPeer, scheduling: 'lifo' }),
      https: new https.Agent({ keepAlive: true, maxSockets: socketsPerPeer, scheduling: 'lifo', ...(ca ? { ca: [...rootCertificates, ca.toString()] } : {}) }),
    };
  }

  /** Closes the kept-alive connections (gateway shutdown). */
  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  /**
   * Hands a notification to the node holding the client, which saves it (OfferOutcome in clients.ts): `delivered`
   * once written to the client's socket and saved there, `stored` when saved there for the client's next storage
   * read, `busy` when the client is there but the node did not save it, `unanswered` when the node took the
   * request and did not answer in time (PEER_NO_ANSWER), `absent` when the node does not hold the client or cannot
   * be reached.
   */
  push(peerUrl: string, n: Notification): Promise<PushOutcome> {
    let peer = this.peers.get(peerUrl);
    if (!peer) this.peers.set(peerUrl, (peer = { inflight: 0, waiting: [] }));
    if (peer.inflight >= this.socketsPerPeer) return new Promise((resolve) => peer.waiting.push({ n, resolve }));
    peer.inflight++;
    return this.call('PUT', `${peerUrl}/push/${n.uaid}`, JSON.stringify(n)).then((status) => {
      this.sent(peerUrl);
      return peerOutcome(status);
    });
  }

  /** A request to the peer finished: its socket takes the pushes that waited, as one batch. */
  private sent(peerUrl: string): void {
    const peer = this.peers.get(peerUrl)!;
    peer.inflight--;
    if (peer.waiting.length === 0) {
      if (peer.inflight === 0) this.peers.delete(peerUrl);
      return;
    }
    const batch = peer.waiting.splice(0, PEER_BATCH_MAX);
    peer.inflight++;
    void this.callJson('PUT', `${peerUrl}/push`, JSON.stringify(batch.map((b) => b.n))).then(({ status, body }) => {
      const statuses = status === 200 && Array.isArray(body) && body.length === batch.length ? (body as unknown[]) : [];
      // A batch not answered in time leaves each of its pushes as a single one would be left (PEER_NO_ANSWER).
      const whole = status === PEER_NO_ANSWER ? PEER_NO_ANSWER : 0;
      batch.forEach((b, i) => b.resolve(peerOutcome(typeof statuses[i] === 'number' ? statuses[i] : whole)));
      this.sent(peerUrl);
    });
  }

  /** Tells the node holding the client that storage has new messages for it; true when the client is there. */
  async notify(peerUrl: string, uaid: string): Promise<boolean> {
    return (await this.call('PUT', `${peerUrl}/notif/${uaid}`)) === 200;
  }

  /** Asks a node to drop its connection of a uaid older than connectedAt (the client moved here). */
  async dropOlder(peerUrl: string, uaid: string, connectedAt: number): Promise<boolean> {
    return (await this.call('DELETE', `${peerUrl}/notif/${uaid}/${connectedAt}`)) === 200;
  }

  /** The response status; 0 when the node could not be reached, PEER_NO_ANSWER when it took the request and did not answer in time. */
  private async call(method: string, url: string, body?: string): Promise<number> {
    return (await this.callJson(method, url, body, false)).status;
  }

  /** The response status and (when asked) its JSON body; the status as `call` gives it. */
  private callJson(method: string, url: string, body?: string, wantBody = true): Promise<{ status: number; body: unknown }> {
    return new Promise((resolve) => {
      let target: URL;
      try {
        target = new URL(url);
      } catch {
        return resolve({ status: 0, body: null });
      }
      const tls = target.protocol === 'https:';
      const headers = body ? { ...this.headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : this.headers;
      const req = (tls ? https : http).request(target, { method, headers, agent: tls ? this.agents.https : this.agents.http }, (res) => {
        const chunks: Buffer[] = [];
        res.on('error', () => finish(0));
        res.on('data', (c: Buffer) => {
          if (wantBody) chunks.push(c);
        });
        res.on('end', () => {
          let parsed: unknown = null;
          try {
            if (wantBody) parsed = JSON.parse(Buffer.concat(chunks).toString());
          } catch {
            // Not JSON: the caller sees no body.
          }
          finish(res.statusCode ?? 0, parsed);
        });
      });
      // Once the request is written the node has it: no answer in time then is not proof that it is gone.
      let written = false;
      req.on('finish', () => (written = true));
      const timer = setTimeout(() => {
        finish(written ? PEER_NO_ANSWER : 0);
        req.destroy(new Error('peer timeout'));
      }, this.timeoutMs);
      let done = false;
      const finish = (status: number, parsed: unknown = null) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve({ status, body: parsed });
      };
      req.on('error', () => finish(0));
      req.end(body);
    });
  }
}
