import { timingSafeEqual } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { MAX_FRAME, type PeerFrame, frameSender, receiveFrames } from './frames.js';
import { workerSocketPath } from './ipc.js';
import type { MeshPort } from './worker.js';

/**
 * The workers' direct links: worker i listens on a unix-domain socket in the primary's private 0700 directory and
 * keeps one persistent connection to each sibling, so a push crosses workers in one write and one read, with no
 * primary in between. Each connection carries frames one way (a worker sends on the connection it opened and
 * receives on those its siblings opened), so a connection's close says exactly one thing: an outgoing one, that
 * requests to that sibling will not be answered; an incoming one, that the sibling's directory entries are stale.
 * Frames written in one tick leave in one write (frameSender): batching when busy, no delay when not.
 */

/** Reconnect delays toward a sibling that is not (yet, or no longer) listening: it may be starting or restarting. */
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 1000;

export interface MeshHandlers {
  frame(from: number, f: PeerFrame): void;
  /** The connection to `to` is up. */
  up(to: number): void;
  /** The connection to `to` closed. */
  down(to: number): void;
  /** The connection from `from` closed. */
  silent(from: number): void;
}

interface Outgoing {
  socket: Socket | null;
  /** Set while the connection is up. */
  send: ((f: PeerFrame) => boolean) | null;
  retryMs: number;
}

export class Mesh implements MeshPort {
  private server: Server | null = null;
  private readonly out = new Map<number, Outgoing>();
  private readonly incoming = new Map<number, Socket>();
  /** Every accepted connection, including those whose hello has not arrived yet. */
  private readonly accepted = new Set<Socket>();
  private closed = false;

  constructor(
    private readonly dir: string,
    private readonly self: number,
    private readonly count: number,
    private readonly handlers: MeshHandlers,
    /** The primary's secret (WORKER_SECRET_ENV): presented in every hello, checked in constant time on accept. */
    private readonly secret: Buffer,
  ) {}

  start(): void {
    const path = workerSocketPath(this.dir, this.self);
    try {
      // A predecessor of this worker index that died leaves its socket file behind.
      unlinkSync(path);
    } catch {
      // None was left.
    }
    this.server = createServer((s) => this.accept(s));
    this.server.on('error', (err) => {
      // Without a listener siblings cannot reach this worker; they then store what they would have sent here.
      process.emitWarning(`worker ${this.self} could not listen on ${path}: ${err.message}`);
    });
    // exclusive: the worker binds the socket itself; otherwise node:cluster would have the primary listen on it
    // and hand each connection over, putting the primary back on the path.
    this.server.listen({ path, exclusive: true });
    this.server.unref();
    for (let to = 1; to <= this.count; to++) {
      if (to === this.self) continue;
      const o: Outgoing = { socket: null, send: null, retryMs: RETRY_MIN_MS };
      this.out.set(to, o);
      this.dial(to, o);
    }
  }

  *siblings(): Iterable<number> {
    for (const [to, o] of this.out) if (o.send) yield to;
  }

  send(to: number, f: PeerFrame): boolean {
    const o = this.out.get(to);
    if (!o?.send) return false;
    // A false here destroyed the socket: the close that follows reports it down.
    if (!o.send(f)) o.send = null;
    return true;
  }

  close(): void {
    this.closed = true;
    this.server?.close();
    for (const o of this.out.values()) o.socket?.destroy();
    for (const s of this.accepted) s.destroy();
  }

  private dial(to: number, o: Outgoing): void {
    if (this.closed) return;
    const s = connect(workerSocketPath(this.dir, to));
    o.socket = s;
    s.unref();
    s.setNoDelay?.(true);
    let connected = false;
    s.on('connect', () => {
      connected = true;
      o.send = frameSender(s, `worker ${to}`);
      o.retryMs = RETRY_MIN_MS;
      o.send({ t: 'hello', worker: this.self, secret: this.secret });
      this.handlers.up(to);
    });
    // Nothing is ever sent back on this connection; reading keeps its close observable.
    s.on('data', () => s.destroy(new Error(`worker ${to} wrote on a one-way link`)));
    s.on('error', () => {
      // The close that follows handles it.
    });
    s.on('close', () => {
      o.send = null;
      o.socket = null;
      if (connected) this.handlers.down(to);
      if (this.closed) return;
      const delay = o.retryMs;
      o.retryMs = Math.min(RETRY_MAX_MS, o.retryMs * 2);
      setTimeout(() => this.dial(to, o), delay).unref();
    });
  }

  private accept(s: Socket): void {
    s.unref();
    this.accepted.add(s);
    let from = 0;
    receiveFrames(s, MAX_FRAME, (frames) => {
      for (const f of frames) {
        if (from === 0) {
          if (f.t !== 'hello' || f.worker < 1 || f.worker > this.count || f.worker === this.self) return void s.destroy();
          // Both are WORKER_SECRET_BYTES long (decodeFrame refuses any other hello).
          if (this.secret.length !== f.secret.length || !timingSafeEqual(f.secret, this.secret)) return void s.destroy();
          from = f.worker;
          // A sibling that restarted reconnects before its predecessor's close may have been seen here.
          const previous = this.incoming.get(from);
          if (previous) {
            this.incoming.delete(from);
            previous.destroy();
            this.handlers.silent(from);
          }
          this.incoming.set(from, s);
          continue;
        }
        this.handlers.frame(from, f);
      }
    });
    s.on('error', () => {
      // The close that follows handles it.
    });
    s.on('close', () => {
      this.accepted.delete(s);
      if (from !== 0 && this.incoming.get(from) === s) {
        this.incoming.delete(from);
        this.handlers.silent(from);
      }
    });
  }
}
