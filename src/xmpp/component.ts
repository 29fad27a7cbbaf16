import { Component } from '@xmpp/component-core';
import type { Element } from '@xmpp/xml';
import { type HandlerContext, handleStanza } from './handler.js';

/** The parser class xmpp.js's connection instantiates for each stream (@xmpp/xml's Parser, over ltx). */
interface StreamParser {
  write(data: string): void;
  on(event: string, listener: (...args: unknown[]) => void): void;
  emit(event: string, ...args: unknown[]): boolean;
}
type ParserClass = new () => StreamParser;

/** Raised by the bounded parser; the connection answers it with the `policy-violation` stream error. */
export class StanzaTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`stanza larger than ${limit} bytes`);
    this.name = 'StanzaTooLargeError';
  }
}

/** Bytes handed to the XML parser at a time: how far past the limit a stanza can get before it is refused. */
const SLICE = 4096;

/**
 * A parser that counts the bytes of the stanza being received as they arrive and gives up once they pass the
 * limit, before the stanza is held in memory (issue 9 item 10): ltx keeps an unfinished text node or attribute
 * as one growing string, and xmpp.js builds the whole element tree before any handler could measure it.
 *
 * Data goes to the parser a slice at a time and is counted after each slice. When a stanza ends inside a slice
 * (the parser emits `element`, or `start` for the stream header, while parsing it) the count restarts at zero and
 * the rest of that slice, the next stanza's first bytes, is not counted: where the split falls is not known, and
 * charging them to the stanza just finished could refuse a stanza that was within the limit. So a stanza within the
 * limit is never refused, and one larger than the limit by more than a slice always is; memory stays bounded by the
 * limit plus a slice.
 */
export function boundedParser(Base: ParserClass, limit: number): ParserClass {
  return class BoundedParser extends Base {
    private held = 0;
    private ended = false;
    private overflowed = false;

    constructor() {
      super();
      // Registered before the connection's own listeners, so the count restarts before the stanza is handled.
      this.on('element', () => (this.ended = true));
      this.on('start', () => (this.ended = true));
    }

    override write(data: string): void {
      for (let i = 0; i < data.length && !this.overflowed; i += SLICE) {
        const part = data.slice(i, i + SLICE);
        this.ended = false;
        super.write(part);
        this.held = this.ended ? 0 : this.held + Buffer.byteLength(part);
        if (this.held > limit) {
          this.overflowed = true;
          this.emit('error', new StanzaTooLargeError(limit));
        }
      }
    }
  };
}

/**
 * One XEP-0114 connection to an XMPP server's component port (xmpp.js's component core: stream, handshake,
 * parsing). Stanzas go to our own dispatcher rather than @xmpp/component's middleware, whose IQ callee
 * answers every unregistered IQ itself. The link reconnects forever with capped, jittered exponential backoff
 * (a dropped component link makes ejabberd disable users' registrations, so coming back quickly matters); the
 * rest of the gateway serves on while it is down.
 */
export interface ComponentOptions {
  /** xmpp://host:port of the server's component port. */
  service: string;
  domain: string;
  password: string;
  minDelayMs?: number;
  maxDelayMs?: number;
}

export class PushComponent {
  private readonly entity: Component;
  private attempt = 0;
  private stopping = false;
  private timer: NodeJS.Timeout | null = null;
  online = false;

  constructor(
    private readonly opts: ComponentOptions,
    private readonly ctx: HandlerContext,
  ) {
    this.entity = new Component({ service: opts.service, domain: opts.domain });
    const entity = this.entity as unknown as {
      Parser: ParserClass;
      parser: StreamParser | null;
      _onData(data: Buffer): void;
      _onParserError(err: Error): void;
      _streamError(condition: string): Promise<void>;
      _detachParser(): void;
      emit(event: string, ...args: unknown[]): boolean;
    };
    entity.Parser = boundedParser(entity.Parser, ctx.maxStanzaBytes);
    const onData = entity._onData.bind(entity);
    // Bytes that arrive after the parser was given up (a stream error is being sent) are dropped: xmpp.js
    // would otherwise write them to a null parser and throw from the socket's data event.
    entity._onData = (data: Buffer) => {
      if (entity.parser) onData(data);
    };
    const onParserError = entity._onParserError.bind(entity);
    entity._onParserError = (err: Error) => {
      if (!(err instanceof StanzaTooLargeError)) return onParserError(err);
      // RFC 6120 §4.9.3.14: policy-violation, the stream is closed; the link reconnects by itself.
      ctx.log.warn({ limit: err.limit, service: opts.service }, 'xmpp stanza too large; closing the stream with policy-violation');
      void entity._streamError('policy-violation');
      entity._detachParser();
    };
    this.entity.on('open', (el: Element) => {
      this.entity.authenticate(el.attrs['id'] ?? '', opts.password).catch((err: Error) => {
        ctx.log.warn({ err: err.message, service: opts.service }, 'xmpp component handshake refused');
        void this.entity.disconnect().catch(() => {});
      });
    });
    this.entity.on('error', (err: Error) => ctx.log.warn({ err: err.message, service: opts.service }, 'xmpp component error'));
    this.entity.on('online', () => {
      this.attempt = 0;
      this.online = true;
    });
    this.entity.on('disconnect', () => {
      this.online = false;
      this.schedule();
    });
    this.entity.on('stanza', (stanza: Element) => void this.onStanza(stanza));
  }

  /** Full jitter over an exponential ceiling, capped. */
  nextDelay(): number {
    const min = this.opts.minDelayMs ?? 250;
    const max = this.opts.maxDelayMs ?? 30_000;
    const ceiling = Math.min(max, min * 2 ** this.attempt++);
    return min + Math.random() * (ceiling - min);
  }

  private schedule(): void {
    if (this.stopping || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, this.nextDelay());
  }

  private async connect(): Promise<void> {
    if (this.stopping) return;
    try {
      await this.entity.connect(this.opts.service);
      await this.entity.open({ domain: this.opts.domain });
    } catch {
      // A failed attempt ends in 'disconnect', which schedules the next one.
    }
  }

  private async onStanza(stanza: Element): Promise<void> {
    const reply = await handleStanza(this.ctx, stanza);
    if (reply && this.online) await this.entity.send(reply).catch(() => {});
  }

  /** Starts connecting; returns at once (the connection comes up, and comes back, by itself). */
  start(): void {
    void this.connect();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    await this.entity.stop().catch(() => {});
  }
}
