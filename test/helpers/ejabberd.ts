import { execFileSync } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { freePort } from './gateway.js';

/**
 * A real ejabberd from Debian's packages (mod_push, XEP-0357) on free loopback ports, with its own
 * configuration, Erlang node name, spool and logs, started and stopped by the test. ejabberdctl switches to
 * the `ejabberd` user when run as root, so the private directory belongs to that user; its own ctl config keeps
 * Debian's ejabberdctl.cfg (which would override --config) out of the way.
 */
export interface EjabberdServer {
  c2sPort: number;
  componentPort: number;
  componentSecret: string;
  domain: string;
  pushDomain: string;
  register(user: string, password: string): void;
  log(): string;
  stop(): Promise<void>;
}

const CTL = '/usr/sbin/ejabberdctl';

export async function startEjabberd(): Promise<EjabberdServer> {
  if (!existsSync(CTL)) throw new Error('ejabberd is missing: npm test installs it with apt');
  const dir = mkdtempSync(join(tmpdir(), 'pushgate-ejabberd-'));
  for (const d of ['spool', 'logs']) mkdirSync(join(dir, d));
  const c2sPort = await freePort();
  const componentPort = await freePort();
  const componentSecret = 'component-secret-for-tests';
  const node = `pushgate${randomBytes(4).toString('hex')}@localhost`;
  writeFileSync(
    join(dir, 'ejabberd.yml'),
    `# Pushgate interop test server
hosts:
  - localhost
loglevel: info
certfiles: []
listen:
  - port: ${c2sPort}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls_required: false
  - port: ${componentPort}
    ip: "127.0.0.1"
    module: ejabberd_service
    hosts:
      push.localhost:
        password: "${componentSecret}"
auth_method: internal
auth_password_format: plain
s2s_access: none
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
api_permissions:
  "console commands":
    from: [ejabberd_ctl]
    who: all
    what: "*"
modules:
  mod_disco: {}
  mod_offline: {}
  mod_ping: {}
  mod_roster: {}
  mod_stream_mgmt: {}
  mod_push:
    include_body: true
    include_sender: true
`,
  );
  writeFileSync(join(dir, 'ejabberdctl.cfg'), `ERLANG_NODE=${node}\nEJABBERD_PID_PATH=${dir}/ejabberd.pid\nERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"\n`);
  if (existsSync('/etc/ejabberd/inetrc')) copyFileSync('/etc/ejabberd/inetrc', join(dir, 'inetrc'));
  const uid = Number(execFileSync('id', ['-u', 'ejabberd']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'ejabberd']).toString().trim());
  for (const p of ['', 'spool', 'logs', 'ejabberd.yml', 'ejabberdctl.cfg', 'inetrc']) if (existsSync(join(dir, p))) chownSync(join(dir, p), uid, gid);
  const ctl = (...args: string[]) =>
    execFileSync(
      CTL,
      [
        '--config-dir',
        dir,
        '--ctl-config',
        join(dir, 'ejabberdctl.cfg'),
        '--config',
        join(dir, 'ejabberd.yml'),
        '--spool',
        join(dir, 'spool'),
        '--logs',
        join(dir, 'logs'),
        ...args,
      ],
      { stdio: 'pipe', timeout: 60_000 },
    );
  const logFile = join(dir, 'logs', 'ejabberd.log');
  ctl('start');
  const deadline = Date.now() + 60_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(c2sPort, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline) throw new Error(`ejabberd did not start: ${existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  let stopped = false;
  return {
    c2sPort,
    componentPort,
    componentSecret,
    domain: 'localhost',
    pushDomain: 'push.localhost',
    register(user, password) {
      ctl('register', user, 'localhost', password);
    },
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        ctl('stop');
        ctl('stopped');
      } catch {
        // Already down.
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
