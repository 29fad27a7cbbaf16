// The command line's dispatch (src/cli.ts main()) in process, so its lines count in coverage: usage, --help,
// --version, unknown commands and options, genkey, genvapid and endpoint-diagnostic. test/cli.test.ts runs the
// built binary as operators do (serve, logs, signals).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli.js';
import { makeEndpoint } from '../src/webpush/protocol/endpoint-token.js';
import { FernetKey, MultiFernet } from '../src/webpush/protocol/fernet.js';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((out += String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((err += String(chunk)), true));
  try {
    return { code: await main(argv), out, err };
  } finally {
    vi.restoreAllMocks();
  }
}

afterEach(() => vi.unstubAllEnvs());

describe('pushgate command line', () => {
  it('prints usage: exit 1 without a command, 0 when asked', async () => {
    const bare = await cli();
    expect(bare.code).toBe(1);
    expect(bare.out).toMatch(/Usage: pushgate <command>/);
    expect(bare.out).toMatch(/endpoint-diagnostic/);
    expect((await cli('--help')).code).toBe(0);
  });

  it('prints the version', async () => {
    expect(await cli('--version')).toMatchObject({ code: 0, out: expect.stringMatching(/^\d+\.\d+\.\d+/) });
  });

  it('refuses unknown commands and options with exit 2', async () => {
    expect(await cli('frobnicate')).toMatchObject({ code: 2, err: expect.stringContaining('unknown command "frobnicate"') });
    expect(await cli('genkey', '--bogus')).toMatchObject({ code: 2, err: expect.stringContaining('pushgate genkey:') });
  });

  it('describes a command, with the settings table for serve', async () => {
    expect(await cli('genkey', '--help')).toMatchObject({ code: 0, out: expect.stringContaining('Usage: pushgate genkey') });
    expect((await cli('serve', '--help')).out).toMatch(/PUSHGATE_PORT/);
  });

  it('generates a Fernet key and a VAPID key pair', async () => {
    const key = await cli('genkey');
    expect(key.code).toBe(0);
    expect(() => new MultiFernet([key.out.trim()])).not.toThrow();
    expect((await cli('genvapid')).out).toMatch(/^public key: {2}[A-Za-z0-9_-]{87}\nprivate key: [A-Za-z0-9_-]{43}\n$/);
  });

  it('diagnoses an endpoint with the configured key and store', async () => {
    const cryptoKey = FernetKey.generate();
    vi.stubEnv('PUSHGATE_CRYPTO_KEY', cryptoKey);
    vi.stubEnv('PUSHGATE_STORE', 'sqlite::memory:');
    vi.stubEnv('PUSHGATE_DATA_DIR', mkdtempSync(join(tmpdir(), 'pushgate-cli-')));
    expect(await cli('endpoint-diagnostic')).toMatchObject({ code: 2, err: expect.stringContaining('give an endpoint URL') });
    const endpoint = makeEndpoint(
      'https://push.example',
      new MultiFernet([cryptoKey]),
      '0123456789abcdef0123456789abcdef',
      '01234567-89ab-cdef-0123-456789abcdef',
      null,
    );
    const known = await cli('endpoint-diagnostic', endpoint);
    expect(known.code).toBe(0);
    expect(JSON.parse(known.out)).toMatchObject({ valid: true, user: null });
    expect((await cli('endpoint-diagnostic', 'https://push.example/elsewhere')).code).toBe(1);
  });

  it('stops with exit 2 and the reason on an invalid configuration', async () => {
    vi.stubEnv('PUSHGATE_PORT', 'eighty');
    expect(await cli('endpoint-diagnostic', 'https://x/wpush/v1/abc')).toMatchObject({ code: 2, err: expect.stringContaining('PUSHGATE_PORT') });
    expect(await cli('serve')).toMatchObject({ code: 2, err: expect.stringContaining('PUSHGATE_PORT') });
  });
});
