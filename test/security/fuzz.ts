/**
 * The fuzzers' shared parts: a seeded PRNG (mulberry32, so a failure replays from its printed seed), input
 * generators, the per-run budget (FUZZ_COUNT, default 10,000 per parser; FUZZ_SEED, default fixed, `random`
 * for a fresh one), and a heap measurement after a forced GC for the leak check.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export const FUZZ_COUNT = Number(process.env['FUZZ_COUNT'] ?? 10_000);

/** The run's seed: FUZZ_SEED (a number, or `random`), else a fixed default so CI is repeatable. */
export function fuzzSeed(): number {
  const raw = process.env['FUZZ_SEED'];
  if (raw === 'random') return (Math.random() * 2 ** 32) >>> 0;
  return raw ? Number(raw) >>> 0 : 0x5eed_2026;
}

export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** mulberry32: 32 bits of state, good enough spread for input generation. */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  bool(p = 0.5): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.next() * 256);
    return b;
  }

  /** A string from printable ASCII, with occasional control characters and non-ASCII code points. */
  text(maxLen: number): string {
    const n = this.int(0, maxLen);
    let s = '';
    for (let i = 0; i < n; i++) {
      const r = this.next();
      if (r < 0.8) s += String.fromCharCode(this.int(0x20, 0x7e));
      else if (r < 0.9) s += String.fromCharCode(this.int(0, 0x1f));
      else s += String.fromCodePoint(this.pick([0xe9, 0x2028, 0xfeff, 0xfffd, 0x1f600, this.int(0xa0, 0xd7ff)]));
    }
    return s;
  }

  /** A random JSON value, nested up to `depth`. */
  json(depth = 3): unknown {
    const kind = this.int(0, depth > 0 ? 7 : 4);
    switch (kind) {
      case 0:
        return null;
      case 1:
        return this.bool();
      case 2:
        return this.pick([0, -1, 1, 100, 101, 102, 200, 301, 1e21, 2 ** 53 + 1, 3.5, -0]);
      case 3:
        return this.text(40);
      case 4:
        return this.pick(['', 'hello', 'register', 'ack', '00000000-0000-0000-0000-000000000000', 'a'.repeat(this.int(0, 300))]);
      case 5:
      case 6: {
        const o: Record<string, unknown> = {};
        for (let i = this.int(0, 4); i > 0; i--)
          o[this.pick(['messageType', 'channelID', 'uaid', 'updates', 'version', 'code', 'key', 'use_webpush', '__proto__', 'constructor', this.text(8)])] =
            this.json(depth - 1);
        return o;
      }
      default:
        return Array.from({ length: this.int(0, 4) }, () => this.json(depth - 1));
    }
  }
}

/** A GC before each measurement, made available without --expose-gc on the command line. */
let gcFn: (() => void) | null = null;
export function heapAfterGc(): number {
  if (!gcFn) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
  gcFn();
  return process.memoryUsage().heapUsed;
}

/** Heap growth tolerated across a run (after warm-up): caches fill, JIT code settles; a leak per input does not fit. */
export const HEAP_TOLERANCE_BYTES = 24 * 1024 * 1024;
