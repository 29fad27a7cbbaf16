/** handlePublish without sockets: the rate-limit reply setting and the sender check, on a real SQLite store. */
import xml from '@xmpp/xml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BridgeMessage, Bridges } from '../../src/bridge/index.js';
import { Metrics } from '../../src/ops/metrics.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { hashSecret } from '../../src/xmpp/commands.js';
import { NS, StanzaError } from '../../src/xmpp/namespaces.js';
import { handlePublish, type PubsubContext, serverJid } from '../../src/xmpp/pubsub.js';
import { NodeRateLimiter } from '../../src/xmpp/rate-limit.js';

describe('handlePublish', () => {
  let store: SqliteStore;
  const sent: BridgeMessage[] = [];
  const bridges = {
    get: (type: string, appId: string) =>
      type === 'fcm' && appId === 'app'
        ? {
            type: 'fcm',
            appId: 'app',
            validateToken: () => true,
            send: async (m: BridgeMessage) => (sent.push(m), { outcome: 'delivered' as const }),
            close: async () => {},
          }
        : undefined,
    mongoosepush: {},
  } as unknown as Bridges;
  const ctx = (rateLimitReply: 'drop' | 'wait'): PubsubContext => ({
    store,
    bridges,
    webpush: null,
    limiter: new NodeRateLimiter(60, 1),
    rateLimitReply,
    metrics: new Metrics(),
    log: { warn: () => {}, error: () => {} },
    maxRegistrations: 20,
    publishOptionsDomains: new Set(['mim.example']),
  });
  const publish = (node: string, secret: string) =>
    xml(
      'pubsub',
      { xmlns: NS.pubsub },
      xml('publish', { node }),
      xml('publish-options', {}, xml('x', { xmlns: NS.data, type: 'submit' }, xml('field', { var: 'secret' }, xml('value', {}, secret)))),
    );

  beforeAll(async () => {
    store = new SqliteStore(':memory:');
    await store.savePushRegistration({
      node: 'n1',
      secretHash: hashSecret('s'),
      account: 'a@example.org',
      deviceId: 'd',
      kind: 'fcm',
      appId: 'app',
      token: 't',
      keys: null,
      includeSender: false,
      includeBody: false,
      background: false,
      createdAt: 0,
    });
  });
  afterAll(() => store.close());

  it('answers wait/resource-constraint beyond the rate when PUSHGATE_XMPP_RATE_LIMIT_REPLY=wait', async () => {
    const c = ctx('wait');
    await handlePublish(c, 'example.org', publish('n1', 's'));
    const err = await handlePublish(c, 'example.org', publish('n1', 's')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StanzaError);
    expect(err).toMatchObject({ type: 'wait', condition: 'resource-constraint' });
  });

  it('answers result and drops the push beyond the rate by default (drop)', async () => {
    const c = ctx('drop');
    const before = sent.length;
    await handlePublish(c, 'example.org', publish('n1', 's'));
    const reply = await handlePublish(c, 'example.org', publish('n1', 's'));
    expect(reply.getChild('publish')!.attrs['node']).toBe('n1');
    expect(sent.length - before).toBe(1);
  });

  it('reads a sender as a server only when it is a bare domain JID', () => {
    expect(serverJid('Example.org')).toBe('example.org');
    for (const j of ['a@example.org', 'example.org/r', 'a@example.org/r', undefined, '']) expect(serverJid(j)).toBeNull();
  });
});
