import { randomUUID } from 'node:crypto';
import type { Notification } from '../../src/store/index.js';
import { type Base64Url, isBase64Url } from '../../src/webpush/protocol/payload.js';
import webpush from 'web-push';

/** What an application server needs to push to a subscription. */
export interface Subscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

export function channelId(): string {
  return randomUUID();
}

/** POSTs with the real `web-push` library's request details (it only sends over https itself). */
export async function sendWebPush(sub: Subscription, payload: string | Buffer | undefined, options: webpush.RequestOptions = {}): Promise<Response> {
  const details = webpush.generateRequestDetails(sub, payload, { TTL: 60, ...options });
  return fetch(details.endpoint, { method: details.method, headers: details.headers as Record<string, string>, body: details.body ?? null });
}

export async function post(url: string, headers: Record<string, string>, body?: Buffer | string): Promise<Response> {
  return fetch(url, { method: 'POST', headers, body: body ?? null });
}

/** A test's message body, checked to be what every Notification carries: base64url (src/webpush/protocol/payload.ts). */
export function payload(text: string): Base64Url {
  if (!isBase64Url(text)) throw new Error(`not base64url: ${text}`);
  return text;
}

/**
 * A stored or routed push message as the router makes it (src/store/types.ts Notification), for tests that hand one
 * straight to a store, a client or a hop: a 60-second TTL, no body, no topic; `over` sets the rest.
 */
export function testNotification(over: Partial<Notification> & Pick<Notification, 'uaid' | 'seq'>): Notification {
  return {
    channelID: 'ch',
    version: `v${over.seq}`,
    ttl: 60,
    expiry: Date.now() + 60_000,
    topic: null,
    urgency: 'normal',
    data: null,
    headers: null,
    timestamp: Date.now(),
    ...over,
  };
}
