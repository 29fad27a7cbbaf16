// The stanza-size bound of the component's XML parser (src/xmpp/component.ts boundedParser, issue 9 item 10): a
// stanza within the limit always passes, whatever arrives after it in the same read; one past the limit by more
// than a slice is refused before the parser holds it.
import { Parser } from '@xmpp/xml';
import { describe, expect, it } from 'vitest';
import { StanzaTooLargeError, boundedParser } from '../../src/xmpp/component.js';

const LIMIT = 10_000;

function feed(chunks: string[]): { names: string[]; sizes: number[]; error: unknown } {
  const Bounded = boundedParser(Parser as unknown as Parameters<typeof boundedParser>[0], LIMIT);
  const parser = new Bounded();
  const result = { names: [] as string[], sizes: [] as number[], error: null as unknown };
  parser.on('element', (el) => {
    const element = el as { name: string; toString(): string };
    result.names.push(element.name);
    result.sizes.push(Buffer.byteLength(element.toString()));
  });
  parser.on('error', (err) => (result.error = err));
  for (const chunk of chunks) parser.write(chunk);
  return result;
}

/** A stanza of exactly `bytes` bytes of XML. */
function stanza(bytes: number, name = 'message'): string {
  const open = `<${name}><body>`;
  const close = `</body></${name}>`;
  return open + 'x'.repeat(bytes - open.length - close.length) + close;
}

describe('boundedParser', () => {
  const header = "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>";

  it('passes a stanza just within the limit although the next stanza arrives in the same read', () => {
    // The first stanza ends a few bytes into a slice that is mostly the second one: counting that slice against
    // the first would have refused it.
    const first = stanza(LIMIT - 10);
    const second = stanza(LIMIT - 10, 'iq');
    const result = feed([header + first + second]);
    expect(result.error).toBeNull();
    expect(result.names).toEqual(['message', 'iq']);
    expect(result.sizes).toEqual([LIMIT - 10, LIMIT - 10]);
  });

  it('passes many stanzas near the limit, in reads of any size', () => {
    const stream = header + Array.from({ length: 20 }, (_, i) => stanza(LIMIT - 1 - i * 37)).join('');
    for (const size of [1, 100, 4095, 4097, 65_536]) {
      const chunks: string[] = [];
      for (let i = 0; i < stream.length; i += size) chunks.push(stream.slice(i, i + size));
      const result = feed(chunks);
      expect(result.error, `reads of ${size}`).toBeNull();
      expect(result.names).toHaveLength(20);
    }
  });

  it('refuses a stanza larger than the limit plus one slice, without finishing it', () => {
    const big = stanza(LIMIT + 4096 + 100);
    const result = feed([header, stanza(500), big]);
    expect(result.error).toBeInstanceOf(StanzaTooLargeError);
    expect((result.error as StanzaTooLargeError).limit).toBe(LIMIT);
    // The small stanza before it was handled; the large one never was.
    expect(result.names).toEqual(['message']);
  });

  it('refuses an endless text node streamed in small reads once it passes the limit', () => {
    const Bounded = boundedParser(Parser as unknown as Parameters<typeof boundedParser>[0], LIMIT);
    const parser = new Bounded();
    let written = 0;
    let error: unknown = null;
    parser.on('error', (err) => (error = err));
    parser.write(header + '<message><body>');
    while (error === null && written < 10 * LIMIT) {
      parser.write('y'.repeat(1000));
      written += 1000;
    }
    expect(error).toBeInstanceOf(StanzaTooLargeError);
    expect(written).toBeGreaterThan(LIMIT - 1000);
    expect(written).toBeLessThanOrEqual(LIMIT + 4096);
  });
});
