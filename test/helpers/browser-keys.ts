import { createECDH, randomBytes, type ECDH } from 'node:crypto';
// http_ece is the reference JavaScript implementation of RFC 8188 / RFC 8291 (the one web-push uses).
import ece from 'http_ece';
import type { Subscription } from './push.js';

/** The user agent's half of RFC 8291: its P-256 key pair and auth secret, and decryption of what arrives. */
export class BrowserKeys {
  readonly ecdh: ECDH = createECDH('prime256v1');
  readonly auth = randomBytes(16);

  constructor() {
    this.ecdh.generateKeys();
  }

  subscription(endpoint: string): Subscription {
    return { endpoint, keys: { p256dh: this.ecdh.getPublicKey().toString('base64url'), auth: this.auth.toString('base64url') } };
  }

  /** Decrypts a websocket notification's data with its headers (aes128gcm or legacy aesgcm). */
  decrypt(notification: Record<string, unknown>): string {
    const data = Buffer.from(notification['data'] as string, 'base64url');
    const headers = notification['headers'] as Record<string, string>;
    if (headers['encoding'] === 'aes128gcm') {
      return ece.decrypt(data, { version: 'aes128gcm', privateKey: this.ecdh, authSecret: this.auth.toString('base64url') }).toString('utf8');
    }
    const param = (header: string, key: string) =>
      header
        .split(/[;,]/)
        .map((p) => p.trim().split('='))
        .find(([k]) => k === key)?.[1];
    return ece
      .decrypt(data, {
        version: 'aesgcm',
        privateKey: this.ecdh,
        dh: param(headers['crypto_key']!, 'dh'),
        salt: param(headers['encryption']!, 'salt'),
        authSecret: this.auth.toString('base64url'),
      })
      .toString('utf8');
  }
}
