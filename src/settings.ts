import { type SettingsTable, int, nonEmpty, optionalPath, optionalPort, optionalUrl, origin, str } from './util/settings.js';

const logLevel = (raw: string): string | undefined => (['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(raw) ? raw : undefined);
const workers = (raw: string): number | 'auto' | undefined => (raw === 'auto' ? 'auto' : /^[0-9]{1,3}$/.test(raw) && +raw >= 1 && +raw <= 256 ? +raw : undefined);
const workerDirectory = (raw: string): 'auto' | 'replicated' | 'partitioned' | undefined => (raw === 'auto' || raw === 'replicated' || raw === 'partitioned' ? raw : undefined);
const role = (raw: string): 'all' | 'connection' | 'endpoint' | undefined => (raw === 'all' || raw === 'connection' || raw === 'endpoint' ? raw : undefined);

/** The process: listeners, public origin, logging, TLS, the fleet role and its internal port, shutdown. */
export const gatewaySettings = {
  port: { env: 'PUSHGATE_PORT', key: 'port', help: 'public HTTP port: push endpoints, message API, health, metrics and the websocket at /', expect: 'an integer from 0 to 65535', parse: int(0, 65535), default: 8080 },
  host: { env: 'PUSHGATE_HOST', key: 'host', help: 'listen address', expect: 'an IP address or host name', parse: nonEmpty, default: '0.0.0.0' },
  publicUrl: { env: 'PUSHGATE_PUBLIC_URL', key: 'publicUrl', help: 'origin used in endpoint URLs and checked against the VAPID aud', expect: 'an http(s) origin such as https://push.example.com', parse: origin, default: (p: Record<string, unknown>) => `http://localhost:${String(p['port'])}` },
  dataDir: { env: 'PUSHGATE_DATA_DIR', key: 'dataDir', help: 'directory for generated state (the crypto key when none is configured)', expect: 'a directory path', parse: str, default: './data' },
  logLevel: { env: 'PUSHGATE_LOG_LEVEL', key: 'logLevel', help: 'log level', expect: 'one of fatal, error, warn, info, debug, trace, silent', parse: logLevel, default: 'info' },
  tlsCert: { env: 'PUSHGATE_TLS_CERT', key: 'tlsCert', help: 'PEM certificate file: serve https/wss (and HTTP/2) on the public port', expect: 'a readable PEM file', parse: optionalPath, default: null },
  tlsKey: { env: 'PUSHGATE_TLS_KEY', key: 'tlsKey', help: 'PEM private key file for PUSHGATE_TLS_CERT', expect: 'a readable PEM file', parse: optionalPath, default: null },
  role: { env: 'PUSHGATE_ROLE', key: 'role', help: 'all (one node does everything), connection (websockets) or endpoint (push POSTs)', expect: 'all, connection or endpoint', parse: role, default: 'all' },
  routerPort: { env: 'PUSHGATE_ROUTER_PORT', key: 'routerPort', help: 'internal node-to-node port (never the public one); needed by connection nodes in a fleet', expect: 'an integer from 1 to 65535, different from PUSHGATE_PORT', parse: optionalPort, default: null as number | null },
  routerHost: { env: 'PUSHGATE_ROUTER_HOST', key: 'routerHost', help: 'listen address of the internal port', expect: 'an IP address or host name', parse: nonEmpty, default: '127.0.0.1' },
  peerUrl: { env: 'PUSHGATE_PEER_URL', key: 'peerUrl', help: "this node's internal URL as other nodes reach it (recorded in its clients' router records)", expect: 'an http(s) origin such as http://10.0.0.5:8081', parse: optionalUrl, default: (p: Record<string, unknown>) => (p['routerPort'] ? `http://${p['routerHost'] as string}:${p['routerPort'] as number}` : null) },
  routerSecret: { env: 'PUSHGATE_ROUTER_SECRET', secret: true, key: 'routerSecret', help: 'shared secret every node presents on the internal port (required with PUSHGATE_ROUTER_PORT and on endpoint nodes)', expect: 'a string of at least 16 characters', parse: (r: string) => (r.length >= 16 ? r : undefined), default: null as string | null },
  routerTlsCert: { env: 'PUSHGATE_ROUTER_TLS_CERT', key: 'routerTlsCert', help: 'PEM certificate file: serve the internal port over https', expect: 'a readable PEM file', parse: optionalPath, default: null },
  routerTlsKey: { env: 'PUSHGATE_ROUTER_TLS_KEY', key: 'routerTlsKey', help: 'PEM private key file for PUSHGATE_ROUTER_TLS_CERT', expect: 'a readable PEM file', parse: optionalPath, default: null },
  routerCa: { env: 'PUSHGATE_ROUTER_CA', key: 'routerCa', help: "PEM CA file this node trusts when it calls other nodes' https internal ports (added to the system CAs)", expect: 'a readable PEM file', parse: optionalPath, default: null },
  // Listener limits (issue 9 §8): a request that never completes and a socket that never speaks are closed,
  // and open HTTP connections are capped so idle sockets cannot crowd out senders.
  headersTimeout: { env: 'PUSHGATE_HEADERS_TIMEOUT', key: 'headersTimeout', help: 'seconds a new HTTP connection has to complete its request headers (a silent socket is closed after this)', expect: 'an integer from 1 to 600', parse: int(1, 600), default: 10 },
  requestTimeout: { env: 'PUSHGATE_REQUEST_TIMEOUT', key: 'requestTimeout', help: 'seconds an HTTP request has to arrive in full, headers and body', expect: 'an integer from 1 to 600', parse: int(1, 600), default: 30 },
  keepAliveTimeout: { env: 'PUSHGATE_KEEPALIVE_TIMEOUT', key: 'keepAliveTimeout', help: 'seconds an idle keep-alive HTTP connection (or HTTP/2 session) stays open', expect: 'an integer from 1 to 600', parse: int(1, 600), default: 5 },
  maxConnections: { env: 'PUSHGATE_MAX_CONNECTIONS', key: 'maxConnections', help: 'open HTTP connections on the public port (websockets leave the count once upgraded); at the cap the oldest idle one is closed', expect: 'an integer from 1 to 1000000', parse: int(1, 1_000_000), default: 10_000 },
  metricsPort: { env: 'PUSHGATE_METRICS_PORT', key: 'metricsPort', help: 'serve /metrics on this separate port instead of the public one', expect: 'an integer from 1 to 65535, different from PUSHGATE_PORT', parse: optionalPort, default: null as number | null },
  metricsHost: { env: 'PUSHGATE_METRICS_HOST', key: 'metricsHost', help: 'listen address of PUSHGATE_METRICS_PORT', expect: 'an IP address or host name', parse: nonEmpty, default: '127.0.0.1' },
  workers: { env: 'PUSHGATE_WORKERS', key: 'workers', help: 'processes serving the public port(s) of `pushgate serve`: auto (one per core) or a number; 1 is a single process', expect: 'auto or an integer from 1 to 256', parse: workers, default: 'auto' as const },
  workerDirectory: { env: 'PUSHGATE_WORKER_DIRECTORY', key: 'workerDirectory', help: "how workers know which of them holds a client: replicated (each keeps every sibling's clients), partitioned (one owner worker per uaid), auto (replicated up to 8 workers)", expect: 'auto, replicated or partitioned', parse: workerDirectory, default: 'auto' as const },
  shutdownGrace: { env: 'PUSHGATE_SHUTDOWN_GRACE', key: 'shutdownGrace', help: 'seconds SIGTERM waits for in-flight requests before closing', expect: 'an integer from 0 to 600', parse: int(0, 600), default: 10 },
} satisfies SettingsTable;
