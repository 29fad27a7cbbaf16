import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { rootCertificates } from 'node:tls';
import type { Metrics } from '../../ops/metrics.js';
import type { Notification } from '../../store/index.js';
import type { OfferOutcome } from '../connection/clients.js';
import { type PeerFrame, frameSender, receiveFrames } from '../../cluster/frames.js';
import { PendingRequests } from '../../util/pending.js';
import { LINK_MAX_FRAME, LINK_PROTOCOL, type PushOutcome, linkUrl, pushOutcome } from '../protocol/peer-link.js';

/**
 * Calls from an endpoint node to the connection nodes holding clients, over one persistent peer link per node
 * (../protocol/peer-link.ts): a push is one frame each way on an open socket, and the pushes of one tick leave in
 * one write, so under load the hop costs a write per batch, not a request per message (issue 13). A link is opened
 * on first use and again after it closes. Every call is bounded in time; a failure is an answer, not a throw.
 */
export type { PushOutcome };

export class PeerClient {
  private readonly links = new Map<string, PeerLink>();
  private readonly dialOptions: DialOptions;

  constructor(
    secret: string | null,
    timeoutMs = 3000,
    /** A PEM CA trusted beside the system CAs for peers reached over https (PUSHGATE_ROUTER_CA). */
    ca: string | Buffer | null = null,
    /** Where dials are counted (pushgate_peer_links_total) and a link's loss and return are logged. */
    observer: LinkObserver | null = null,
  ) {
    this.dialOptions = {
      headers: { connection: 'Upgrade', upgrade: LINK_PROTOCOL, ...(secret ? { authorization: `Bearer ${secret}` } : {}) },
      ca: ca ? [...rootCertificates, ca.toString()] : null,
      timeoutMs,
      observer,
    };
  }

  /** Closes every link (gateway shutdown); calls still waiting get their `absent` or `false`. */
  close(): void {
    for (const link of this.links.values()) link.close();
    this.links.clear();
  }

  /**
   * Hands a notification to the node holding the client, which saves it (OfferOutcome in clients.ts): `delivered`
   * once written to the client's socket and acked or saved there, `stored` when saved there for the client's next
   * storage read, `busy` when the client is there but the node did not save it, `unanswered` when the node took the
   * push and did not answer in time, `absent` when the node does not hold the client or cannot be reached.
   */
  async push(peerUrl: string, n: Notification): Promise<PushOutcome> {
    const v = await this.link(peerUrl).request((id) => ({ t: 'push', id, n }), 'absent', 'unanswered');
    return v === 'unanswered' ? v : pushOutcome(v as OfferOutcome);
  }

  /** Tells the node holding the client that storage has new messages for it; true when the client is there. */
  async notify(peerUrl: string, uaid: string): Promise<boolean> {
    return (await this.link(peerUrl).request((id) => ({ t: 'notify', id, uaid }), false, false)) === true;
  }

  /** Asks a node to drop its connection of a uaid older than connectedAt (the client moved here); true once sent. */
  dropOlder(peerUrl: string, uaid: string, connectedAt: number): Promise<boolean> {
    return this.link(peerUrl).tell({ t: 'drop', uaid, connectedAt });
  }

  private link(peerUrl: string): PeerLink {
    let link = this.links.get(peerUrl);
    if (!link) this.links.set(peerUrl, (link = new PeerLink(peerUrl, this.dialOptions)));
    return link;
  }
}

export interface LinkObserver {
  metrics: Metrics;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

interface DialOptions {
  headers: Record<string, string>;
  ca: string[] | null;
  timeoutMs: number;
  observer: LinkObserver | null;
}

interface Pending {
  /** The answer when the link fails before the node answers. */
  ifLost: unknown;
  /** The answer when the node took the frame (it was written to the link) and said nothing in time. */
  ifSilent: unknown;
  written: boolean;
}

/** A frame waiting for the link to come up, and what to do once it is written or cannot be. */
interface Queued {
  f: PeerFrame;
  sent?: (written: boolean) => void;
}

/** The link to one connection node: up, being dialled, or neither (dialled at the next call). */
class PeerLink {
  private send: ((f: PeerFrame) => boolean) | null = null;
  private socket: Socket | null = null;
  private dialing = false;
  private closed = false;
  /** The last dial failed: logged once, until a link opens again (a node that is down fails a dial per push). */
  private failing = false;
  private queued: Queued[] = [];
  private readonly pending: PendingRequests<Pending>;

  constructor(
    private readonly url: string,
    private readonly options: DialOptions,
  ) {
    this.pending = new PendingRequests(options.timeoutMs);
  }

