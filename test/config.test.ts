// Unit tests of configuration parsing (src/config.ts): environment over file, errors that name the setting and
// what it expects without echoing secrets, and the help text built from the settings tables.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, envOf, loadConfig, settingsHelp } from '../src/config.js';
import { FernetKey } from '../src/webpush/protocol/fernet.js';

const dir = mkdtempSync(join(tmpdir(), 'pushgate-config-'));
const file = (values: unknown) => {
  const path = join(dir, `c${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, typeof values === 'string' ? values : JSON.stringify(values));
  return path;
};
const keys = { PUSHGATE_CRYPTO_KEY: FernetKey.generate(), PUSHGATE_AUTH_KEYS: 'a'.repeat(32), PUSHGATE_DATA_DIR: dir };
const load = (env: Record<string, string>, values: unknown = {}) => loadConfig({ env: { ...keys, ...env }, file: file(values) });

describe('loadConfig', () => {
  it('reads the file and lets the environment override it', () => {
    expect(load({}, { port: 9000 }).port).toBe(9000);
    expect(load({ PUSHGATE_PORT: '9001' }, { port: 9000 }).port).toBe(9001);
  });

  it('names the setting and what it expects for an invalid value', () => {
    expect(() => load({ PUSHGATE_PORT: 'eighty' })).toThrow(/PUSHGATE_PORT \(port\) is invalid: got "eighty", expected/);
  });

  it('never echoes a secret in an error', () => {
    expect(() => load({ PUSHGATE_CRYPTO_KEY: 'hunter2-secret' })).toThrow(ConfigError);
    expect(() => load({ PUSHGATE_CRYPTO_KEY: 'hunter2-secret' })).not.toThrow(/hunter2/);
  });

  it('refuses unknown keys, invalid JSON and a named file that does not exist', () => {
    expect(() => load({}, { prot: 1 })).toThrow(/unknown setting "prot"/);
    expect(load({}, { $schema: 'x', _comment: 'y' }).port).toBeGreaterThan(0);
    expect(() => load({}, '{not json')).toThrow(/not valid JSON/);
    expect(() => loadConfig({ env: { ...keys, PUSHGATE_CONFIG: join(dir, 'missing.json') } })).toThrow(/does not exist/);
  });

  it('checks settings that depend on each other', () => {
    expect(() => load({ PUSHGATE_TLS_CERT: '/x' })).toThrow(/must be set together/);
    expect(() => load({ PUSHGATE_PORT: '8081', PUSHGATE_ROUTER_PORT: '8081' })).toThrow(/must not be the public/);
    expect(() => load({ PUSHGATE_ROLE: 'connection' })).toThrow(/ROUTER_PORT is required/);
    expect(() => load({ PUSHGATE_ROLE: 'endpoint' })).toThrow(/ROUTER_SECRET is required/);
    expect(() => load({ PUSHGATE_ROLE: 'endpoint', PUSHGATE_ROUTER_SECRET: 'a-fleet-secret-0123456789' })).toThrow(/needs a shared store/);
    expect(() => load({ PUSHGATE_BRIDGES: join(dir, 'none.json') })).toThrow(/does not exist/);
  });

  it('pairs XMPP services with one domain and password for all, or one each', () => {
    const both = { PUSHGATE_XMPP_SERVICE: 'xmpp://a:5347,xmpp://b:5347', PUSHGATE_XMPP_PASSWORD: 'pw' };
    expect(load({ ...both, PUSHGATE_XMPP_DOMAIN: 'push.a' }).xmppServers.map((s) => s.domain)).toEqual(['push.a', 'push.a']);
    expect(load({ ...both, PUSHGATE_XMPP_DOMAIN: 'push.a,push.b' }).xmppServers.map((s) => s.domain)).toEqual(['push.a', 'push.b']);
    expect(() => load({ ...both, PUSHGATE_XMPP_DOMAIN: 'a,b,c' })).toThrow(/3 values for 2 services/);
    expect(() => load({ PUSHGATE_XMPP_SERVICE: 'xmpp://a:5347', PUSHGATE_XMPP_PASSWORD: 'pw' })).toThrow(/XMPP_DOMAIN is required/);
  });
});

describe('settingsHelp', () => {
  it('lists every setting with its default', () => {
    const help = settingsHelp();
    expect(help).toMatch(/PUSHGATE_PORT\s+.*\[default \d+\]/);
    expect(help).toMatch(/PUSHGATE_PEER_URL\s+.*\[default \(derived\)\]/);
    expect(help.split('\n').every((l) => /^ {2}PUSHGATE_[A-Z_]+ /.test(l))).toBe(true);
  });
});

describe('envOf', () => {
  it('names each value by its PUSHGATE_* variable, so a child process reads the same settings', () => {
    const values = { msgLimit: 3, helloTimeout: 1, megaphoneUrl: 'http://127.0.0.1:9/v1/broadcasts', dashboardFlushMs: 20, bridges: null };
    const env = envOf(values);
    expect(env).toEqual({
      PUSHGATE_MSG_LIMIT: '3',
      PUSHGATE_HELLO_TIMEOUT: '1',
      PUSHGATE_MEGAPHONE_URL: 'http://127.0.0.1:9/v1/broadcasts',
      PUSHGATE_DASHBOARD_FLUSH_MS: '20',
    });
    const read = loadConfig({ env: { ...env, PUSHGATE_CRYPTO_KEY: FernetKey.generate() }, file: 'config/pushgate.json' });
    expect(read).toMatchObject({ ...values, bridges: null });
  });

  it('refuses a name that is no setting', () => {
    expect(() => envOf({ nope: 1 } as never)).toThrow(/no setting named nope/);
  });
});
