import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type PeerFrame, encodeFrame } from '../../src/cluster/frames.js';
import { WORKER_SECRET_BYTES, workerSocketPath } from '../../src/cluster/ipc.js';
import { Mesh } from '../../src/cluster/mesh.js';

/**
 * The workers' direct links over real unix-domain sockets (src/cluster/mesh.ts), with meshes of several "workers"
 * in this one process: frames arrive in order and whole, a sibling that restarts is reconnected, and each close is
 * reported as what it means.
 */
interface Node {
  mesh: Mesh;
  events: string[];
  frames: { from: number; f: PeerFrame }[];
}

/** The primary's secret the test "workers" share (ipc.ts WORKER_SECRET_ENV). */
const secret = randomBytes(WORKER_SECRET_BYTES);
const meshes: Mesh[] = [];
/** Every node's events, shown when a wait fails. */
const allEvents: string[][] = [];
afterEach(() => {
  for (const m of meshes.splice(0)) m.close();
});

function node(dir: string, self: number, count: number): Node {
  const n: Node = { events: [], frames: [], mesh: null as unknown as Mesh };
  n.mesh = new Mesh(
    dir,
    self,
    count,
    {
      frame: (from, f) => n.frames.push({ from, f }),
      up: (to) => n.events.push(`up ${to}`),
      down: (to) => n.events.push(`down ${to}`),
      silent: (from) => n.events.push(`silent ${from}`),
    },
    secret,
  );
  meshes.push(n.mesh);
  allEvents.push(n.events);
  n.mesh.start();
  return n;
}

/** A bounded wait for a condition (the sockets are asynchronous). */
async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met in time: ${JSON.stringify(allEvents)}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('Mesh', () => {
  it('links every pair of workers and carries frames in order, batched per tick', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pg-mesh-'));
    const [a, b, c] = [node(dir, 1, 3), node(dir, 2, 3), node(dir, 3, 3)];
    await until(() => [a, b, c].every((n) => n.events.filter((e) => e.startsWith('up')).length === 2));
    expect([...a.mesh.siblings()].sort()).toEqual([2, 3]);
    const sent: PeerFrame[] = [];
    for (let i = 0; i < 1000; i++) {
      const f: PeerFrame = i % 2 ? { t: 'notify', id: i, uaid: 'u'.repeat(32) } : { t: 'attach', uaid: 'u'.repeat(32), connectedAt: i };
      sent.push(f);
      expect(a.mesh.send(2, f)).toBe(true);
    }
    expect(c.mesh.send(1, { t: 'answer', id: 1, v: 'delivered' })).toBe(true);
    await until(() => b.frames.length === 1000 && a.frames.length === 1);
    expect(b.frames.map((x) => x.f)).toEqual(sent);
    expect(b.frames.every((x) => x.from === 1)).toBe(true);
    expect(a.frames).toEqual([{ from: 3, f: { t: 'answer', id: 1, v: 'delivered' } }]);
    expect(c.frames).toEqual([]);
  });

  it('reports a sibling that goes away (down, silent) and reconnects to its successor', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pg-mesh-'));
    const a = node(dir, 1, 2);
    const b = node(dir, 2, 2);
    await until(() => a.events.includes('up 2') && b.events.includes('up 1'));
    b.mesh.close();
    await until(() => a.events.includes('down 2') && a.events.includes('silent 2'));
    // Nothing can be sent to it meanwhile: the caller uses its safe default.
    expect(a.mesh.send(2, { t: 'notify', id: 1, uaid: 'x' })).toBe(false);
    const b2 = node(dir, 2, 2);
    await until(() => a.events.filter((e) => e === 'up 2').length === 2 && b2.events.includes('up 1'));
    expect(a.mesh.send(2, { t: 'notify', id: 2, uaid: 'y' })).toBe(true);
    await until(() => b2.frames.length === 1);
    expect(b2.frames[0]).toEqual({ from: 1, f: { t: 'notify', id: 2, uaid: 'y' } });
  });

  it('drops a connection that does not open with a valid hello (the secret included), or sends garbage', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pg-mesh-'));
    const a = node(dir, 1, 2);
    const closed = (bytes: Buffer) =>
      new Promise<void>((resolve, reject) => {
        const s = connect(workerSocketPath(dir, 1));
        s.on('connect', () => s.write(bytes));
        s.on('error', () => {});
        s.on('close', () => resolve());
        setTimeout(() => reject(new Error('not closed')), 5000).unref();
      });
    await closed(encodeFrame({ t: 'notify', id: 1, uaid: 'x' }));
    await closed(encodeFrame({ t: 'hello', worker: 1, secret })); // itself
    await closed(encodeFrame({ t: 'hello', worker: 9, secret })); // no such worker
    await closed(encodeFrame({ t: 'hello', worker: 2, secret: randomBytes(WORKER_SECRET_BYTES) })); // a wrong secret
    await closed(encodeFrame({ t: 'hello', worker: 2, secret: secret.subarray(1) })); // a short one
    // The right secret, then one byte altered further on in the stream: garbage after a valid hello.
    await closed(Buffer.concat([encodeFrame({ t: 'hello', worker: 2, secret }), Buffer.from([0xff, 0xff, 0xff, 0xff])]));
    expect(a.frames).toEqual([]);
  });
});
