import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type PeerFrame, FrameError, FrameReader, MAX_FRAME, decodeFrame, encodeFrame } from '../../src/cluster/frames.js';
import { WORKER_SECRET_BYTES } from '../../src/cluster/ipc.js';
import type { Notification } from '../../src/store/index.js';
import { payload } from '../helpers/push.js';

/** The codec of the frames workers exchange over their sockets (src/cluster/frames.ts), without sockets. */
const n: Notification = {
  uaid: 'a'.repeat(32),
  channelID: '5f6a6b0c-0000-4000-8000-000000000001',
  seq: 42,
  version: 'gAAAAAB-version',
  ttl: 60,
  expiry: 1_800_000_000_000,
  topic: null,
  urgency: 'high',
  data: payload('ZGF0YQ'),
  headers: { encoding: 'aes128gcm' },
  timestamp: 1_799_999_940_000,
  dashboardKey: 'ab'.repeat(16),
};

const frames: PeerFrame[] = [
  { t: 'hello', worker: 3, secret: Buffer.alloc(WORKER_SECRET_BYTES, 7) },
  { t: 'attach', uaid: n.uaid, connectedAt: 1_700_000_000_123 },
  { t: 'detach', uaid: n.uaid, connectedAt: 1_700_000_000_123 },
  { t: 'drop', uaid: n.uaid, connectedAt: 5 },
  { t: 'recheck', uaid: n.uaid, connectedAt: 6 },
  { t: 'push', id: 7, n },
  { t: 'notify', id: 8, uaid: n.uaid },
  { t: 'answer', id: 9, v: 'delivered' },
  { t: 'answer', id: 10, v: true },
  { t: 'answer', id: 11, v: false },
  { t: 'taken', uaid: n.uaid, worker: 12, connectedAt: 1_700_000_000_456 },
];

describe('worker frames', () => {
  it('round-trips every frame, the notification whole', () => {
    for (const f of frames) expect(decodeFrame(encodeFrame(f).subarray(4))).toEqual(f);
  });

  it('carries an outcome it does not know as it is (a new outcome needs no codec change)', () => {
    const f = { t: 'answer', id: 1, v: 'stored' } as unknown as PeerFrame;
    expect(decodeFrame(encodeFrame(f).subarray(4))).toEqual(f);
  });

  it('reassembles frames from a stream cut anywhere, in order', () => {
    const stream = Buffer.concat(frames.map(encodeFrame));
    for (const step of [1, 3, 7, stream.length]) {
      const reader = new FrameReader();
      const out: PeerFrame[] = [];
      for (let i = 0; i < stream.length; i += step) out.push(...reader.push(stream.subarray(i, i + step)));
      expect(out).toEqual(frames);
    }
  });

  it('refuses malformed input with a FrameError, never buffering an oversized frame', () => {
    const huge = Buffer.alloc(4);
    huge.writeUInt32BE(MAX_FRAME + 1);
    expect(() => new FrameReader().push(huge)).toThrow(FrameError);
    // A reader with a smaller bound (the fleet's peer link) refuses past it, and takes a frame at it.
    const push = encodeFrame({ t: 'notify', id: 1, uaid: 'x'.repeat(100) });
    expect(() => new FrameReader(push.length - 5).push(push)).toThrow(FrameError);
    expect(new FrameReader(push.length - 4).push(push)).toHaveLength(1);
    expect(() => new FrameReader().push(Buffer.alloc(4))).toThrow(FrameError);
    expect(() => decodeFrame(Buffer.from([200]))).toThrow(FrameError);
    expect(() => decodeFrame(Buffer.from([0, 1]))).toThrow(FrameError);
    const notJson = encodeFrame({ t: 'notify', id: 1, uaid: '{' });
    notJson[4] = 5; // retyped as a push: its body is not a notification
    expect(() => decodeFrame(notJson.subarray(4))).toThrow(FrameError);
    const badAnswer = encodeFrame({ t: 'answer', id: 1, v: true });
    badAnswer[9] = 7;
    expect(() => decodeFrame(badAnswer.subarray(4))).toThrow(FrameError);
  });
});

/** The same over generated frames and streams (fast-check). */
describe('worker frames, for generated values', () => {
  // Well-formed strings: a lone surrogate is not UTF-8 and would come back as U+FFFD (ids are hex, outcomes ASCII).
  const text = fc.string({ unit: 'grapheme', maxLength: 40 });
  /** A uaid is never empty (the decoder refuses a frame without one as short). */
  const uaid = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 });
  const u32 = fc.nat({ max: 0xffff_ffff });
  const notification = fc.record({
    uaid: text,
    channelID: text,
    seq: fc.maxSafeNat(),
    version: text,
    ttl: fc.nat(),
    expiry: fc.maxSafeNat(),
    topic: fc.option(text, { nil: null }),
    urgency: fc.constantFrom('very-low', 'low', 'normal', 'high'),
    data: fc.option(
      fc.uint8Array({ maxLength: 200 }).map((b) => payload(Buffer.from(b).toString('base64url'))),
      { nil: null },
    ),
    headers: fc.option(fc.dictionary(text, text, { maxKeys: 3 }), { nil: null }),
    timestamp: fc.maxSafeNat(),
  }) as fc.Arbitrary<Notification>;
  const frame: fc.Arbitrary<PeerFrame> = fc.oneof(
    fc.record({
      t: fc.constant('hello' as const),
      worker: u32,
      secret: fc.uint8Array({ minLength: WORKER_SECRET_BYTES, maxLength: WORKER_SECRET_BYTES }).map((b) => Buffer.from(b)),
    }),
    fc.record({ t: fc.constantFrom('attach' as const, 'detach' as const, 'drop' as const, 'recheck' as const), uaid, connectedAt: fc.double() }),
    fc.record({ t: fc.constant('taken' as const), uaid, worker: u32, connectedAt: fc.double() }),
    fc.record({ t: fc.constant('push' as const), id: u32, n: notification }),
    fc.record({ t: fc.constant('notify' as const), id: u32, uaid }),
    fc.record({
      t: fc.constant('answer' as const),
      id: u32,
      v: fc.oneof(fc.boolean(), fc.constantFrom('delivered', 'stored', 'busy', 'absent')),
    }) as fc.Arbitrary<PeerFrame>,
  );

  it('round-trips any frames through a stream cut anywhere', () => {
    fc.assert(
      fc.property(fc.array(frame, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 10 }), (fs, cuts) => {
        const stream = Buffer.concat(fs.map(encodeFrame));
        const at = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const reader = new FrameReader();
        const out: PeerFrame[] = [];
        let from = 0;
        for (const to of [...at, stream.length]) {
          out.push(...reader.push(stream.subarray(from, to)));
          from = to;
        }
        expect(out).toEqual(fs);
      }),
    );
  });

  it('meets any bytes with frames or a FrameError, nothing else', () => {
    // Bytes that start like frames often: a small length prefix and a known type.
    const framed = fc.tuple(fc.nat({ max: 64 }), fc.nat({ max: 10 }), fc.uint8Array({ maxLength: 64 })).map(([len, t, rest]) => {
      const b = Buffer.alloc(5 + rest.length);
      b.writeUInt32BE(len, 0);
      b[4] = t;
      Buffer.from(rest).copy(b, 5);
      return b;
    });
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            framed,
            fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
          ),
          { maxLength: 6 },
        ),
        (chunks) => {
          const reader = new FrameReader(1024);
          try {
            for (const c of chunks) reader.push(c);
          } catch (err) {
            expect(err).toBeInstanceOf(FrameError);
          }
        },
      ),
    );
  });
});
