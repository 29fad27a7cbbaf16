import { type ClientHttp2Session, connect, constants } from 'node:http2';
import { Agent, request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import type { BridgeResult } from './types.js';

/**
 * Small HTTP clients for the bridges: one multiplexed HTTP/2 session per provider origin (reused for every
 * request, reopened when the provider closes it), and a keep-alive HTTP/1.1 request for token endpoints and
 * providers without HTTP/2. Both trust an extra CA when one is configured, so a bridge can point at a staging
 * fake or an egress proxy.
 */

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A transport failure (connection refused, reset, timeout): not an HTTP answer. */
export class TransportError extends Error {
  constructor(
    message: string,
    readonly timeout: boolean,
  ) {
    super(message);
    this.name = 'TransportError';
  }
}

/** A transport failure as a bridge outcome: a timeout (errno 903) or an unreachable provider (errno 902). */
export function transportOutcome(provider: string, err: TransportError): BridgeResult {
  return err.timeout ? { outcome: 'timeout', reason: `${provider}: ${err.message}` } : { outcome: 'unreachable', reason: `${provider}: ${err.message}` };
}

export class Http2Origin {
  private session: ClientHttp2Session | null = null;

  constructor(
    private readonly origin: string,
    private readonly ca: Buffer | null,
    private readonly timeoutMs: number,
  ) {}

  private getSession(): ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const session = connect(this.origin, this.ca ? { ca: this.ca } : {});
    session.on('error', () => {});
    session.on('goaway', () => {
      if (this.session === session) this.session = null;
    });
    session.on('close', () => {
      if (this.session === session) this.session = null;
    });
    // An idle session does not keep the process alive.
    session.unref();
    this.session = session;
    return session;
  }

  request(method: string, path: string, headers: Record<string, string>, body?: Buffer | string): Promise<HttpResponse> {
    return new Promise((resolve, reject) => {
      let stream;
      try {
        stream = this.getSession().request({ [constants.HTTP2_HEADER_METHOD]: method, [constants.HTTP2_HEADER_PATH]: path, ...headers });
      } catch (err) {
        this.session = null;
        return reject(new TransportError((err as Error).message, false));
      }
      const chunks: Buffer[] = [];
      let status = 0;
      let responseHeaders: Record<string, string | string[] | undefined> = {};
      stream.setTimeout(this.timeoutMs, () => {
        stream.close(constants.NGHTTP2_CANCEL);
        reject(new TransportError('request timed out', true));
      });
      stream.on('response', (h) => {
        status = Number(h[constants.HTTP2_HEADER_STATUS]);
        responseHeaders = h;
      });
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => resolve({ status, headers: responseHeaders, body: Buffer.concat(chunks) }));
      stream.on('error', (err: Error) => reject(new TransportError(err.message, false)));
      stream.end(body);
    });
  }

  close(): void {
    this.session?.close();
    this.session = null;
  }
}

/** A keep-alive HTTP/1.1 client for one origin. */
export class Http1Origin {
  private readonly agent: Agent | undefined;
  private readonly url: URL;

  constructor(
    origin: string,
    ca: Buffer | null,
    private readonly timeoutMs: number,
    maxSockets: number,
  ) {
    this.url = new URL(origin);
    this.agent = this.url.protocol === 'https:' ? new Agent({ keepAlive: true, maxSockets, ...(ca ? { ca } : {}) }) : undefined;
  }

  request(method: string, path: string, headers: Record<string, string>, body?: Buffer | string): Promise<HttpResponse> {
    const send = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(
        { host: this.url.hostname, port: this.url.port || undefined, method, path, headers, agent: this.agent, timeout: this.timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', (err) => reject(new TransportError(err.message, false)));
        },
      );
      req.on('timeout', () => {
        req.destroy();
        reject(new TransportError('request timed out', true));
      });
      req.on('error', (err) => reject(new TransportError(err.message, false)));
      req.end(body);
    });
  }

  close(): void {
    this.agent?.destroy();
  }
}

export function jsonBody(res: HttpResponse): Record<string, unknown> {
  try {
    const v = JSON.parse(res.body.toString('utf8')) as unknown;
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
