import { component, type Component } from '@xmpp/component';
import type { Element } from '@xmpp/xml';
import { type HandlerContext, handleStanza } from './handler.js';

/**
 * One XEP-0114 connection to an XMPP server's component port. It reconnects forever with capped, jittered
 * exponential backoff (a dropped component link makes ejabberd disable users' registrations, so coming back
 * quickly matters); the rest of the gateway serves on while it is down.
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
  private readonly xmpp: Component;
  private attempt = 0;
  private stopping = false;
  online = false;

  constructor(
    private readonly opts: ComponentOptions,
    private readonly ctx: HandlerContext,
  ) {
    this.xmpp = component({ service: opts.service, domain: opts.domain, password: opts.password });
    // Our own schedule replaces the fixed one-second retry of @xmpp/reconnect.
    this.xmpp.reconnect.stop();
    this.xmpp.on('error', (err: Error) => ctx.log.warn({ err: err.message, service: opts.service }, 'xmpp component error'));
    this.xmpp.on('online', () => {
      this.attempt = 0;
      this.online = true;
    });
    this.xmpp.on('disconnect', () => {
      this.online = false;
      if (this.stopping) return;
      this.xmpp.reconnect.delay = this.nextDelay();
      this.xmpp.reconnect.scheduleReconnect();
    });
    this.xmpp.on('stanza', (stanza: Element) => void this.onStanza(stanza));
  }

  /** Full jitter over an exponential ceiling, capped. */
  nextDelay(): number {
    const min = this.opts.minDelayMs ?? 250;
    const max = this.opts.maxDelayMs ?? 30_000;
    const ceiling = Math.min(max, min * 2 ** this.attempt++);
    return min + Math.random() * (ceiling - min);
  }

  private async onStanza(stanza: Element): Promise<void> {
    const reply = await handleStanza(this.ctx, stanza);
    if (reply && this.online) await this.xmpp.send(reply).catch(() => {});
  }

  /** Starts connecting; resolves at once (the connection comes up, and comes back, by itself). */
  start(): void {
    this.xmpp.start().catch(() => {
      // A failed first attempt ends in 'disconnect', which schedules the next one.
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout((this.xmpp.reconnect as unknown as { _timeout: NodeJS.Timeout })._timeout);
    await this.xmpp.stop().catch(() => {});
  }
}
