import { afterAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { NS } from '../../src/xmpp/namespaces.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { FakeComponentServer, xml } from '../helpers/xmpp-server.js';

describe('several XMPP servers, and a server that is down', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('attaches to every configured server and serves HTTP while an XMPP server is away', async () => {
    const a = new FakeComponentServer('push.a.example', 'secret-a');
    const b = new FakeComponentServer('push.b.example', 'secret-b');
    await a.listen();
    // b is not listening yet: the gateway must start and serve regardless, and attach once b comes up.
    const bPort = await (async () => {
      await b.listen();
      const p = b.port;
      await b.close();
      return p;
    })();
    const gw: TestGateway = await startGateway({
      xmppService: `${a.service},xmpp://127.0.0.1:${bPort}`,
      xmppDomain: 'push.a.example,push.b.example',
      xmppPassword: 'secret-a,secret-b',
    });
    cleanup.push(
      () => gw.close(),
      () => a.close(),
    );
    await a.connected();
    expect((await fetch(`${gw.url}/health`)).status).toBe(200);
    const b2 = new FakeComponentServer('push.b.example', 'secret-b');
    await b2.listen(bPort);
    cleanup.push(() => b2.close());
    await b2.connected();
    for (const [server, domain] of [
      [a, 'push.a.example'],
      [b2, 'push.b.example'],
    ] as const) {
      const reply = await server.request(xml('iq', { type: 'get', from: 'u@example.org/r', to: domain }, xml('query', { xmlns: NS.discoInfo })));
      expect(reply.attrs['type']).toBe('result');
      expect(reply.attrs['from']).toBe(domain);
    }
    await vi.waitFor(() => expect(gw.xmpp.every((c) => c.online)).toBe(true));
  });

  it('refuses to start with a PUSHGATE_XMPP_DEFAULT_APPS app the bridges file does not configure', async () => {
    await expect(
      startGateway({ xmppService: 'xmpp://127.0.0.1:9', xmppDomain: 'push.example.org', xmppPassword: 's', xmppDefaultApps: 'fcm:org.example.none' }),
    ).rejects.toThrow(/PUSHGATE_XMPP_DEFAULT_APPS names fcm:org.example.none/);
  });

  it('refuses a configuration whose lists do not line up', () => {
    expect(() =>
      loadConfig({
        env: {},
        file: 'config/pushgate.json',
        overrides: { xmppService: 'xmpp://a:5347,xmpp://b:5347', xmppDomain: 'x,y,z', xmppPassword: 's', dataDir: '/tmp/pg-x' },
      }),
    ).toThrow(/PUSHGATE_XMPP_DOMAIN has 3 values for 2 services/);
    expect(() => loadConfig({ env: { PUSHGATE_XMPP_SERVICE: 'http://a' }, file: 'config/pushgate.json' })).toThrow(/PUSHGATE_XMPP_SERVICE/);
  });
});
