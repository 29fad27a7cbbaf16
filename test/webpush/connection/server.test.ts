import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CloseCode } from '../../../src/webpush/protocol/websocket.js';
import { GATEWAY_KINDS, type GatewayUnderTest } from '../../helpers/kinds.js';
import { channelId, post } from '../../helpers/push.js';
import { PushClient } from '../../helpers/ws-client.js';

const VAPID_A = 'BEl62iUYgUivxIkv69yViEuiBIa-Ib9-SkvMeAtA3LFgDzkrxZJjSgSnfckjBJuBkr3qBUYIHBQFLXYp5Nksh8U';
const VAPID_B = 'BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4';

// The protocol from outside, against each gateway of GATEWAY_KINDS (one process, two workers, a split fleet): every
// process serves the whole protocol, and the frames a client sees do not depend on which one accepted its socket.
describe.each(GATEWAY_KINDS)('websocket door: the autopush protocol ($name)', (kind) => {
  let gw: GatewayUnderTest;
  beforeAll(async () => {
    gw = await kind.start({ helloTimeout: 1, minPingInterval: 30 });
  });
  afterAll(async () => {
    await gw.close();
  });

  it('echoes the push-notification subprotocol and leaves permessage-deflate off', async () => {
    const c = await PushClient.connect(gw.wsUrl);
    expect(c.ws.protocol).toBe('push-notification');
    expect(c.ws.extensions).toBe('');
    c.close();
  });

  it('gives a fresh lower-case 32-hex uaid to a hello without one, a malformed one or an unknown one', async () => {
    const uaids = new Set<string>();
    for (const requested of [undefined, 'NOT-A-UAID', 'a'.repeat(32)]) {
      const c = await PushClient.connect(gw.wsUrl);
      const uaid = await c.hello(requested);
      expect(uaid).toMatch(/^[0-9a-f]{32}$/);
      expect(uaid).not.toBe(requested);
      uaids.add(uaid);
      c.close();
    }
    expect(uaids.size).toBe(3);
  });

  it('keeps the uaid of a known user agent and answers hello with use_webpush', async () => {
    const c = await PushClient.connect(gw.wsUrl);
    c.send({ messageType: 'hello', use_webpush: true, broadcasts: {} });
    const hello = await c.next();
    expect(hello).toEqual({ messageType: 'hello', uaid: expect.any(String), status: 200, use_webpush: true, broadcasts: {} });
    const uaid = hello['uaid'] as string;
    expect((await c.register(channelId()))['status']).toBe(200);
    c.close();
    await c.closedWith;
    const again = await PushClient.connect(gw.wsUrl);
    expect(await again.hello(uaid)).toBe(uaid);
    again.close();
  });

  it('registers a channel with an endpoint URL on our origin and unregisters it', async () => {
    const c = await PushClient.connect(gw.wsUrl);
    await c.hello();
    const chid = channelId();
    const reg = await c.register(chid);
    expect(reg).toEqual({
      messageType: 'register',
      channelID: chid,
      status: 200,
      pushEndpoint: expect.stringMatching(new RegExp(`^${gw.config.publicUrl}/wpush/v1/[A-Za-z0-9_-]+$`)),
    });
    c.send({ messageType: 'unregister', channelID: chid, code: 200 });
    expect(await c.next()).toEqual({ messageType: 'unregister', channelID: chid, status: 200 });
    const res = await post(reg['pushEndpoint'] as string, { TTL: '60' });
    expect(res.status).toBe(410);
    expect(await res.json()).toMatchObject({ code: 410, errno: 106 });
    c.close();
  });

  it('binds an endpoint to a VAPID key (v2) and answers 409 for the same channelID with another key', async () => {
    const c = await PushClient.connect(gw.wsUrl);
    await c.hello();
    const chid = channelId();
    const reg = await c.register(chid, VAPID_A + '=');
    expect(reg['status']).toBe(200);
    expect(reg['pushEndpoint']).toMatch(/\/wpush\/v2\//);
    expect((await c.register(chid, VAPID_A))['status']).toBe(200);
    expect(await c.register(chid, VAPID_B)).toEqual({ messageType: 'register', channelID: chid, status: 409 });
    expect((await c.register(chid))['status']).toBe(409);
    c.close();
  });

  it('answers register with status 400 for a channelID that is not a lower-case dashed UUID, or a bad key', async () => {
    const c = await PushClient.connect(gw.wsUrl);
    await c.hello();
    const upper = channelId().toUpperCase();
    expect(await c.register(upper)).toEqual({ messageType: 'register', channelID: upper, status: 400 });
    expect(await c.register('not-a-uuid')).toMatchObject({ status: 400 });
    expect(await c.register(channelId(), 'not-a-key')).toMatchObject({ status: 400 });
    c.close();
  });

  it('answers a ping with {} and closes a client that pings again too soon', async () => {
    const c = await PushClient.connect(gw.wsUrl);
    await c.hello();
    c.send({});
    expect(await c.next()).toEqual({});
    c.send({ messageType: 'ping' });
    expect((await c.closedWith).code).toBe(CloseCode.policyViolation);
  });

  // Broadcasts are served now (issue 11): an unknown id is answered under `errors`, as autopush-rs does.
  it("answers broadcast_subscribe for an unknown id with autopush's errors map, and goes on", async () => {
    const c = await PushClient.connect(gw.wsUrl);
    await c.hello();
    c.send({ messageType: 'broadcast_subscribe', broadcasts: { 'remote-settings/monitor_changes': '"0"' } });
    expect(await c.next()).toEqual({ messageType: 'broadcast', broadcasts: { errors: { 'remote-settings/monitor_changes': 'Broadcast not found' } } });
    expect((await c.register(channelId()))['status']).toBe(200);
    c.close();
  });

  it("closes a second connection of the same uaid's predecessor with 1000; the newer one gets the pushes", async () => {
    const first = await PushClient.connect(gw.wsUrl);
    const uaid = await first.hello();
    const chid = channelId();
    const endpoint = (await first.register(chid))['pushEndpoint'] as string;
    const second = await PushClient.connect(gw.wsUrl);
    expect(await second.hello(uaid)).toBe(uaid);
    expect((await first.closedWith).code).toBe(CloseCode.normal);
    expect((await post(endpoint, { TTL: '60' })).status).toBe(201);
    expect(await second.next()).toMatchObject({ messageType: 'notification', channelID: chid });
    second.close();
  });

  it.each([
    [
      'a second hello',
      [
        { messageType: 'hello', use_webpush: true },
        { messageType: 'hello', use_webpush: true },
      ],
      CloseCode.policyViolation,
    ],
    ['a message before hello', [{ messageType: 'register', channelID: '00000000-0000-4000-8000-000000000000' }], CloseCode.policyViolation],
    ['a frame that is not JSON', ['{nope'], CloseCode.invalidPayload],
    ['a JSON array', ['[1,2]'], CloseCode.invalidPayload],
    ['an unknown messageType', [{ messageType: 'hello', use_webpush: true }, { messageType: 'bogus' }], CloseCode.invalidPayload],
    [
      'a malformed ack',
      [
        { messageType: 'hello', use_webpush: true },
        { messageType: 'ack', updates: [{ channelID: 1 }] },
      ],
      CloseCode.invalidPayload,
    ],
  ])('closes on %s with the documented code', async (_name, frames, code) => {
    const c = await PushClient.connect(gw.wsUrl);
    for (const f of frames) c.send(typeof f === 'string' ? f : JSON.stringify(f));
    expect((await c.closedWith).code).toBe(code);
  });

  it('closes a binary frame with 1003 and an oversized frame with 1009', async () => {
    const a = await PushClient.connect(gw.wsUrl);
    a.ws.send(Buffer.from([1, 2, 3]));
    expect((await a.closedWith).code).toBe(CloseCode.unsupportedData);
    const b = await PushClient.connect(gw.wsUrl);
    b.send({ messageType: 'hello', pad: 'x'.repeat(gw.config.maxFrameBytes) });
    expect((await b.closedWith).code).toBe(CloseCode.messageTooBig);
  });

  it('closes a client that never says hello', async () => {
    const c = await PushClient.connect(gw.wsUrl);
    expect((await c.closedWith).code).toBe(CloseCode.policyViolation);
  });

  it('refuses websocket upgrades on other paths', async () => {
    const ws = new WebSocket(gw.wsUrl + 'other', ['push-notification']);
    const status = await new Promise<number>((resolve) => ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    expect(status).toBe(404);
  });

  it('stays up through all of it', async () => {
    const res = await fetch(`${gw.url}/health`);
    expect(res.status).toBe(200);
    const c = await PushClient.connect(gw.wsUrl);
    expect(await c.hello()).toMatch(/^[0-9a-f]{32}$/);
    c.close();
  });
});
