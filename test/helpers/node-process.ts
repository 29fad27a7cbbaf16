import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * A Pushgate node as its own process (`node dist/cli.js serve`), as an operator runs it. The tests and the
 * benchmark (bench/lib/procs.ts) both start gateways through this one spawner.
 */
export interface NodeProcess {
  child: ChildProcess;
  output: string[];
  kill(signal: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `pushgate serve` and resolves once it logs `ready` (one process: 'pushgate listening'; with
 * PUSHGATE_WORKERS > 1 pass 'pushgate cluster listening'). Tests run one process unless they set PUSHGATE_WORKERS.
 * `launcher` runs Node under another command (for example `prlimit --nofile=300:300 --`).
 */
export async function startNode(
  env: Record<string, string>,
  ready = 'pushgate listening',
  nodeArgs: string[] = [],
  launcher: string[] = [],
): Promise<NodeProcess> {
  const [command, ...args] = [...launcher, process.execPath, ...nodeArgs, 'dist/cli.js', 'serve'];
  const child = spawn(command, args, {
    env: { PATH: process.env['PATH'] ?? '', PUSHGATE_LOG_LEVEL: 'info', PUSHGATE_WORKERS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stderr.on('data', (d: Buffer) => output.push(d.toString()));
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const onData = (d: Buffer) => {
      seen += d.toString();
      output.push(d.toString());
      if (seen.includes(ready)) {
        child.stdout.off('data', onData);
        child.stdout.on('data', (more: Buffer) => output.push(more.toString()));
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => reject(new Error(`node exited with ${code}: ${output.join('')}`)));
  });
  return {
    child,
    output,
    async kill(signal) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await exited;
    },
  };
}

/** Resolves once `done()` holds, re-checking on each chunk the process writes; rejects after `timeoutMs`. */
export function outputUntil(node: NodeProcess, done: () => boolean, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!done()) return;
      clearTimeout(t);
      node.child.stdout!.off('data', onData);
      resolve();
    };
    // Registered after node-process's own listener, so the chunk is already in `output` when this runs.
    const onData = () => check();
    const t = setTimeout(() => {
      node.child.stdout!.off('data', onData);
      reject(new Error('expected output did not arrive'));
    }, timeoutMs);
    node.child.stdout!.on('data', onData);
    check();
  });
}

/** The process's "authentication failed" log lines, parsed, once at least `count` have been written (bounded wait). */
export async function authFailureLines(node: NodeProcess, count: number, timeoutMs = 5000): Promise<Record<string, unknown>[]> {
  const lines = () =>
    node.output
      .join('')
      .split('\n')
      .filter((l) => l.includes('authentication failed'));
  await outputUntil(node, () => lines().length >= count, timeoutMs);
  return lines().map((l) => JSON.parse(l) as Record<string, unknown>);
}

let built = false;
/** Builds dist/ from the sources under test, so that spawned nodes (`node dist/cli.js`) run this very code. */
export function buildDist(): void {
  // Once per test process: a suite that starts a gateway per test would otherwise spend most of its time in tsc.
  if (built) return;
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  built = true;
}

/**
 * The pids of a node's child processes (a primary's workers), zombies not yet reaped included. Read once per check:
 * two reads may straddle a reap or a fork, and a condition over both can hold although no one read shows it.
 */
export function childPids(node: NodeProcess): number[] {
  const pid = node.child.pid!;
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}

/** Resolves once the primary has `count` workers again, none of them one of `gone` (bounded by `timeout` ms). */
export async function workersReplaced(node: NodeProcess, gone: number[], count: number, timeout: number): Promise<void> {
  const until = Date.now() + timeout;
  for (;;) {
    const now = childPids(node);
    if (now.length === count && now.every((p) => !gone.includes(p))) return;
    if (Date.now() > until) throw new Error(`workers are ${now.join(', ')}: not ${count} new ones within ${timeout} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
