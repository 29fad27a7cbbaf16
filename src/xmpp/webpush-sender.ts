import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import webpush from 'web-push';
import type { PushRegistration } from '../store/index.js';
import { decodeVapidKey, parseEndpointToken, vapidKeyHash } from '../webpush/protocol/endpoint-token.js';
import { ApiError } from '../webpush/protocol/errors.js';
import type { MultiFernet } from '../webpush/protocol/fernet.js';
import type { WebPushRouter } from '../webpush/endpoint/router.js';
import type { DeliveryOutcome } from './deliver.js';
import type { EndpointGuard } from './endpoint-guard.js';
import { encodePayload } from '../webpush/protocol/payload.js';

/**
 * Web Push delivery for XMPP registrations (which no other XEP-0357 App Server offers): the payload is
 * encrypted per RFC 8291 (aes128gcm) to the subscription's keys and sent with Pushgate's own VAPID key
 * (RFC 8292). An endpoint of this very gateway is delivered in-process, without an HTTP round trip; any other
 * goes through the EndpointGuard's `lookup`, so only an allowed address is ever connected to (issue 9 item 4).
 */
export interface VapidKeys {
  publicKey: string;
  privateKey: string;
  subject: string;
}

const TTL = 24 * 60 * 60;

export class WebPushSender {
  private readonly ownKeyHash: Buffer | null;

  constructor(
    private readonly publicUrl: string,
    private readonly fernet: MultiFernet,
    private readonly router: WebPushRouter | null,
    private readonly vapid: VapidKeys,
    private readonly guard: EndpointGuard,
    private readonly timeoutMs = 10_000,
  ) {
    const raw = decodeVapidKey(vapid.publicKey);
    this.ownKeyHash = raw ? vapidKeyHash(raw) : null;
  }

  async send(reg: PushRegistration, payload: string): Promise<DeliveryOutcome> {
    if (!reg.keys) return { ok: false, kind: 'dead' };
    const details = webpush.generateRequestDetails({ endpoint: reg.token, keys: reg.keys }, payload, {
      TTL,
      urgency: 'high',
      contentEncoding: 'aes128gcm',
      vapidDetails: this.vapid,
    });
    const url = new URL(reg.token);
    if (this.router && url.origin === this.publicUrl) return this.sendInProcess(url.pathname, details.body);
    // Our own origin without a local router (a connection-only peer of a fleet) goes over the network, to an
    // address the operator chose (it may well be internal): not subject to the guard.
    const status = await this.post(url, details.headers, details.body, url.origin !== this.publicUrl);
    if (status === 'refused') return { ok: false, kind: 'dead' };
    if (status === 'timeout') return { ok: false, kind: 'wait', condition: 'remote-server-timeout' };
    if (status === 'failed') return { ok: false, kind: 'wait', condition: 'internal-server-error' };
    if (status >= 200 && status < 300) return { ok: true };
    // RFC 8030 §7.3: 404 and 410 mean the subscription is gone.
    if (status === 404 || status === 410) return { ok: false, kind: 'dead' };
    if (status === 429 || status >= 500) return { ok: false, kind: 'wait', condition: 'resource-constraint' };
    return { ok: false, kind: 'wait', condition: 'internal-server-error' };
  }

  /** One POST; 'refused' when the address is not allowed (then nothing was sent). The reply body is discarded. */
  private post(url: URL, headers: Record<string, string>, body: Buffer, guarded: boolean): Promise<number | 'refused' | 'timeout' | 'failed'> {
    return new Promise((resolve) => {
      const send = url.protocol === 'https:' ? httpsRequest : url.protocol === 'http:' ? httpRequest : null;
      if (!send || (guarded && !this.guard.urlAllowed(url))) return resolve('refused');
      const req = send(
        url,
        {
          method: 'POST',
          headers: { ...headers, 'content-length': String(body.length) },
          ...(guarded ? { lookup: this.guard.lookup } : {}),
          timeout: this.timeoutMs,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', () => resolve('failed'));
        },
      );
      req.on('timeout', () => {
        req.destroy();
        resolve('timeout');
      });
      req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EPUSHGATEREFUSED' ? 'refused' : 'failed'));
      req.end(body);
    });
  }

  private async sendInProcess(path: string, body: Buffer): Promise<DeliveryOutcome> {
    const m = /^\/wpush\/(?:(v1|v2)\/)?([^/]+)$/.exec(path);
    const info = m ? parseEndpointToken(this.fernet, m[2]!, (m[1] ?? 'v1') as 'v1' | 'v2') : null;
    // A restricted endpoint only takes the key it was made for (RFC 8292 §4.2): ours, or it is not ours to use.
    if (!info || (info.keyHash && (!this.ownKeyHash || !info.keyHash.equals(this.ownKeyHash)))) return { ok: false, kind: 'dead' };
    try {
      await this.router!.route({
        uaid: info.uaid,
        channelID: info.channelID,
        ttl: TTL,
        topic: null,
        urgency: 'high',
        data: encodePayload(body),
        headers: { encoding: 'aes128gcm', urgency: 'high' },
      });
      return { ok: true };
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 410)) return { ok: false, kind: 'dead' };
      if (err instanceof ApiError && (err.status === 429 || err.status === 503)) return { ok: false, kind: 'wait', condition: 'resource-constraint' };
      return { ok: false, kind: 'wait', condition: 'internal-server-error' };
    }
  }
}
