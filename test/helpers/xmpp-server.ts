import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import xml, { type Element } from '@xmpp/xml';
import { expect } from 'vitest';
import { NS } from '../../src/xmpp/namespaces.js';

/**
 * The XMPP server's side of XEP-0114 for tests: accepts a component's stream, checks its handshake
 * (sha1(stream id ‖ secret)), and lets the test send stanzas and await the component's replies.
 */
export class FakeComponentServer {
  private server: Server;
  private socket: Socket | null = null;
  private pending = new Map<string, (el: Element) => void>();
  private connectedWaiters: (() => void)[] = [];
  readonly received: Element[] = [];
  /** Stream error conditions the component sent (RFC 6120 §4.9), in order. */
  readonly streamErrors: string[] = [];
  private streamErrorWaiters: ((condition: string) => void)[] = [];
  handshakes = 0;
  port = 0;

  constructor(
    /** The component's domain: what the server relays to it is addressed there. */
    readonly domain: string,
    private readonly secret: string,
  ) {
    this.server = createServer((socket) => this.accept(socket));
  }

  async listen(port = 0): Promise<number> {
    await new Promise<void>((r) => this.server.listen(port, '127.0.0.1', r));
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
    return this.port;
  }

  get service(): string {
    return `xmpp://127.0.0.1:${this.port}`;
  }

