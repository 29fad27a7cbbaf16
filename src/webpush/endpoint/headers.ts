import type { IncomingHttpHeaders } from 'node:http';
import { URGENCIES, type Urgency } from '../../store/index.js';
import { ApiError } from '../protocol/errors.js';

/**
 * The RFC 8030 request headers of a push message, checked and typed. Handlers get a NotificationHeaders
 * or an ApiError with the status and errno autopush-rs 1.83 answers for that fault (autoendpoint
 * extractors/notification_headers.rs): a missing or unreadable TTL is 111, a negative one 114 (its
 * validator's code), a bad Topic 113, bad crypto headers 110. The checks run in autopush's order: TTL
 * parse, then the crypto headers (only when there is a body), then TTL range and Topic.
 */

/** RFC 8030 §5.2 allows any TTL; autopush caps it at 30 days (the longest it keeps a message). */
export const MAX_TTL = 30 * 24 * 60 * 60;
/** RFC 8030 §5.4: at most 32 characters of the URL-safe base64 alphabet; autopush also allows trailing `=`. */
const TOPIC = /^[0-9A-Za-z\-_]+=*$/;
const TOPIC_MAX = 32;
const B64URL = /^[0-9A-Za-z\-_]+=*$/;
/**
 * The legacy aesgcm headers travel with the stored message. A salt is 22 characters, a dh key 87, a
 * p256ecdsa key 87: 512 bytes leaves room for keyid and rs while keeping a stored message close to the
 * body limit (autopush has no limit here; its HTTP server's header limit is the only bound).
 */
export const MAX_CRYPTO_HEADER_BYTES = 512;
const I64_MAX = 2n ** 63n - 1n;

export interface NotificationHeaders {
  ttl: number;
  topic: string | null;
  urgency: Urgency;
  /** True when the sender gave an Urgency outside RFC 8030 §5.3's four values (treated as normal). */
  unknownUrgency: boolean;
  /** What the client needs to decrypt (null for a push without a body). */
  cryptoHeaders: Record<string, string> | null;
}

/** A header as autopush reads it (actix `headers().get`): the first value of a repeated header. */
function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * A `Crypto-Key`-style header (draft-ietf-httpbis-encryption-encoding-00 §4): comma-separated sections of
 * `;`-separated `key=value` items. As autopush's CryptoKeyHeader: keys are case-sensitive and trimmed,
 * values lose surrounding spaces and quotes, and an item without `=` makes the whole header invalid.
 */
export function parseCryptoKeyHeader(value: string): Map<string, string> | null {
  const out = new Map<string, string>();
  for (const section of value.split(',')) {
    for (const item of section.split(';')) {
      const eq = item.indexOf('=');
      if (eq < 0) return null;
      const key = item.slice(0, eq).trim();
      // The first item with a key wins, as autopush's get_by_key returns the first section's value.
      if (!out.has(key)) out.set(key, item.slice(eq + 1).replace(/^[ "]+|[ "]+$/g, ''));
    }
  }
  return out;
}

/** Removes quotes and base64 padding before a value is handed to the client, with autopush's exact rule. */
function strip(value: string): string {
  return value.replaceAll('"', '').replace(/([0-9A-Za-z\-_]+)=+([,;]|$)/g, '$1$2');
}

/**
 * TTL as autopush reads it: Rust's `i64::from_str` (an optional sign, then digits), capped at 30 days.
 * Anything unreadable is "Missing TTL value" (errno 111); a negative value is refused after the crypto checks.
 */
function parseTtl(text: string | undefined): number {
  if (text === undefined || !/^[+-]?\d+$/.test(text)) throw new ApiError('missingHeader', 'Missing TTL value');
  const big = BigInt(text);
  if (big > I64_MAX || big < -I64_MAX - 1n) throw new ApiError('missingHeader', 'Missing TTL value');
  return big > BigInt(MAX_TTL) ? MAX_TTL : Number(big);
}

