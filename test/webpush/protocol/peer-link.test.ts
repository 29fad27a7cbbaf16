// Peer ids and link targets of a fleet whose connection nodes run several workers (src/webpush/protocol/peer-link.ts).
import { describe, expect, it } from 'vitest';
import { linkUrl, onOtherNode, parseLinkTarget, workerPeerId } from '../../../src/webpush/protocol/peer-link.js';

describe('peer ids and link targets', () => {
  it("names a worker under its node's origin, and dials its link there", () => {
    expect(workerPeerId('http://10.0.0.5:8081', 3)).toBe('http://10.0.0.5:8081/worker/3');
    expect(linkUrl('http://10.0.0.5:8081/worker/3')).toBe('http://10.0.0.5:8081/worker/3/link');
    expect(linkUrl('http://10.0.0.5:8081')).toBe('http://10.0.0.5:8081/link');
    expect(linkUrl('http://10.0.0.5:8081/')).toBe('http://10.0.0.5:8081/link');
  });

  it('reads the worker a link upgrade names, and nothing else', () => {
    expect(parseLinkTarget('/link')).toEqual({ worker: null });
    expect(parseLinkTarget('/worker/1/link')).toEqual({ worker: 1 });
    expect(parseLinkTarget('/worker/256/link')).toEqual({ worker: 256 });
    for (const bad of [
      undefined,
      '',
      '/',
      '/worker/0/link',
      '/worker/257/link',
      '/worker/007/link',
      '/worker/-1/link',
      '/worker/1/link?x',
      '/worker//link',
      '/w/1/link',
    ]) {
      expect(parseLinkTarget(bad), String(bad)).toBeNull();
    }
  });

  it("tells another node's peer id from this node's own workers'", () => {
    const me = 'http://10.0.0.5:8081';
    const other = 'http://10.0.0.6:8081';
    expect(onOtherNode(null, workerPeerId(me, 1))).toBe(false);
    expect(onOtherNode(workerPeerId(me, 2), workerPeerId(me, 1))).toBe(false);
    expect(onOtherNode(me, workerPeerId(me, 1))).toBe(false);
    expect(onOtherNode(workerPeerId(me, 1), me)).toBe(false);
    expect(onOtherNode(workerPeerId(other, 1), workerPeerId(me, 1))).toBe(true);
    expect(onOtherNode(other, me)).toBe(true);
    // A node that holds no clients (an endpoint node) has no self: every recorded peer is another node.
    expect(onOtherNode(workerPeerId(me, 1), null)).toBe(true);
    // Ports make nodes: the same host on another port is another node.
    expect(onOtherNode('http://10.0.0.5:8082/worker/1', workerPeerId(me, 1))).toBe(true);
  });
});
