import { expect } from 'vitest';
import { WebSocket } from 'ws';

/** A protocol-level test client: a real `ws` socket with an awaitable inbox. */
export class PushClient {
  readonly ws: WebSocket;
  private readonly inbox: Record<string, unknown>[] = [];
  private waiters: (() => void)[] = [];
  readonly opened: Promise<void>;
  readonly closedWith: Promise<{ code: number; reason: string }>;

  constructor(url: string, protocols: string[] = ['push-notification']) {
    this.ws = new WebSocket(url, protocols);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.closedWith = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.ws.on('message', (data) => {
      this.inbox.push(JSON.parse((data as Buffer).toString()) as Record<string, unknown>);
      this.wake();
    });
    this.ws.on('close', () => this.wake());
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static async connect(url: string): Promise<PushClient> {
    const c = new PushClient(url);
    await c.opened;
    return c;
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  /** The next message, waiting for it (rejects when the socket closes first or after the timeout). */
  async next(timeoutMs = 5000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.inbox.shift();
      if (m) return m;
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error('socket closed while waiting for a message');
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error('timed out waiting for a message');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, remaining);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** True when no message is waiting in the inbox right now. */
  get idle(): boolean {
    return this.inbox.length === 0;
  }

  async hello(uaid?: string): Promise<string> {
    this.send({ messageType: 'hello', use_webpush: true, broadcasts: {}, ...(uaid ? { uaid } : {}) });
    const reply = await this.next();
    if (reply['messageType'] !== 'hello' || reply['status'] !== 200) throw new Error(`bad hello reply ${JSON.stringify(reply)}`);
    return reply['uaid'] as string;
  }

  async register(channelID: string, key?: string): Promise<Record<string, unknown>> {
    this.send({ messageType: 'register', channelID, ...(key ? { key } : {}) });
    return this.next();
  }

  ack(channelID: string, version: string, code = 100): void {
    this.send({ messageType: 'ack', updates: [{ channelID, version, code }] });
  }

  /** The next frame, which must be a notification; acked (code 100) before it is returned. */
  async receiveAndAck(): Promise<Record<string, unknown>> {
    const n = await this.next();
    expect(n['messageType']).toBe('notification');
    this.ack(n['channelID'] as string, n['version'] as string);
    return n;
  }

  close(): void {
    this.ws.close();
  }
}
