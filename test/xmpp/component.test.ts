import { createECDH } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Element } from '@xmpp/xml';
import { NS } from '../../src/xmpp/namespaces.js';
import { hashSecret, p2Hash } from '../../src/xmpp/commands.js';
import { StoreUnavailableError } from '../../src/store/index.js';
import { bridgeWorld, type BridgeWorld } from '../fakes/setup.js';
import { Errors } from '../fakes/providers.js';
import { componentClient, dataForm as form, FakeComponentServer, xml } from '../helpers/xmpp-server.js';

const PUSH = 'push.example.org';
const FCM_TOKEN = 'fcm-xmpp-device-0001';
const APNS_TOKEN = '9a'.repeat(32);
/** A valid Web Push subscription key pair (a P-256 point, 16-byte auth). */
const KEY = createECDH('prime256v1').generateKeys().toString('base64url');
const AUTH = Buffer.alloc(16, 3).toString('base64url');

function errorOf(reply: Element): { type: string; condition: string; app?: string } | null {
  if (reply.attrs['type'] !== 'error') return null;
  const error = reply.getChild('error')!;
  const condition = error.getChildElements().find((c) => c.attrs['xmlns'] === NS.stanzas && c.name !== 'text')!.name;
  const app = error.getChildElements().find((c) => c.attrs['xmlns'] === NS.pubsubErrors || c.attrs['xmlns'] === NS.commands)?.name;
  return { type: error.attrs['type']!, condition, ...(app ? { app } : {}) };
}

