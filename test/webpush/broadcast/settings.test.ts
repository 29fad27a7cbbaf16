// The Megaphone broadcast settings' parsers (src/webpush/broadcast/settings.ts): what each accepts, normalises
// and refuses (undefined is "invalid": loadConfig then names the setting and what it expects).
import { describe, expect, it } from 'vitest';
import { broadcastSettings } from '../../../src/webpush/broadcast/settings.js';

describe('broadcast settings', () => {
  it('PUSHGATE_MEGAPHONE_URL: an http(s) URL, empty for none; anything else is refused', () => {
    const parse = broadcastSettings.megaphoneUrl.parse;
    expect(parse(' https://megaphone.example/v1/broadcasts ')).toBe('https://megaphone.example/v1/broadcasts');
    expect(parse('http://10.0.0.1:8080/v1/broadcasts')).toBe('http://10.0.0.1:8080/v1/broadcasts');
    expect(parse('  ')).toBeNull();
    expect(parse('ftp://megaphone.example/')).toBeUndefined();
    expect(parse('not a url')).toBeUndefined();
  });

  it('PUSHGATE_MEGAPHONE_TOKEN: at least 16 characters after trimming, empty for none', () => {
    const parse = broadcastSettings.megaphoneToken.parse;
    expect(parse(' 0123456789abcdef ')).toBe('0123456789abcdef');
    expect(parse('')).toBeNull();
    expect(parse('short-token')).toBeUndefined();
  });
});
