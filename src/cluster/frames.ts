import type { Socket } from 'node:net';
import type { Notification } from '../store/index.js';
import { type OfferOutcome, WORKER_SECRET_BYTES } from './ipc.js';

/**
 * The frames workers exchange directly over their unix-domain sockets (src/cluster/mesh.ts), and endpoint nodes
 * exchange with connection nodes over the fleet's peer link (src/webpush/protocol/peer-link.ts), pure so the codec
 * is tested without sockets. One frame: u32 length of the rest, u8 type, then the type's body. Directory traffic
 * (attach/detach at every connect and disconnect: 100k connects are 100k frames per sibling) and answers are packed
 * by hand; a push carries its Notification as JSON, so a field added to Notification crosses without a codec change
 * (the JSON of one small object is a few µs; the hop's cost is the process switch, not this).
 */

export type PeerFrame =
  /** The first frame on a connection: who is sending (a worker index, 1..N), and the primary's secret (ipc.ts). */
  | { t: 'hello'; worker: number; secret: Buffer }
  /** The sender now holds a connection of this uaid, opened at connectedAt. */
  | { t: 'attach'; uaid: string; connectedAt: number }
  | { t: 'detach'; uaid: string; connectedAt: number }
  /** Close your connection of this uaid if it is older than connectedAt (a takeover on a sibling or another machine). */
  | { t: 'drop'; uaid: string; connectedAt: number }
  /** A notify for this uaid found no holder just before your connection attached: look at storage once more. */
  | { t: 'recheck'; uaid: string; connectedAt: number }
  | { t: 'push'; id: number; n: Notification }
  | { t: 'notify'; id: number; uaid: string }
  /** The answer to request `id`: an offer's outcome (carried as it is), or a notify's yes/no. */
  | { t: 'answer'; id: number; v: OfferOutcome | boolean }
  /**
   * A partitioned directory's owner to a holder: `worker` holds a connection of this uaid opened at connectedAt; close
   * yours if that one supersedes it (directory.ts `supersedes`, the worker index breaking a tie).
   */
  | { t: 'taken'; uaid: string; worker: number; connectedAt: number };

/** A frame larger than this is a bug or corruption: the connection is closed rather than buffered without bound. */
export const MAX_FRAME = 1 << 20;

const TYPES = ['hello', 'attach', 'detach', 'drop', 'recheck', 'push', 'notify', 'answer', 'taken'] as const satisfies readonly PeerFrame['t'][];
const CODE = new Map<PeerFrame['t'], number>(TYPES.map((t, i) => [t, i]));

export class FrameError extends Error {}

/** Bytes before a frame's body: the u32 length and the u8 type. */
const HEAD = 5;

/** A frame of type t with `fixed` bytes of numbers and then `text` (UTF-8), in one allocation; fill writes the numbers. */
function frame(t: PeerFrame['t'], fixed: number, text: string, fill: (buf: Buffer) => void): Buffer {
  const len = Buffer.byteLength(text);
  const buf = Buffer.allocUnsafe(HEAD + fixed + len);
  buf.writeUInt32BE(1 + fixed + len, 0);
  buf[4] = CODE.get(t)!;
  fill(buf);
  buf.write(text, HEAD + fixed);
  return buf;
}

/** Encodes one frame, length prefix included. */
export function encodeFrame(f: PeerFrame): Buffer {
  switch (f.t) {
    case 'hello':
      return frame(f.t, 4 + f.secret.length, '', (b) => {
        b.writeUInt32BE(f.worker, HEAD);
        f.secret.copy(b, HEAD + 4);
      });
    case 'attach':
    case 'detach':
    case 'drop':
    case 'recheck':
      return frame(f.t, 8, f.uaid, (b) => b.writeDoubleBE(f.connectedAt, HEAD));
    case 'taken':
      return frame(f.t, 12, f.uaid, (b) => {
        b.writeDoubleBE(f.connectedAt, HEAD);
        b.writeUInt32BE(f.worker, HEAD + 8);
      });
    case 'push':
      return frame(f.t, 4, JSON.stringify(f.n), (b) => b.writeUInt32BE(f.id, HEAD));
    case 'notify':
      return frame(f.t, 4, f.uaid, (b) => b.writeUInt32BE(f.id, HEAD));
    case 'answer':
      // 0 false, 1 true, 2 an outcome string.
      return frame(f.t, 5, typeof f.v === 'string' ? f.v : '', (b) => {
        b.writeUInt32BE(f.id, HEAD);
        b[HEAD + 4] = typeof f.v === 'string' ? 2 : f.v ? 1 : 0;
      });
  }
}

