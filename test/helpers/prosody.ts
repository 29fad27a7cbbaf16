import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './gateway.js';

/**
 * A real Prosody from Debian's packages (with mod_cloud_notify from prosody-modules), on free loopback
 * ports with its own configuration and data, started and stopped by the test.
 */
export interface ProsodyServer {
  c2sPort: number;
  componentPort: number;
  componentSecret: string;
  domain: string;
  pushDomain: string;
  logFile: string;
  register(user: string, password: string): void;
  log(): string;
  stop(): Promise<void>;
}

export async function startProsody(): Promise<ProsodyServer> {
  if (!existsSync('/usr/bin/prosody')) throw new Error('prosody is missing: npm test installs it with apt');
  const dir = mkdtempSync(join(tmpdir(), 'pushgate-prosody-'));
  mkdirSync(join(dir, 'data'));
  const c2sPort = await freePort();
  const componentPort = await freePort();
  const componentSecret = 'component-secret-for-tests';
  const logFile = join(dir, 'prosody.log');
  const config = join(dir, 'prosody.cfg.lua');
  writeFileSync(
    config,
    `-- Pushgate interop test server
run_as_root = true
daemonize = false
pidfile = "${dir}/prosody.pid"
data_path = "${dir}/data"
log = { { levels = { min = "debug" }, to = "file", filename = "${logFile}" } }
interfaces = { "127.0.0.1" }
c2s_ports = { ${c2sPort} }
component_ports = { ${componentPort} }
component_interface = "127.0.0.1"
s2s_ports = { }
http_ports = { }
https_ports = { }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
storage = "internal"
-- Let the summary carry sender and body; Pushgate passes them on only where a registration opted in.
push_notification_with_body = true
push_notification_with_sender = true
plugin_paths = { "/usr/lib/prosody/modules" }
modules_enabled = { "roster", "saslauth", "disco", "offline", "smacks", "cloud_notify", "ping" }
modules_disabled = { "s2s", "tls", "posix" }
VirtualHost "localhost"
Component "push.localhost"
  component_secret = "${componentSecret}"
`,
  );
  const child: ChildProcess = spawn('prosody', ['--config', config, '-F'], { stdio: 'ignore' });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`prosody exited with ${child.exitCode}: ${existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : ''}`);
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(c2sPort, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline) throw new Error('prosody did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    c2sPort,
    componentPort,
    componentSecret,
    domain: 'localhost',
    pushDomain: 'push.localhost',
    logFile,
    register(user, password) {
      execFileSync('prosodyctl', ['--config', config, 'register', user, 'localhost', password], { stdio: 'ignore' });
    },
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
