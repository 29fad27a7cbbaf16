// The worker's side of handing a fleet's peer link to the worker it names (src/cluster/handoff.ts), without
// processes: the primary is a function that records what it was sent. test/cluster/workers.test.ts runs the real
// thing (a connection node with two workers behind an endpoint node).
import type { Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { WorkerHandoff } from '../../src/cluster/handoff.js';
import type { WorkerToPrimary } from '../../src/cluster/ipc.js';

const socket = () => new PassThrough() as unknown as Socket;

describe('WorkerHandoff', () => {
  it('sends a link for a sibling to the primary with the bytes already read', () => {
    const sent: [WorkerToPrimary, Socket][] = [];
    const handoff = new WorkerHandoff(1, 3, (m, s) => (sent.push([m, s]), true));
    const s = socket();
    expect(handoff.pass(3, s, Buffer.from('early'))).toBe(true);
    expect(sent).toEqual([[{ pg: 1, t: 'link', to: 3, head: Buffer.from('early').toString('base64') }, s]]);
  });

  it('keeps a link for itself, for no worker of this node, or when the primary cannot be reached', () => {
    const sent: WorkerToPrimary[] = [];
    const handoff = new WorkerHandoff(2, 3, (m) => (sent.push(m), true));
    for (const to of [2, 0, 4, 256]) expect(handoff.pass(to, socket(), Buffer.alloc(0)), String(to)).toBe(false);
    expect(sent).toEqual([]);
    expect(new WorkerHandoff(2, 3, () => false).pass(1, socket(), Buffer.alloc(0))).toBe(false);
  });

  it('serves a link handed to it once the peer server is listening, and closes one that arrives before', () => {
    const handoff = new WorkerHandoff(2, 3, () => true);
    const early = socket();
    handoff.received(early, Buffer.alloc(0));
    expect(early.destroyed).toBe(true);
    const served: [Socket, string][] = [];
    handoff.onLink((s, head) => served.push([s, head.toString()]));
    const s = socket();
    handoff.received(s, Buffer.from('frames'));
    expect(served).toEqual([[s, 'frames']]);
  });
});
