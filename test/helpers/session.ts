import type { FastifyBaseLogger } from 'fastify';
import { expect } from 'vitest';
import { BroadcastVersions } from '../../src/webpush/broadcast/source.js';
import { parseClientMessage } from '../../src/webpush/connection/messages.js';
import type { ConnectionContext, Session, SessionPort } from '../../src/webpush/connection/session.js';

/** A session's socket as tests see it: the frames it sent, how it was closed, a send buffer the test sets. */
export class RecordingPort implements SessionPort {
  frames: Record<string, unknown>[] = [];
  closedWith: { code: number; reason: string } | null = null;
  buffered = 0;
  writes = 0;
  send(frames: object[], onWritten?: (err?: Error) => void): void {
    this.writes++;
    this.frames.push(...(frames as Record<string, unknown>[]));
    onWritten?.();
  }
  close(code: number, reason: string): void {
    this.closedWith ??= { code, reason };
  }
  bufferedAmount(): number {
    return this.buffered;
  }
  take(): Record<string, unknown>[] {
    const f = this.frames;
    this.frames = [];
    return f;
  }
}

/** Lets the store's group commits (setImmediate) and the sessions' queued work run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) await new Promise<void>((r) => setImmediate(r));
}

/** Hands a client frame to a session, as its socket would, and waits until the session has handled it. */
export async function say(session: Session, text: string): Promise<void> {
  const r = parseClientMessage(text);
  if (!r.ok) throw new Error(r.reason);
  await session.onMessage(r.message);
  await session.idle();
}

/** A new connection's hello, with `uaid` once the client has one, and the register of `channelID` when it has none yet. */
export async function helloOn(session: Session, port: RecordingPort, uaid: string | undefined, channelID: string): Promise<string> {
  await say(session, JSON.stringify({ messageType: 'hello', use_webpush: true, broadcasts: {}, ...(uaid ? { uaid } : {}) }));
  const hello = port.frames.shift()!;
  expect(hello).toMatchObject({ messageType: 'hello', status: 200 });
  if (uaid) return uaid;
  await say(session, JSON.stringify({ messageType: 'register', channelID }));
  expect(port.frames.shift()).toMatchObject({ messageType: 'register', status: 200 });
  return hello['uaid'] as string;
}

/**
 * The user agent of the delivery model tests (session.test.ts, fleet-model.test.ts): what its current connection
 * received and has not acked, what it acked, and the checks README "Durability" promises about them.
 */
export class ModelClient {
  readonly acked = new Set<string>();
  /** Versions that may come again: the endpoint saved its own copy after the holder's answer was lost. */
  readonly mayRepeat = new Set<string>();
  /** Notifications the current connection received, in order. */
  received: string[] = [];
  /** Its notifications not acked or nacked yet: version → channelID. */
  readonly unacked = new Map<string, string>();

  /** A new connection: nothing received on it yet. */
  connected(): void {
    this.received = [];
    this.unacked.clear();
  }

  /** Takes the notifications among `frames`: each once per connection, and never one acked before. */
  take(frames: Record<string, unknown>[]): void {
    for (const f of frames) {
      if (f['messageType'] !== 'notification') continue;
      const version = f['version'] as string;
      if (!this.mayRepeat.has(version)) {
        expect(this.received, 'sent twice in one session').not.toContain(version);
        expect(this.acked.has(version), 'an acked message came back').toBe(false);
      }
      this.received.push(version);
      this.unacked.set(version, f['channelID'] as string);
    }
  }

  /** Answers a notification (an ack or a nack): its channelID, for the frame. */
  answer(version: string, kind: 'ack' | 'nack'): string {
    const channelID = this.unacked.get(version)!;
    this.unacked.delete(version);
    if (kind === 'ack') this.acked.add(version);
    return channelID;
  }

  /** Acks a notification on `session`. */
  async ack(session: Session, version: string): Promise<void> {
    const channelID = this.answer(version, 'ack');
    await say(session, JSON.stringify({ messageType: 'ack', updates: [{ channelID, version, code: 100 }] }));
  }

  /** Acks one of the notifications not acked yet on `session` (`pick` chooses which), if there is one. */
  async ackOne(session: Session, pick: number): Promise<void> {
    const versions = [...this.unacked.keys()];
    if (versions.length > 0) await this.ack(session, versions[pick % versions.length]!);
  }

  /** Acks every notification not acked yet on `session`; how many there were. */
  async ackAll(session: Session): Promise<number> {
    const versions = [...this.unacked.keys()];
    for (const v of versions) await this.ack(session, v);
    return versions.length;
  }

  /** Every accepted message that was not acked arrived on the current connection: none was lost. */
  expectNoneLost(accepted: Iterable<string>): void {
    const got = new Set(this.received);
    for (const v of accepted) if (!this.acked.has(v)) expect(got.has(v), `accepted ${v} was lost`).toBe(true);
  }
}

const silent = { warn() {}, error() {}, info() {}, debug() {} } as unknown as FastifyBaseLogger;

/**
 * The sessions' settings in the delivery model tests (workers-model, fleet-model): limits small enough that a short run
 * reaches them (two messages a batch, three in flight, ten channels), around what each model wires itself.
 */
export function modelContext(
  wiring: Pick<ConnectionContext, 'store' | 'clients' | 'fernet' | 'metrics' | 'peerId' | 'peers' | 'ackWaitMs' | 'nextSeq' | 'now'>,
): ConnectionContext {
  return {
    ...wiring,
    log: silent,
    publicUrl: 'https://push.example',
    msgLimit: 1000,
    storageBatch: 2,
    helloTimeoutMs: 10_000,
    minPingIntervalMs: 45_000,
    maxUnacked: 3,
    wsHighWater: 1 << 20,
    maxChannels: 10,
    userMaxIdleMs: 60 * 86_400_000,
    broadcasts: new BroadcastVersions(),
  };
}
