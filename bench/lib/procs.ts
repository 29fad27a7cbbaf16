import { type ChildProcess, fork, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';

/** Processes of a benchmark: the gateway as an operator runs it, and load workers (separate processes). */

export interface GatewayProcess {
  child: ChildProcess;
  pid: number;
  rssBytes(): number;
  /** CPU seconds (user + system) the gateway process has used so far. */
  cpuSeconds(): number;
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

export async function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, host);
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startGateway(env: Record<string, string>, port: number, extraNodeArgs: string[] = []): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [...extraNodeArgs, 'dist/cli.js', 'serve'], {
    env: { PATH: process.env['PATH'] ?? '', PUSHGATE_LOG_LEVEL: 'error', ...env, PUSHGATE_PORT: String(port), PUSHGATE_HOST: '0.0.0.0' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitForPort(port);
  const pid = child.pid!;
  return {
    child,
    pid,
    rssBytes() {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : NaN;
    },
    cpuSeconds() {
      // /proc/<pid>/stat fields 14 and 15: utime and stime in clock ticks (USER_HZ, 100 on Linux).
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100;
    },
    async metrics() {
      return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export function metricValue(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `) || (!labels && l.startsWith(`${name} `)));
  return line ? Number(line.split(' ').pop()) : NaN;
}

/** A load worker: a separate Node process running bench/worker.js, driven by messages. */
export class Worker {
  readonly child: ChildProcess;
  private readonly waiting = new Map<number, (v: unknown) => void>();
  private seq = 0;

  constructor(name: string) {
    const script = fileURLToPath(new URL('../worker.js', import.meta.url));
    this.child = fork(script, [name], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--max-old-space-size=4096'] });
    this.child.on('message', (m: { id: number; result?: unknown; error?: string }) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      w(m.error ? Promise.reject(new Error(m.error)) : m.result);
    });
  }

  call<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, (v) => void Promise.resolve(v).then((x) => resolve(x as T), reject));
      this.child.send({ id, op, args });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
  }
}
