import { readFileSync, readdirSync } from 'node:fs';
import type { Server } from 'node:net';

/**
 * File descriptors and the accept loop. Every websocket and every HTTP connection holds one descriptor of the
 * process that serves it, so a process's descriptor limit (RLIMIT_NOFILE; Node raises its soft limit to the hard
 * one at start) bounds the clients it can hold, whatever PUSHGATE_MAX_CONNECTIONS says. With several workers each
 * has its own. At the limit libuv keeps a spare descriptor for exactly this case: it closes the spare, accepts the
 * waiting connections, closes them and opens the spare again, so a client is reset and the process runs on
 * (libuv's `uv__emfile_trick`). Any other error of `accept` (ENOBUFS, ENOMEM, EPERM…) reaches Node's server as an
 * 'error' event, which would end the process if nothing listened for it.
 */

/** The soft "Max open files" limit of a `/proc/<pid>/limits` text; Infinity for "unlimited", null if absent. */
export function parseOpenFilesLimit(limits: string): number | null {
  const m = /^Max open files\s+(\S+)/m.exec(limits);
  if (!m) return null;
  if (m[1] === 'unlimited') return Infinity;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

export interface DescriptorState {
  /** The process's limit; null where /proc is not there to say (not Linux). */
  limit: number | null;
  /** Descriptors open now: files, listeners, the store, the workers' links. */
  open: number | null;
}

/** This process's descriptor limit and how many it holds now, from /proc/self (Linux). */
export function descriptorState(): DescriptorState {
  try {
    // The listing counts the descriptor it is read through, closed again by now.
    return { limit: parseOpenFilesLimit(readFileSync('/proc/self/limits', 'utf8')), open: readdirSync('/proc/self/fd').length - 1 };
  } catch {
    return { limit: null, open: null };
  }
}

/**
 * The start-up line about descriptors: how many connections this process can still take, and a warning when
 * that is below PUSHGATE_MAX_CONNECTIONS. Then the descriptors run out first, and a connection refused for want
 * of one is reset before Pushgate sees it, so the cap's eviction of idle connections cannot make room for a sender.
 */
export function descriptorReport(
  state: DescriptorState,
  maxConnections: number,
): { level: 'info' | 'warn'; fields: Record<string, unknown>; msg: string } | null {
  if (state.limit === null || state.open === null) return null;
  if (state.limit === Infinity) return { level: 'info', fields: { descriptorLimit: 'unlimited' }, msg: 'descriptor limit' };
  const room = Math.max(0, state.limit - state.open);
  const fields = { descriptorLimit: state.limit, descriptorsOpen: state.open, connectionsAtMost: room };
  if (room < maxConnections) {
    return {
      level: 'warn',
      fields: { ...fields, maxConnections },
      msg: 'descriptor limit below PUSHGATE_MAX_CONNECTIONS: connections beyond it are reset; raise the limit (systemd LimitNOFILE, Docker ulimits nofile)',
    };
  }
  return { level: 'info', fields, msg: 'descriptor limit' };
}

/** Logs once per burst: the first error at once, then at most one line a second with how many came since. */
const ACCEPT_LOG_EVERY_MS = 1000;

/**
 * Keeps a listening server alive through `accept` errors: each is counted, logged (at most once a second, with
 * the count since the last line) and the server goes on accepting. Attach after listen() resolved, so that a
 * failure to listen (EADDRINUSE) still fails the start.
 */
export function keepAccepting(
  server: Pick<Server, 'on'>,
  listener: string,
  log: { error(obj: object, msg: string): void },
  count: () => void,
  now: () => number = Date.now,
): void {
  let loggedAt = -Infinity;
  let unlogged = 0;
  server.on('error', (err: NodeJS.ErrnoException) => {
    count();
    unlogged++;
    const t = now();
    if (t - loggedAt < ACCEPT_LOG_EVERY_MS) return;
    loggedAt = t;
    log.error({ listener, code: err.code, syscall: err.syscall, errors: unlogged }, 'listener error; still accepting');
    unlogged = 0;
  });
}
