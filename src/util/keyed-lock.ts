/**
 * Runs async work one at a time per key, within this process. A cap checked by "count, then insert" is only a cap
 * if no other insert for the same key runs in between: the per-account XMPP registration cap and the per-uaid
 * channel cap run their check and write under this lock (issue 9 item 5; found by test/security's pipelined
 * bursts). Keys leave the map when their last holder finishes, so it holds only keys with work in flight.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const mine = previous.then(work);
    const tail = mine.then(
      () => {},
      () => {},
    );
    this.tails.set(key, tail);
    try {
      return await mine;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