  private accept(socket: Socket): void {
    const id = randomBytes(8).toString('hex');
    // @xmpp/xml is CommonJS: its Parser is a property of the default export (Node's ESM loader, which the bench
    // runs this file under, finds no named export for it; vitest would).
    const parser = new xml.Parser();
    let authed = false;
    parser.on('start', () => {
      socket.write(
        `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='${id}' from='${this.domain}'>`,
      );
    });
    parser.on('element', (el: Element) => {
      if (!authed) {
        const expected = createHash('sha1')
          .update(id + this.secret)
          .digest('hex');
        if (el.name === 'handshake' && el.text() === expected) {
          authed = true;
          this.handshakes++;
          this.socket = socket;
          socket.write('<handshake/>');
          this.probeOnline(socket);
        } else {
          socket.end(`<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`);
        }
        return;
      }
      if (el.name === 'stream:error') {
        const condition = el.getChildElements()[0]?.name ?? '';
        this.streamErrors.push(condition);
        for (const f of this.streamErrorWaiters.splice(0)) f(condition);
        return;
      }
      if (el.attrs['id']?.startsWith('online-probe-')) {
        this.probeAnswered(socket);
        return;
      }
      this.received.push(el);
      const waiter = this.pending.get(el.attrs['id'] ?? '');
      if (waiter) {
        this.pending.delete(el.attrs['id']!);
        waiter(el);
      }
    });
    parser.on('error', () => socket.destroy());
    socket.on('data', (d) => parser.write(d.toString()));
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.online = false;
      if (this.probing) clearInterval(this.probing);
      this.probing = null;
    });
  }

  private probing: NodeJS.Timeout | null = null;
  private online = false;

  /**
   * After the handshake the component needs to read our reply before it answers anything; a request sent at
   * once could arrive in the same read and go unanswered. So `connected()` resolves only once the component
   * has answered a disco#info probe (resent every 50 ms; its replies are not recorded in `received`).
   */
  private probeOnline(socket: Socket): void {
    this.online = false;
    let n = 0;
    const probe = () =>
      socket.write(
        `<iq type='get' id='online-probe-${n++}' from='probe.invalid' to='${this.domain}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
      );
    if (this.probing) clearInterval(this.probing);
    this.probing = setInterval(probe, 50);
    probe();
  }

  private probeAnswered(socket: Socket): void {
    if (this.socket !== socket || this.online) return;
    this.online = true;
    if (this.probing) clearInterval(this.probing);
    this.probing = null;
    const w = this.connectedWaiters;
    this.connectedWaiters = [];
    for (const f of w) f();
  }

  /** Resolves once a component has completed its handshake and answers stanzas (now or later). */
  connected(): Promise<void> {
    if (this.socket && this.online) return Promise.resolve();
    return new Promise((r) => this.connectedWaiters.push(r));
  }

  /** Sends a stanza to the component and resolves with its reply (matched by id). */
  request(stanza: Element, timeoutMs = 10_000): Promise<Element> {
    if (!this.socket) throw new Error('no component connected');
    const id = stanza.attrs['id'] ?? randomBytes(6).toString('hex');
    stanza.attrs['id'] = id;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no reply to ${id}`)), timeoutMs);
      this.pending.set(id, (el) => {
        clearTimeout(t);
        resolve(el);
      });
      this.socket!.write(stanza.toString());
    });
  }

  /** Resolves with the next stream error condition the component sends. */
  nextStreamError(timeoutMs = 10_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no stream error')), timeoutMs);
      this.streamErrorWaiters.push((c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
  }

  /**
   * Streams `head`, then `filler` repeated up to `total` bytes (respecting backpressure), until done or the
   * component closes the connection; returns how many bytes were written.
   */
  async pump(head: string, filler: string, total: number): Promise<number> {
    const socket = this.socket;
    if (!socket) throw new Error('no component connected');
    let closed = false;
    socket.once('close', () => (closed = true));
    let written = 0;
    const write = async (chunk: string) => {
      written += chunk.length;
      if (!socket.write(chunk))
        await new Promise<void>((r) => {
          const done = () => {
            socket.off('drain', done);
            socket.off('close', done);
            r();
          };
          socket.on('drain', done);
          socket.on('close', done);
        });
    };
    await write(head);
    while (!closed && written < total) await write(filler);
    return written;
  }

  /**
   * Sends each request at once (TCP_NODELAY) instead of behind the previous one's ACK, for tests that send
   * many. Only once the component is online: until then a request could reach it in the same read as the
   * handshake reply, before it is ready to answer.
   */
  noDelay(): void {
    this.socket?.setNoDelay(true);
  }

  /** Sends raw text (for malformed input). */
  writeRaw(text: string): void {
    this.socket?.write(text);
  }

  /** Drops the component's connection, as a server restart would. */
  drop(): void {
    this.socket?.destroy();
    this.socket = null;
    this.online = false;
    if (this.probing) clearInterval(this.probing);
    this.probing = null;
  }

  async close(): Promise<void> {
    this.drop();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** The value of a data form's field (XEP-0004), if there is one. */
export const formField = (x: Element | undefined, name: string): string | undefined =>
  x
    ?.getChildren('field')
    .find((f) => f.attrs['var'] === name)
    ?.getChildText('value') ?? undefined;

/** A data form (XEP-0004) of `type` with one value per field, and its FORM_TYPE when given. */
export const dataForm = (type: string, fields: Record<string, string>, formType?: string): Element =>
  xml(
    'x',
    { xmlns: NS.data, type },
    formType ? xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, formType)) : null,
    ...Object.entries(fields).map(([k, v]) => xml('field', { var: k }, xml('value', {}, v))),
  );

/** What an XMPP server relays to the push component, as helpers bound to one fake XEP-0114 server. */
export function componentClient(server: FakeComponentServer) {
  const iq = (type: 'get' | 'set', from: string, payload: Element) => server.request(xml('iq', { type, from, to: server.domain }, payload));
  /** An ad-hoc command (XEP-0050) executed with a submitted form. */
  const command = (node: string, fields: Record<string, string>, from: string) =>
    iq('set', from, xml('command', { xmlns: NS.commands, node, action: 'execute' }, dataForm('submit', fields)));
  /** A registration command that must complete: the push service's JID, the push node and its secret. */
  async function register(node: string, fields: Record<string, string>, from: string) {
    const reply = await command(node, fields, from);
    expect(reply.attrs['type']).toBe('result');
    const cmd = reply.getChild('command', NS.commands)!;
    expect(cmd.attrs['status']).toBe('completed');
    const x = cmd.getChild('x', NS.data);
    return { jid: formField(x, 'jid')!, node: formField(x, 'node')!, secret: formField(x, 'secret')! };
  }
  /** A XEP-0357 publish to `node`, with publish-options and a summary form when given. */
  const publish = (node: string, options: Record<string, string> | null, from: string, summary: Element | null = null) =>
    iq(
      'set',
      from,
      xml(
        'pubsub',
        { xmlns: NS.pubsub },
        xml('publish', { node }, xml('item', {}, xml('notification', { xmlns: NS.push }, summary))),
        options ? xml('publish-options', {}, dataForm('submit', options, NS.publishOptions)) : null,
      ),
    );
  const create = (node: string, from: string) => iq('set', from, xml('pubsub', { xmlns: NS.pubsub }, xml('create', { node, type: 'push' }), xml('configure')));
  return { iq, command, register, publish, create };
}

export { xml };
