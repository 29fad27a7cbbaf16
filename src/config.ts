import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { bridgeSettings } from './bridge/settings.js';
import { mongoosePushSettings } from './mongoosepush/settings.js';
import { dashboardSettings } from './dashboard/settings.js';
import { gatewaySettings } from './settings.js';
import { redactStoreUrl } from './store/index.js';
import { storeSettings } from './store/settings.js';
import { ConfigError, type Setting } from './util/settings.js';
import { connectionSettings } from './webpush/connection/settings.js';
import { broadcastSettings } from './webpush/broadcast/settings.js';
import { endpointSettings } from './webpush/endpoint/settings.js';
import { generateVapidKeys } from './webpush/protocol/endpoint-token.js';
import { FernetKey, MultiFernet, splitKeyList } from './webpush/protocol/fernet.js';
import { cryptoKeys, protocolSettings } from './webpush/protocol/settings.js';
import { xmppSettings } from './xmpp/settings.js';

export { ConfigError } from './util/settings.js';

/**
 * Configuration: a JSON file (config/pushgate.json, or the file PUSHGATE_CONFIG names) overlaid by
 * PUSHGATE_* environment variables. Each concern declares its settings beside its code; this merges the
 * tables (in the order the help text lists them) and checks the settings that depend on each other. An
 * invalid value stops the start with a message naming the setting and what it should be.
 */
const SETTINGS = {
  ...gatewaySettings,
  ...storeSettings,
  ...protocolSettings,
  ...connectionSettings,
  ...endpointSettings,
  ...broadcastSettings,
  ...bridgeSettings,
  ...mongoosePushSettings,
  ...xmppSettings,
  ...dashboardSettings,
};

type Settings = typeof SETTINGS;
export type ConfigValues = { [K in keyof Settings]: Settings[K] extends Setting<infer T> ? T : never };

export interface Config extends ConfigValues {
  fernet: MultiFernet;
  /** The XMPP servers to attach to as a component (empty: no XMPP door). */
  xmppServers: { service: string; domain: string; password: string }[];
  /** PUSHGATE_AUTH_KEYS as a list: the first signs registration secrets, all verify. */
  authKeyList: string[];
  /**
   * Secrets the operator did not set, kept in the data directory: `loaded` from an existing file, or `pending`
   * (generated in memory by loadConfig, written by ensureGeneratedKeys, then `created`).
   */
  keptKeys: KeptKey[];
}

/** A secret kept in the data directory because the operator set none. */
export interface KeptKey {
  name: 'crypto_key' | 'vapid_key' | 'auth_key';
  /** The setting that would replace it. */
  setting: string;
  file: string;
  value: string;
  state: 'loaded' | 'pending' | 'created';
}

export function settingsHelp(): string {
  return Object.values(SETTINGS as Record<string, Setting<unknown>>)
    .map((s) => {
      const d = typeof s.default === 'function' ? '(derived)' : JSON.stringify(s.default);
      return `  ${s.env.padEnd(28)} ${s.help} [default ${d}]`;
    })
    .join('\n');
}

/**
 * The environment that sets `values` (each setting's PUSHGATE_* variable), for a process that starts a gateway as a
 * child with settings it holds as values: the tests' runs of one suite against one process and against workers.
 */
export function envOf(values: Partial<ConfigValues>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(values)) {
    const s = (SETTINGS as Record<string, Setting<unknown>>)[name];
    if (!s) throw new Error(`no setting named ${name}`);
    if (value !== undefined && value !== null) env[s.env] = String(value);
  }
  return env;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Path of the JSON configuration file; PUSHGATE_CONFIG or config/pushgate.json when absent. */
  file?: string;
  /** Values that take precedence over file and environment (tests, embedding). */
  overrides?: Partial<ConfigValues>;
}

