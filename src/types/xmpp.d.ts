// Minimal typings for the xmpp.js packages Pushgate uses (they ship none).

declare module '@xmpp/xml' {
  export type Child = Element | string;
  export class Element {
    name: string;
    attrs: Record<string, string | undefined>;
    children: Child[];
    parent: Element | null;
    constructor(name: string, attrs?: Record<string, string | undefined>);
    is(name: string, xmlns?: string): boolean;
    getName(): string;
    getNS(): string | undefined;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildren(name: string, xmlns?: string): Element[];
    getChildElements(): Element[];
    getChildText(name: string, xmlns?: string): string | null;
    text(): string;
    getText(): string;
    append(...children: (Element | string)[]): Element;
    c(name: string, attrs?: Record<string, string>): Element;
    t(text: string): Element;
    up(): Element;
    root(): Element;
    toString(): string;
  }
  export class Parser {
    constructor();
    write(data: string): void;
    end(data?: string): void;
    on(event: 'element', listener: (el: Element) => void): this;
    on(event: 'start', listener: (el: Element) => void): this;
    on(event: 'end', listener: (el: Element) => void): this;
    on(event: 'error', listener: (err: Error) => void): this;
  }
  type Attrs = Record<string, string | number | undefined> | null;
  type ChildArg = Element | string | null | undefined | false | ChildArg[];
  interface XmlFn {
    (name: string, attrs?: Attrs, ...children: ChildArg[]): Element;
    Element: typeof Element;
    Parser: typeof Parser;
  }
  const xml: XmlFn;
  export default xml;
}

declare module '@xmpp/client' {
  import type { Element } from '@xmpp/xml';
  import type { EventEmitter } from 'node:events';
  export interface Client extends EventEmitter {
    status: string;
    jid: { toString(): string; bare(): { toString(): string } } | null;
    iqCaller: { request(el: Element, timeout?: number): Promise<Element> };
    reconnect: { stop(): void };
    start(): Promise<unknown>;
    stop(): Promise<unknown>;
    send(element: Element): Promise<void>;
  }
  export function client(options: { service: string; domain: string; username: string; password: string; resource?: string }): Client;
  export const xml: (name: string, attrs?: Record<string, string | undefined> | null, ...children: unknown[]) => Element;
}

declare module '@xmpp/component-core' {
  import type { Element } from '@xmpp/xml';
  import type { EventEmitter } from 'node:events';
  export class Component extends EventEmitter {
    constructor(options: { service: string; domain: string });
    status: string;
    options: { service: string; domain: string };
    connect(service: string): Promise<unknown>;
    open(options: { domain: string }): Promise<Element>;
    authenticate(id: string, password: string): Promise<void>;
    start(): Promise<unknown>;
    stop(): Promise<unknown>;
    disconnect(): Promise<unknown>;
    send(element: Element): Promise<void>;
  }
}
