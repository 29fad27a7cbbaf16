import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Notification } from '../../store/index.js';
import { type ClientRegistry, type OfferOutcome, offerToClient } from './clients.js';
import type { Siblings } from '../../cluster/worker.js';
import type { LinkHandoff } from '../../cluster/handoff.js';
import { type PeerFrame, frameSender, receiveFrames } from '../../cluster/frames.js';
import { isUaid } from '../protocol/ids.js';
import { CloseCode } from '../protocol/websocket.js';
import { secretMatches } from '../protocol/peer-auth.js';
import { LINK_MAX_FRAME, LINK_MAX_INFLIGHT, LINK_PROTOCOL, isNotification, parseLinkTarget } from '../protocol/peer-link.js';
import { authFailed, type Metrics } from '../../ops/metrics.js';

/**
 * The internal node-to-node port of a connection node (autopush's "router" port), on its own listener that is never
 * the public one. It serves one thing: the peer link (../protocol/peer-link.ts), an authenticated upgrade to a
 * persistent framed connection on which endpoint nodes hand over pushes for clients held here:
 * - `push`: a notification for a client held here, which this node saves (deliverDurably) and answers with its
 *   OfferOutcome: `delivered` once written to the socket and acked or saved, `stored` when the client must read it
 *   from storage and it was saved here, `busy` when it was not saved here (TTL 0, or the save failed), `absent` or
 *   `no-channel` when the client or its channel is not here (the endpoint node stores it on anything but the first
 *   two);
 * - `notify`: storage holds new messages for the client; answers whether it is here;
 * - `drop`: the client connected to another node at connectedAt; an older connection held here is closed.
 * Every other request, and an upgrade without the secret, is refused (401 without it, counted and logged as a
 * failed authentication; 404 with it).
 */
export interface PeerServerOptions {
  clients: ClientRegistry;
  /** Required: the internal port accepts nothing without it (config refuses PUSHGATE_ROUTER_PORT alone). */
  secret: string;
  log: FastifyBaseLogger;
  /** With several workers the internal port is shared: a client held by a sibling worker is reached over the workers' mesh. */
  siblings?: Siblings | null;
  metrics: Metrics;
  /** PEM key and certificate: serve the internal port over https (PUSHGATE_ROUTER_TLS_CERT/KEY). */
  tls: { key: Buffer; cert: Buffer } | null;
  /** With several workers and no TLS: a link for another worker (`GET /worker/<n>/link`) is handed to it. */
  handoff?: LinkHandoff | null;
}

