import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { FernetKey, MultiFernet } from './webpush/fernet.js';
import { generateVapidKeys } from './webpush/endpoint-token.js';
import { isStoreUrl, redactStoreUrl } from './store/index.js';

/**
 * Configuration: a JSON file (config/pushgate.json, or the file PUSHGATE_CONFIG names) overlaid by
 * PUSHGATE_* environment variables. Each setting is declared once below with its variable, default and
 * check; an invalid value stops the start with a message naming the setting and what it should be.
 */

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Parse<T> = (raw: string) => T | undefined;

interface Setting<T> {
  env: string;
  /** Key in the JSON file. */
  key: string;
  help: string;
  /** What a valid value looks like, for error messages. */
  expect: string;
  parse: Parse<T>;
  default: T | ((partial: Record<string, unknown>) => T);
}

const int =
  (min: number, max: number): Parse<number> =>
  (raw) => {
    if (!/^\d+$/.test(raw.trim())) return undefined;
    const n = Number(raw);
    return n >= min && n <= max ? n : undefined;
  };
const str: Parse<string> = (raw) => raw;
const optionalPath: Parse<string | null> = (raw) => (raw.trim() === '' ? null : raw);
const origin: Parse<string> = (raw) => {
  try {
    const u = new URL(raw);
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) {
      return undefined;
    }
    return u.origin;
  } catch {
    return undefined;
  }
};
const logLevel: Parse<string> = (raw) => (['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(raw) ? raw : undefined);
const cryptoKeys: Parse<string> = (raw) => {
  try {
    MultiFernet.parseList(raw);
    return raw;
  } catch {
    return undefined;
  }
};

/** Settings whose values never appear in messages. */
const SECRET_SETTINGS = new Set(['PUSHGATE_CRYPTO_KEY', 'PUSHGATE_ROUTER_SECRET', 'PUSHGATE_AUTH_KEYS', 'PUSHGATE_XMPP_PASSWORD', 'PUSHGATE_VAPID_PRIVATE_KEY']);
const optionalPort: Parse<number | null> = (raw) => (raw.trim() === '' ? null : int(1, 65535)(raw));
const role: Parse<'all' | 'connection' | 'endpoint'> = (raw) => (raw === 'all' || raw === 'connection' || raw === 'endpoint' ? raw : undefined);
const optionalUrl: Parse<string | null> = (raw) => {
  if (raw.trim() === '') return null;
  return origin(raw);
};

const SETTINGS = {
  port: { env: 'PUSHGATE_PORT', key: 'port', help: 'public HTTP port: push endpoints, message API, health, metrics and the websocket at /', expect: 'an integer from 0 to 65535', parse: int(0, 65535), default: 8080 },
  host: { env: 'PUSHGATE_HOST', key: 'host', help: 'listen address', expect: 'an IP address or host name', parse: (r: string) => (r.trim() ? r.trim() : undefined), default: '0.0.0.0' },
  publicUrl: { env: 'PUSHGATE_PUBLIC_URL', key: 'publicUrl', help: 'origin used in endpoint URLs and checked against the VAPID aud', expect: 'an http(s) origin such as https://push.example.com', parse: origin, default: (p: Record<string, unknown>) => `http://localhost:${String(p['port'])}` },
  cryptoKey: { env: 'PUSHGATE_CRYPTO_KEY', key: 'cryptoKey', help: 'comma-separated Fernet keys (autopush format): the first encrypts, all decrypt', expect: 'comma-separated 32-byte url-safe base64 Fernet keys (make one with `pushgate genkey`)', parse: cryptoKeys, default: '' },
  store: { env: 'PUSHGATE_STORE', key: 'store', help: 'storage: sqlite:<path>, sqlite::memory: or mongodb://host/db', expect: 'sqlite:<path>, sqlite::memory: or a mongodb:// URL', parse: (r: string) => (isStoreUrl(r) ? r : undefined), default: 'sqlite:./data/pushgate.db' },
  msgLimit: { env: 'PUSHGATE_MSG_LIMIT', key: 'msgLimit', help: "stored messages per uaid before it is reset (autopush's msg_limit)", expect: 'an integer from 1 to 100000', parse: int(1, 100000), default: 100 },
  dataDir: { env: 'PUSHGATE_DATA_DIR', key: 'dataDir', help: 'directory for generated state (the crypto key when none is configured)', expect: 'a directory path', parse: str, default: './data' },
  logLevel: { env: 'PUSHGATE_LOG_LEVEL', key: 'logLevel', help: 'log level', expect: 'one of fatal, error, warn, info, debug, trace, silent', parse: logLevel, default: 'info' },
  tlsCert: { env: 'PUSHGATE_TLS_CERT', key: 'tlsCert', help: 'PEM certificate file: serve https/wss (and HTTP/2) on the public port', expect: 'a readable PEM file', parse: optionalPath, default: null },
  tlsKey: { env: 'PUSHGATE_TLS_KEY', key: 'tlsKey', help: 'PEM private key file for PUSHGATE_TLS_CERT', expect: 'a readable PEM file', parse: optionalPath, default: null },
  vapidClockSkew: { env: 'PUSHGATE_VAPID_CLOCK_SKEW', key: 'vapidClockSkew', help: "seconds of clock difference tolerated on a VAPID token's exp", expect: 'an integer from 0 to 3600', parse: int(0, 3600), default: 60 },
  helloTimeout: { env: 'PUSHGATE_HELLO_TIMEOUT', key: 'helloTimeout', help: 'seconds a websocket client has to say hello', expect: 'an integer from 1 to 600', parse: int(1, 600), default: 10 },
  minPingInterval: { env: 'PUSHGATE_MIN_PING_INTERVAL', key: 'minPingInterval', help: 'seconds a client must leave between two protocol pings (autopush: 45)', expect: 'an integer from 0 to 3600', parse: int(0, 3600), default: 45 },
  wsPingInterval: { env: 'PUSHGATE_WS_PING_INTERVAL', key: 'wsPingInterval', help: 'seconds between websocket ping frames that detect dead connections', expect: 'an integer from 5 to 3600', parse: int(5, 3600), default: 300 },
  maxFrameBytes: { env: 'PUSHGATE_WS_MAX_MESSAGE', key: 'maxFrameBytes', help: 'largest websocket frame a client may send, in bytes', expect: 'an integer from 1024 to 1048576', parse: int(1024, 1048576), default: 16384 },
  storageBatch: { env: 'PUSHGATE_STORAGE_BATCH', key: 'storageBatch', help: 'stored messages sent per batch; the next batch is read once all are acked', expect: 'an integer from 1 to 1000', parse: int(1, 1000), default: 10 },
  role: { env: 'PUSHGATE_ROLE', key: 'role', help: 'all (one node does everything), connection (websockets) or endpoint (push POSTs)', expect: 'all, connection or endpoint', parse: role, default: 'all' as 'all' | 'connection' | 'endpoint' },
  routerPort: { env: 'PUSHGATE_ROUTER_PORT', key: 'routerPort', help: 'internal node-to-node port (never the public one); needed by connection nodes in a fleet', expect: 'an integer from 1 to 65535, different from PUSHGATE_PORT', parse: optionalPort, default: null as number | null },
  routerHost: { env: 'PUSHGATE_ROUTER_HOST', key: 'routerHost', help: 'listen address of the internal port', expect: 'an IP address or host name', parse: (r: string) => (r.trim() ? r.trim() : undefined), default: '127.0.0.1' },
  nodeUrl: { env: 'PUSHGATE_NODE_URL', key: 'nodeUrl', help: "this node's internal URL as other nodes reach it (recorded in its clients' router records)", expect: 'an http(s) origin such as http://10.0.0.5:8081', parse: optionalUrl, default: (p: Record<string, unknown>) => (p['routerPort'] ? `http://${String(p['routerHost'])}:${String(p['routerPort'])}` : null) },
  routerSecret: { env: 'PUSHGATE_ROUTER_SECRET', key: 'routerSecret', help: 'shared secret every node presents on the internal port (optional)', expect: 'a string of at least 16 characters', parse: (r: string) => (r.length >= 16 ? r : undefined), default: null as string | null },
  bridges: { env: 'PUSHGATE_BRIDGES', key: 'bridges', help: 'JSON file of FCM, APNs and ADM apps (see README)', expect: 'a readable JSON file', parse: optionalPath, default: null as string | null },
  authKeys: { env: 'PUSHGATE_AUTH_KEYS', key: 'authKeys', help: 'comma-separated keys that sign bridge registration secrets: the first signs, all verify', expect: 'comma-separated keys of at least 16 characters', parse: (r: string) => (r.split(',').every((k) => k.trim().length >= 16) ? r : undefined), default: '' },
  xmppService: { env: 'PUSHGATE_XMPP_SERVICE', key: 'xmppService', help: 'XMPP servers\' component ports, comma-separated xmpp://host:port (enables the XEP-0357 push service)', expect: 'comma-separated xmpp://host:port URLs', parse: (r: string) => (r.split(',').every((u) => /^xmpp:\/\/[^\s/:]+:\d{1,5}$/.test(u.trim())) ? r : undefined), default: null as string | null },
  xmppDomain: { env: 'PUSHGATE_XMPP_DOMAIN', key: 'xmppDomain', help: 'the component JID on each server (comma-separated, one per service, or one for all)', expect: 'comma-separated domain names', parse: (r: string) => (r.split(',').every((d) => /^[a-z0-9.\-]+$/i.test(d.trim())) ? r : undefined), default: null as string | null },
  xmppPassword: { env: 'PUSHGATE_XMPP_PASSWORD', key: 'xmppPassword', help: 'component secret on each server (comma-separated, one per service, or one for all)', expect: 'a non-empty secret', parse: (r: string) => (r.length > 0 ? r : undefined), default: null as string | null },
  xmppPublishOptionsDomains: { env: 'PUSHGATE_XMPP_PUBLISH_OPTIONS_DOMAINS', key: 'xmppPublishOptionsDomains', help: 'XMPP domains that may create push nodes and publish with publish-options service/device_id (MongooseIM)', expect: 'comma-separated domain names', parse: (r: string) => r, default: '' },
  xmppRateLimit: { env: 'PUSHGATE_XMPP_RATE_LIMIT', key: 'xmppRateLimit', help: 'pushes per minute per push node before publishes are answered wait (0: no limit)', expect: 'an integer from 0 to 100000', parse: int(0, 100000), default: 60 },
  xmppRateBurst: { env: 'PUSHGATE_XMPP_RATE_BURST', key: 'xmppRateBurst', help: 'pushes a push node may send in a burst', expect: 'an integer from 1 to 100000', parse: int(1, 100000), default: 20 },
  xmppMaxStanza: { env: 'PUSHGATE_XMPP_MAX_STANZA', key: 'xmppMaxStanza', help: 'largest stanza accepted, in bytes', expect: 'an integer from 1024 to 10485760', parse: int(1024, 10485760), default: 65536 },
  vapidPublicKey: { env: 'PUSHGATE_VAPID_PUBLIC_KEY', key: 'vapidPublicKey', help: "Pushgate's own VAPID public key, for Web Push it sends (pushgate genvapid)", expect: 'a P-256 public key in base64url', parse: (r: string) => (/^[A-Za-z0-9_-]{87}$/.test(r) ? r : undefined), default: '' },
  vapidPrivateKey: { env: 'PUSHGATE_VAPID_PRIVATE_KEY', key: 'vapidPrivateKey', help: 'the matching private key', expect: 'a P-256 private key in base64url', parse: (r: string) => (/^[A-Za-z0-9_-]{43}$/.test(r) ? r : undefined), default: '' },
  vapidSubject: { env: 'PUSHGATE_VAPID_SUBJECT', key: 'vapidSubject', help: 'VAPID sub claim: a mailto: or https: URL for the operator', expect: 'a mailto: or https: URL', parse: (r: string) => (/^(mailto:|https:)/.test(r) ? r : undefined), default: (p: Record<string, unknown>) => `mailto:push@${new URL(String(p['publicUrl'])).hostname}` },
  shutdownGrace: { env: 'PUSHGATE_SHUTDOWN_GRACE', key: 'shutdownGrace', help: 'seconds SIGTERM waits for in-flight requests before closing', expect: 'an integer from 0 to 600', parse: int(0, 600), default: 10 },
} satisfies Record<string, Setting<unknown>>;

type Settings = typeof SETTINGS;
export type ConfigValues = { [K in keyof Settings]: Settings[K] extends Setting<infer T> ? T : never };

export interface Config extends ConfigValues {
  fernet: MultiFernet;
  /** The XMPP servers to attach to as a component (empty: no XMPP door). */
  xmppServers: { service: string; domain: string; password: string }[];
  /** PUSHGATE_AUTH_KEYS as a list: the first signs registration secrets, all verify. */
  authKeyList: string[];
  /** True when the crypto key was generated and kept in the data directory. */
  generatedCryptoKey: boolean;
}

export function settingsHelp(): string {
  return Object.values(SETTINGS as Record<string, Setting<unknown>>)
    .map((s) => {
      const d = typeof s.default === 'function' ? '(derived)' : JSON.stringify(s.default);
      return `  ${s.env.padEnd(28)} ${s.help} [default ${d}]`;
    })
    .join('\n');
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
      const shown = SECRET_SETTINGS.has(s.env) ? '(not shown)' : JSON.stringify(s.env === 'PUSHGATE_STORE' ? redactStoreUrl(raw) : raw);
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
  if (v.role === 'connection' && v.routerPort === null) {
    throw new ConfigError('PUSHGATE_ROUTER_PORT is required with PUSHGATE_ROLE=connection: endpoint nodes deliver through it');
  }
  if (v.role !== 'all' && v.store.startsWith('sqlite:')) {
    throw new ConfigError(`PUSHGATE_ROLE=${v.role} needs a shared store: set PUSHGATE_STORE to a mongodb:// URL`);
  }
  for (const [setting, path, what] of [['PUSHGATE_TLS_CERT', v.tlsCert, 'PEM file'], ['PUSHGATE_TLS_KEY', v.tlsKey, 'PEM file'], ['PUSHGATE_BRIDGES', v.bridges, 'JSON file']] as const) {
    if (path !== null && !existsSync(path)) throw new ConfigError(`${setting} is invalid: ${path} does not exist, expected a readable ${what}`);
  }

  let generatedCryptoKey = false;
  if (!v.cryptoKey) {
    v.cryptoKey = keptSecret(v.dataDir, 'crypto_key', () => FernetKey.generate(), cryptoKeys, 'PUSHGATE_CRYPTO_KEY');
    generatedCryptoKey = true;
  }
  const servers = xmppServers(v);
  if (Boolean(v.vapidPublicKey) !== Boolean(v.vapidPrivateKey)) throw new ConfigError('PUSHGATE_VAPID_PUBLIC_KEY and PUSHGATE_VAPID_PRIVATE_KEY must be set together');
  if (!v.vapidPublicKey) {
    const pair = keptSecret(v.dataDir, 'vapid_key', () => {
      const { publicKey, privateKey } = generateVapidKeys();
      return `${publicKey}.${privateKey}`;
    }, (k) => (/^[A-Za-z0-9_-]{87}\.[A-Za-z0-9_-]{43}$/.test(k) ? k : undefined), 'PUSHGATE_VAPID_PUBLIC_KEY');
    [v.vapidPublicKey, v.vapidPrivateKey] = pair.split('.') as [string, string];
  }
  if (!v.authKeys) {
    v.authKeys = keptSecret(v.dataDir, 'auth_key', () => randomBytes(32).toString('base64url'), (k) => (k.length >= 16 ? k : undefined), 'PUSHGATE_AUTH_KEYS');
  }
  return {
    ...v,
    fernet: MultiFernet.parseList(v.cryptoKey),
    authKeyList: v.authKeys.split(',').map((k) => k.trim()).filter(Boolean),
    xmppServers: servers,
    generatedCryptoKey,
  };
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

/** A secret generated once and kept in the data directory (mode 0600), when the operator set none. */
function keptSecret(dataDir: string, name: string, make: () => string, check: (v: string) => unknown, setting: string): string {
  const file = join(resolve(dataDir), name);
  if (existsSync(file)) {
    const value = readFileSync(file, 'utf8').trim();
    if (!check(value)) throw new ConfigError(`${file} does not hold a valid value; fix it or set ${setting}`);
    return value;
  }
  const value = make();
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, value + '\n', { mode: 0o600 });
  return value;
}