  /** Sends the frame `make` builds with a fresh id and resolves with its answer, or `ifLost` / `ifSilent` (Pending). */
  request(make: (id: number) => PeerFrame, ifLost: unknown, ifSilent: unknown): Promise<unknown> {
    if (this.closed) return Promise.resolve(ifLost);
    return this.pending.start(
      { ifLost, ifSilent, written: false },
      (p) => (p.written ? p.ifSilent : p.ifLost),
      (id) => this.write({ f: make(id) }),
    );
  }

  /** Sends a frame that has no answer; resolves true once it is written to the link, false if it cannot be. */
  tell(f: PeerFrame): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((sent) => this.write({ f, sent }));
  }

  close(): void {
    this.closed = true;
    this.socket?.destroy();
    this.failQueued();
  }

  private write(q: Queued): void {
    if (this.send) return this.deliver(q);
    this.queued.push(q);
    if (!this.dialing) this.dial();
  }

  private deliver(q: Queued): void {
    const id = 'id' in q.f ? q.f.id : null;
    if (id !== null) {
      const p = this.pending.get(id);
      // Timed out while the link was being dialled: answered already.
      if (!p) return;
      p.written = true;
    }
    // A false destroyed the socket (the node reads nothing): its close settles what was written.
    const ok = this.send!(q.f);
    q.sent?.(ok);
  }

  private dial(): void {
    this.dialing = true;
    let target: URL;
    try {
      target = new URL(linkUrl(this.url));
    } catch {
      return this.dialFailed('unreachable', 'not a URL');
    }
    const tls = target.protocol === 'https:';
    const req = (tls ? https : http).request(target, {
      method: 'GET',
      agent: false,
      headers: this.options.headers,
      ...(tls && this.options.ca ? { ca: this.options.ca } : {}),
    });
    let settled = false;
    const fail = (result: 'refused' | 'unreachable', reason: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      this.dialFailed(result, reason);
    };
    const timer = setTimeout(() => {
      fail('unreachable', 'timeout');
      req.destroy(new Error('peer link timeout'));
    }, this.options.timeoutMs);
    req.on('upgrade', (res, socket: Socket, head: Buffer) => {
      if (settled || this.closed || res.headers.upgrade?.toLowerCase() !== LINK_PROTOCOL) {
        socket.destroy();
        return fail('refused', `upgraded to ${res.headers.upgrade}`);
      }
      settled = true;
      clearTimeout(timer);
      this.up(socket, head);
    });
    // 401 (wrong secret), 404, 503 (the node is shutting down): not a link.
    req.on('response', (res) => {
      res.resume();
      fail('refused', `status ${res.statusCode}`);
    });
    req.on('error', (err: NodeJS.ErrnoException) => fail('unreachable', err.code ?? err.message));
    req.end();
  }

  private dialFailed(result: 'refused' | 'unreachable', reason: string): void {
    this.dialing = false;
    this.options.observer?.metrics.peerLinks.inc({ result });
    if (!this.failing) this.options.observer?.log.warn({ peer: this.url, result, reason }, 'peer link not open: pushes for its clients are stored');
    this.failing = true;
    this.failQueued();
  }

  private failQueued(): void {
    const queued = this.queued;
    this.queued = [];
    for (const q of queued) {
      if ('id' in q.f) {
        const p = this.pending.get(q.f.id);
        if (p) this.pending.settle(q.f.id, p.ifLost);
      }
      q.sent?.(false);
    }
  }

  private up(socket: Socket, head: Buffer): void {
    this.dialing = false;
    this.options.observer?.metrics.peerLinks.inc({ result: 'open' });
    if (this.failing) this.options.observer?.log.info({ peer: this.url }, 'peer link open again');
    this.failing = false;
    this.socket = socket;
    socket.setNoDelay(true);
    // A peer machine that vanished without a FIN is noticed.
    socket.setKeepAlive(true, 30_000);
    this.send = frameSender(socket, `peer ${this.url}`);
    socket.on('error', () => {
      // The close that follows handles it.
    });
    socket.on('end', () => socket.destroy());
    socket.on('close', () => {
      if (this.socket === socket) {
        this.socket = null;
        this.send = null;
      }
      // What was written and not answered is lost with the link (the node may be gone): as an unreachable node.
      this.pending.settleWhere(
        (p) => p.written,
        (p) => p.ifLost,
      );
    });
    receiveFrames(
      socket,
      LINK_MAX_FRAME,
      (frames) => {
        for (const f of frames) {
          if (f.t !== 'answer') return void socket.destroy(new Error(`a peer link carries no ${f.t} frame from the connection node`));
          this.pending.settle(f.id, f.v);
        }
      },
      head,
    );
    const queued = this.queued;
    this.queued = [];
    for (const q of queued) this.deliver(q);
  }
}
