import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { appendFileSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startNode } from '../../test/helpers/node-process.js';

/**
 * Processes of a benchmark: the gateway as an operator runs it (started by the tests' own spawner,
 * test/helpers/node-process.ts), and load workers (separate processes).
 */

export interface GatewayProcess {
  child: ChildProcess;
  pid: number;
  /** Resident memory of the gateway's whole process tree (the primary and its workers). */
  rssBytes(): number;
  /** CPU seconds (user + system) the gateway's process tree has used so far, exited workers included. */
  cpuSeconds(): number;
  /** The system (kernel) part of cpuSeconds(): socket syscalls, and the wake-ups they cause, are charged here. */
  systemSeconds(): number;
  /** CPU seconds of the top process alone (with PUSHGATE_WORKERS > 1, the primary; its workers not counted). */
  ownCpuSeconds(): number;
  /**
   * Has glibc in each process of the tree hand the free memory it keeps back to the kernel (malloc_trim(0), called
   * through gdb, which pauses each process for a moment), so that RSS read after it is memory in use. False when gdb
   * is not installed or may not attach (bench/ only: the gateway itself never does this).
   */
  trimFreeMemory(): boolean;
  /** Open descriptors of each of the top process's children (with PUSHGATE_WORKERS > 1, each worker's share). */
  childDescriptors(): number[];
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Clock ticks of CPU a process tree has used: its live processes' own (stat fields 14/15, utime/stime), plus the
 * root's reaped children's (16/17, cutime/cstime), so workers that exited and were reaped still count.
 */
function ticksOf(pid: number, part: 'all' | 'system'): number {
  const fields = (f: string[], user: number): number => (part === 'all' ? Number(f[user]) : 0) + Number(f[user + 1]);
  let ticks = 0;
  for (const p of tree(pid)) {
    const f = statFields(p);
    if (f) ticks += fields(f, 11);
  }
  const own = statFields(pid);
  if (own) ticks += fields(own, 13);
  return ticks;
}

/** The pids of a process and its live descendants (a PUSHGATE_WORKERS primary has its workers as children). */
function tree(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // The process is gone.
  }
  return [pid, ...children.flatMap(tree)];
}

/** /proc/<pid>/stat after the command name: utime, stime, cutime, cstime are fields 14-17 (clock ticks, 100/s). */
function statFields(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  } catch {
    return null;
  }
}

export async function startGateway(env: Record<string, string>, port: number, extraNodeArgs: string[] = []): Promise<GatewayProcess> {
  const workers = Number(env['PUSHGATE_WORKERS'] ?? '1');
  const node = await startNode(
    { PUSHGATE_WORKERS: '1', ...env, PUSHGATE_LOG_LEVEL: 'info', PUSHGATE_PORT: String(port), PUSHGATE_HOST: '0.0.0.0' },
    workers > 1 ? 'pushgate cluster listening' : 'pushgate listening',
    extraNodeArgs,
  );
  // The log is kept only for a failed start; drop it so a long run does not accumulate it (or append it to the
  // file BENCH_GATEWAY_LOG names, to look into a run).
  node.child.stdout!.removeAllListeners('data');
  const logFile = process.env['BENCH_GATEWAY_LOG'];
  if (logFile) node.child.stdout!.on('data', (d: Buffer) => appendFileSync(logFile, d));
  else node.child.stdout!.resume();
  return measured(node.child, port, () => node.kill('SIGTERM'));
}

/** The floor server (bench/floor.ts): bare node:http and ws doing a direct push's socket work, measured alike. */
export async function startFloor(port: number, nodeArgs: string[] = []): Promise<GatewayProcess> {
  const child = fork(fileURLToPath(new URL('../floor.js', import.meta.url)), [String(port)], {
    execArgv: nodeArgs,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`the floor server exited (${code})`)));
  });
  return measured(child, port, async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  });
}

/** A started server process with its CPU, memory and metrics readers. */
function measured(child: ChildProcess, port: number, stop: () => Promise<void>): GatewayProcess {
  const pid = child.pid!;
  return {
    child,
    pid,
    rssBytes() {
      let total = 0;
      for (const p of tree(pid)) {
        try {
          const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
          total += m ? Number(m[1]) * 1024 : 0;
        } catch {
          // Exited meanwhile.
        }
      }
      return total;
    },
    cpuSeconds() {
      return ticksOf(pid, 'all') / 100;
    },
    systemSeconds() {
      return ticksOf(pid, 'system') / 100;
    },
    childDescriptors() {
      return tree(pid)
        .slice(1)
        .map((p) => {
          try {
            return readdirSync(`/proc/${p}/fd`).length;
          } catch {
            return 0;
          }
        });
    },
    ownCpuSeconds() {
      const f = statFields(pid);
      return f ? (Number(f[11]) + Number(f[12])) / 100 : 0;
    },
    async metrics() {
      return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    },
    trimFreeMemory() {
      try {
        for (const p of tree(pid)) {
          const out = execFileSync('gdb', ['-p', String(p), '-batch', '-ex', 'call (int)malloc_trim(0)'], {
            timeout: 30_000,
            stdio: ['ignore', 'pipe', 'ignore'],
          });
          if (!/^\$1 = [01]$/m.test(out.toString())) return false;
        }
        return true;
      } catch {
        return false;
      }
    },
    stop,
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
