import { selfSignedCertificate } from './fakes/pki.js';
import { readFileSync } from 'node:fs';
import { connect } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { channelId } from './helpers/push.js';

describe('TLS on the public listener', () => {
  let gw: TestGateway;
  let ca: Buffer;
  beforeAll(async () => {
    const { cert, key } = selfSignedCertificate();
    ca = readFileSync(cert);
    gw = await startGateway({ tlsCert: cert, tlsKey: key });
  });
  afterAll(async () => {
    await gw.close();
  });

  it('serves wss for browsers and HTTP/2 for application servers', async () => {
    const ws = new WebSocket(gw.wsUrl, ['push-notification'], { ca });
    const inbox: Record<string, unknown>[] = [];
    let wake: () => void = () => {};
    ws.on('message', (d) => {
      inbox.push(JSON.parse((d as Buffer).toString()) as Record<string, unknown>);
      wake();
    });
    const next = async () => {
      while (inbox.length === 0) await new Promise<void>((r) => (wake = r));
      return inbox.shift()!;
    };
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ messageType: 'hello', use_webpush: true }));
    expect(await next()).toMatchObject({ messageType: 'hello', status: 200 });
    const chid = channelId();
    ws.send(JSON.stringify({ messageType: 'register', channelID: chid }));
    const endpoint = new URL((await next())['pushEndpoint'] as string);
    expect(endpoint.protocol).toBe('https:');

    const session = connect(gw.url, { ca });
    const status = await new Promise<number>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': endpoint.pathname, ttl: '60' });
      req.on('response', (h) => resolve(Number(h[':status'])));
      req.on('error', reject);
      req.end();
    });
    session.close();
    expect(status).toBe(201);
    expect(await next()).toMatchObject({ messageType: 'notification', channelID: chid });
    ws.close();
  });
});
