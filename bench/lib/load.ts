import webpush from 'web-push';
import { Worker } from './procs.js';
import { latency, type Latency, round } from './stats.js';

/** Driving the load processes: connect clients, send pushes, collect receive times; and CPU accounting. */

export const addresses = (n: number) => Array.from({ length: n }, (_, i) => `127.0.0.${i + 1}`);

export async function withWorkers<T>(n: number, name: string, fn: (ws: Worker[]) => Promise<T>): Promise<T> {
  const ws = Array.from({ length: n }, (_, i) => new Worker(`${name}-${i}`));
  try {
    return await fn(ws);
  } finally {
    await Promise.all(ws.map((w) => w.stop()));
  }
}

/** 1 kB encrypted for a throw-away subscription key, with a VAPID header reused for every request. */
export function senderMaterial(
  origin: string,
  vapid: { publicKey: string; privateKey: string },
  ttl = 3600,
): { body: string; headers: Record<string, string> } {
  const ua = webpush.generateVAPIDKeys();
  const sub = { endpoint: `${origin}/wpush/v2/x`, keys: { p256dh: ua.publicKey, auth: Buffer.alloc(16, 7).toString('base64url') } };
  const d = webpush.generateRequestDetails(sub, Buffer.alloc(1024, 0x61), { TTL: ttl, vapidDetails: { subject: 'mailto:bench@example.com', ...vapid } });
  const headers = Object.fromEntries(Object.entries(d.headers as Record<string, string>).filter(([k]) => k.toLowerCase() !== 'content-length'));
  return { body: d.body.toString('base64'), headers };
}

interface ConnectResult {
  elapsedMs: number;
  failures: number;
  uaids: string[];
  endpoints: (string | null)[];
}
interface SendResult {
  elapsedMs: number;
  sent: number;
  statuses: Record<string, number>;
  latencies: number[];
  ids: [string, number][];
}

/**
 * Splits `total` clients over workers and connects them (each worker keeps its sockets). Each worker binds
 * its own 16 of the 127.0.0.x source addresses (or `addressBase` + its index for larger runs), so no
 * source address runs out of ephemeral ports.
 */
export async function connectClients(
  workers: Worker[],
  url: string,
  total: number,
  opts: { register: boolean; key?: string; uaids?: string[]; keepTimes?: boolean; localAddresses?: (i: number) => string[]; concurrency?: number },
) {
  const per = Math.ceil(total / workers.length);
  const started = Date.now();
  const parts = await Promise.all(
    workers.map((w, i) =>
      w.call<ConnectResult>('connect', {
        url,
        count: Math.max(0, Math.min(per, total - i * per)),
        localAddresses: opts.localAddresses ? opts.localAddresses(i) : addresses(32).slice((i * 16) % 32, ((i * 16) % 32) + 16),
        register: opts.register,
        key: opts.key,
        concurrency: opts.concurrency ?? 256,
        uaids: opts.uaids?.slice(i * per, (i + 1) * per),
        keepTimes: opts.keepTimes ?? false,
      }),
    ),
  );
  return {
    elapsedMs: Date.now() - started,
    failures: parts.reduce((a, p) => a + p.failures, 0),
    uaids: parts.flatMap((p) => p.uaids),
    endpoints: parts.flatMap((p) => p.endpoints).filter((e): e is string => e !== null),
  };
}

export async function send(
  senders: Worker[],
  endpoints: string[],
  material: { body: string; headers: Record<string, string> },
  opts: { mode: 'saturate' | 'rate'; concurrency: number; rps?: number; durationMs: number; once?: boolean },
) {
  const per = Math.ceil(endpoints.length / senders.length);
  const results = await Promise.all(
    senders.map((w, i) =>
      w.call<SendResult>('send', {
        targets: endpoints.slice(i * per, (i + 1) * per).map((endpoint) => ({ endpoint, body: material.body })),
        headers: material.headers,
        mode: opts.mode,
        concurrency: opts.concurrency,
        rps: opts.rps ? opts.rps / senders.length : undefined,
        durationMs: opts.durationMs,
        // Each endpoint exactly once (stored scenario) instead of until time is up.
        count: opts.once ? endpoints.slice(i * per, (i + 1) * per).length : undefined,
      }),
    ),
  );
  const statuses: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  return {
    elapsedMs: Math.max(...results.map((r) => r.elapsedMs)),
    sent: results.reduce((a, r) => a + r.sent, 0),
    ok: statuses['201'] ?? 0,
    statuses,
    latencies: results.flatMap((r) => r.latencies),
    ids: results.flatMap((r) => r.ids),
  };
}

/**
 * A send's failures for a row: `errors`, and when there are any, `notAccepted`, what they were (answers other
 * than 201 by status, failed requests by their error's code), so a row says whether the gateway refused or a socket failed.
 */
export function errorsOf(r: { sent: number; ok: number; statuses: Record<string, number> }): { errors: number; notAccepted?: string } {
  const errors = r.sent - r.ok;
  if (errors === 0) return { errors };
  const what = Object.entries(r.statuses).filter(([status]) => status !== '201');
  return { errors, notAccepted: what.map(([status, n]) => `${status}: ${n}`).join(', ') };
}

export async function receivedTimes(clientsW: Worker[]) {
  const parts = await Promise.all(clientsW.map((w) => w.call<{ count: number; times: [string, number][] }>('received', { withTimes: true })));
  return { count: parts.reduce((a, p) => a + p.count, 0), times: new Map(parts.flatMap((p) => p.times)) };
}

export function e2e(ids: [string, number][], times: Map<string, number>): Latency {
  const samples: number[] = [];
  for (const [id, t0] of ids) {
    const t1 = times.get(id);
    if (t1 !== undefined) samples.push(t1 - t0);
  }
  return latency(samples);
}

/** Gateway CPU use during a phase: percent of one core, µs per message, and the messages one core could carry. */
export function cpuFigures(cpuSeconds: number, elapsedMs: number, messages: number, systemSeconds?: number): Record<string, number> {
  const perMsgUs = (cpuSeconds * 1e6) / Math.max(1, messages);
  const figures = {
    gatewayCpuPct: round((cpuSeconds / (elapsedMs / 1000)) * 100, 0),
    cpuUsPerMsg: round(perMsgUs, 0),
    perCoreMsgPerS: round(1e6 / perMsgUs, 0),
  };
  // The kernel's share of cpuUsPerMsg: the floor no change in the gateway's own code can lower, short of fewer syscalls.
  return systemSeconds === undefined ? figures : { ...figures, kernelUsPerMsg: round((systemSeconds * 1e6) / Math.max(1, messages), 0) };
}
