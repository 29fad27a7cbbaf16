import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FernetKey, MultiFernet } from '../../../src/webpush/protocol/fernet.js';
import { makeEndpointToken, parseEndpointToken } from '../../../src/webpush/protocol/endpoint-token.js';
import { makeMessageId, parseMessageId } from '../../../src/webpush/protocol/message-id.js';
import { startGateway } from '../../helpers/gateway.js';
import { channelId, post } from '../../helpers/push.js';
import { PushClient } from '../../helpers/ws-client.js';

/** Python's `cryptography` package: the reference Fernet implementation autopush itself used. */
function python(script: string, ...args: string[]): string {
  return execFileSync('python3', ['-c', script, ...args], { encoding: 'utf8' }).trim();
}

const PY_ENCRYPT = `
import sys, base64
from cryptography.fernet import Fernet
print(Fernet(sys.argv[1].encode()).encrypt(bytes.fromhex(sys.argv[2])).decode().rstrip('='))
`;
const PY_DECRYPT = `
import sys
from cryptography.fernet import Fernet
t = sys.argv[2]
print(Fernet(sys.argv[1].encode()).decrypt((t + '=' * (-len(t) % 4)).encode()).hex())
`;

describe('Fernet endpoint tokens, compatible with autopush', () => {
  it('reads a token made by an independent Fernet implementation (Python cryptography)', () => {
    const key = FernetKey.generate();
    const uaid = 'deadbeef00000000deadbeef00000000';
    const chid = channelId();
    const token = python(PY_ENCRYPT, key, uaid + chid.replaceAll('-', ''));
    expect(parseEndpointToken(new MultiFernet([key]), token, 'v1')).toEqual({ uaid, channelID: chid, keyHash: null });
  });

  it('makes tokens the independent implementation reads', () => {
    const key = FernetKey.generate();
    const uaid = 'ab'.repeat(16);
    const chid = channelId();
    const token = makeEndpointToken(new MultiFernet([key]), uaid, chid, Buffer.alloc(32, 7));
    expect(python(PY_DECRYPT, key, token)).toBe(uaid + chid.replaceAll('-', '') + '07'.repeat(32));
  });

  it('makes consecutive tokens of every padding length that the independent implementation reads, each with its own IV', () => {
    // FernetKey.encrypt chains one long-lived CBC cipher from token to token: each must still decrypt on its own.
    const key = FernetKey.generate();
    const f = new MultiFernet([key]);
    const plaintexts = Array.from({ length: 40 }, (_, i) => Buffer.alloc(i + 1, i + 1));
    const tokens = plaintexts.map((p) => f.encrypt(p).toString('base64url'));
    const script = `
import sys
from cryptography.fernet import Fernet
f = Fernet(sys.argv[1].encode())
for t in sys.argv[2:]:
    print(f.decrypt((t + '=' * (-len(t) % 4)).encode()).hex())
`;
    expect(python(script, key, ...tokens).split('\n')).toEqual(plaintexts.map((p) => p.toString('hex')));
    const ivs = new Set(tokens.map((t) => Buffer.from(t, 'base64url').subarray(9, 25).toString('hex')));
    expect(ivs.size).toBe(tokens.length);
  });

  it('rejects altered tokens and tokens of other keys', () => {
    const f = new MultiFernet([FernetKey.generate()]);
    const token = makeEndpointToken(f, 'ab'.repeat(16), channelId(), null);
    const bytes = Buffer.from(token, 'base64url');
    bytes[30] = bytes[30]! ^ 1;
    expect(parseEndpointToken(f, bytes.toString('base64url'), 'v1')).toBeNull();
    expect(parseEndpointToken(new MultiFernet([FernetKey.generate()]), token, 'v1')).toBeNull();
    expect(parseEndpointToken(f, token, 'v2')).toBeNull();
    expect(parseEndpointToken(f, '', 'v1')).toBeNull();
    expect(parseEndpointToken(f, '!!!', 'v1')).toBeNull();
  });

  it('keeps message ids opaque and authenticated', () => {
    const f = new MultiFernet([FernetKey.generate()]);
    const key = { uaid: 'cd'.repeat(16), channelID: channelId(), seq: 1234567 };
    const id = makeMessageId(f, key);
    expect(id).not.toContain(key.uaid);
    expect(parseMessageId(f, id)).toEqual(key);
    expect(parseMessageId(new MultiFernet([FernetKey.generate()]), id)).toBeNull();
    const topic = { uaid: key.uaid, channelID: key.channelID, topic: 'news' };
    expect(parseMessageId(f, makeMessageId(f, topic))).toEqual(topic);
  });

  it("accepts an autopush deployment's endpoint after moving to Pushgate with its CRYPTO_KEY", async () => {
    const key = FernetKey.generate();
    const gw = await startGateway({ cryptoKey: key });
    try {
      const c = await PushClient.connect(gw.wsUrl);
      const uaid = await c.hello();
      const chid = channelId();
      await c.register(chid);
      // The endpoint autopush would have handed out for this subscription, made by Python.
      const token = python(PY_ENCRYPT, key, uaid + chid.replaceAll('-', ''));
      expect((await post(`${gw.url}/wpush/v1/${token}`, { TTL: '60' })).status).toBe(201);
      expect(await c.next()).toMatchObject({ messageType: 'notification', channelID: chid });
      expect((await post(`${gw.url}/wpush/${token}`, { TTL: '60' })).status).toBe(201);
      c.close();
    } finally {
      await gw.close();
    }
  });

  it('rotates keys: the first key encrypts, every key decrypts', async () => {
    const oldKey = FernetKey.generate();
    const newKey = FernetKey.generate();
    const dir = `sqlite:${mkdtempSync(join(tmpdir(), 'pg-rot-'))}/db`;
    const before = await startGateway({ cryptoKey: oldKey, store: dir });
    const c = await PushClient.connect(before.wsUrl);
    const uaid = await c.hello();
    const oldEndpoint = (await c.register(channelId()))['pushEndpoint'] as string;
    c.close();
    await before.close();

    const rotated = await startGateway({ cryptoKey: `${newKey},${oldKey}`, store: dir, port: before.config.port, publicUrl: before.config.publicUrl });
    try {
      expect((await post(oldEndpoint, { TTL: '60' })).status).toBe(201);
      const c2 = await PushClient.connect(rotated.wsUrl);
      expect(await c2.hello(uaid)).toBe(uaid);
      expect(await c2.next()).toMatchObject({ messageType: 'notification' });
      const newEndpoint = (await c2.register(channelId()))['pushEndpoint'] as string;
      const token = newEndpoint.split('/').pop()!;
      expect(parseEndpointToken(new MultiFernet([newKey]), token, 'v1')).not.toBeNull();
      expect(parseEndpointToken(new MultiFernet([oldKey]), token, 'v1')).toBeNull();
      c2.close();
    } finally {
      await rotated.close();
    }
    const retired = await startGateway({ cryptoKey: newKey, store: dir, port: before.config.port, publicUrl: before.config.publicUrl });
    try {
      const res = await post(oldEndpoint, { TTL: '60' });
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ errno: 102 });
    } finally {
      await retired.close();
    }
  });
});
