import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import webpush from 'web-push';
import { FernetKey } from '../../src/webpush/protocol/fernet.js';
import { freePort } from '../../test/helpers/gateway.js';
import { ferretOnPostgres, mongoServer } from '../../test/helpers/mongo.js';
import type { ChartRow } from './chart.js';

/** The value of a `--name=value` option on the bench's command line, or undefined. */
export function option(name: string, argv: readonly string[] = process.argv): string | undefined {
  const prefix = `--${name}=`;
  return argv.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

/** A `--name=N` option that is a whole number above 0 (a population, say), or undefined when absent or anything else. */
export function countOption(name: string, argv: readonly string[] = process.argv): number | undefined {
  const n = Number(option(name, argv) ?? NaN);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * What every scenario gets: the run's options, where it records rows and notes, and the shared fixtures
 * (one crypto key and VAPID pair per run, free ports, a MongoDB-wire server). Built once by run.ts; no
 * scenario keeps state at module level.
 */
export interface Row extends ChartRow {
  extra?: Record<string, number | string>;
}

export interface BenchContext {
  readonly quick: boolean;
  /** How long each measured phase runs. */
  readonly phaseMs: number;
  /** Node options for the gateway (--cpu-prof with --profile). */
  readonly gatewayArgs: string[];
  readonly rows: Row[];
  readonly notes: string[];
  readonly cryptoKey: string;
  readonly vapid: { publicKey: string; privateKey: string };
  port(): Promise<number>;
  /** The environment of a gateway on `port` with its own SQLite file and data directory. */
  baseEnv(port: number, extra?: Record<string, string>): Record<string, string>;
  /** The MongoDB-wire server the tests use (FerretDB here), or null when none is available. */
  mongo(): Promise<{ url: string; stop(): Promise<void> } | null>;
  /** FerretDB on a private PostgreSQL (the faster stand-in), or null when Debian's postgresql is not installed. */
  mongoOnPostgres(): Promise<{ url: string; stop(): Promise<void> } | null>;
}

export function createContext(opts: { quick: boolean; profile: boolean; phaseSeconds?: number }): BenchContext {
  const cryptoKey = FernetKey.generate();
  return {
    quick: opts.quick,
    phaseMs: opts.phaseSeconds !== undefined ? opts.phaseSeconds * 1000 : opts.quick ? 2000 : 10_000,
    // BENCH_GATEWAY_NODE_ARGS: Node options for the gateway, space-separated (to measure a V8 flag, say).
    gatewayArgs: [
      ...(opts.profile ? ['--cpu-prof', '--cpu-prof-dir=bench/results/profiles'] : []),
      ...(process.env['BENCH_GATEWAY_NODE_ARGS']?.split(' ').filter((a) => a !== '') ?? []),
    ],
    rows: [],
    notes: [],
    cryptoKey,
    vapid: webpush.generateVAPIDKeys(),
    port: freePort,
    baseEnv(port, extra = {}) {
      const dir = mkdtempSync(join(tmpdir(), 'pushgate-bench-'));
      return {
        PUSHGATE_PUBLIC_URL: `http://127.0.0.1:${port}`,
        PUSHGATE_CRYPTO_KEY: cryptoKey,
        PUSHGATE_STORE: `sqlite:${dir}/db.sqlite`,
        PUSHGATE_DATA_DIR: dir,
        PUSHGATE_MSG_LIMIT: '100000',
        PUSHGATE_HELLO_TIMEOUT: '60',
        ...extra,
      };
    },
    async mongo() {
      try {
        const server = await mongoServer();
        return { url: server.url('bench'), stop: () => server.stop() };
      } catch {
        return null;
      }
    },
    async mongoOnPostgres() {
      const server = await ferretOnPostgres();
      return server && { url: server.url('bench'), stop: () => server.stop() };
    },
  };
}