export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const filePath = options.file ?? env['PUSHGATE_CONFIG'] ?? 'config/pushgate.json';
  let fileValues: Record<string, unknown> = {};
  if (existsSync(filePath)) {
    try {
      fileValues = JSON.parse(readFileSync(filePath, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`configuration file ${filePath} is not valid JSON: ${(err as Error).message}`);
    }
  } else if (options.file ?? env['PUSHGATE_CONFIG']) {
    throw new ConfigError(`PUSHGATE_CONFIG names ${filePath}, which does not exist`);
  }
  const known = new Set(Object.values(SETTINGS).map((s) => s.key));
  for (const k of Object.keys(fileValues)) {
    if (!known.has(k) && !k.startsWith('$') && !k.startsWith('_')) {
      throw new ConfigError(`unknown setting "${k}" in ${filePath}; known settings: ${[...known].join(', ')}`);
    }
  }

  const values: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(SETTINGS) as [string, Setting<unknown>][]) {
    const override = (options.overrides as Record<string, unknown> | undefined)?.[name];
    if (override !== undefined) {
      values[name] = override;
      continue;
    }
    const raw = env[s.env] ?? (fileValues[s.key] !== undefined && fileValues[s.key] !== null ? String(fileValues[s.key]) : undefined);
    if (raw === undefined) {
      values[name] = typeof s.default === 'function' ? (s.default as (p: Record<string, unknown>) => unknown)(values) : s.default;
      continue;
    }
    const parsed = s.parse(raw);
    if (parsed === undefined) {
      const shown = s.secret ? '(not shown)' : JSON.stringify(s.env === 'PUSHGATE_STORE' ? redactStoreUrl(raw) : raw);
      throw new ConfigError(`${s.env} (${s.key}) is invalid: got ${shown}, expected ${s.expect}`);
    }
    values[name] = parsed;
  }
  const v = values as ConfigValues;
  if ((v.tlsCert === null) !== (v.tlsKey === null)) {
    throw new ConfigError('PUSHGATE_TLS_CERT and PUSHGATE_TLS_KEY must be set together');
  }
  if (v.routerPort !== null && v.routerPort === v.port) {
    throw new ConfigError('PUSHGATE_ROUTER_PORT is invalid: the internal port must not be the public PUSHGATE_PORT');
  }
  if ((v.mongoosepushTlsCert === null) !== (v.mongoosepushTlsKey === null)) {
    throw new ConfigError('PUSHGATE_MONGOOSEPUSH_TLS_CERT and PUSHGATE_MONGOOSEPUSH_TLS_KEY must be set together');
  }
  if ((v.mongoosepushUser === null) !== (v.mongoosepushPassword === null)) {
    throw new ConfigError('PUSHGATE_MONGOOSEPUSH_USER and PUSHGATE_MONGOOSEPUSH_PASSWORD must be set together');
  }
  if (v.mongoosepushPort !== null && (v.mongoosepushPort === v.port || v.mongoosepushPort === v.routerPort)) {
    throw new ConfigError('PUSHGATE_MONGOOSEPUSH_PORT is invalid: it must differ from PUSHGATE_PORT and PUSHGATE_ROUTER_PORT');
  }
  if (v.mongoosepushPort !== null && v.role === 'connection') {
    throw new ConfigError('PUSHGATE_MONGOOSEPUSH_PORT is served by endpoint nodes: unset it with PUSHGATE_ROLE=connection');
  }
  // The MongoosePush API sends visible notifications through the operator's apps: reachable beyond this
  // machine only when it demands a password (hardening issue, finding 1).
  if (v.mongoosepushPort !== null && v.mongoosepushUser === null && !isLoopback(v.mongoosepushHost)) {
    throw new ConfigError(
      `PUSHGATE_MONGOOSEPUSH_HOST=${v.mongoosepushHost} is not a loopback address: set PUSHGATE_MONGOOSEPUSH_USER and PUSHGATE_MONGOOSEPUSH_PASSWORD (HTTP basic auth) to serve the MongoosePush API beyond this machine`,
    );
  }
  if (v.role === 'connection' && v.routerPort === null) {
    throw new ConfigError('PUSHGATE_ROUTER_PORT is required with PUSHGATE_ROLE=connection: endpoint nodes deliver through it');
  }
  // Issue 9 §13: an internal port without a secret would let anyone who reaches it inject pushes to any client.
  if (v.routerPort !== null && v.routerSecret === null) {
    throw new ConfigError('PUSHGATE_ROUTER_SECRET is required with PUSHGATE_ROUTER_PORT: the internal port must not accept pushes from anyone who reaches it');
  }
  if (v.role === 'endpoint' && v.routerSecret === null) {
    throw new ConfigError('PUSHGATE_ROUTER_SECRET is required with PUSHGATE_ROLE=endpoint: connection nodes refuse deliveries without it');
  }
  if ((v.routerTlsCert === null) !== (v.routerTlsKey === null)) {
    throw new ConfigError('PUSHGATE_ROUTER_TLS_CERT and PUSHGATE_ROUTER_TLS_KEY must be set together');
  }
  if (v.metricsPort !== null && (v.metricsPort === v.port || v.metricsPort === v.routerPort)) {
    throw new ConfigError('PUSHGATE_METRICS_PORT is invalid: it must differ from PUSHGATE_PORT and PUSHGATE_ROUTER_PORT');
  }
  if (v.role !== 'all' && v.store.startsWith('sqlite:')) {
    throw new ConfigError(`PUSHGATE_ROLE=${v.role} needs a shared store: set PUSHGATE_STORE to a mongodb:// URL`);
  }
  if (v.workers !== 'auto' && v.workers > 1 && v.store === 'sqlite::memory:') {
    throw new ConfigError('PUSHGATE_WORKERS above 1 needs a store the workers share: sqlite:<path> or a mongodb:// URL, not sqlite::memory:');
  }
  for (const [setting, path, what] of [
    ['PUSHGATE_TLS_CERT', v.tlsCert, 'PEM file'],
    ['PUSHGATE_TLS_KEY', v.tlsKey, 'PEM file'],
    ['PUSHGATE_BRIDGES', v.bridges, 'JSON file'],
    ['PUSHGATE_MONGOOSEPUSH_TLS_CERT', v.mongoosepushTlsCert, 'PEM file'],
    ['PUSHGATE_MONGOOSEPUSH_TLS_KEY', v.mongoosepushTlsKey, 'PEM file'],
    ['PUSHGATE_ROUTER_TLS_CERT', v.routerTlsCert, 'PEM file'],
    ['PUSHGATE_ROUTER_TLS_KEY', v.routerTlsKey, 'PEM file'],
    ['PUSHGATE_ROUTER_CA', v.routerCa, 'PEM file'],
  ] as const) {
    if (path !== null && !existsSync(path)) throw new ConfigError(`${setting} is invalid: ${path} does not exist, expected a readable ${what}`);
  }

  // Loading has no side effects (issue 10 §4): a missing key is read from the data directory or generated in
  // memory; ensureGeneratedKeys() writes the generated ones, explicitly, before the gateway serves with them.
  const keptKeys: KeptKey[] = [];
  if (!v.cryptoKey) {
    v.cryptoKey = keptSecret(keptKeys, v.dataDir, 'crypto_key', () => FernetKey.generate(), cryptoKeys, 'PUSHGATE_CRYPTO_KEY');
  }
  const servers = xmppServers(v);
  if (Boolean(v.vapidPublicKey) !== Boolean(v.vapidPrivateKey))
    throw new ConfigError('PUSHGATE_VAPID_PUBLIC_KEY and PUSHGATE_VAPID_PRIVATE_KEY must be set together');
  if (!v.vapidPublicKey) {
    const pair = keptSecret(
      keptKeys,
      v.dataDir,
      'vapid_key',
      () => {
        const { publicKey, privateKey } = generateVapidKeys();
        return `${publicKey}.${privateKey}`;
      },
      (k) => (/^[A-Za-z0-9_-]{87}\.[A-Za-z0-9_-]{43}$/.test(k) ? k : undefined),
      'PUSHGATE_VAPID_PUBLIC_KEY',
    );
    [v.vapidPublicKey, v.vapidPrivateKey] = pair.split('.') as [string, string];
  }
  if (!v.authKeys) {
    v.authKeys = keptSecret(
      keptKeys,
      v.dataDir,
      'auth_key',
      () => randomBytes(32).toString('base64url'),
      (k) => (k.length >= 16 ? k : undefined),
      'PUSHGATE_AUTH_KEYS',
    );
  }
  return {
    ...v,
    fernet: MultiFernet.parseList(v.cryptoKey),
    authKeyList: splitKeyList(v.authKeys),
    xmppServers: servers,
    keptKeys,
  };
}

