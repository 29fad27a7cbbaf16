// Unit tests of the shared setting parsers and the bounded map (src/util/settings.ts, src/util/bounded-map.ts).
import { describe, expect, it } from 'vitest';
import { BoundedMap } from '../../src/util/bounded-map.js';
import { int, nonEmpty, optionalPath, optionalPort, optionalUrl, origin, str } from '../../src/util/settings.js';

describe('setting parsers', () => {
  it('int accepts only decimal integers within bounds', () => {
    const p = int(1, 10);
    expect(p(' 7 ')).toBe(7);
    expect(p('0')).toBeUndefined();
    expect(p('11')).toBeUndefined();
    expect(p('1e1')).toBeUndefined();
    expect(p('-3')).toBeUndefined();
  });
  it('str, nonEmpty and optionalPath', () => {
    expect(str(' x ')).toBe(' x ');
    expect(nonEmpty('  a ')).toBe('a');
    expect(nonEmpty('  ')).toBeUndefined();
    expect(optionalPath(' ')).toBeNull();
    expect(optionalPath('/tmp/x')).toBe('/tmp/x');
  });
  it('origin accepts an http(s) origin only, normalised', () => {
    expect(origin('https://Push.Example:443/')).toBe('https://push.example');
    expect(origin('http://10.0.0.5:8081')).toBe('http://10.0.0.5:8081');
    for (const bad of ['ftp://x', 'https://x/path', 'https://x/?q', 'https://x/#h', 'not a url']) expect(origin(bad)).toBeUndefined();
  });
  it('optional ports and URLs are null when empty', () => {
    expect(optionalPort('')).toBeNull();
    expect(optionalPort('8081')).toBe(8081);
    expect(optionalPort('70000')).toBeUndefined();
    expect(optionalUrl(' ')).toBeNull();
    expect(optionalUrl('http://a:1')).toBe('http://a:1');
    expect(optionalUrl('a:1')).toBeUndefined();
  });
});

describe('BoundedMap', () => {
  it('evicts the oldest entry past its limit, and not on update of a present key', () => {
    const m = new BoundedMap<string, number>(2);
    m.set('a', 1).set('b', 2);
    m.set('a', 3);
    expect([...m.keys()]).toEqual(['a', 'b']);
    m.set('c', 4);
    expect([...m.entries()]).toEqual([
      ['b', 2],
      ['c', 4],
    ]);
  });
});
