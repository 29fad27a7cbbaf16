import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './gateway.js';

/**
 * A real MongoDB-wire server for the tests: the MongoDB that MONGODB_URL names, else a `mongod` on PATH,
 * else FerretDB v1 on its SQLite backend (built by `npm test` into ~/.cache/pushgate-test), each on a
 * free loopback port with its own data directory, stopped at the end.
 */
export const FERRETDB_BIN = process.env['FERRETDB_BIN'] ?? join(homedir(), '.cache', 'pushgate-test', 'ferretdb-v1.24.2');

export interface MongoServer {
  readonly kind: 'external' | 'mongod' | 'ferretdb';
  readonly port: number;
  url(db: string): string;
  stop(): Promise<void>;
  /** Stops the server and starts it again on the same port and data (not for an external server). */
  restart(): Promise<void>;
  /** Stops the server without starting it again (an outage); `start()` brings it back. */
  start(): Promise<void>;
}

/** Resolves once something accepts TCP connections on the port (each attempt waits for its own outcome). */
async function reachable(port: number, child: ChildProcess, said: () => string = () => '', deadlineMs = 30_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`test database exited with ${child.exitCode}${said()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`test database did not listen on ${port} within ${deadlineMs} ms${said()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function mongoServer(): Promise<MongoServer> {
  const external = process.env['MONGODB_URL'];
  if (external) {
    const base = new URL(external);
    return {
      kind: 'external',
      port: Number(base.port || 27017),
      url: (db) => Object.assign(new URL(base), { pathname: `/${db}` }).toString(),
      stop: async () => {},
      restart: async () => {
        throw new Error('cannot restart an external MongoDB');
      },
      start: async () => {},
    };
  }
  const hasMongod = spawnSync('sh', ['-c', 'command -v mongod'], { stdio: 'ignore' }).status === 0;
  if (!hasMongod && !existsSync(FERRETDB_BIN)) {
    throw new Error(`no MongoDB-wire server: set MONGODB_URL, install mongod, or run npm test (it builds FerretDB into ${FERRETDB_BIN})`);
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'pushgate-mongo-'));
  const args = hasMongod
    ? ['--dbpath', dir, '--port', String(port), '--bind_ip', '127.0.0.1', '--quiet']
    : [
        '--handler=sqlite',
        `--sqlite-url=file:${dir}/`,
        `--listen-addr=127.0.0.1:${port}`,
        `--state-dir=${dir}`,
        '--telemetry=disable',
        '--log-level=error',
        '--debug-addr=-',
      ];
  let child: ChildProcess | null = null;
  // The end of what the server wrote to stderr, for the error when it does not come up.
  let stderrTail = '';
  const said = () => (stderrTail.trim() ? `; it said: ${stderrTail.trim()}` : '');
  const start = async () => {
    stderrTail = '';
    child = spawn(hasMongod ? 'mongod' : FERRETDB_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => (stderrTail = (stderrTail + d.toString()).slice(-2000)));
    await reachable(port, child, said);
  };
  const stop = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    // A server that has not exited after 5 s of its graceful shutdown is killed: a stop is an outage either way, and
    // a stop must not be able to hang a case (one bulk-queue case timed out once in a loaded full run; at which
    // step is not known, this one had no bound).
    const killer = setTimeout(() => c.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
  };
  await start();
  return {
    kind: hasMongod ? 'mongod' : 'ferretdb',
    port,
    url: (db) => `mongodb://127.0.0.1:${port}/${db}`,
    stop,
    start,
    restart: async () => {
      await stop();
      await start();
    },
  };
}

/**
 * FerretDB v1 on its PostgreSQL backend, over a private PostgreSQL cluster that listens on a unix socket only
 * (no TCP port), for the fleet benchmark's faster MongoDB-wire stand-in: PostgreSQL indexes the documents'
 * fields and takes concurrent writers, where FerretDB's SQLite backend scans collections and writes one at a
 * time. Needs Debian's `postgresql` package; null when it is not installed. PostgreSQL refuses to run as root, so
 * as root the cluster runs as the package's `postgres` user.
 */
export async function ferretOnPostgres(): Promise<{ url(db: string): string; stop(): Promise<void> } | null> {
  const bin = spawnSync('sh', ['-c', 'ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1'], { encoding: 'utf8' }).stdout.trim();
  if (!bin || !existsSync(join(bin, 'initdb')) || !existsSync(FERRETDB_BIN)) return null;
  const dir = mkdtempSync(join(tmpdir(), 'pushgate-pg-'));
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]) => {
    const r = asRoot ? spawnSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8' }) : spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  };
  if (asRoot) spawnSync('chown', ['postgres', dir]);
  const data = join(dir, 'data');
  run(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'ferret']);
  // listen_addresses '' : the unix socket in `dir` (0700, its owner only) is the only way in.
  run(join(bin, 'pg_ctl'), ['-D', data, '-w', '-l', join(dir, 'pg.log'), '-o', `-k ${dir} -c listen_addresses=''`, 'start']);
  run(join(bin, 'createdb'), ['-h', dir, '-U', 'ferret', 'ferretdb']);
  const port = await freePort();
  const state = join(dir, 'ferretdb');
  const child = spawn(
    FERRETDB_BIN,
    [
      '--handler=postgresql',
      `--postgresql-url=postgres://ferret@/ferretdb?host=${dir}`,
      `--listen-addr=127.0.0.1:${port}`,
      `--state-dir=${asRoot ? dir : state}`,
      '--telemetry=disable',
      '--log-level=error',
      '--debug-addr=-',
    ],
    { stdio: 'ignore' },
  );
  await reachable(port, child);
  return {
    url: (db) => `mongodb://127.0.0.1:${port}/${db}`,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', 'stop']);
    },
  };
}
