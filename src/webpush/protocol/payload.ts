/**
 * A push message's body as the websocket protocol carries it: the encrypted bytes in url-safe base64 without padding
 * (autopush's `data`, RFC 4648 §5). The type is branded, so a string is one only where it was made by encoding bytes
 * (`encodePayload`), checked (`isBase64Url`, at an edge that receives text), or read back from Pushgate's own storage
 * (`storedPayload`). What that buys: the `notification` frame writes it without JSON's escape scan
 * (connection/messages.ts NotificationFrame), which for a 1 kB body is most of the frame's serialisation.
 */
declare const brand: unique symbol;
export type Base64Url = string & { readonly [brand]: 'base64url' };

/** The alphabet of RFC 4648 §5, unpadded: no character JSON would escape. */
export const BASE64URL_PATTERN = '^[A-Za-z0-9_-]*$';
const BASE64URL = new RegExp(BASE64URL_PATTERN);

export function encodePayload(body: Buffer): Base64Url {
  return body.toString('base64url') as Base64Url;
}

export function isBase64Url(text: string): text is Base64Url {
  return BASE64URL.test(text);
}

/**
 * A body read back from a message row: every row was written from a Notification's `data` (Store.saveMessage), so it
 * is taken as it is rather than checked again on every read.
 */
export function storedPayload(text: string | null): Base64Url | null {
  return text as Base64Url | null;
}
