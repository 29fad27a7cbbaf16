// Unit tests of bridged payloads (src/webpush/endpoint/bridged.ts): autopush's data shape per provider and the
// errno each bridge outcome becomes for the sender.
import { describe, expect, it } from 'vitest';
import type { Notification } from '../../../src/store/index.js';
import { bridgedMessage, bridgeError } from '../../../src/webpush/endpoint/bridged.js';
import { payload } from '../../helpers/push.js';

const base: Notification = {
  uaid: '0123456789abcdef0123456789abcdef',
  channelID: '01234567-89ab-cdef-0123-456789abcdef',
  seq: 1,
  version: 'msg-1',
  ttl: 30,
  expiry: 0,
  topic: null,
  urgency: 'normal',
  data: null,
  headers: null,
  timestamp: 0,
};

describe('bridgedMessage', () => {
  it('sends only the channel for a push without data', () => {
    expect(bridgedMessage('adm', base, { token: 't' })).toEqual({ token: 't', data: { chid: base.channelID }, ttl: 30, priority: 'normal', collapseKey: null });
  });

  it("carries body and crypto headers in autopush's keys, and high urgency as high priority", () => {
    const n = {
      ...base,
      data: payload('Ym9keQ'),
      urgency: 'high' as const,
      topic: 'news',
      headers: { encoding: 'aesgcm', encryption: 'salt=s', crypto_key: 'dh=d' },
    };
    const m = bridgedMessage('adm', n, { token: 't' });
    expect(m.data).toEqual({ chid: base.channelID, body: 'Ym9keQ', con: 'aesgcm', enc: 'salt=s', cryptokey: 'dh=d' });
    expect(m.priority).toBe('high');
    expect(m.collapseKey).toBe('news');
    expect(bridgedMessage('adm', { ...n, headers: null }, { token: 't' }).data).toEqual({ chid: base.channelID, body: 'Ym9keQ' });
  });

  it("clamps FCM's TTL to autopush's 60 s – 28 days and leaves others as sent", () => {
    expect(bridgedMessage('fcm', { ...base, ttl: 0 }, { token: 't' }).ttl).toBe(60);
    expect(bridgedMessage('fcm', { ...base, ttl: 10 ** 8 }, { token: 't' }).ttl).toBe(28 * 24 * 3600);
    expect(bridgedMessage('adm', { ...base, ttl: 0 }, { token: 't' }).ttl).toBe(0);
  });

  it('makes APNs messages mutable with the version, and a placeholder alert unless aps was registered', () => {
    const m = bridgedMessage('apns', base, { token: 't' });
    expect(m).toMatchObject({ mutableContent: true, alert: { title: ' ', body: ' ' }, data: { chid: base.channelID, ver: 'msg-1' } });
    const aps = { 'content-available': 1 };
    const withAps = bridgedMessage('apns', base, { token: 't', aps });
    expect(withAps.aps).toEqual(aps);
    expect(withAps.alert).toBeUndefined();
  });
});

describe('bridgeError', () => {
  it('maps a dead token to 410/105 so the sender drops the subscription', () => {
    expect(bridgeError({ outcome: 'dead-token', reason: 'x' })).toMatchObject({ status: 410, errno: 105 });
  });
  it('maps provider throttling to 429 and unavailability to 503, never to 404/410', () => {
    expect(bridgeError({ outcome: 'retry-later', reason: 'x', status: 429, retryAfter: null })).toMatchObject({ status: 429, errno: 201, retryAfter: 60 });
    expect(bridgeError({ outcome: 'retry-later', reason: 'x', status: 503, retryAfter: 7 })).toMatchObject({ status: 503, errno: 201, retryAfter: 7 });
    expect(bridgeError({ outcome: 'retry-later', reason: 'x', status: 503, retryAfter: null })).toMatchObject({ status: 503, retryAfter: 120 });
  });
  it('maps our own faults to 502 with errno 900–903', () => {
    for (const errno of [900, 901] as const) expect(bridgeError({ outcome: 'misconfigured', reason: 'x', errno })).toMatchObject({ status: 502, errno });
    expect(bridgeError({ outcome: 'unreachable', reason: 'x' })).toMatchObject({ status: 502, errno: 902 });
    expect(bridgeError({ outcome: 'timeout', reason: 'x' })).toMatchObject({ status: 502, errno: 903 });
  });
  it('maps a refused message to 413 when too large, else 502/900', () => {
    expect(bridgeError({ outcome: 'rejected', reason: 'x', tooLarge: true })).toMatchObject({ status: 413, errno: 104 });
    expect(bridgeError({ outcome: 'rejected', reason: 'x', tooLarge: false })).toMatchObject({ status: 502, errno: 900 });
  });
});
