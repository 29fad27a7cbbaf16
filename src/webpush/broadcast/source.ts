/**
 * Megaphone broadcasts (autopush's broadcast protocol, which Firefox's Remote Settings relies on): a broadcast
 * id such as `remote-settings/monitor_changes` has a current version string. Connections subscribe to ids in
 * `hello` and `broadcast_subscribe`; when a version changes every subscribed connection gets a `broadcast` frame.
 * The session (src/webpush/connection) reads versions through this interface; where they come from (a Megaphone
 * service polled, or Pushgate's own Megaphone-compatible API, kept in the store) is src/webpush/broadcast's business.
 */
export interface BroadcastSource {
  /** Current versions by broadcast id. */
  versions(): ReadonlyMap<string, string>;
  /** Calls the listener with the ids whose versions changed (and their new versions); returns a function that removes it. */
  subscribe(listener: (changed: ReadonlyMap<string, string>) => void): () => void;
}

/** A source whose versions are set in process: no broadcasts by default; tests set versions directly. */
export class StaticBroadcastSource implements BroadcastSource {
  private readonly current = new Map<string, string>();
  private readonly listeners = new Set<(changed: ReadonlyMap<string, string>) => void>();

  versions(): ReadonlyMap<string, string> {
    return this.current;
  }

  subscribe(listener: (changed: ReadonlyMap<string, string>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Sets versions; listeners hear about those that actually changed. */
  set(versions: Record<string, string>): void {
    const changed = new Map<string, string>();
    for (const [id, version] of Object.entries(versions)) {
      if (this.current.get(id) !== version) {
        this.current.set(id, version);
        changed.set(id, version);
      }
    }
    if (changed.size > 0) for (const l of this.listeners) l(changed);
  }
}
