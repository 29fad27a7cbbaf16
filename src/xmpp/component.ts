import { Component } from '@xmpp/component-core';
import type { Element } from '@xmpp/xml';
import { type HandlerContext, handleStanza } from './handler.js';

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
