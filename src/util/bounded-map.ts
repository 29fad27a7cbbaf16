/**
 * A Map that holds at most `limit` entries: adding one more evicts the oldest (Maps keep insertion order).
 * The in-memory caches and per-key state on hot paths use it, so no input can grow them without bound.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly limit: number) {
    super();
  }

  override set(key: K, value: V): this {
    if (!this.has(key) && this.size >= this.limit) {
      const oldest = this.keys().next();
      if (!oldest.done) this.delete(oldest.value);
    }
    return super.set(key, value);
  }
}
