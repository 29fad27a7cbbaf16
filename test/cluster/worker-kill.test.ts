import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directoryInSync, startWorkers } from '../helpers/gateway.js';
import { childPids, type NodeProcess, workersReplaced } from '../helpers/node-process.js';
import { channelId, post } from '../helpers/push.js';
import { PushClient } from '../helpers/ws-client.js';

/**
 * Durability with PUSHGATE_WORKERS=2 (README "Durability"): a push that lands on the worker that does not hold the
 * client crosses over the workers' mesh to the worker that holds it, which makes it safe (acked or saved) before the 201; the POSTing worker writes
 * nothing. SIGKILL of a worker (no drain: nothing is stored at disconnect) with every message delivered and none
 * acked must lose none: each of its clients gets all of them again, with the same versions, at its next hello.
 */
describe('PUSHGATE_WORKERS=2: SIGKILL of the workers', () => {
  let node: NodeProcess;
  let base: string;
  let ws: string;

  beforeAll(async () => {
    ({ node, base, ws } = await startWorkers('pushgate-worker-kill-'));
  }, 60_000);

  afterAll(async () => {
    await node?.kill('SIGTERM');
  });

  /** A restarted worker may still be starting: connects until one answers, as a browser would. */
  const reconnect = async (): Promise<PushClient> => {
    let c: PushClient | null = null;
    await expect
      .poll(
        async () => {
          c = await PushClient.connect(ws).catch(() => null);
          return c !== null;
        },
        { timeout: 10_000 },
      )
      .toBe(true);
    return c as unknown as PushClient;
  };

  it('every 201 message delivered but not acked reaches its client after its worker dies', async () => {
    const subs = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const client = await PushClient.connect(ws);
        const uaid = await client.hello();
        const chid = channelId();
        const reg = await client.register(chid);
        return { client, uaid, chid, token: (reg['pushEndpoint'] as string).split('/').pop()!, versions: new Set<string>() };
      }),
    );
    // Until the other worker's replica knows a client, a push landing there is stored; a second stored one would then
    // wait for the first one's ack (autopush's flow control), which this test never sends.
    await directoryInSync(base);
    // Three POSTs per client, each on a fresh connection: the workers accept in turn as the kernel hands them out, so
    // pushes land on either worker, through the mesh when the client is held by the other.
    for (const s of subs) {
      for (let i = 0; i < 3; i++) {
        const res = await post(`${base}/wpush/v1/${s.token}`, { TTL: '600', connection: 'close' });
        expect(res.status).toBe(201);
        const n = await s.client.next();
        expect(n).toMatchObject({ messageType: 'notification', channelID: s.chid });
        s.versions.add(n['version'] as string);
      }
    }
    const closed = new Set<string>();
    for (const s of subs) void s.client.closedWith.then(() => closed.add(s.uaid));
    // One worker: its clients' sockets drop with it (the other worker's clients stay, their sessions intact). The kernel
    // may have handed every connection to one worker, so the victim is the one with more open descriptors: it holds
    // at least half of the six clients.
    const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
    const victim = childPids(node).sort((a, b) => fds(b) - fds(a))[0]!;
    process.kill(victim, 'SIGKILL');
    await workersReplaced(node, [victim], 2, 15_000);
    await expect.poll(() => closed.size, { timeout: 5000 }).toBeGreaterThan(0);
    for (const s of subs) s.client.close();
    for (const s of subs) {
      const again = await reconnect();
      expect(await again.hello(s.uaid)).toBe(s.uaid);
      const got = new Set<string>();
      for (let i = 0; i < 3; i++) got.add((await again.receiveAndAck())['version'] as string);
      expect(got).toEqual(s.versions);
      again.close();
    }
  }, 60_000);

  it('restarts both workers when both die at once (the primary stays up to do it)', async () => {
    const before = childPids(node);
    expect(before).toHaveLength(2);
    for (const pid of before) process.kill(pid, 'SIGKILL');
    await workersReplaced(node, before, 2, 15_000);
    expect(node.child.exitCode).toBeNull();
    // Serving again: a client gets through hello on one of the new workers.
    const again = await reconnect();
    expect(await again.hello()).toMatch(/^[0-9a-f]{32}$/);
    again.close();
  }, 60_000);
});
