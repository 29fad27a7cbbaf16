import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { CloseCode, SUBPROTOCOL } from '../protocol/websocket.js';
import type { ConnectionContext } from './session.js';
import { SocketSession } from './socket.js';

export interface ConnectionServerOptions {
  maxFrameBytes: number;
  /** Interval of websocket-level pings that find dead TCP connections. */
  wsPingIntervalMs: number;
}

/**
 * The connection server (autopush's autoconnect): websocket upgrades on `/` of the public listener.
 * The `push-notification` subprotocol Firefox asks for is echoed; permessage-deflate is off (it costs
 * memory per connection and the payloads are encrypted, so they do not compress).
 */
export class ConnectionServer {
  private readonly wss: WebSocketServer;
  private readonly sessions = new Set<SocketSession>();
  private readonly pingTimer: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  private accepting = true;
  /** One function for every connection (not a closure each): a closed socket leaves the set. */
  private readonly forget = (s: SocketSession): boolean => this.sessions.delete(s);

  constructor(
    private readonly ctx: ConnectionContext,
    options: ConnectionServerOptions,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: options.maxFrameBytes,
      clientTracking: false,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
    this.pingTimer = setInterval(() => this.pingAll(), options.wsPingIntervalMs);
    this.pingTimer.unref();
    // Megaphone broadcasts: every connection hears of changed versions; each sends only those it subscribed to.
    this.unsubscribe = ctx.broadcasts.subscribe((changed) => {
      for (const s of this.sessions) s.session.broadcastChanged(changed);
    });
  }

  /** Handles an HTTP upgrade request; answers 404 for any path but `/` and 503 while shutting down. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/') return reject(socket, 404, 'Not Found');
    if (!this.accepting) return reject(socket, 503, 'Service Unavailable');
    const startedAt = Date.now();
    this.wss.handleUpgrade(req, socket, head, (ws) => this.sessions.add(new SocketSession(ws, socket, this.ctx, startedAt, this.forget)));
  }

  private pingAll(): void {
    for (const s of this.sessions) {
      if (!s.alive) {
        s.ws.terminate();
        continue;
      }
      s.alive = false;
      s.ws.ping();
    }
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Graceful shutdown: refuse new upgrades, tell every client to reconnect, store what was unacked. */
  async close(): Promise<void> {
    this.accepting = false;
    clearInterval(this.pingTimer);
    this.unsubscribe();
    const sessions = [...this.sessions].map((s) => s.session);
    for (const s of sessions) s.close(CloseCode.goingAway, 'server shutting down');
    await Promise.all(sessions.map((s) => s.closed()));
    this.wss.close();
  }
}

function reject(socket: Duplex, status: number, reason: string): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