/** 127.0.0.0/8, ::1 and localhost: addresses no other machine reaches. */
function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || /^::ffff:127(\.\d{1,3}){3}$/.test(h);
}

/** One entry per PUSHGATE_XMPP_SERVICE; domain and password lists give one value for all or one per service. */
function xmppServers(v: ConfigValues): Config['xmppServers'] {
  if (!v.xmppService) return [];
  const services = v.xmppService.split(',').map((s) => s.trim());
  const perService = (setting: string, list: string | null): string[] => {
    if (!list) throw new ConfigError(`${setting} is required with PUSHGATE_XMPP_SERVICE`);
    const items = list.split(',').map((s) => s.trim());
    if (items.length === 1) return services.map(() => items[0]!);
    if (items.length !== services.length) {
      throw new ConfigError(`${setting} has ${items.length} values for ${services.length} services in PUSHGATE_XMPP_SERVICE: give one, or one per service`);
    }
    return items;
  };
  const domains = perService('PUSHGATE_XMPP_DOMAIN', v.xmppDomain);
  const passwords = perService('PUSHGATE_XMPP_PASSWORD', v.xmppPassword);
  return services.map((service, i) => ({ service, domain: domains[i]!, password: passwords[i]! }));
}

/**
 * A secret kept in the data directory when the operator set none: read when its file exists, else generated in
 * memory and marked pending. Nothing is written here.
 */