/** RFC 8030 §5.3. autopush ignores Urgency; Pushgate honours it but never refuses a message for it. */
function parseUrgency(text: string | undefined): { urgency: Urgency; unknown: boolean } {
  if (text === undefined) return { urgency: 'normal', unknown: false };
  const u = text.trim().toLowerCase();
  if ((URGENCIES as readonly string[]).includes(u)) return { urgency: u as Urgency, unknown: false };
  return { urgency: 'normal', unknown: true };
}

export function parseNotificationHeaders(headers: IncomingHttpHeaders, hasBody: boolean): NotificationHeaders {
  const ttl = parseTtl(header(headers, 'ttl'));
  const topicText = header(headers, 'topic');
  const crypto = hasBody ? cryptoHeaders(headers) : null;
  if (ttl < 0) throw new ApiError('negativeTtl', 'TTL must be greater than 0');
  if (topicText !== undefined) {
    if (topicText.length > TOPIC_MAX) throw new ApiError('invalidTopic', 'Topic must be no greater than 32 characters');
    if (!TOPIC.test(topicText)) throw new ApiError('invalidTopic', 'Topic must be URL and Filename safe Base64 alphabet');
  }
  const { urgency, unknown } = parseUrgency(header(headers, 'urgency'));
  return { ttl, topic: topicText ?? null, urgency, unknownUrgency: unknown, cryptoHeaders: crypto };
}

/**
 * RFC 8291 (aes128gcm: salt and key travel in the body) and the legacy aesgcm draft (salt in Encryption,
 * dh in Crypto-Key). The encoding is compared exactly, as autopush does. Like autopush, aesgcm without a
 * Crypto-Key is accepted (the dh may be known to the client otherwise) and Encryption-Key is ignored.
 */
function cryptoHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const encoding = header(headers, 'content-encoding');
  if (encoding === undefined) throw new ApiError('invalidCryptoKeys', 'Missing Content-Encoding header');
  const encryption = header(headers, 'encryption');
  const cryptoKey = header(headers, 'crypto-key');
  for (const [name, value] of [
    ['Encryption', encryption],
    ['Crypto-Key', cryptoKey],
  ] as const) {
    if (value !== undefined && Buffer.byteLength(value) > MAX_CRYPTO_HEADER_BYTES) {
      throw new ApiError('invalidCryptoKeys', `${name} header must be at most ${MAX_CRYPTO_HEADER_BYTES} bytes`);
    }
  }
  if (encoding === 'aesgcm') {
    requireItem('Encryption', encryption, 'salt');
    if (cryptoKey !== undefined) requireItem('Crypto-Key', cryptoKey, 'dh');
  } else if (encoding === 'aes128gcm') {
    forbidItem('aes128gcm Encryption', encryption, 'salt');
    forbidItem('aes128gcm Crypto-Key', cryptoKey, 'dh');
  } else {
    throw new ApiError('invalidCryptoKeys', 'Unknown Content-Encoding header');
  }
  // autopush hands the client every one of the three it received, stripped of quotes and padding.
  const out: Record<string, string> = { encoding };
  if (encryption !== undefined) out['encryption'] = strip(encryption);
  if (cryptoKey !== undefined) out['crypto_key'] = strip(cryptoKey);
  return out;
}

function requireItem(name: string, value: string | undefined, key: string): void {
  if (value === undefined) throw new ApiError('invalidCryptoKeys', `Missing ${name} header`);
  const items = parseCryptoKeyHeader(value);
  if (!items) throw new ApiError('invalidCryptoKeys', `Invalid ${name} header`);
  const v = items.get(key);
  if (v === undefined) throw new ApiError('invalidCryptoKeys', `Missing ${key} value in ${name} header`);
  if (!B64URL.test(v)) throw new ApiError('invalidCryptoKeys', `Invalid ${key} value in ${name} header`);
}

function forbidItem(name: string, value: string | undefined, key: string): void {
  if (value === undefined) return;
  const items = parseCryptoKeyHeader(value);
  if (!items) throw new ApiError('invalidCryptoKeys', `Invalid ${name} header`);
  if (items.has(key)) throw new ApiError('invalidCryptoKeys', `Do not include '${key}' header in ${name} header`);
}
