import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import webpush from 'web-push';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { buildDist } from '../helpers/node-process.js';

/** `pushgate vapid-token` as a user runs it (dist/cli.js), against a real gateway's dashboard API. */
const CLI = 'dist/cli.js';
const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', ...env } });

describe('pushgate vapid-token', () => {
  let gw: TestGateway;
  const dir = mkdtempSync(join(tmpdir(), 'pushgate-vapid-token-'));

  beforeAll(async () => {
    // `npm test` builds first; a build here only when dist is missing or older than the sources (a lone run), so this
    // file never rewrites dist/ while test/cli.test.ts runs it.
    const stale = (built: string, src: string) => !existsSync(built) || statSync(built).mtimeMs < statSync(src).mtimeMs;
    if (stale('dist/cli.js', 'src/cli.ts') || stale('dist/dashboard/token.js', 'src/dashboard/token.ts')) {
      buildDist();
    }
    gw = await startGateway();
  }, 120_000);
  afterAll(async () => {
    await gw.close();
  });

  it('has --help', () => {
    const r = run(['vapid-token', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Usage: pushgate vapid-token <key file> [<server URL>]');
    expect(run(['--help']).stdout).toContain('vapid-token');
  });

  it.each([
    ['a PKCS#8 PEM', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string],
    ['a SEC1 PEM', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'sec1' }) as string],
    ["web-push's JSON", () => JSON.stringify(webpush.generateVAPIDKeys())],
    ['<public>.<private>', () => Object.values(webpush.generateVAPIDKeys()).join('.')],
  ])('prints a token from %s that the dashboard API accepts', async (_name, make) => {
    const file = join(dir, `key-${Math.random()}`);
    writeFileSync(file, make());
    const r = run(['vapid-token', file], { PUSHGATE_PUBLIC_URL: gw.config.publicUrl });
    expect(r.status).toBe(0);
    const header = r.stdout.trim();
    expect(header).toMatch(/^vapid t=[\w-]+\.[\w-]+\.[\w-]+, k=[\w-]{87}$/);
    const res = await fetch(`${gw.url}/dashboard/api/keys`, { headers: { authorization: header } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ opted_in: false });
  });

  it('refuses a file that holds no key, and a token for another server is refused by the API', async () => {
    const bad = join(dir, 'bad');
    writeFileSync(bad, 'not a key');
    const r = run(['vapid-token', bad]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('pushgate vapid-token:');
    const good = join(dir, 'good');
    writeFileSync(good, JSON.stringify(webpush.generateVAPIDKeys()));
    const other = run(['vapid-token', good, 'https://push.example.com']).stdout.trim();
    expect((await fetch(`${gw.url}/dashboard/api/keys`, { headers: { authorization: other } })).status).toBe(401);
  });
});
