import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { WebSocket } from 'ws';

/**
 * A load process of the benchmark. The orchestrator (bench/run.ts) sends it operations over IPC; it plays
 * browsers (websocket clients), application servers (HTTP senders), provider fakes, or an XMPP server.
 */

const now = () => performance.timeOrigin + performance.now();

interface Client {
  ws: WebSocket;
  uaid: string;
}

/**
 * Everything one load process holds between operations, passed to each operation like the scenarios' BenchContext,
 * instead of module-level mutable state.
 */
interface WorkerContext {
  readonly clients: Client[];
  /** version → receive time, for latency joins. */
  received: Map<string, number>;
  receivedCount: number;
  fakes: import('../test/fakes/providers.js').ProviderFakes | null;
  xmppServer: import('../test/helpers/xmpp-server.js').FakeComponentServer | null;
  /** How long a client waits before it acks a notification (0: at once, as a nearby browser does). */
  ackDelayMs: number;
}

function createWorkerContext(): WorkerContext {
  return { clients: [], received: new Map(), receivedCount: 0, fakes: null, xmppServer: null, ackDelayMs: 0 };
}

function onNotification(ctx: WorkerContext, ws: WebSocket, text: string, keepTimes: boolean): void {
  const m = JSON.parse(text) as Record<string, unknown>;
  if (m['messageType'] !== 'notification') return;
  ctx.receivedCount++;
  if (keepTimes) ctx.received.set(m['version'] as string, now());
  const ack = JSON.stringify({ messageType: 'ack', updates: [{ channelID: m['channelID'], version: m['version'], code: 100 }] });
  if (ctx.ackDelayMs > 0) setTimeout(() => ws.readyState === WebSocket.OPEN && ws.send(ack), ctx.ackDelayMs);
  else ws.send(ack);
}

/** Opens one client: hello (with a uaid to resume), then register when asked. */
function openClient(
  ctx: WorkerContext,
  url: string,
  localAddress: string,
  uaid: string | null,
  register: boolean,
  key: string | null,
  keepTimes: boolean,
): Promise<{ uaid: string; endpoint: string | null }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['push-notification'], { localAddress, perMessageDeflate: false });
    let stage = 0;
    let myUaid = '';
    ws.once('error', reject);
    ws.on('open', () => ws.send(JSON.stringify({ messageType: 'hello', use_webpush: true, ...(uaid ? { uaid } : {}) })));
    ws.on('message', (data) => {
      const text = (data as Buffer).toString();
      if (stage === 0) {
        myUaid = (JSON.parse(text) as { uaid: string }).uaid;
        ctx.clients.push({ ws, uaid: myUaid });
        stage = 1;
        if (!register) return resolve({ uaid: myUaid, endpoint: null });
        ws.send(JSON.stringify({ messageType: 'register', channelID: randomUUID(), ...(key ? { key } : {}) }));
        return;
      }
      if (stage === 1 && register) {
        const m = JSON.parse(text) as { messageType: string; pushEndpoint?: string };
        if (m.messageType === 'register') {
          stage = 2;
          return resolve({ uaid: myUaid, endpoint: m.pushEndpoint ?? null });
        }
      }
      onNotification(ctx, ws, text, keepTimes);
    });
  });
}

async function pool<T>(count: number, concurrency: number, job: (i: number) => Promise<T>): Promise<{ results: T[]; failures: number }> {
  const results: T[] = [];
  let next = 0;
  let failures = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const i = next++;
        try {
          results[i] = await job(i);
        } catch {
          failures++;
        }
      }
    }),
  );
  return { results: results.filter((r) => r !== undefined), failures };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each op declares the shape of the IPC args its caller sends
