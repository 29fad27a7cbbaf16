// `pushgate serve` in process (src/cli.ts serve()), so its lines count in coverage: a single-process gateway that
// creates its crypto key, listens on the public and MongoosePush ports, and closes both on SIGTERM; and an invalid
// configuration refused with exit code 2. test/cli.test.ts runs the built binary as operators do.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli.js';
import { freePort } from './helpers/gateway.js';

afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

/** GET that resolves with the status, or null while nothing listens yet. */
async function status(url: string): Promise<number | null> {
  try {
    return (await fetch(url)).status;
  } catch {
    return null;
  }
}

/** Polls until `check` holds, failing after `ms`: serve() gives no other sign that it listens. */
async function until(check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('pushgate serve (in process)', () => {
  it('creates the crypto key, serves both ports and closes them on SIGTERM with exit code 0', async () => {
    const port = await freePort();
    const mpPort = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'pushgate-serve-'));
    vi.stubEnv('PUSHGATE_WORKERS', '1');
    vi.stubEnv('PUSHGATE_PORT', String(port));
    vi.stubEnv('PUSHGATE_HOST', '127.0.0.1');
    vi.stubEnv('PUSHGATE_DATA_DIR', dataDir);
    vi.stubEnv('PUSHGATE_STORE', 'sqlite::memory:');
    vi.stubEnv('PUSHGATE_LOG_LEVEL', 'silent');
    vi.stubEnv('PUSHGATE_CRYPTO_KEY', undefined);
    vi.stubEnv('PUSHGATE_MONGOOSEPUSH_PORT', String(mpPort));

    const before = process.listeners('SIGTERM');
    let err = '';
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((err += String(chunk)), true));
    let exited: number | null = null;
    const done = main(['serve']).then((code) => (exited = code));
    await until(async () => {
      if (exited !== null) throw new Error(`serve exited ${exited}: ${err}`);
      return (await status(`http://127.0.0.1:${port}/health`)) === 200;
    });
    // The MongoosePush API answers an unknown path itself (its own listener, not the public one).
    expect(await status(`http://127.0.0.1:${mpPort}/v3/notification/`)).not.toBeNull();
    // No PUSHGATE_CRYPTO_KEY: serve created one in the data directory.
    expect(existsSync(join(dataDir, 'crypto_key'))).toBe(true);
    expect(readFileSync(join(dataDir, 'crypto_key'), 'utf8').trim()).toMatch(/^[A-Za-z0-9_-]{43}=$/);

    const added = process.listeners('SIGTERM').filter((l) => !before.includes(l));
    expect(added).toHaveLength(1);
    added[0]!('SIGTERM');
    await expect(done).resolves.toBe(0);
    expect(await status(`http://127.0.0.1:${port}/health`)).toBeNull();
    expect(await status(`http://127.0.0.1:${mpPort}/v3/notification/`)).toBeNull();
    for (const l of process.listeners('SIGINT').filter((l) => !before.includes(l))) process.removeListener('SIGINT', l);
  });

  it('refuses an invalid configuration with exit code 2 and says why', async () => {
    let err = '';
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((err += String(chunk)), true));
    vi.stubEnv('PUSHGATE_PORT', 'not-a-port');
    expect(await main(['serve'])).toBe(2);
    expect(err).toMatch(/^pushgate: .*PUSHGATE_PORT/);
  });
});
