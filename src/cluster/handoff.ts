import type { Socket } from 'node:net';
import { type PrimaryToWorker, type WorkerToPrimary, isPushgateMessage } from './ipc.js';

/**
 * Every process a socket passes through closes its own copy as soon as the message carrying it is written (the send
 * callback: for the usual synchronous write, before that process's event loop polls again, so it reads nothing more;
 * for a write the IPC pipe had to queue, in the loop turn that finishes it). Node's default
 * (`keepOpen: false`) closes it only when the receiver's acknowledgement comes back, and until then that copy's file
 * descriptor is still read: bytes the endpoint node sends once the named worker has answered the upgrade could be
 * read there and lost. That happened, one run in about twenty beside two CPU hogs: a push never answered.
 */

/**
 * A fleet's peer link handed to the worker it names. A connection node's workers share its internal port, so the
 * kernel gives an endpoint node's `GET /worker/<n>/link` (../webpush/protocol/peer-link.ts) to whichever worker
 * accepts first. That worker checks the secret, then passes the socket, unanswered, through the primary to worker
 * n (node:child_process handle passing: the file descriptor moves, no byte is copied), which answers the upgrade and
 * serves the link. Once per link, not per push: the pushes then reach the worker holding their clients directly.
 *
 * A socket cannot move when the port speaks TLS (its session lives in the accepting process), nor to a worker that
 * is not running: the caller then serves the link itself and the mesh carries each push on, as for `GET /link`.
 */
export interface LinkHandoff {
  /** Hands `socket` to worker `to`; false when it cannot (the caller serves the link). */
  pass(to: number, socket: Socket, head: Buffer): boolean;
  /** Where links handed to this worker go; a link that arrives before this is set is closed. */
  onLink(serve: (socket: Socket, head: Buffer) => void): void;
}

export class WorkerHandoff implements LinkHandoff {
  private serve: ((socket: Socket, head: Buffer) => void) | null = null;

  constructor(
    readonly self: number,
    readonly count: number,
    /** Sends to the primary; false when the channel is closed (nothing was sent). */
    private readonly toPrimary: (m: WorkerToPrimary, socket: Socket) => boolean,
  ) {}

  /** In a worker: links come from the primary over node:cluster IPC. */
  static start(self: number, count: number): WorkerHandoff {
    const handoff = new WorkerHandoff(self, count, (m, socket) => {
      if (!process.connected || !process.send) return false;
      // Queued even when send returns false (a long backlog). This copy is closed once sent (above).
      process.send(m, socket, { keepOpen: true }, () => socket.destroy());
      return true;
    });
    process.on('message', (m: unknown, handle: unknown) => {
      if (isPushgateMessage<PrimaryToWorker>(m) && m.t === 'link') handoff.received(handle as Socket | undefined, Buffer.from(m.head, 'base64'));
    });
    return handoff;
  }

  pass(to: number, socket: Socket, head: Buffer): boolean {
    if (to === this.self || to < 1 || to > this.count) return false;
    return this.toPrimary({ pg: 1, t: 'link', to, head: head.toString('base64') }, socket);
  }

  onLink(serve: (socket: Socket, head: Buffer) => void): void {
    this.serve = serve;
  }

  received(socket: Socket | undefined, head: Buffer): void {
    if (!socket) return;
    if (this.serve) this.serve(socket, head);
    else socket.destroy();
  }
}
