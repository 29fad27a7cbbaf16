import type { IncomingHttpHeaders } from 'node:http';
import { URGENCIES, type Urgency } from '../../store/index.js';
import { ApiError } from '../protocol/errors.js';

/**
 * The RFC 8030 request headers of a push message, checked and typed. Handlers get a NotificationHeaders
 * or an ApiError with the errno autopush answers for that fault.
 */

/** RFC 8030 §5.2 allows any TTL; autopush caps it at 30 days (the longest it keeps a message). */
export const MAX_TTL = 30 * 24 * 60 * 60;
/** RFC 8030 §5.4: a Topic is at most 32 characters of the URL- and filename-safe base64 alphabet. */
const TOPIC = /^[A-Za-z0-9_-]{1,32}$/;
const B64URL = /^[A-Za-z0-9_-]+=*$/;

export interface NotificationHeaders {
  ttl: number;
  topic: string | null;
  urgency: Urgency;
  /** What the client needs to decrypt (null for a push without a body). */
  cryptoHeaders: Record<string, string> | null;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** `a=b;c=d,e=f` → map, with quotes and base64 padding removed, as autopush passes them to clients. */
export function parseParams(value: string): Map<string, string> | null {
  const out = new Map<string, string>();
  for (const part of value.split(/[;,]/)) {
    const item = part.trim();
    if (!item) continue;
    const eq = item.indexOf('=');
    if (eq <= 0) return null;
    out.set(item.slice(0, eq).trim().toLowerCase(), item.slice(eq + 1).trim().replaceAll('"', ''));
  }
  return out;
}

/** Removes quotes and base64 padding from a crypto header value before handing it to the client. */
function strip(value: string): string {
  return value.replaceAll('"', '').replace(/=+(?=[;,]|$)/g, '');
}

export function parseNotificationHeaders(headers: IncomingHttpHeaders, hasBody: boolean): NotificationHeaders {
  const ttlText = header(headers, 'ttl');
  if (ttlText === undefined || ttlText.trim() === '') throw new ApiError('missingHeader', 'Missing TTL header');
  if (!/^\d+$/.test(ttlText.trim())) throw new ApiError('invalidTtl', 'TTL must be a non-negative integer');
  const ttl = Math.min(Number(ttlText.trim()), MAX_TTL);

  const topicText = header(headers, 'topic');
  let topic: string | null = null;
  if (topicText !== undefined) {
    if (!TOPIC.test(topicText)) throw new ApiError('invalidTopic', 'Topic must be at most 32 characters of the URL-safe base64 alphabet');
    topic = topicText;
  }

  const urgencyText = header(headers, 'urgency');
  let urgency: Urgency = 'normal';
  if (urgencyText !== undefined) {
    const u = urgencyText.trim().toLowerCase();
    if (!(URGENCIES as readonly string[]).includes(u)) throw new ApiError('invalidUrgency', 'Urgency must be very-low, low, normal or high');
    urgency = u as Urgency;
  }

  return { ttl, topic, urgency, cryptoHeaders: hasBody ? cryptoHeaders(headers) : null };
}

/** RFC 8291 (aes128gcm: salt and key travel in the body) and the legacy aesgcm draft (in headers). */
function cryptoHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const encoding = header(headers, 'content-encoding')?.trim().toLowerCase();
  if (!encoding) throw new ApiError('invalidCryptoKeys', 'Missing Content-Encoding header');
  const encryption = header(headers, 'encryption');
  const cryptoKey = header(headers, 'crypto-key');
  if (encoding === 'aes128gcm') {
    // The keying material is in the body; a salt or dh in the headers means a confused sender.
    if (encryption !== undefined && parseParams(encryption)?.has('salt')) {
      throw new ApiError('invalidCryptoKeys', "Do not include 'salt' in the Encryption header with aes128gcm");
    }
    if (cryptoKey !== undefined && parseParams(cryptoKey)?.has('dh')) {
      throw new ApiError('invalidCryptoKeys', "Do not include 'dh' in the Crypto-Key header with aes128gcm");
    }
    return { encoding };
  }
  if (encoding === 'aesgcm') {
    if (header(headers, 'encryption-key') !== undefined) {
      throw new ApiError('invalidCryptoKeys', 'Encryption-Key header is not valid for aesgcm');
    }
    requireParam('Encryption', encryption, 'salt');
    requireParam('Crypto-Key', cryptoKey, 'dh');
    return { encoding, encryption: strip(encryption!), crypto_key: strip(cryptoKey!) };
  }
  throw new ApiError('invalidCryptoKeys', 'Unknown Content-Encoding header');
}

function requireParam(name: string, value: string | undefined, key: string): void {
  if (value === undefined) throw new ApiError('invalidCryptoKeys', `Missing ${name} header`);
  const params = parseParams(value);
  if (!params) throw new ApiError('invalidCryptoKeys', `Invalid ${name} header`);
  const v = params.get(key);
  if (v === undefined) throw new ApiError('invalidCryptoKeys', `Missing ${key} value in ${name} header`);
  if (!B64URL.test(v)) throw new ApiError('invalidCryptoKeys', `Invalid ${key} value in ${name} header`);
}
