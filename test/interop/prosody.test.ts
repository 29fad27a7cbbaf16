import { type Client, xml } from '@xmpp/client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { p2Hash } from '../../src/xmpp/commands.js';
import { bridgeWorld, type BridgeWorld } from '../fakes/setup.js';
import { Errors } from '../fakes/providers.js';
import { startProsody, type ProsodyServer } from '../helpers/prosody.js';
import { BrowserKeys } from '../helpers/browser-keys.js';
import { PushClient } from '../helpers/ws-client.js';
import { channelId } from '../helpers/push.js';
import { enablePush, loginUser, registerDevice } from '../helpers/xmpp-user.js';

/**
 * Interop with a real Prosody (mod_cloud_notify): a real client registers with Pushgate by ad-hoc command,
 * enables push on Prosody with the returned node and secret, goes offline; another user writes to it;
 * Prosody publishes to Pushgate's component; the fake FCM receives the push for that device.
 */
describe('Prosody with mod_cloud_notify publishing to Pushgate', () => {
  let prosody: ProsodyServer;
  let w: BridgeWorld;
  let romeo: Client;

  beforeAll(async () => {
    prosody = await startProsody();
    prosody.register('juliet', 'juliet-pass');
    prosody.register('romeo', 'romeo-pass');
    prosody.register('nurse', 'nurse-pass');
    prosody.register('tybalt', 'tybalt-pass');
    w = await bridgeWorld({
      xmppService: `xmpp://127.0.0.1:${prosody.componentPort}`,
      xmppDomain: prosody.pushDomain,
      xmppPassword: prosody.componentSecret,
    });
    await vi.waitFor(() => expect(w.gw.xmpp[0]!.online).toBe(true), { timeout: 20_000, interval: 50 });
    romeo = await login('romeo', 'romeo-pass');
  }, 120_000);

  afterAll(async () => {
    await romeo?.stop().catch(() => {});
    await w?.close();
    await prosody?.stop();
  });

  const login = (user: string, password: string) => loginUser(prosody.c2sPort, user, password);

  /** Registers through Pushgate's ad-hoc command, enables push on Prosody with the result, goes offline. */
  async function subscribe(user: string, password: string, command: string, fields: Record<string, string>, secretOverride?: string) {
    const c = await login(user, password);
    const { jid, node, secret } = await registerDevice(c, prosody.pushDomain, command, fields);
    expect(jid).toBe(prosody.pushDomain);
    await enablePush(c, jid, node, secretOverride ?? secret);
    await c.stop();
    return { node, secret };
  }

  const write = (to: string, body: string) => romeo.send(xml('message', { to: `${to}@localhost`, type: 'chat', id: channelId() }, xml('body', {}, body)));

  it('pushes an offline message to the device token through the fake FCM', async () => {
    const { node } = await subscribe('juliet', 'juliet-pass', 'register-push-fcm', { token: 'fcm-juliet-device', 'device-id': 'juliet-phone' });
    const pushed = w.fakes.next('fcm', 'fcm-juliet-device');
    await write('juliet', 'Wherefore art thou Romeo?');
    const got = await pushed;
    // Content stays private: Juliet did not opt in to sender or body.
    // p2's account hash; high priority because the publish carries a body.
    expect(got.body).toEqual({
      token: 'fcm-juliet-device',
      data: { node, 'message-count': '1', account: p2Hash('juliet@localhost', 'juliet-phone') },
      android: { priority: 'high', ttl: '86400s' },
    });
  });

  it('keeps node and secret when the device re-registers: the enabled registration goes on working', async () => {
    const first = await subscribe('juliet', 'juliet-pass', 'register-push-fcm', { token: 'fcm-juliet-device', 'device-id': 'juliet-phone' });
    const again = await subscribe('juliet', 'juliet-pass', 'register-push-fcm', { token: 'fcm-juliet-device', 'device-id': 'juliet-phone' });
    expect(again).toEqual(first);
    const pushed = w.fakes.next('fcm', 'fcm-juliet-device');
    await write('juliet', 'after re-registering');
    await pushed;
  });

  it('answers a wrong secret with auth/forbidden: Prosody counts the error, and Pushgate counts the refusal', async () => {
    const before = (await w.gw.metrics.authFailures.get()).values.find((v) => v.labels['reason'] === 'wrong-secret')?.value ?? 0;
    await subscribe('tybalt', 'tybalt-pass', 'register-push-fcm', { token: 'fcm-tybalt-device', 'device-id': 'tybalt-phone' }, 'not-the-secret');
    await write('tybalt', 'wrong secret');
    await vi.waitFor(
      () => expect(prosody.log()).toMatch(/Got error <auth:forbidden:[^>]*> for identifier '[^']*': error count for this identifier is now at 1/),
      { timeout: 10_000, interval: 50 },
    );
    expect((await w.gw.metrics.authFailures.get()).values.find((v) => v.labels['reason'] === 'wrong-secret')!.value).toBe(before + 1);
    expect(w.fakes.for('fcm', 'fcm-tybalt-device')).toHaveLength(0);
  });

  it('answers a dead token with cancel: Prosody counts the error and the registration is gone', async () => {
    const { node } = await subscribe('nurse', 'nurse-pass', 'register-push-fcm', {
      token: 'fcm-nurse-device',
      'device-id': 'nurse-phone',
      'include-body': '1',
    });
    w.fakes.script('fcm-nurse-device', Errors.fcm.unregistered);
    const pushed = w.fakes.next('fcm', 'fcm-nurse-device');
    await write('nurse', 'Is the nurse there?');
    expect((await pushed).body['data']).toMatchObject({ 'last-message-body': 'Is the nurse there?' });
    await vi.waitFor(() => expect(prosody.log()).toMatch(/Got error <cancel:item-not-found:[^>]*> for identifier/), { timeout: 10_000, interval: 50 });
    expect(await w.gw.store.getPushRegistration(node)).toBeNull();
  });

  it('answers a provider outage with wait: Prosody does not count it and the registration stays', async () => {
    const { node } = await subscribe('juliet', 'juliet-pass', 'register-push-fcm', { token: 'fcm-juliet-device', 'device-id': 'juliet-phone' });
    w.fakes.script('fcm-juliet-device', Errors.fcm.unavailable, Errors.fcm.unavailable, Errors.fcm.unavailable);
    await write('juliet', 'during the outage');
    await vi.waitFor(() => expect(prosody.log()).toMatch(/Got error <wait:resource-constraint:[^>]*> for identifier '[^']*': NOT increasing error count/), {
      timeout: 10_000,
      interval: 50,
    });
    expect(await w.gw.store.getPushRegistration(node)).not.toBeNull();
    // And the next message gets through again.
    const pushed = w.fakes.next('fcm', 'fcm-juliet-device');
    await write('juliet', 'after the outage');
    await pushed;
  });

  it("delivers to a Web Push subscription on Pushgate's own websocket door", async () => {
    const browser = new BrowserKeys();
    const ws = await PushClient.connect(w.gw.wsUrl);
    await ws.hello();
    const reg = await ws.register(channelId(), w.gw.config.vapidPublicKey);
    const sub = browser.subscription(reg['pushEndpoint'] as string);
    await subscribe('juliet', 'juliet-pass', 'register-push-webpush', {
      endpoint: sub.endpoint,
      p256dh: sub.keys.p256dh,
      auth: sub.keys.auth,
      'device-id': 'juliet-browser',
      'include-sender': '1',
    });
    await write('juliet', 'to the browser');
    const n = await ws.next(20_000);
    expect(n['messageType']).toBe('notification');
    const summary = JSON.parse(browser.decrypt(n)) as Record<string, string>;
    expect(summary).toMatchObject({ 'message-count': '1', 'last-message-sender': expect.stringMatching(/^romeo@localhost/) });
    expect(summary['last-message-body']).toBeUndefined();
    ws.close();
  });
});