export function createPeerServer(opts: PeerServerOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.log,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024,
    forceCloseConnections: 'idle',
    ...(opts.tls ? { https: opts.tls } : {}),
  }) as unknown as FastifyInstance;
  const { clients, secret } = opts;

  const authorized = (presented: string | undefined, remote: string | undefined): boolean => {
    if (secretMatches(presented, secret)) return true;
    // Issue 9 §17: counted and logged, never with what was presented.
    authFailed(opts.metrics, opts.log, 'router', presented === undefined ? 'missing' : 'mismatch', { remote });
    return false;
  };
  app.addHook('onRequest', async (request, reply) => {
    if (!authorized(request.headers.authorization, request.ip)) return reply.code(401).send({ error: 'unauthorized' });
  });

  const links = new LinkServer(clients, opts.siblings ?? null, opts.metrics);
  const refuse = (socket: Duplex, status: string) => socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  /** Answers an authorized link upgrade (accepted here, or handed here by a sibling) and serves the link. */
  const serveHere = (socket: Socket, head: Buffer) => {
    if (links.closing) return refuse(socket, '503 Service Unavailable');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${LINK_PROTOCOL}\r\n\r\n`);
    links.serve(socket, head);
  };
  opts.handoff?.onLink((socket, head) => {
    socket.on('error', () => socket.destroy());
    serveHere(socket, head);
  });
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (!authorized(req.headers.authorization, req.socket.remoteAddress)) return refuse(socket, '401 Unauthorized');
    const target = req.method === 'GET' && req.headers.upgrade?.toLowerCase() === LINK_PROTOCOL ? parseLinkTarget(req.url) : null;
    if (!target) return refuse(socket, '404 Not Found');
    // A link for another worker of this node goes to it (handoff.ts); one it cannot reach is served here (the mesh).
    if (target.worker !== null && opts.handoff?.pass(target.worker, socket as Socket, head)) return;
    serveHere(socket as Socket, head);
  });
  // Before the listener's close waits for its connections: each link ends once its pushes in flight are answered.
  app.addHook('preClose', (done) => {
    links.close();
    done();
  });
  return app;
}

/** The connection node's side of every open peer link. */
class LinkServer {
  closing = false;
  /** Each open link and the number of its requests not yet answered. */
  private readonly open = new Map<Socket, { inflight: number }>();

  constructor(
    private readonly clients: ClientRegistry,
    /** With several workers the internal port is shared: a client held by a sibling worker is reached over the workers' mesh. */
    private readonly siblings: Siblings | null,
    private readonly metrics: Metrics,
  ) {}

  serve(socket: Socket, head: Buffer): void {
    const link = { inflight: 0 };
    this.open.set(socket, link);
    socket.setNoDelay(true);
    // A peer machine that vanished without a FIN is noticed, and its link's memory freed.
    socket.setKeepAlive(true, 30_000);
    const send = frameSender(socket, 'the endpoint node');
    let paused = false;
    const answer = (f: PeerFrame & { t: 'answer' }) => {
      send(f);
      link.inflight--;
      if (paused && link.inflight <= LINK_MAX_INFLIGHT / 2) {
        paused = false;
        socket.resume();
      }
      if (this.closing && link.inflight === 0) socket.end();
    };
    const onFrames = (frames: PeerFrame[]) => {
      for (const f of frames) {
        switch (f.t) {
          case 'push':
            link.inflight++;
            // Checked at the edge: a malformed notification is answered as one for a client that is not here.
            if (this.closing || !isNotification(f.n)) answer({ t: 'answer', id: f.id, v: 'absent' });
            else
              void this.offer(f.n).then(
                (v) => answer({ t: 'answer', id: f.id, v }),
                // Not expected (offerToClient answers `busy` for a failed save): the endpoint node then stores it.
                () => answer({ t: 'answer', id: f.id, v: 'busy' }),
              );
            break;
          case 'notify':
            link.inflight++;
            if (!isUaid(f.uaid)) answer({ t: 'answer', id: f.id, v: false });
            else
              void this.notify(f.uaid).then(
                (v) => answer({ t: 'answer', id: f.id, v }),
                () => answer({ t: 'answer', id: f.id, v: false }),
              );
            break;
          case 'drop':
            if (isUaid(f.uaid)) this.drop(f.uaid, f.connectedAt);
            break;
          default:
            return void socket.destroy(new Error(`a peer link carries no ${f.t} frame from the endpoint node`));
        }
      }
      if (!paused && link.inflight >= LINK_MAX_INFLIGHT) {
        paused = true;
        socket.pause();
      }
    };
    socket.on('end', () => socket.destroy());
    socket.on('close', () => this.open.delete(socket));
    receiveFrames(socket, LINK_MAX_FRAME, onFrames, head);
  }

  /** Shutdown: no more links; each open one ends once its requests in flight are answered. */
  close(): void {
    this.closing = true;
    for (const [socket, link] of this.open) if (link.inflight === 0) socket.end();
  }

  private async offer(n: Notification): Promise<OfferOutcome> {
    const outcome = await offerToClient(this.clients, n);
    if (outcome !== 'absent' || !this.siblings) {
      this.metrics.peerLinkPushes.inc({ client: outcome === 'absent' ? 'elsewhere' : 'here' });
      return outcome;
    }
    const there = await this.siblings.push(n);
    this.metrics.peerLinkPushes.inc({ client: there === 'absent' ? 'elsewhere' : 'sibling' });
    return there;
  }

  private async notify(uaid: string): Promise<boolean> {
    const client = this.clients.get(uaid);
    if (client) {
      client.storageChanged();
      return true;
    }
    return (await this.siblings?.notify(uaid)) ?? false;
  }

  private drop(uaid: string, connectedAt: number): void {
    const client = this.clients.get(uaid);
    if (client && client.connectedAt < connectedAt) client.close(CloseCode.normal, 'a newer connection of this uaid took over');
    // With several workers the holder may be a sibling: it applies the same rule.
    else if (!client) this.siblings?.dropOlder(uaid, connectedAt);
  }
}
