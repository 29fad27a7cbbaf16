/**
 * Running out of file descriptors (README Operations, "Descriptors"): a gateway started under a low RLIMIT_NOFILE
 * is filled with websockets until new connections are refused. It must say at start how many connections fit,
 * reset the ones beyond (libuv's spare-descriptor accept), keep serving the clients it holds, and take new ones as
 * soon as descriptors are free again. One process and two workers, as an operator runs them.
 */
import { describe, expect, it } from 'vitest';
import { startWorkers } from '../helpers/gateway.js';
import { outputUntil } from '../helpers/node-process.js';
import { channelId, post } from '../helpers/push.js';
import { PushClient } from '../helpers/ws-client.js';

/** Each process's descriptor limit: room for a few hundred websockets after Node, the store and the listeners. */
const LIMIT = 300;
/** Clients opened at once while filling. */
const BATCH = 25;

/** A client that said hello, or null when the gateway reset the connection. */
async function helloOrNull(url: string): Promise<PushClient | null> {
  try {
    const c = await PushClient.connect(url);
    await c.hello();
    return c;
  } catch {
    return null;
  }
}

/** A client that said hello and registered a channel; rejects when the gateway reset the connection. */
async function registered(url: string): Promise<{ client: PushClient; endpoint: string }> {
  const client = await helloOrNull(url);
  if (!client) throw new Error('the gateway reset the connection');
  const endpoint = (await client.register(channelId()))['pushEndpoint'] as string;
  return { client, endpoint };
}

async function pushArrives(client: PushClient, endpoint: string): Promise<void> {
  expect((await post(endpoint, { TTL: '60' })).status).toBe(201);
  const frame = await client.next();
  expect(frame['messageType']).toBe('notification');
  client.send({ messageType: 'ack', updates: [{ channelID: frame['channelID'], version: frame['version'] }] });
}

describe.each([1, 2])('descriptors run out (PUSHGATE_WORKERS=%i)', (workers) => {
  it('says how many connections fit, resets those beyond, keeps its clients and takes new ones once room is free', async () => {
    const { node, ws: url } = await startWorkers('pushgate-fds-', workers, {}, ['prlimit', `--nofile=${LIMIT}:${LIMIT}`, '--']);
    const clients: PushClient[] = [];
    try {
      // Each serving process warns: PUSHGATE_MAX_CONNECTIONS (10,000 by default) cannot be reached.
      const warnings = () =>
        node.output
          .join('')
          .split('\n')
          .filter((l) => l.includes('descriptor limit below PUSHGATE_MAX_CONNECTIONS'))
          .map((l) => JSON.parse(l) as Record<string, unknown>);
      await outputUntil(node, () => warnings().length === workers, 5000);
      for (const w of warnings()) {
        expect(w).toMatchObject({ level: 40, descriptorLimit: LIMIT, maxConnections: 10000 });
        expect(w['connectionsAtMost']).toBeGreaterThan(LIMIT / 2);
      }
      const fit = warnings().reduce((n, w) => n + (w['connectionsAtMost'] as number), 0);

      const first = await registered(url);
      clients.push(first.client);
      // Fill until three batches in a row are refused whole (with workers, a full worker may take a whole batch
      // while its sibling still has room).
      let refused = 0;
      for (let round = 0, wholeInARow = 0; round < (LIMIT * workers) / BATCH + 40 && wholeInARow < 3; round++) {
        const batch = await Promise.all(Array.from({ length: BATCH }, () => helloOrNull(url)));
        const open = batch.filter((c): c is PushClient => c !== null);
        clients.push(...open);
        refused += BATCH - open.length;
        wholeInARow = open.length === 0 ? wholeInARow + 1 : 0;
      }
      expect(refused).toBeGreaterThanOrEqual(3 * BATCH);
      // Refused for want of descriptors: the start-up line's count is what fits (give or take a descriptor the
      // process opens later). With workers a full worker resets connections a sibling could still take (README
      // Operations, "Descriptors"), so the fill can stop short of the sum.
      expect(clients.length).toBeLessThanOrEqual(fit);
      expect(clients.length).toBeGreaterThanOrEqual(workers === 1 ? fit - 2 : Math.floor(fit * 0.75));

      // Nothing ended: no process exited, no worker was restarted.
      expect(node.child.exitCode).toBeNull();
      expect(node.output.join('')).not.toContain('worker exited');

      // Free half the descriptors; the gateway takes new clients again, and the first client still gets its pushes.
      const leaving = clients.splice(1).filter((_, i) => i % 2 === 0);
      for (const c of leaving) c.close();
      await Promise.all(leaving.map((c) => c.closedWith));
      let fresh: { client: PushClient; endpoint: string } | null = null;
      for (let attempt = 0; attempt < 20 && fresh === null; attempt++) {
        fresh = await registered(url).catch(() => null);
      }
      expect(fresh).not.toBeNull();
      clients.push(fresh!.client);
      await pushArrives(first.client, first.endpoint);
      await pushArrives(fresh!.client, fresh!.endpoint);
    } finally {
      for (const c of clients) c.ws.terminate();
      await node.kill('SIGTERM');
    }
  }, 60_000);
});
