import { type Client, xml } from '@xmpp/client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { p2Hash } from '../../src/xmpp/commands.js';
import { bridgeWorld, type BridgeWorld } from '../fakes/setup.js';
import { Errors } from '../fakes/providers.js';
import { startEjabberd, type EjabberdServer } from '../helpers/ejabberd.js';
import { channelId } from '../helpers/push.js';
import { enablePush, loginUser, registerDevice } from '../helpers/xmpp-user.js';

/**
 * Interop with a real ejabberd (mod_push), the strictest of the servers: it disables a registration on the first
 * error of any type but `wait`. A real client registers with Pushgate by ad-hoc command, enables push on ejabberd,
 * goes offline; another user writes; ejabberd publishes from its domain to Pushgate's component.
 */
describe('ejabberd with mod_push publishing to Pushgate', () => {
  let ejabberd: EjabberdServer;
  let w: BridgeWorld;
  let romeo: Client;

  beforeAll(async () => {
    ejabberd = await startEjabberd();
    for (const u of ['juliet', 'romeo', 'nurse', 'tybalt']) ejabberd.register(u, `${u}-pass`);
    w = await bridgeWorld({
      xmppService: `xmpp://127.0.0.1:${ejabberd.componentPort}`,
      xmppDomain: ejabberd.pushDomain,
      xmppPassword: ejabberd.componentSecret,
      xmppRateLimit: 60,
      xmppRateBurst: 2,
    });
    await vi.waitFor(() => expect(w.gw.xmpp[0]!.online).toBe(true), { timeout: 20_000, interval: 50 });
    romeo = await login('romeo', 'romeo-pass');
  }, 120_000);

  afterAll(async () => {
    await romeo?.stop().catch(() => {});
    await w?.close();
    await ejabberd?.stop();
  });

  const login = (user: string, password: string) => loginUser(ejabberd.c2sPort, user, password);

  const register = (c: Client, fields: Record<string, string>) => registerDevice(c, ejabberd.pushDomain, 'register-push-fcm', fields);

  /** Registers, enables push on ejabberd with the result (or with the given secret), goes offline. */
  async function subscribe(user: string, fields: Record<string, string>, secretOverride?: string) {
    const c = await login(user, `${user}-pass`);
    const { jid, node, secret } = await register(c, fields);
    expect(jid).toBe(ejabberd.pushDomain);
    await enablePush(c, jid, node, secretOverride ?? secret);
    await c.stop();
    return { node, secret };
  }

  const write = (to: string, body: string) => romeo.send(xml('message', { to: `${to}@localhost`, type: 'chat', id: channelId() }, xml('body', {}, body)));

  it("pushes an offline message through the fake FCM with p2's account hash", async () => {
    const { node } = await subscribe('juliet', { token: 'fcm-ej-juliet', 'device-id': 'juliet-phone' });
    const pushed = w.fakes.next('fcm', 'fcm-ej-juliet');
    await write('juliet', 'Wherefore art thou Romeo?');
    const got = await pushed;
    expect(got.body).toEqual({
      token: 'fcm-ej-juliet',
      data: { node, account: p2Hash('juliet@localhost', 'juliet-phone') },
      android: { priority: 'high', ttl: '86400s' },
    });
  });

  it('keeps node and secret when the device re-registers, so the enabled server goes on publishing', async () => {
    const first = await subscribe('juliet', { token: 'fcm-ej-juliet', 'device-id': 'juliet-phone' });
    const c = await login('juliet', 'juliet-pass');
    // Conversations re-registers on every bind; this time its <enable/> is lost.
    expect(await register(c, { token: 'fcm-ej-juliet-2', 'device-id': 'juliet-phone' })).toEqual({ jid: ejabberd.pushDomain, ...first });
    await c.stop();
    const pushed = w.fakes.next('fcm', 'fcm-ej-juliet-2');
    await write('juliet', 'after re-registering');
    await pushed;
  });

  it('answers a provider outage with wait: ejabberd keeps the registration and the next message pushes', async () => {
    await subscribe('nurse', { token: 'fcm-ej-nurse', 'device-id': 'nurse-phone' });
    w.fakes.script('fcm-ej-nurse', Errors.fcm.unavailable, Errors.fcm.unavailable, Errors.fcm.unavailable);
    const failed = w.fakes.next('fcm', 'fcm-ej-nurse');
    await write('nurse', 'during the outage');
    await failed;
    await vi.waitFor(() => expect(ejabberd.log()).toMatch(/rejected notification for nurse@localhost.*temporarily/), { timeout: 10_000, interval: 50 });
    const pushed = w.fakes.next('fcm', 'fcm-ej-nurse');
    await write('nurse', 'after the outage');
    expect((await pushed).body['token']).toBe('fcm-ej-nurse');
  });

  it('accepts and drops beyond the rate: ejabberd keeps the registration', async () => {
    await subscribe('nurse', { token: 'fcm-ej-chatty', 'device-id': 'nurse-tablet' });
    for (let i = 0; i < 6; i++) await write('nurse', `chatty ${i}`);
    await vi.waitFor(
      () =>
        expect(w.gw.metrics.notifications.get().then((m) => m.values.find((v) => v.labels['outcome'] === 'rate_limited')?.value ?? 0)).resolves.toBeGreaterThan(
          0,
        ),
      { timeout: 10_000, interval: 100 },
    );
    expect(
      ejabberd
        .log()
        .split('\n')
        .filter((l) => /disabling push/.test(l)),
    ).toEqual([]);
  });

  it('answers a wrong secret with auth: ejabberd disables that registration (its documented reaction)', async () => {
    await subscribe('tybalt', { token: 'fcm-ej-tybalt', 'device-id': 'tybalt-phone' }, 'not-the-secret');
    const before = (await w.gw.metrics.authFailures.get()).values.find((v) => v.labels['reason'] === 'wrong-secret')?.value ?? 0;
    await write('tybalt', 'a push with the wrong secret');
    await vi.waitFor(
      async () => expect((await w.gw.metrics.authFailures.get()).values.find((v) => v.labels['reason'] === 'wrong-secret')?.value ?? 0).toBeGreaterThan(before),
      { timeout: 10_000, interval: 50 },
    );
    expect(w.fakes.for('fcm', 'fcm-ej-tybalt')).toHaveLength(0);
    await vi.waitFor(() => expect(ejabberd.log()).toMatch(/rejected notification for tybalt@localhost.*disabling push/), { timeout: 10_000, interval: 50 });
  });
});