function keptSecret(kept: KeptKey[], dataDir: string, name: KeptKey['name'], make: () => string, check: (v: string) => unknown, setting: string): string {
  const file = join(resolve(dataDir), name);
  if (existsSync(file)) {
    const value = readFileSync(file, 'utf8').trim();
    if (!check(value)) throw new ConfigError(`${file} does not hold a valid value; fix it or set ${setting}`);
    kept.push({ name, setting, file, value, state: 'loaded' });
    return value;
  }
  const value = make();
  kept.push({ name, setting, file, value, state: 'pending' });
  return value;
}

/** Creates the data directory owner-only (0700; issue 9 §14); an existing one is left as the operator made it. */
export function ensureDataDir(dir: string): void {
  const path = resolve(dir);
  if (existsSync(path)) {
    if (!statSync(path).isDirectory()) throw new ConfigError(`PUSHGATE_DATA_DIR is invalid: ${path} is not a directory`);
    return;
  }
  mkdirSync(path, { recursive: true, mode: 0o700 });
  // mkdir's mode is masked by the umask; the directory holds secrets, so set it exactly.
  chmodSync(path, 0o700);
}

/**
 * The explicit step that writes the keys loadConfig generated (mode 0600, in a 0700 data directory) and returns
 * the ones created now. `serve` calls it before creating the gateway; createGateway refuses a config with
 * pending keys, so a gateway never serves endpoints under a key that would not survive a restart.
 */
export function ensureGeneratedKeys(config: Config): KeptKey[] {
  const created: KeptKey[] = [];
  for (const k of config.keptKeys) {
    if (k.state !== 'pending') continue;
    ensureDataDir(config.dataDir);
    try {
      // 'wx': never overwrite a key another process wrote meanwhile; endpoints issued under it would die.
      writeFileSync(k.file, k.value + '\n', { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST')
        throw new ConfigError(`${k.file} appeared while starting (another process?); start again to load it`);
      throw new ConfigError(`cannot write ${k.file}: ${(err as Error).message}; set ${k.setting} or make PUSHGATE_DATA_DIR writable`);
    }
    k.state = 'created';
    created.push(k);
  }
  return created;
}
