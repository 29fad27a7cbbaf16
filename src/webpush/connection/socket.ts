import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { type ConnectionContext, Session, type SessionPort } from './session.js';
import { NotificationFrame, parseClientMessage } from './messages.js';

/**
 * The thin adapter between one `ws` socket and its Session state machine: it parses frames at the edge, feeds
 * events to the session, and performs the session's effects (writes, closes). It is the only place that writes,
 * corks (through the upgrade's own socket, which the HTTP server handed us; never ws's private fields), pings and
 * reports backpressure. A server-initiated close that the peer never answers is cut after a short grace, so a
 * silent client does not hold its socket for ws's 30 s close timeout.
 */

/** A frame's JSON: a notification writes its own (messages.ts NotificationFrame), any other is JSON.stringify'd. */
function frameText(f: object): string {
  return f instanceof NotificationFrame ? f.text() : JSON.stringify(f);
}

/** How long a closing handshake may take before the socket is destroyed. */
const CLOSE_GRACE_MS = 2000;

export class SocketSession implements SessionPort {
  readonly session: Session;
  private readonly helloTimer: NodeJS.Timeout;
  private closeTimer: NodeJS.Timeout | null = null;
  /** Answered the last websocket-level ping (the server's dead-connection sweep). */
  alive = true;

  constructor(
    readonly ws: WebSocket,
    private readonly raw: Duplex,
    ctx: ConnectionContext,
    /** When the upgrade request arrived: the hello timeout counts from there, the upgrade included. */
    upgradeStartedAt: number,
    /** Called when the socket has closed (the server drops it from its set). */
    private readonly onGone: (s: SocketSession) => void,
  ) {
    // The adapter is the session's port itself: no per-connection port object and closures (every connection makes one).
    this.session = new Session(this, ctx);
    const remaining = Math.max(0, ctx.helloTimeoutMs - (Date.now() - upgradeStartedAt));
    this.helloTimer = setTimeout(() => this.session.onHelloTimeout(), remaining);
    ws.on('message', (data, isBinary) => {
      if (isBinary) return this.session.onBinary();
      // binaryType is ws's default 'nodebuffer': a text message arrives as one Buffer.
      const parsed = parseClientMessage((data as Buffer).toString());
      if (!parsed.ok) return this.session.onInvalid(parsed.reason);
      if (parsed.message.messageType === 'hello') clearTimeout(this.helloTimer);
      void this.session.onMessage(parsed.message);
    });
    ws.on('pong', () => (this.alive = true));
    ws.on('close', () => {
      this.onGone(this);
      this.onClosed();
    });
    ws.on('error', () => this.onClosed());
  }

  /** SessionPort: bytes queued on the socket. */
  bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  /** SessionPort: the frames in order, as one write when there are several. */
  send(frames: object[], onWritten?: (err?: Error) => void): void {
    if (this.ws.readyState !== WebSocket.OPEN) {
      onWritten?.(new Error('connection closed'));
      return;
    }
    if (frames.length === 1) return this.ws.send(frameText(frames[0]!), onWritten);
    // One write system call for the batch instead of one per frame: ws writes each frame to this socket.
    this.raw.cork();
    frames.forEach((f, i) => this.ws.send(frameText(f), i === frames.length - 1 ? onWritten : undefined));
    this.raw.uncork();
  }

  /** SessionPort: the session decided to close. */
  close(code: number, reason: string): void {
    clearTimeout(this.helloTimer);
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.close(code, reason);
      this.closeTimer ??= setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS);
    }
  }

  private onClosed(): void {
    clearTimeout(this.helloTimer);
    if (this.closeTimer) clearTimeout(this.closeTimer);
    void this.session.onClosed();
  }
}