/** Decodes one frame's type and body (the length prefix already removed). Throws FrameError on anything malformed. */
export function decodeFrame(buf: Buffer): PeerFrame {
  const t = TYPES[buf[0] ?? 255];
  if (t === undefined) throw new FrameError(`unknown frame type ${buf[0]}`);
  const body = buf.subarray(1);
  switch (t) {
    case 'hello':
      if (body.length !== 4 + WORKER_SECRET_BYTES) throw new FrameError('bad hello');
      return { t, worker: body.readUInt32BE(0), secret: Buffer.from(body.subarray(4)) };
    case 'attach':
    case 'detach':
    case 'drop':
    case 'recheck':
      if (body.length < 9) throw new FrameError(`short ${t}`);
      return { t, connectedAt: body.readDoubleBE(0), uaid: body.toString('utf8', 8) };
    case 'taken':
      if (body.length < 13) throw new FrameError('short taken');
      return { t, connectedAt: body.readDoubleBE(0), worker: body.readUInt32BE(8), uaid: body.toString('utf8', 12) };
    case 'push':
    case 'notify': {
      if (body.length < 5) throw new FrameError(`short ${t}`);
      const id = body.readUInt32BE(0);
      const text = body.toString('utf8', 4);
      if (t === 'notify') return { t, id, uaid: text };
      let n: unknown;
      try {
        n = JSON.parse(text);
      } catch {
        throw new FrameError('push body is not JSON');
      }
      if (typeof n !== 'object' || n === null || typeof (n as Notification).uaid !== 'string') throw new FrameError('push body is not a notification');
      return { t, id, n: n as Notification };
    }
    case 'answer': {
      if (body.length < 5 || body[4]! > 2) throw new FrameError('bad answer');
      const id = body.readUInt32BE(0);
      return { t, id, v: body[4] === 2 ? (body.toString('utf8', 5) as OfferOutcome) : body[4] === 1 };
    }
  }
}

/** Splits a byte stream into frames. Throws FrameError on a frame over `max` bytes or an empty one. */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly max = MAX_FRAME) {}

  /** Feeds a chunk; returns every frame it completes, in order. */
  push(chunk: Buffer): PeerFrame[] {
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: PeerFrame[] = [];
    while (buf.length >= 4) {
      const len = buf.readUInt32BE(0);
      if (len === 0 || len > this.max) throw new FrameError(`frame length ${len}`);
      if (buf.length < 4 + len) break;
      out.push(decodeFrame(buf.subarray(4, 4 + len)));
      buf = buf.subarray(4 + len);
    }
    // Copy a small remainder so the whole chunk it came from is not kept alive.
    this.pending = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf);
    return out;
  }
}

/**
 * A peer that reads nothing while this much waits for it is stuck: its connection is cut (its requests then get
 * their safe default, so pushes are stored) rather than buffering without bound.
 */
export const MAX_BUFFERED = 64 << 20;

/**
 * Sends frames on `socket`. Frames written in one tick leave in one write (corked until the next tick): batching
 * when busy, no delay when not. Returns false, having destroyed the socket, when the peer has let MAX_BUFFERED
 * bytes pile up unread; the socket's close reports it.
 */
export function frameSender(socket: Socket, peer: string): (f: PeerFrame) => boolean {
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  return (f) => {
    if (socket.destroyed) return false;
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    socket.write(encodeFrame(f));
    if (socket.writableLength <= MAX_BUFFERED) return true;
    socket.destroy(new Error(`${peer} reads nothing`));
    return false;
  };
}

/**
 * Reads frames from `socket`, after `head` (bytes that came with an upgrade), each at most `max` bytes, handing each
 * chunk's frames to `onFrames` in order. A malformed stream destroys the socket; its close reports it.
 */
export function receiveFrames(socket: Socket, max: number, onFrames: (frames: PeerFrame[]) => void, head?: Buffer): void {
  const reader = new FrameReader(max);
  const onData = (chunk: Buffer) => {
    let frames: PeerFrame[];
    try {
      frames = reader.push(chunk);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      return void socket.destroy(err);
    }
    onFrames(frames);
  };
  socket.on('data', onData);
  if (head !== undefined && head.length > 0) onData(head);
}