const ops: Record<string, (ctx: WorkerContext, args: any) => Promise<unknown>> = {
  async connect(
    ctx: WorkerContext,
    a: {
      url: string;
      count: number;
      localAddresses: string[];
      register: boolean;
      key?: string;
      concurrency: number;
      uaids?: string[];
      keepTimes?: boolean;
    },
  ) {
    const started = now();
    const { results, failures } = await pool(a.count, a.concurrency, (i) =>
      openClient(ctx, a.url, a.localAddresses[i % a.localAddresses.length]!, a.uaids?.[i] ?? null, a.register, a.key ?? null, a.keepTimes ?? false),
    );
    return { elapsedMs: now() - started, failures, uaids: results.map((r) => r.uaid), endpoints: results.map((r) => r.endpoint) };
  },
  async received(ctx: WorkerContext, a: { withTimes: boolean }) {
    const out = { count: ctx.receivedCount, times: a.withTimes ? [...ctx.received.entries()] : [] };
    ctx.received = new Map();
    ctx.receivedCount = 0;
    return out;
  },
  async waitReceived(ctx: WorkerContext, a: { count: number; timeoutMs: number }) {
    const started = now();
    while (ctx.receivedCount < a.count && now() - started < a.timeoutMs) await new Promise((r) => setTimeout(r, 20));
    return { count: ctx.receivedCount, elapsedMs: now() - started };
  },
  async setAckDelay(ctx: WorkerContext, a: { ms: number }) {
    ctx.ackDelayMs = a.ms;
    return {};
  },
  async closeClients(ctx: WorkerContext) {
    await Promise.all(ctx.clients.splice(0).map((c) => new Promise<void>((r) => (c.ws.once('close', () => r()), c.ws.close()))));
    return {};
  },
  async send(
    ctx: WorkerContext,
    a: {
      targets: { endpoint: string; body: string }[];
      headers: Record<string, string>;
      mode: 'saturate' | 'rate';
      concurrency: number;
      rps?: number;
      durationMs?: number;
      count?: number;
    },
  ) {
    // `timeout` below the gateway's keep-alive close: Node 20's agent ignores the server's `Keep-Alive: timeout=` hint
    // unless it has a timeout of its own (nodejs/node#52653), and an idle socket it reuses just as the server closes it
    // fails with ECONNRESET. A sender should drop idle connections before the server does; these now do at 4 s.
    const agent = new Agent({ keepAlive: true, maxSockets: a.concurrency, timeout: 4000 });
    const bodies = a.targets.map((t) => Buffer.from(t.body, 'base64'));
    const paths = a.targets.map((t) => new URL(t.endpoint));
    const latencies: number[] = [];
    const ids: [string, number][] = [];
    const statuses: Record<string, number> = {};
    let sent = 0;
    let i = 0;
    const one = () =>
      new Promise<void>((resolve) => {
        const k = i++ % paths.length;
        const url = paths[k]!;
        const body = bodies[k]!;
        const t0 = now();
        sent++;
        const req = request(
          { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers: { ...a.headers, 'content-length': body.length } },
          (res) => {
            res.resume();
            res.on('end', () => {
              const status = String(res.statusCode);
              statuses[status] = (statuses[status] ?? 0) + 1;
              latencies.push(now() - t0);
              const loc = res.headers['location'];
              if (loc) ids.push([loc.slice(loc.lastIndexOf('/') + 1), t0]);
              resolve();
            });
          },
        );
        req.on('error', (err: NodeJS.ErrnoException) => {
          // By its code (ECONNRESET, EPIPE…), so a row's errors say whether the gateway answered or the socket failed.
          const key = `error ${err.code ?? err.message}`;
          statuses[key] = (statuses[key] ?? 0) + 1;
          resolve();
        });
        req.end(body);
      });
    const started = now();
    if (a.mode === 'saturate') {
      const end = started + (a.durationMs ?? 10_000);
      const limit = a.count ?? Infinity;
      await Promise.all(
        Array.from({ length: a.concurrency }, async () => {
          while (now() < end && sent < limit) await one();
        }),
      );
    } else {
      const rps = a.rps ?? 1000;
      const total = Math.round((rps * (a.durationMs ?? 10_000)) / 1000);
      const inflight: Promise<void>[] = [];
      for (let n = 0; n < total; n++) {
        const due = started + (n * 1000) / rps;
        const wait = due - now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        inflight.push(one());
      }
      await Promise.all(inflight);
    }
    agent.destroy();
    return { elapsedMs: now() - started, sent, statuses, latencies, ids };
  },
  async startFakes(ctx: WorkerContext) {
    const { makePki } = await import('../test/fakes/pki.js');
    const { ProviderFakes } = await import('../test/fakes/providers.js');
    const pki = makePki();
    const fakes = new ProviderFakes(pki);
    ctx.fakes = fakes;
    await fakes.start();
    return { origin: fakes.origin, caFile: pki.caFile, serviceAccountFile: fakes.serviceAccountFile, dir: pki.dir };
  },
  async fakesCount(ctx: WorkerContext) {
    const n = ctx.fakes?.received.length ?? 0;
    ctx.fakes?.received.splice(0);
    return n;
  },
  async startXmppServer(ctx: WorkerContext, a: { domain: string; secret: string }) {
    const { FakeComponentServer } = await import('../test/helpers/xmpp-server.js');
    const server = new FakeComponentServer(a.domain, a.secret);
    ctx.xmppServer = server;
    await server.listen();
    return { port: server.port };
  },
  async xmppConnected(ctx: WorkerContext) {
    await xmppServer(ctx).connected();
    return {};
  },
  async xmppRegister(ctx: WorkerContext, a: { count: number; domain: string }) {
    const { xml } = await import('../test/helpers/xmpp-server.js');
    const out: { node: string; secret: string }[] = [];
    for (let i = 0; i < a.count; i++) {
      const fields = { token: `fcm-bench-device-${i}`, 'device-id': `d${i}` };
      const reply = await xmppServer(ctx).request(
        xml(
          'iq',
          { type: 'set', from: `user${i}@bench.example/r`, to: a.domain },
          xml(
            'command',
            { xmlns: 'http://jabber.org/protocol/commands', node: 'register-push-fcm', action: 'execute' },
            xml('x', { xmlns: 'jabber:x:data', type: 'submit' }, ...Object.entries(fields).map(([k, v]) => xml('field', { var: k }, xml('value', {}, v)))),
          ),
        ),
      );
      const x = reply.getChild('command', 'http://jabber.org/protocol/commands')!.getChild('x', 'jabber:x:data')!;
      const field = (n: string) =>
        x
          .getChildren('field')
          .find((f) => f.attrs['var'] === n)!
          .getChildText('value')!;
      out.push({ node: field('node'), secret: field('secret') });
    }
    return out;
  },
  async xmppPublish(ctx: WorkerContext, a: { nodes: { node: string; secret: string }[]; domain: string; concurrency: number; durationMs: number }) {
    const { xml } = await import('../test/helpers/xmpp-server.js');
    const latencies: number[] = [];
    const results: Record<string, number> = {};
    let i = 0;
    const started = now();
    const end = started + a.durationMs;
    await Promise.all(
      Array.from({ length: a.concurrency }, async () => {
        while (now() < end) {
          const n = a.nodes[i++ % a.nodes.length]!;
          const t0 = now();
          const reply = await xmppServer(ctx).request(
            xml(
              'iq',
              { type: 'set', from: 'bench.example', to: a.domain },
              xml(
                'pubsub',
                { xmlns: 'http://jabber.org/protocol/pubsub' },
                xml(
                  'publish',
                  { node: n.node },
                  xml(
                    'item',
                    {},
                    xml(
                      'notification',
                      { xmlns: 'urn:xmpp:push:0' },
                      xml(
                        'x',
                        { xmlns: 'jabber:x:data', type: 'form' },
                        xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'urn:xmpp:push:summary')),
                        xml('field', { var: 'message-count' }, xml('value', {}, '1')),
                      ),
                    ),
                  ),
                ),
                xml(
                  'publish-options',
                  {},
                  xml(
                    'x',
                    { xmlns: 'jabber:x:data', type: 'submit' },
                    xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'http://jabber.org/protocol/pubsub#publish-options')),
                    xml('field', { var: 'secret' }, xml('value', {}, n.secret)),
                  ),
                ),
              ),
            ),
            30_000,
          );
          latencies.push(now() - t0);
          const r = reply.attrs['type'] ?? 'none';
          results[r] = (results[r] ?? 0) + 1;
        }
      }),
    );
    return { elapsedMs: now() - started, latencies, results };
  },
};

/** The XMPP server started by startXmppServer; an operation that needs it before then is the orchestrator's bug. */
function xmppServer(ctx: WorkerContext): import('../test/helpers/xmpp-server.js').FakeComponentServer {
  if (!ctx.xmppServer) throw new Error('startXmppServer was not called');
  return ctx.xmppServer;
}

const context = createWorkerContext();
process.on('message', (m: { id: number; op: string; args: unknown }) => {
  const op = ops[m.op];
  if (!op) return process.send!({ id: m.id, error: `unknown op ${m.op}` });
  op(context, m.args).then(
    (result) => process.send!({ id: m.id, result }),
    (err: Error) => process.send!({ id: m.id, error: err.message }),
  );
});
process.on('SIGTERM', () => process.exit(0));
