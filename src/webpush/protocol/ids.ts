import { randomUUID } from 'node:crypto';

/**
 * Identifiers of the autopush websocket protocol: the uaid (user agent id, 32 lower-case hex digits, a UUID
 * without dashes) and the channelID (a lower-case dashed UUID chosen by the client).
 */

const UAID = /^[0-9a-f]{32}$/;
const CHANNEL_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isUaid(value: unknown): value is string {
  return typeof value === 'string' && UAID.test(value);
}

/**
 * A uaid as a client may spell it: autopush-rs parses it with `Uuid::try_parse`, so the simple, dashed,
 * braced and `urn:uuid:` forms in any case all name the same uaid. Returns the simple lower-case form, or null.
 */
export function normaliseUaid(value: unknown): string | null {
  if (typeof value !== 'string' || value.length > 45) return null;
  let s = value.toLowerCase();
  if (s.startsWith('urn:uuid:')) s = s.slice(9);
  else if (s.startsWith('{') && s.endsWith('}')) s = s.slice(1, -1);
  if (s.length === 36 && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(s)) s = s.replaceAll('-', '');
  return UAID.test(s) ? s : null;
}

/** autopush-rs accepts only the lower-case dashed form of a channelID. */
export function isChannelId(value: unknown): value is string {
  return typeof value === 'string' && CHANNEL_ID.test(value);
}

/**
 * A fresh uaid: a time-ordered UUID (RFC 9562 §5.7, version 7) in simple form. autopush-rs makes version 4 uaids;
 * every peer reads a uaid as 32 opaque hex digits (autopush-rs `Uuid::try_parse` takes any version, Firefox stores
 * the string), so the version is Pushgate's to choose. Why 7:
 * - The store's primary keys are the uaid (users) and uaid ‖ channelID (channels), B-trees in SQLite and MongoDB
 *   alike (RFC 9562 §6.13 on UUIDs as database keys). Random uaids put each new user's two rows on two random leaf
 *   pages, so every register commits two pages the cache may not even hold. Time-ordered ones land on the right
 *   edge of both trees, on pages already in cache and shared by the registers of the same moment. With 300,000
 *   users stored, the bench's CPU per connect+hello+register fell from 216–223 µs to 168–170 µs (README,
 *   "Connect, hello and register per core").
 * - It still carries 74 bits from the CSPRNG (RFC 9562 §6.9: the uaid is what lets a client resume its
 *   registrations, so it must stay unguessable; the version 4 form had 122). What it adds is the creation time to
 *   the millisecond, which only the user agent and this service ever see.
 * The random part is Node's randomUUID (a cached block of CSPRNG output, ≈ 0.5 µs against ≈ 2 µs for one
 * `randomBytes(16)` call): its 12 + 62 random bits after the version nibble and the variant bits it already set.
 */
export function newUaid(now = Date.now()): string {
  const r = randomUUID(); // xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx, V the variant (8, 9, a or b)
  return now.toString(16).padStart(12, '0') + '7' + r.slice(15, 18) + r.slice(19, 23) + r.slice(24);
}

export function uaidToBytes(uaid: string): Buffer {
  return Buffer.from(uaid, 'hex');
}

export function channelIdToBytes(chid: string): Buffer {
  return Buffer.from(chid.replaceAll('-', ''), 'hex');
}

export function bytesToChannelId(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
