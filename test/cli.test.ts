import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FernetKey, MultiFernet } from '../src/webpush/protocol/fernet.js';
import { freePort, startGateway } from './helpers/gateway.js';
import { channelId, post } from './helpers/push.js';
import { PushClient } from './helpers/ws-client.js';
import { buildDist } from './helpers/node-process.js';

const CLI = 'dist/cli.js';

function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', ...env } });
}

/** Waits until the child has printed a line matching `pattern` on stdout. */
function waitForLine(child: ChildProcess, pattern: RegExp, output: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (
        output
          .join('')
          .split('\n')
          .some((l) => pattern.test(l))
      ) {
        child.stdout!.off('data', check);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => reject(new Error(`exited with ${code}: ${output.join('')}`)));
    check();
  });
}

describe('the pushgate command line', () => {
  beforeAll(() => {
    buildDist();
  }, 120_000);

  it('prints help for the program and for every command', () => {
    const top = run(['--help']);
    expect(top.status).toBe(0);
    for (const cmd of ['serve', 'genkey', 'genvapid', 'endpoint-diagnostic']) {
      expect(top.stdout).toContain(cmd);
      const r = run([cmd, '--help']);
      expect(r.status).toBe(0);
      expect(r.stdout).toContain(`Usage: pushgate ${cmd}`);
    }
    expect(run(['serve', '--help']).stdout).toContain('PUSHGATE_CRYPTO_KEY');
    expect(run(['nonsense']).status).toBe(2);
  });

  it('genkey prints a Fernet key that works as PUSHGATE_CRYPTO_KEY', () => {
    const r = run(['genkey']);
    expect(r.status).toBe(0);
    expect(() => MultiFernet.parseList(r.stdout.trim())).not.toThrow();
  });

  it('genvapid prints a P-256 key pair', () => {
    const r = run(['genvapid']);
    expect(r.stdout).toMatch(/^public key:\s+B[A-Za-z0-9_-]{86}\nprivate key: [A-Za-z0-9_-]{43}\n$/);
  });

  it.each([
    [{ PUSHGATE_PORT: 'eighty' }, /PUSHGATE_PORT .*expected an integer/],
    [{ PUSHGATE_PUBLIC_URL: 'ftp://x' }, /PUSHGATE_PUBLIC_URL .*expected an http\(s\) origin/],
    [{ PUSHGATE_CRYPTO_KEY: 'short' }, /PUSHGATE_CRYPTO_KEY .*Fernet keys/],
    [{ PUSHGATE_STORE: 'postgres://x' }, /PUSHGATE_STORE .*expected sqlite:/],
    [{ PUSHGATE_MSG_LIMIT: '0' }, /PUSHGATE_MSG_LIMIT/],
    [{ PUSHGATE_TLS_CERT: '/nonexistent.pem' }, /PUSHGATE_TLS_CERT and PUSHGATE_TLS_KEY/],
  ])('refuses to start with an invalid setting %o', (env, message) => {
    const r = run(['serve'], env);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toContain('short');
  });

  it('serves, logs JSON without tokens or payloads, and shuts down gracefully on SIGTERM', async () => {
    const port = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'pushgate-cli-'));
    const child = spawn(process.execPath, [CLI, 'serve'], {
      env: {
        PATH: process.env['PATH'] ?? '',
        PUSHGATE_PORT: String(port),
        PUSHGATE_HOST: '127.0.0.1',
        PUSHGATE_DATA_DIR: dataDir,
        PUSHGATE_STORE: `sqlite:${dataDir}/db`,
        PUSHGATE_LOG_LEVEL: 'debug',
        // Two workers open a new SQLite file at once (a race there once made one fail with "database is locked").
        PUSHGATE_WORKERS: '2',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    child.stdout.on('data', (d: Buffer) => output.push(d.toString()));
    child.stderr.on('data', (d: Buffer) => output.push(d.toString()));
    await waitForLine(child, /pushgate listening/, output);

    const c = await PushClient.connect(`ws://127.0.0.1:${port}/`);
    await c.hello();
    const endpoint = (await c.register(channelId()))['pushEndpoint'] as string;
    const token = endpoint.split('/').pop()!;
    const secret = 'very-secret-payload';
    expect((await post(`http://127.0.0.1:${port}/wpush/v1/${token}`, { TTL: '60', 'Content-Encoding': 'aes128gcm' }, secret)).status).toBe(201);
    await c.next();
    expect((await post(`http://127.0.0.1:${port}/wpush/v1/${token}x`, { TTL: '60' })).status).toBe(404);
    expect((await post(`http://127.0.0.1:${port}/wpush/v1/${token}`, { TTL: '60', authorization: 'vapid t=eyJ.secret.jwt, k=BAD' })).status).toBe(401);

    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect((await c.closedWith).code).toBe(1001);
    expect(await exited).toBe(0);

    const log = output.join('');
    expect(log).toContain('PUSHGATE_CRYPTO_KEY is not set');
    expect(log).toContain('shutting down');
    // Every line is JSON; any that is not is shown whole.
    const notJson = log
      .trim()
      .split('\n')
      .filter((line) => {
        try {
          JSON.parse(line);
          return false;
        } catch {
          return true;
        }
      });
    expect(notJson).toEqual([]);
    expect(log).not.toContain(token);
    expect(log).not.toContain(secret);
    expect(log).not.toContain('eyJ.secret.jwt');
    // The generated key was kept for the next start, and is not in the log either.
    const kept = (await import('node:fs')).readFileSync(join(dataDir, 'crypto_key'), 'utf8').trim();
    expect(() => FernetKey.parse(kept)).not.toThrow();
    expect(log).not.toContain(kept);
  });

  it('endpoint-diagnostic decodes an endpoint and reports what the store knows', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'pushgate-diag-'));
    const key = FernetKey.generate();
    const env = { PUSHGATE_DATA_DIR: dataDir, PUSHGATE_STORE: `sqlite:${dataDir}/db`, PUSHGATE_CRYPTO_KEY: key };
    const gw = await startGateway({ store: env.PUSHGATE_STORE, cryptoKey: key, dataDir });
    const c = await PushClient.connect(gw.wsUrl);
    const uaid = await c.hello();
    const chid = channelId();
    const endpoint = (await c.register(chid))['pushEndpoint'] as string;
    c.close();
    await gw.close();
    const live = run(['endpoint-diagnostic', endpoint], env);
    expect(live.status).toBe(0);
    expect(JSON.parse(live.stdout)).toMatchObject({
      valid: true,
      apiVersion: 'v1',
      uaid,
      channelID: chid,
      user: { routerType: 'webpush' },
      channel: { registered: true },
      verdict: 'live',
    });
    const bad = run(['endpoint-diagnostic', endpoint.slice(0, -6) + 'AAAAAA'], env);
    expect(bad.status).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ valid: false });
    const otherKey = run(['endpoint-diagnostic', endpoint], { ...env, PUSHGATE_CRYPTO_KEY: FernetKey.generate() });
    expect(JSON.parse(otherKey.stdout)).toMatchObject({ valid: false });
  });
});
