import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Server, Socket } from 'node:net';

/**
 * Limits of the public HTTP listener (issue 9 §8), the same for plain HTTP/1.1 and for TLS (HTTP/1.1 and
 * HTTP/2 on one port), counted per TCP connection:
 * - a connection that has not completed a request's headers within `headersMs` of opening is closed: a silent
 *   socket and a slowloris trickling header bytes are both reaped; after a response, the connection may idle
 *   (or send its next headers) for the longer of `headersMs` and `keepAliveMs`. Node's own
 *   headersTimeout runs only on plain HTTP/1.1 servers and only every connectionsCheckingInterval (30 s), so
 *   this guard does it for every kind of server;
 * - a request whose body has not fully arrived within `requestMs` is destroyed (for HTTP/2, its stream);
 * - at most `maxConnections` HTTP connections are open. A new connection at the cap closes the oldest *idle*
 *   one (no request in progress: silent, mid-headers or idle keep-alive) so that idle sockets can never
 *   crowd out a sender; only when every connection is busy with a request is the new one refused.
 *   A websocket leaves the count once upgraded: its life is bounded by the hello timeout and pings instead.
 */
export interface ListenerLimits {
  headersMs: number;
  /** How long a served connection may stay idle (or trickle its next request's headers). */
  keepAliveMs: number;
  requestMs: number;
  maxConnections: number;
}

/** Why the guard closed a connection: the metric's `reason` label and the key of `closed`. */
export type CloseReason = 'headersTimeout' | 'requestTimeout' | 'evicted' | 'refused';

interface Tracked {
  socket: Socket;
  /** Requests whose response has not finished. */
  active: number;
  /** When the connection opened or last became idle; the deadlines count from here. */
  idleSince: number;
  /** Has completed a request: idle, it waits for the next under the keep-alive deadline. */
  served: boolean;
}

export class ListenerGuard {
  private readonly tracked = new Map<Socket, Tracked>();
  private readonly timer: NodeJS.Timeout;
  /** Connections closed by the guard, by reason (metrics and tests). */
  readonly closed: Record<CloseReason, number> = { headersTimeout: 0, requestTimeout: 0, evicted: 0, refused: 0 };

  constructor(
    server: Server,
    private readonly limits: ListenerLimits,
    /** Counts each close by its reason too (the gateway passes `pushgate_http_connections_closed_total`). */
    private readonly counter?: { inc(labels: { reason: CloseReason }): void },
  ) {
    // Prepended: the decision is taken before the HTTP machinery attaches a parser to the socket.
    server.prependListener('connection', (socket: Socket) => this.onConnection(socket));
    server.on('request', (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => this.onRequest(req, res));
    server.on('upgrade', (req: IncomingMessage) => this.tracked.delete(rawSocket(req.socket)));
    // The sweep runs often enough that a deadline is kept within a quarter of its length (at least 250 ms).
    const every = Math.max(250, Math.min(1000, Math.floor(limits.headersMs / 4)));
    this.timer = setInterval(() => this.sweep(Date.now()), every);
    this.timer.unref();
    server.once('close', () => clearInterval(this.timer));
  }

  /** Open HTTP connections counted against the cap. */
  get size(): number {
    return this.tracked.size;
  }

  /** Requests in progress (headers received, response not finished). */
  get inFlight(): number {
    let n = 0;
    for (const t of this.tracked.values()) n += t.active;
    return n;
  }

  /** Shutdown: closes connections with no request in progress. */
  closeIdle(): void {
    for (const t of [...this.tracked.values()]) if (t.active === 0) this.drop(t.socket);
  }

  /** Shutdown after the grace: closes every connection left. */
  destroyAll(): void {
    for (const socket of [...this.tracked.keys()]) this.drop(socket);
  }

  private onConnection(socket: Socket): void {
    if (this.tracked.size >= this.limits.maxConnections) {
      const idle = this.oldestIdle();
      if (idle) {
        this.count('evicted');
        this.drop(idle.socket);
      } else {
        this.count('refused');
        socket.destroy();
        return;
      }
    }
    const t: Tracked = { socket, active: 0, idleSince: Date.now(), served: false };
    this.tracked.set(socket, t);
    socket.once('close', () => this.tracked.delete(socket));
  }

  private onRequest(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void {
    const t = this.tracked.get(rawSocket(req.socket));
    if (t) {
      t.active++;
      t.served = true;
    }
    let complete = req.complete;
    const deadline = complete
      ? null
      : setTimeout(() => {
          if (complete) return;
          this.count('requestTimeout');
          // HTTP/1.1: the socket goes with it (the body's remainder cannot be skipped); HTTP/2: only the stream.
          req.destroy();
        }, this.limits.requestMs);
    deadline?.unref();
    req.once('end', () => {
      complete = true;
      if (deadline) clearTimeout(deadline);
    });
    let done = false;
    const finished = () => {
      if (done) return;
      done = true;
      if (deadline) clearTimeout(deadline);
      if (t && --t.active === 0) t.idleSince = Date.now();
    };
    res.once('finish', finished);
    res.once('close', finished);
  }

  private count(reason: CloseReason): void {
    this.closed[reason]++;
    this.counter?.inc({ reason });
  }

  private oldestIdle(): Tracked | undefined {
    // Map order is opening order: the first idle entry is the oldest connection.
    for (const t of this.tracked.values()) if (t.active === 0) return t;
    return undefined;
  }

  private sweep(now: number): void {
    for (const t of this.tracked.values()) {
      const limit = t.served ? Math.max(this.limits.headersMs, this.limits.keepAliveMs) : this.limits.headersMs;
      if (t.active === 0 && now - t.idleSince >= limit) {
        this.count('headersTimeout');
        this.drop(t.socket);
      }
    }
  }

  private drop(socket: Socket): void {
    this.tracked.delete(socket);
    socket.destroy();
  }
}

/** The TCP socket under a request's socket: a TLS socket (HTTP/1.1 over TLS, or HTTP/2's proxy) wraps it. */
function rawSocket(socket: Socket): Socket {
  return (socket as Socket & { _parent?: Socket })._parent ?? socket;
}
