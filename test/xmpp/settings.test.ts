// The XMPP push service settings' parsers (src/xmpp/settings.ts): component URLs, domains, secrets, the rate
// limit reply, default apps, VAPID keys and subject (undefined is "invalid": loadConfig names what it expects).
import { describe, expect, it } from 'vitest';
import { xmppSettings as s } from '../../src/xmpp/settings.js';

describe('xmpp settings', () => {
  it('accepts comma-separated xmpp://host:port services and domain names, and refuses anything else', () => {
    expect(s.xmppService.parse('xmpp://a.example:5347, xmpp://127.0.0.1:5348')).toBe('xmpp://a.example:5347, xmpp://127.0.0.1:5348');
    expect(s.xmppService.parse('http://a.example:5347')).toBeUndefined();
    expect(s.xmppService.parse('xmpp://a.example')).toBeUndefined();
    expect(s.xmppDomain.parse('push.a.example,push.b.example')).toBe('push.a.example,push.b.example');
    expect(s.xmppDomain.parse('push a')).toBeUndefined();
    expect(s.xmppPassword.parse('s')).toBe('s');
    expect(s.xmppPassword.parse('')).toBeUndefined();
  });

  it('takes drop or wait for the rate limit reply, and type:appId pairs for default apps', () => {
    expect(s.xmppRateLimitReply.parse('wait')).toBe('wait');
    expect(s.xmppRateLimitReply.parse('reject')).toBeUndefined();
    expect(s.xmppDefaultApps.parse('')).toBe('');
    expect(s.xmppDefaultApps.parse('fcm:app1, apns:com.example.app')).toBe('fcm:app1, apns:com.example.app');
    expect(s.xmppDefaultApps.parse('gcm:app1')).toBeUndefined();
  });

  it("checks the VAPID keys' base64url lengths and the subject's scheme, and derives the subject from the public URL", () => {
    expect(s.vapidPublicKey.parse('B'.repeat(87))).toBe('B'.repeat(87));
    expect(s.vapidPublicKey.parse('B'.repeat(86))).toBeUndefined();
    expect(s.vapidPrivateKey.parse('k'.repeat(43))).toBe('k'.repeat(43));
    expect(s.vapidPrivateKey.parse('k+'.repeat(21) + 'k')).toBeUndefined();
    expect(s.vapidSubject.parse('mailto:ops@example.com')).toBe('mailto:ops@example.com');
    expect(s.vapidSubject.parse('http://example.com')).toBeUndefined();
    expect(s.vapidSubject.default({ publicUrl: 'https://push.example.com:8443' })).toBe('mailto:push@push.example.com');
  });
});