describe('the XEP-0357 push component', () => {
  let server: FakeComponentServer;
  let w: BridgeWorld;
  beforeAll(async () => {
    server = new FakeComponentServer(PUSH, 'component-secret');
    await server.listen();
    w = await bridgeWorld({
      xmppService: server.service,
      xmppDomain: PUSH,
      xmppPassword: 'component-secret',
      xmppPublishOptionsDomains: 'mim.example.org',
      xmppRateLimit: 600,
      xmppRateBurst: 50,
      xmppMaxStanza: 8192,
      xmppMaxRegistrations: 30,
    });
    await server.connected();
  });
  afterAll(async () => {
    await w.close();
    await server.close();
  });
  beforeEach(() => w.fakes.reset());

  const iq = (type: 'get' | 'set', from: string, payload: Element | Element[] | null, attrs: Record<string, string> = {}) =>
    server.request(xml('iq', { type, from, to: PUSH, ...attrs }, ...(Array.isArray(payload) ? payload : payload ? [payload] : [])));

  const x = () => componentClient(server);
  const register = (command: string, fields: Record<string, string>, from = 'juliet@example.org/phone') => x().register(command, fields, from);
  const publish = (node: string, options: Record<string, string> | null, summary: Element | null, from = 'example.org') =>
    x().publish(node, options, from, summary);

  const summary = (type: string, fields: Record<string, string>) => form(type, fields, NS.pushSummary);

  describe('service discovery', () => {
    it('is a pubsub/push service with the XEP-0357, pubsub, commands and data-forms features', async () => {
      const reply = await iq('get', 'juliet@example.org/phone', xml('query', { xmlns: NS.discoInfo }));
      const q = reply.getChild('query', NS.discoInfo)!;
      expect(q.getChild('identity')!.attrs).toMatchObject({ category: 'pubsub', type: 'push' });
      const features = q.getChildren('feature').map((f) => f.attrs['var']);
      expect(features).toEqual(expect.arrayContaining([NS.push, NS.pubsub, NS.commands, NS.data]));
    });

    it('lists its commands, and describes each', async () => {
      const reply = await iq('get', 'juliet@example.org/phone', xml('query', { xmlns: NS.discoItems, node: NS.commands }));
      const nodes = reply
        .getChild('query', NS.discoItems)!
        .getChildren('item')
        .map((i) => i.attrs['node']);
      expect(nodes).toEqual([
        'register-push-fcm',
        'register-push-apns',
        'register-push-adm',
        'register-push-webpush',
        'unregister-push',
        'unregister-push-fcm',
        'unregister-push-apns',
        'unregister-push-adm',
        'unregister-push-webpush',
        'v1-register-push',
      ]);
      const info = await iq('get', 'juliet@example.org/phone', xml('query', { xmlns: NS.discoInfo, node: 'register-push-fcm' }));
      expect(info.getChild('query', NS.discoInfo)!.getChild('identity')!.attrs).toMatchObject({ category: 'automation', type: 'command-node' });
      expect(errorOf(await iq('get', 'j@example.org/p', xml('query', { xmlns: NS.discoInfo, node: 'nope' })))).toEqual({
        type: 'cancel',
        condition: 'item-not-found',
      });
    });
  });

  describe('registration by ad-hoc command', () => {
    it('offers a form when executed without one, then registers with the submitted form', async () => {
      const first = await iq('set', 'juliet@example.org/phone', xml('command', { xmlns: NS.commands, node: 'register-push-fcm', action: 'execute' }));
      const cmd = first.getChild('command', NS.commands)!;
      expect(cmd.attrs['status']).toBe('executing');
      const fields = cmd
        .getChild('x', NS.data)!
        .getChildren('field')
        .map((f) => f.attrs['var']);
      expect(fields).toEqual(expect.arrayContaining(['token', 'device-id', 'application', 'include-sender', 'include-body']));
      const done = await iq(
        'set',
        'juliet@example.org/phone',
        xml(
          'command',
          { xmlns: NS.commands, node: 'register-push-fcm', sessionid: cmd.attrs['sessionid']!, action: 'complete' },
          form('submit', { token: FCM_TOKEN, 'device-id': 'phone-a' }),
        ),
      );
      expect(done.getChild('command', NS.commands)!.attrs['status']).toBe('completed');
    });

    it('returns jid, node and secret; the same device keeps both its node and its secret (p2, Conversations)', async () => {
      const a = await register('register-push-fcm', { token: FCM_TOKEN, 'device-id': 'phone-1' });
      expect(a.jid).toBe(PUSH);
      const b = await register('register-push-fcm', { token: 'fcm-xmpp-device-0002', 'device-id': 'phone-1' });
      expect(b).toEqual(a);
      const stored = await w.gw.store.getPushRegistration(a.node);
      expect(stored).toMatchObject({
        account: 'juliet@example.org',
        token: 'fcm-xmpp-device-0002',
        kind: 'fcm',
        appId: 'org.example.app',
        secretHash: hashSecret(a.secret),
      });
      // The secret is stored sealed, never in the clear.
      expect(JSON.stringify(stored)).not.toContain(a.secret);
      // A server still holding the first <enable/> keeps publishing with it.
      expect((await publish(a.node, { secret: a.secret }, null)).attrs['type']).toBe('result');
      const other = await register('register-push-fcm', { token: FCM_TOKEN, 'device-id': 'phone-1' }, 'romeo@example.org/x');
      expect(other.node).not.toBe(a.node);
      expect(other.secret).not.toBe(a.secret);
    });

    it('sends a registration naming no application to the configured default, else the first app of the provider', async () => {
      // Two APNs apps are configured (org.example.app, org.example.app.dev); unmodified clients never name one.
      const reg = await register('register-push-apns', { token: APNS_TOKEN, 'device-id': 'no-app' });
      expect((await w.gw.store.getPushRegistration(reg.node))!.appId).toBe('org.example.app');
    });

    it('registers a group chat separately (p2 muc), and unregisters by device with unregister-push-<service>', async () => {
      const own = await register('register-push-fcm', { token: 'fcm-xmpp-muc-0001', 'android-id': 'droid' });
      const room = await register('register-push-fcm', { token: 'fcm-xmpp-muc-0001', 'android-id': 'droid', muc: 'room@conference.example.org' });
      expect(room.node).not.toBe(own.node);
      await publish(room.node, { secret: room.secret }, null);
      expect(w.fakes.for('fcm', 'fcm-xmpp-muc-0001')[0]!.body['data']).toEqual({
        node: room.node,
        account: p2Hash('juliet@example.org', 'droid'),
        channel: p2Hash('room@conference.example.org', 'droid'),
      });
      const full = await iq(
        'set',
        'juliet@example.org/phone',
        xml(
          'command',
          { xmlns: NS.commands, node: 'register-push-fcm' },
          form('submit', { token: 't', 'device-id': 'd', muc: 'room@conference.example.org/nick' }),
        ),
      );
      expect(errorOf(full)).toMatchObject({ type: 'modify', condition: 'bad-request' });

      const unregister = (node: string, fields: Record<string, string>, from = 'juliet@example.org/phone') =>
        iq('set', from, xml('command', { xmlns: NS.commands, node, action: 'execute' }, form('submit', fields)));
      expect(errorOf(await unregister('unregister-push-fcm', { 'android-id': 'droid' }, 'romeo@example.org/x'))).toMatchObject({
        type: 'cancel',
        condition: 'item-not-found',
      });
      expect(errorOf(await unregister('unregister-push-apns', { 'android-id': 'droid' }))).toMatchObject({ type: 'cancel', condition: 'item-not-found' });
      expect((await unregister('unregister-push-fcm', { 'device-id': 'droid', muc: 'room@conference.example.org' })).attrs['type']).toBe('result');
      expect(await w.gw.store.getPushRegistration(room.node)).toBeNull();
      expect(await w.gw.store.getPushRegistration(own.node)).not.toBeNull();
      expect((await unregister('unregister-push-fcm', { 'android-id': 'droid' })).getChild('command', NS.commands)!.attrs['status']).toBe('completed');
      expect(await w.gw.store.getPushRegistration(own.node)).toBeNull();
    });

    it("serves mod_push_appserver's v1-register-push (Monal): type, node and token; stable on re-registration", async () => {
      const a = await register('v1-register-push', { type: 'apns', node: 'monal-device-uuid', token: APNS_TOKEN });
      const b = await register('v1-register-push', { type: 'apns', node: 'monal-device-uuid', token: APNS_TOKEN });
      expect(b).toEqual(a);
      expect(await w.gw.store.getPushRegistration(a.node)).toMatchObject({ kind: 'apns', deviceId: 'monal-device-uuid', appId: 'org.example.app' });
      const bad = await iq(
        'set',
        'juliet@example.org/phone',
        xml('command', { xmlns: NS.commands, node: 'v1-register-push', action: 'execute' }, form('submit', { type: 'wns', node: 'x', token: 't' })),
      );
      expect(errorOf(bad)).toMatchObject({ type: 'modify', condition: 'bad-request' });
    });

    it.each([
      ['a missing token', 'register-push-fcm', { 'device-id': 'd' }, 'modify', 'bad-request'],
      ['a missing device id', 'register-push-fcm', { token: FCM_TOKEN }, 'modify', 'bad-request'],
      ['an unknown application', 'register-push-fcm', { token: FCM_TOKEN, 'device-id': 'd', application: 'nope' }, 'modify', 'bad-request'],
      ['a malformed APNs token', 'register-push-apns', { token: 'xyz', 'device-id': 'd', application: 'org.example.app' }, 'modify', 'bad-request'],
      ['a bad Web Push endpoint', 'register-push-webpush', { endpoint: 'ftp://x', p256dh: KEY, auth: AUTH }, 'modify', 'not-acceptable'],
      ['bad Web Push keys', 'register-push-webpush', { endpoint: 'https://push.example/x', p256dh: 'short', auth: 'x' }, 'modify', 'bad-request'],
      ['an unknown command', 'register-push-wns', { token: 't' }, 'cancel', 'item-not-found'],
    ])('refuses %s', async (_name, command, fields, type, condition) => {
      const reply = await iq(
        'set',
        'juliet@example.org/phone',
        xml('command', { xmlns: NS.commands, node: command, action: 'execute' }, form('submit', fields)),
      );
      expect(errorOf(reply)).toMatchObject({ type, condition });
    });

    it('takes commands only from user accounts, and cancels on request', async () => {
      const reply = await iq(
        'set',
        'example.org',
        xml('command', { xmlns: NS.commands, node: 'register-push-fcm' }, form('submit', { token: FCM_TOKEN, 'device-id': 'd' })),
      );
      expect(errorOf(reply)).toMatchObject({ type: 'auth', condition: 'forbidden' });
      const cancel = await iq(
        'set',
        'juliet@example.org/phone',
        xml('command', { xmlns: NS.commands, node: 'register-push-fcm', action: 'cancel', sessionid: 's1' }),
      );
      expect(cancel.getChild('command', NS.commands)!.attrs['status']).toBe('canceled');
    });

    it("unregisters only the account's own node", async () => {
      const reg = await register('register-push-adm', { token: 'amzn1.adm-registration.v3.xmpp-1', 'device-id': 'kindle' });
      const foreign = await iq(
        'set',
        'romeo@example.org/x',
        xml('command', { xmlns: NS.commands, node: 'unregister-push' }, form('submit', { node: reg.node })),
      );
      expect(errorOf(foreign)).toMatchObject({ type: 'cancel', condition: 'item-not-found' });
      const own = await iq(
        'set',
        'juliet@example.org/phone',
        xml('command', { xmlns: NS.commands, node: 'unregister-push' }, form('submit', { node: reg.node })),
      );
      expect(own.getChild('command', NS.commands)!.attrs['status']).toBe('completed');
      expect(await w.gw.store.getPushRegistration(reg.node)).toBeNull();
      expect(errorOf(await publish(reg.node, { secret: reg.secret }, null))).toMatchObject({ type: 'cancel', condition: 'item-not-found' });
    });
  });

  describe('publishes from the XMPP server', () => {
    it('delivers an FCM data wake-up without content unless the registration opted in', async () => {
      const reg = await register('register-push-fcm', { token: FCM_TOKEN, 'device-id': 'quiet' });
      const reply = await publish(
        reg.node,
        { secret: reg.secret },
        summary('form', { 'message-count': '1', 'last-message-sender': 'romeo@example.org/balcony', 'last-message-body': 'Wherefore art thou' }),
      );
      expect(reply.attrs['type']).toBe('result');
      const [got] = w.fakes.for('fcm', FCM_TOKEN);
      // p2's account hash; high priority because the publish carries a message body (p2's rule).
      expect(got!.body).toEqual({
        token: FCM_TOKEN,
        data: { node: reg.node, 'message-count': '1', account: p2Hash('juliet@example.org', 'quiet') },
        android: { priority: 'high', ttl: '86400s' },
      });
      expect(p2Hash('juliet@example.org', 'quiet')).toMatch(/^[0-9a-f]{40}$/);

      const loud = await register('register-push-fcm', { token: 'fcm-xmpp-device-loud', 'device-id': 'loud', 'include-sender': '1', 'include-body': 'true' });
      // ejabberd's shape: a submit form, fields in another order, labels, no message-count.
      await publish(loud.node, { secret: loud.secret }, summary('submit', { 'last-message-body': 'Hi', 'last-message-sender': 'romeo@example.org' }));
      expect(w.fakes.for('fcm', 'fcm-xmpp-device-loud')[0]!.body['data']).toEqual({
        node: loud.node,
        'last-message-sender': 'romeo@example.org',
        'last-message-body': 'Hi',
        account: p2Hash('juliet@example.org', 'loud'),
      });
    });

    it('accepts a publish without any summary', async () => {
      const reg = await register('register-push-fcm', { token: FCM_TOKEN, 'device-id': 'bare' });
      const reply = await server.request(
        xml(
          'iq',
          { type: 'set', from: 'example.org', to: PUSH },
          xml(
            'pubsub',
            { xmlns: NS.pubsub },
            xml('publish', { node: reg.node }),
            xml('publish-options', {}, form('submit', { secret: reg.secret }, NS.publishOptions)),
          ),
        ),
      );
      expect(reply.attrs['type']).toBe('result');
      expect(w.fakes.for('fcm', FCM_TOKEN)[0]!.body).toEqual({
        token: FCM_TOKEN,
        data: { node: reg.node, account: p2Hash('juliet@example.org', 'bare') },
        android: { priority: 'normal', ttl: '86400s' },
      });
    });

    it('cuts a body too long for the provider and delivers it (never modify for content)', async () => {
      const reg = await register('register-push-fcm', { token: 'fcm-xmpp-long-0001', 'device-id': 'long-body', 'include-body': '1' });
      const reply = await publish(reg.node, { secret: reg.secret }, summary('form', { 'last-message-body': 'é'.repeat(3000) }));
      expect(reply.attrs['type']).toBe('result');
      const body = (w.fakes.for('fcm', 'fcm-xmpp-long-0001')[0]!.body['data'] as Record<string, string>)['last-message-body']!;
      expect(Buffer.byteLength(body)).toBeLessThanOrEqual(1024);
      expect(body.endsWith('…')).toBe(true);
      expect(body.startsWith('éé')).toBe(true);
    });

    it('sends APNs a neutral alert with mutable-content, or a background push where asked', async () => {
      const reg = await register('register-push-apns', { token: APNS_TOKEN, 'device-id': 'iphone', application: 'org.example.app' });
      await publish(reg.node, { secret: reg.secret }, summary('form', { 'message-count': '2', 'last-message-body': 'secret text' }));
      const [alert] = w.fakes.for('apns', APNS_TOKEN);
      expect(alert!.body).toEqual({
        aps: { alert: { title: 'New message', body: 'You have a new message' }, badge: 2, 'mutable-content': 1 },
        node: reg.node,
        'message-count': '2',
      });
      const bg = await register('register-push-apns', { token: APNS_TOKEN, 'device-id': 'ipad', application: 'org.example.app', 'push-type': 'background' });
      await publish(bg.node, { secret: bg.secret }, summary('form', { 'last-message-body': 'x' }));
      const background = w.fakes.for('apns', APNS_TOKEN)[1]!;
      expect(background.headers).toMatchObject({ 'apns-push-type': 'background', 'apns-priority': '5' });
    });

    it('sends APNs a silent background push for a publish without a message body (receipts, pings)', async () => {
      const reg = await register('register-push-apns', { token: APNS_TOKEN, 'device-id': 'iphone-quiet', application: 'org.example.app' });
      expect((await publish(reg.node, { secret: reg.secret }, summary('form', { 'message-count': '1' }))).attrs['type']).toBe('result');
      expect((await publish(reg.node, { secret: reg.secret }, null)).attrs['type']).toBe('result');
      const sent = w.fakes.for('apns', APNS_TOKEN);
      expect(sent).toHaveLength(2);
      for (const s of sent) {
        expect(s.headers).toMatchObject({ 'apns-push-type': 'background', 'apns-priority': '5' });
        expect(s.body['aps']).toEqual({ 'content-available': 1 });
      }
    });

    it('answers auth/forbidden for a wrong or missing secret', async () => {
      const reg = await register('register-push-fcm', { token: FCM_TOKEN, 'device-id': 'guarded' });
      expect(errorOf(await publish(reg.node, { secret: 'wrong' }, null))).toEqual({ type: 'auth', condition: 'forbidden' });
      expect(errorOf(await publish(reg.node, null, null))).toEqual({ type: 'auth', condition: 'forbidden' });
      expect(w.fakes.for('fcm', FCM_TOKEN)).toHaveLength(0);
    });

    it('answers cancel/item-not-found for an unknown node, and for a dead device, whose registration goes', async () => {
      expect(errorOf(await publish('no-such-node', { secret: 'x' }, null))).toEqual({ type: 'cancel', condition: 'item-not-found' });
      const reg = await register('register-push-fcm', { token: 'fcm-xmpp-dead-0001', 'device-id': 'dead' });
      w.fakes.script('fcm-xmpp-dead-0001', Errors.fcm.unregistered);
      expect(errorOf(await publish(reg.node, { secret: reg.secret }, null))).toEqual({ type: 'cancel', condition: 'item-not-found' });
      expect(await w.gw.store.getPushRegistration(reg.node)).toBeNull();
    });

    it('answers wait for every transient trouble and keeps the registration', async () => {
      const reg = await register('register-push-fcm', { token: 'fcm-xmpp-busy-0001', 'device-id': 'busy' });
      w.fakes.script('fcm-xmpp-busy-0001', Errors.fcm.quotaExceeded(60));
      expect(errorOf(await publish(reg.node, { secret: reg.secret }, null))).toEqual({ type: 'wait', condition: 'resource-constraint' });
      w.fakes.script('fcm-xmpp-busy-0001', Errors.fcm.unavailable, Errors.fcm.unavailable, Errors.fcm.unavailable);
      expect(errorOf(await publish(reg.node, { secret: reg.secret }, null))).toEqual({ type: 'wait', condition: 'resource-constraint' });
      w.fakes.script('fcm-xmpp-busy-0001', Errors.fcm.thirdPartyAuth);
      expect(errorOf(await publish(reg.node, { secret: reg.secret }, null))).toEqual({ type: 'wait', condition: 'internal-server-error' });
      // Storage trouble is transient too.
      const store = w.gw.store;
      const original = store.getPushRegistration.bind(store);
      store.getPushRegistration = async () => {
        throw new StoreUnavailableError('storage down');
      };
      try {
        expect(errorOf(await publish(reg.node, { secret: reg.secret }, null))).toEqual({ type: 'wait', condition: 'internal-server-error' });
        // Any other exception is a bug; still wait, so ejabberd keeps the registration.
        store.getPushRegistration = async () => {
          throw new TypeError('a bug');
        };
        expect(errorOf(await publish(reg.node, { secret: reg.secret }, null))).toEqual({ type: 'wait', condition: 'internal-server-error' });
      } finally {
        store.getPushRegistration = original;
      }
      expect(await w.gw.store.getPushRegistration(reg.node)).not.toBeNull();
    });

    it('accepts and drops publishes beyond the per-node rate (as fpush and mod_push_appserver do)', async () => {
      const reg = await register('register-push-fcm', { token: 'fcm-xmpp-chatty-0001', 'device-id': 'chatty' });
      const replies = [];
      for (let i = 0; i < 55; i++) replies.push(await publish(reg.node, { secret: reg.secret }, null));
      expect(replies.every((r) => r.attrs['type'] === 'result')).toBe(true);
      const sent = w.fakes.for('fcm', 'fcm-xmpp-chatty-0001').length;
      expect(sent).toBeGreaterThanOrEqual(50);
      expect(sent).toBeLessThan(55);
    });
  });

  describe('MongooseIM-style nodes and publish-options', () => {
    it('creates a node for a user of an allowed domain, delivers publish-options pushes, deletes it', async () => {
      const create = await iq(
        'set',
        'alice@mim.example.org/res',
        xml('pubsub', { xmlns: NS.pubsub }, xml('create', { node: 'alice-node-1' }), xml('configure')),
      );
      expect(create.attrs['type']).toBe('result');
      const reply = await publish(
        'alice-node-1',
        {
          service: 'apns',
          device_id: APNS_TOKEN,
          mode: 'dev',
          topic: 'org.example.pushgate.voip',
          click_action: 'OPEN',
          sound: 'ping.caf',
          mutable_content: 'true',
          time_to_live: '120',
        },
        summary('submit', { 'message-count': '4', 'last-message-sender': 'bob@mim.example.org', 'last-message-body': 'hey' }),
        'mim.example.org',
      );
      expect(reply.attrs['type']).toBe('result');
      const [got] = w.fakes.for('apns', APNS_TOKEN);
      expect(got!.auth).toBe('certificate');
      expect(got!.headers['apns-topic']).toBe('org.example.pushgate.voip');
      // MongooseIM: tag = the sender (APNs thread-id); priority defaults to normal (apns-priority 5).
      expect(got!.headers['apns-priority']).toBe('5');
      expect(Number(got!.headers['apns-expiration']) - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(120);
      expect(got!.body['aps']).toEqual({
        alert: { title: 'bob@mim.example.org', body: 'hey' },
        badge: 4,
        category: 'OPEN',
        sound: 'ping.caf',
        'thread-id': 'bob@mim.example.org',
        'mutable-content': 1,
      });
      const silent = await publish('alice-node-1', { service: 'fcm', device_id: FCM_TOKEN, silent: 'true', priority: 'normal' }, null, 'mim.example.org');
      expect(silent.attrs['type']).toBe('result');
      expect(w.fakes.for('fcm', FCM_TOKEN)[0]!.body).toEqual({
        token: FCM_TOKEN,
        data: { node: 'alice-node-1' },
        android: { priority: 'normal', ttl: '86400s' },
      });

      expect(errorOf(await iq('set', 'mallory@mim.example.org/x', xml('pubsub', { xmlns: NS.pubsubOwner }, xml('delete', { node: 'alice-node-1' }))))).toEqual({
        type: 'auth',
        condition: 'forbidden',
      });
      expect(
        (await iq('set', 'alice@mim.example.org/res', xml('pubsub', { xmlns: NS.pubsubOwner }, xml('delete', { node: 'alice-node-1' })))).attrs['type'],
      ).toBe('result');
      expect(errorOf(await publish('alice-node-1', { service: 'fcm', device_id: FCM_TOKEN }, null, 'mim.example.org'))).toEqual({
        type: 'cancel',
        condition: 'item-not-found',
      });
    });

    it("runs the tutorial's node set-up: create type=push, conflict on re-create, affiliations and configure", async () => {
      const owner = 'dave@mim.example.org/res';
      const create = (from: string) =>
        iq('set', from, xml('pubsub', { xmlns: NS.pubsub }, xml('create', { node: 'dave-node', type: 'push' }), xml('configure')));
      expect((await create(owner)).attrs['type']).toBe('result');
      expect(errorOf(await create(owner))).toEqual({ type: 'cancel', condition: 'conflict' });
      expect(errorOf(await create('erin@mim.example.org/res'))).toEqual({ type: 'cancel', condition: 'conflict' });
      const setAff = await iq(
        'set',
        owner,
        xml(
          'pubsub',
          { xmlns: NS.pubsubOwner },
          xml('affiliations', { node: 'dave-node' }, xml('affiliation', { jid: 'mim.example.org', affiliation: 'publish-only' })),
        ),
      );
      expect(setAff.attrs['type']).toBe('result');
      const getAff = await iq('get', owner, xml('pubsub', { xmlns: NS.pubsubOwner }, xml('affiliations', { node: 'dave-node' })));
      const affs = getAff
        .getChild('pubsub', NS.pubsubOwner)!
        .getChild('affiliations')!
        .getChildren('affiliation')
        .map((a) => [a.attrs['jid'], a.attrs['affiliation']]);
      expect(affs).toEqual([
        ['dave@mim.example.org', 'owner'],
        ['mim.example.org', 'publish-only'],
      ]);
      expect(errorOf(await iq('get', 'erin@mim.example.org/x', xml('pubsub', { xmlns: NS.pubsubOwner }, xml('affiliations', { node: 'dave-node' }))))).toEqual({
        type: 'auth',
        condition: 'forbidden',
      });
      expect((await iq('get', owner, xml('pubsub', { xmlns: NS.pubsubOwner }, xml('configure', { node: 'dave-node' })))).attrs['type']).toBe('result');
      expect(
        (await iq('set', owner, xml('pubsub', { xmlns: NS.pubsubOwner }, xml('configure', { node: 'dave-node' }, form('submit', {}))))).attrs['type'],
      ).toBe('result');
    });
  });

  describe('malformed and unexpected stanzas', () => {
    it.each([
      ['an iq without payload', () => iq('set', 'a@example.org/r', null), { type: 'modify', condition: 'bad-request' }],
      [
        'an iq with two payloads',
        () => iq('get', 'a@example.org/r', [xml('query', { xmlns: NS.discoInfo }), xml('query', { xmlns: NS.discoItems })]),
        { type: 'modify', condition: 'bad-request' },
      ],
      ['an unknown namespace', () => iq('get', 'a@example.org/r', xml('vCard', { xmlns: 'vcard-temp' })), { type: 'cancel', condition: 'service-unavailable' }],
      [
        'a pubsub get',
        () => iq('get', 'a@example.org/r', xml('pubsub', { xmlns: NS.pubsub }, xml('items', { node: 'x' }))),
        { type: 'cancel', condition: 'feature-not-implemented' },
      ],
      [
        'a pubsub subscribe',
        () => iq('set', 'a@example.org/r', xml('pubsub', { xmlns: NS.pubsub }, xml('subscribe', { node: 'x', jid: 'a@example.org' }))),
        { type: 'cancel', condition: 'feature-not-implemented', app: 'unsupported' },
      ],
      [
        'a publish without node',
        () => iq('set', 'example.org', xml('pubsub', { xmlns: NS.pubsub }, xml('publish'))),
        { type: 'modify', condition: 'bad-request', app: 'nodeid-required' },
      ],
      ['a disco set', () => iq('set', 'a@example.org/r', xml('query', { xmlns: NS.discoInfo })), { type: 'modify', condition: 'bad-request' }],
    ])('answers %s with the right stanza error', async (_name, send, expected) => {
      expect(errorOf(await send())).toEqual(expected);
    });

    it('answers a message with service-unavailable, ignores errors and results, and stays connected', async () => {
      const reply = await server.request(xml('message', { from: 'a@example.org/r', to: PUSH, type: 'chat' }, xml('body', {}, 'hi')));
      expect(errorOf(reply)).toEqual({ type: 'cancel', condition: 'service-unavailable' });
      server.writeRaw(`<iq type='result' id='r1' from='example.org' to='${PUSH}'/><iq type='error' id='r2' from='example.org' to='${PUSH}'/>`);
      const after = await iq('get', 'a@example.org/r', xml('query', { xmlns: NS.discoInfo }));
      expect(after.attrs['type']).toBe('result');
      expect(server.received.filter((e) => e.attrs['id'] === 'r1' || e.attrs['id'] === 'r2')).toHaveLength(0);
    });
  });

  it('answers an XEP-0199 ping', async () => {
    const reply = await iq('get', 'example.org', xml('ping', { xmlns: NS.ping }));
    expect(reply.attrs['type']).toBe('result');
    expect(reply.getChildElements()).toHaveLength(0);
  });

  it('reconnects by itself when the server drops the link', async () => {
    const before = server.handshakes;
    server.drop();
    await server.connected();
    expect(server.handshakes).toBe(before + 1);
    const reply = await iq('get', 'a@example.org/r', xml('query', { xmlns: NS.discoInfo }));
    expect(reply.attrs['type']).toBe('result');
  });
});
