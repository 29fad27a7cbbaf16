/**
 * Megaphone broadcasts (autopush's broadcast protocol, which Firefox's Remote Settings relies on): a broadcast
 * id such as `remote-settings/monitor_changes` has a current version string. Connections subscribe to ids in
 * `hello` and `broadcast_subscribe`; when a version changes every subscribed connection gets a `broadcast` frame.
 * The session (src/webpush/connection) reads versions through this interface; where they come from (a Megaphone
 * service polled, or Pushgate's own Megaphone-compatible API, kept in the store) is src/webpush/broadcast's business.
 */
type Listener = (changed: ReadonlyMap<string, string>) => void;

export interface BroadcastSource {
  /** Current versions by broadcast id. */
  versions(): ReadonlyMap<string, string>;
  /** Calls the listener with the ids whose versions changed (and their new versions); returns a function that removes it. */
  subscribe(listener: (changed: ReadonlyMap<string, string>) => void): () => void;
}

/** Versions held in process: set by the Megaphone poller or the store refresh (megaphone.ts), or directly by tests. */
export class BroadcastVersions implements BroadcastSource {
  private readonly current = new Map<string, string>();
  private readonly listeners = new Set<Listener>();

  versions(): ReadonlyMap<string, string> {
    return this.current;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Adds or changes versions; listeners hear about those that changed. Returns how many changed. */
  update(record: Record<string, string>): number {
    const changed = new Map<string, string>();
    for (const [id, version] of Object.entries(record)) {
      if (this.current.get(id) !== version) {
        this.current.set(id, version);
        changed.set(id, version);
      }
    }
    if (changed.size > 0) {
      for (const l of this.listeners) {
        try {
          l(changed);
        } catch {
          // One listener's fault must not keep the others from hearing about the change.
        }
      }
    }
    return changed.size;
  }
}
