// What an XMPP Web Push registration's delivery (src/xmpp/webpush-sender.ts) tells the publishing server for each
// answer of the push service (RFC 8030 §7.3: 2xx delivered, 404/410 gone, 429/5xx wait) and for a push service
// that never answers or refuses the connection; and, for this gateway's own endpoints delivered in process, for
// each error the router raises and for an endpoint restricted to another VAPID key (RFC 8292 §4.2).
import { createECDH } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import webpush from 'web-push';
import type { PushRegistration } from '../../src/store/index.js';
import type { WebPushRouter } from '../../src/webpush/endpoint/router.js';
import { decodeVapidKey, makeEndpoint, vapidKeyHash } from '../../src/webpush/protocol/endpoint-token.js';
import { ApiError, type ErrnoKind } from '../../src/webpush/protocol/errors.js';
import { FernetKey, MultiFernet } from '../../src/webpush/protocol/fernet.js';
import { EndpointGuard } from '../../src/xmpp/endpoint-guard.js';
import { WebPushSender } from '../../src/xmpp/webpush-sender.js';
import { freePort } from '../helpers/gateway.js';

const vapid = { ...webpush.generateVAPIDKeys(), subject: 'mailto:ops@gateway.example' };
const fernet = new MultiFernet([FernetKey.generate()]);
const keys = { p256dh: createECDH('prime256v1').generateKeys().toString('base64url'), auth: Buffer.alloc(16, 3).toString('base64url') };
const reg = (token: string, withKeys = true): PushRegistration => ({
  node: 'n',
  secretHash: null,
  account: 'a@example.org',
  deviceId: 'd',
  kind: 'webpush',
  appId: null,
  token,
  keys: withKeys ? keys : null,
  includeSender: false,
  includeBody: false,
  background: false,
  createdAt: 0,
});

describe('WebPushSender over the network', () => {
  let server: Server;
  let base = '';
  let sender: WebPushSender;
  beforeAll(async () => {
    // /status/NNN answers NNN; /hang never answers.
    server = createServer((req, res) => {
      req.resume();
      const m = /^\/status\/(\d{3})$/.exec(req.url ?? '');
      if (m) req.on('end', () => res.writeHead(Number(m[1])).end());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    sender = new WebPushSender('https://push.gateway.example', fernet, null, vapid, new EndpointGuard('https://push.gateway.example', '127.0.0.1'), 300);
  });
  afterAll(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));

  it.each([
    [201, { ok: true }],
    [404, { ok: false, kind: 'dead' }],
    [410, { ok: false, kind: 'dead' }],
    [429, { ok: false, kind: 'wait', condition: 'resource-constraint' }],
    [502, { ok: false, kind: 'wait', condition: 'resource-constraint' }],
    [400, { ok: false, kind: 'wait', condition: 'internal-server-error' }],
  ])('a push service answering %i', async (status, expected) => {
    expect(await sender.send(reg(`${base}/status/${status}`), '{}')).toEqual(expected);
  });

  it('a push service that never answers: remote-server-timeout', async () => {
    expect(await sender.send(reg(`${base}/hang`), '{}')).toEqual({ ok: false, kind: 'wait', condition: 'remote-server-timeout' });
  });

  it('a push service refusing the connection: internal-server-error (an outage, the server may retry)', async () => {
    expect(await sender.send(reg(`http://127.0.0.1:${await freePort()}/push`), '{}')).toEqual({ ok: false, kind: 'wait', condition: 'internal-server-error' });
  });

  it('a registration without keys, or a scheme that is not http(s), is dead', async () => {
    expect(await sender.send(reg(`${base}/status/201`, false), '{}')).toEqual({ ok: false, kind: 'dead' });
    expect(await sender.send(reg('ftp://127.0.0.1/push'), '{}')).toEqual({ ok: false, kind: 'dead' });
  });
});

describe('WebPushSender to its own endpoints, in process', () => {
  const OWN = 'https://push.gateway.example';
  const UAID = 'a'.repeat(32);
  const CH = '11111111-2222-4333-8444-555555555555';
  const router = (fail: ErrnoKind | Error | null) => {
    const routed: { uaid: string; channelID: string; urgency: string }[] = [];
    const r = {
      route: async (msg: { uaid: string; channelID: string; urgency: string }) => {
        if (fail instanceof Error) throw fail;
        if (fail) throw new ApiError(fail, 'refused');
        routed.push(msg);
        return { messageId: 'm', path: 'stored' as const };
      },
    } as unknown as WebPushRouter;
    return { r, routed };
  };
  const senderWith = (r: WebPushRouter) => new WebPushSender(OWN, fernet, r, vapid, new EndpointGuard(OWN, ''));

  it('routes an unrestricted endpoint, and one restricted to its own VAPID key, without HTTP', async () => {
    const { r, routed } = router(null);
    const own = vapidKeyHash(decodeVapidKey(vapid.publicKey)!);
    expect(await senderWith(r).send(reg(makeEndpoint(OWN, fernet, UAID, CH, null)), '{}')).toEqual({ ok: true });
    expect(await senderWith(r).send(reg(makeEndpoint(OWN, fernet, UAID, CH, own)), '{}')).toEqual({ ok: true });
    expect(routed).toMatchObject([
      { uaid: UAID, channelID: CH, urgency: 'high' },
      { uaid: UAID, channelID: CH, urgency: 'high' },
    ]);
  });

  it('treats an endpoint restricted to another key, or a token that does not decrypt, as dead', async () => {
    const { r, routed } = router(null);
    const other = vapidKeyHash(decodeVapidKey(webpush.generateVAPIDKeys().publicKey)!);
    expect(await senderWith(r).send(reg(makeEndpoint(OWN, fernet, UAID, CH, other)), '{}')).toEqual({ ok: false, kind: 'dead' });
    expect(await senderWith(r).send(reg(`${OWN}/wpush/v1/not-a-token`), '{}')).toEqual({ ok: false, kind: 'dead' });
    expect(routed).toEqual([]);
  });

  it.each([
    ['invalidSubscription', { ok: false, kind: 'dead' }],
    ['invalidUrl', { ok: false, kind: 'dead' }],
    ['rateLimited', { ok: false, kind: 'wait', condition: 'resource-constraint' }],
    ['backOff', { ok: false, kind: 'wait', condition: 'resource-constraint' }],
    ['unknown', { ok: false, kind: 'wait', condition: 'internal-server-error' }],
  ] as const)('maps the router refusing with %s', async (kind, expected) => {
    expect(await senderWith(router(kind).r).send(reg(makeEndpoint(OWN, fernet, UAID, CH, null)), '{}')).toEqual(expected);
  });

  it('maps a storage failure (not an ApiError) to internal-server-error', async () => {
    expect(await senderWith(router(new Error('disk')).r).send(reg(makeEndpoint(OWN, fernet, UAID, CH, null)), '{}')).toEqual({
      ok: false,
      kind: 'wait',
      condition: 'internal-server-error',
    });
  });
});
