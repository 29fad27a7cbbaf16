/** KeyedLock: one holder per key at a time, other keys in parallel, a failure does not block the next holder. */
import { describe, expect, it } from 'vitest';
import { KeyedLock } from '../../src/util/keyed-lock.js';

describe('KeyedLock', () => {
  it('runs work for one key one at a time, in arrival order, and other keys alongside', async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const a1 = lock.run('a', async () => {
      log.push('a1 start');
      await gate;
      log.push('a1 end');
    });
    const a2 = lock.run('a', async () => void log.push('a2'));
    await lock.run('b', async () => void log.push('b'));
    expect(log).toEqual(['a1 start', 'b']);
    release();
    await Promise.all([a1, a2]);
    expect(log).toEqual(['a1 start', 'b', 'a1 end', 'a2']);
  });

  it('passes results and errors through; a failed holder does not stop the next; idle keys are forgotten', async () => {
    const lock = new KeyedLock();
    const failed = lock.run('k', async () => {
      throw new Error('boom');
    });
    const next = lock.run('k', async () => 42);
    await expect(failed).rejects.toThrow('boom');
    expect(await next).toBe(42);
    expect((lock as unknown as { tails: Map<string, unknown> }).tails.size).toBe(0);
  });
});
