/** The SSRF guard of register-push-webpush (issue 9 item 4): public https only, checked again at send time. */
import { createECDH } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import webpush from 'web-push';
import { EndpointGuard } from '../../src/xmpp/endpoint-guard.js';
import { WebPushSender } from '../../src/xmpp/webpush-sender.js';
import { FernetKey, MultiFernet } from '../../src/webpush/protocol/fernet.js';
import type { PushRegistration } from '../../src/store/index.js';

type Resolver = ConstructorParameters<typeof EndpointGuard>[2];

/** A DNS stand-in whose answers the test sets (and may change between calls, as a rebinding attacker would). */
function fakeDns(answers: Record<string, string[]>): Resolver {
  return ((host: string, _opts: unknown, cb: (err: Error | null, addrs: { address: string; family: number }[]) => void) => {
    const a = answers[host];
    if (!a) return cb(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' }), []);
    cb(
      null,
      a.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    );
  }) as unknown as Resolver;
}

const ORIGIN = 'https://push.gateway.example';

describe('EndpointGuard', () => {
  it("accepts https on public addresses and Pushgate's own origin; refuses everything else alike", async () => {
    const guard = new EndpointGuard(
      ORIGIN,
      '',
      fakeDns({
        'push.example': ['93.184.215.14'],
        'mixed.example': ['93.184.215.14', '10.0.0.5'],
        'v6.example': ['fd00::1'],
        'mapped.example': ['::ffff:127.0.0.1'],
      }),
    );
    expect(await guard.check('https://push.example/wpush/abc')).toMatchObject({ ok: true, own: false });
    expect(await guard.check(`${ORIGIN}/wpush/v2/abc`)).toMatchObject({ ok: true, own: true });
    for (const bad of [
      'http://push.example/x',
      'https://mixed.example/x',
      'https://v6.example/x',
      'https://mapped.example/x',
      'https://nxdomain.example/x',
      'https://user:pw@push.example/x',
      'https://[fe80::1]/x',
      'https://100.64.0.1/x',
      'not a url',
    ]) {
      expect(await guard.check(bad), bad).toEqual({ ok: false });
    }
  });

  it('lets the operator allow internal hosts and CIDRs, which may use http:', async () => {
    const guard = new EndpointGuard(
      ORIGIN,
      'push.internal, 10.20.0.0/16',
      fakeDns({ 'push.internal': ['192.168.1.9'], 'other.internal': ['10.20.3.4'], 'outside.internal': ['10.21.0.1'] }),
    );
    expect(await guard.check('http://push.internal/x')).toMatchObject({ ok: true });
    expect(await guard.check('https://other.internal/x')).toMatchObject({ ok: true });
    expect(await guard.check('https://outside.internal/x')).toEqual({ ok: false });
    expect(await guard.check('http://10.20.9.9/x')).toMatchObject({ ok: true });
  });

  it('checks the address actually connected to: a name that turns private after registration is refused', async () => {
    const answers: Record<string, string[]> = { 'rebind.example': ['93.184.215.14'] };
    const guard = new EndpointGuard(ORIGIN, '', fakeDns(answers));
    expect(await guard.check('https://rebind.example/x')).toMatchObject({ ok: true });
    answers['rebind.example'] = ['127.0.0.1'];
    const err = await new Promise<NodeJS.ErrnoException | null>((r) => guard.lookup('rebind.example', {}, (e) => r(e)));
    expect(err?.code).toBe('EPUSHGATEREFUSED');
  });
});

describe('WebPushSender through the guard', () => {
  let server: Server;
  let port = 0;
  const hits: { auth: string | undefined; encoding: string | undefined; bytes: number }[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      let bytes = 0;
      req.on('data', (d: Buffer) => (bytes += d.length));
      req.on('end', () => {
        hits.push({ auth: req.headers['authorization'], encoding: req.headers['content-encoding'], bytes });
        res.writeHead(201).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const vapid = { ...webpush.generateVAPIDKeys(), subject: 'mailto:ops@gateway.example' };
  const fernet = new MultiFernet([FernetKey.generate()]);
  const keys = { p256dh: createECDH('prime256v1').generateKeys().toString('base64url'), auth: Buffer.alloc(16, 3).toString('base64url') };
  const reg = (token: string): PushRegistration => ({
    node: 'n',
    secretHash: null,
    account: 'a@example.org',
    deviceId: 'd',
    kind: 'webpush',
    appId: null,
    token,
    keys,
    includeSender: false,
    includeBody: false,
    background: false,
    createdAt: 0,
  });

  it('sends to its own origin over the network when it has no local router (a fleet peer), whatever the address', async () => {
    const own = `http://127.0.0.1:${port}`;
    const sender = new WebPushSender(own, fernet, null, vapid, new EndpointGuard(own, '', fakeDns({})));
    const before = hits.length;
    expect(await sender.send(reg(`${own}/wpush/v1/abc`), '{}')).toEqual({ ok: true });
    expect(hits.length).toBe(before + 1);
  });

  it('sends to an allow-listed internal push service, encrypted and VAPID-signed', async () => {
    const sender = new WebPushSender(ORIGIN, fernet, null, vapid, new EndpointGuard(ORIGIN, '127.0.0.1', fakeDns({})));
    expect(await sender.send(reg(`http://127.0.0.1:${port}/push/1`), '{}')).toEqual({ ok: true });
    const last = hits.at(-1)!;
    expect(last.encoding).toBe('aes128gcm');
    expect(last.auth).toMatch(/^vapid t=/);
    expect(last.bytes).toBeGreaterThan(0);
  });
});
