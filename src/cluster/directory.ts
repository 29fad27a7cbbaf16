/**
 * A worker's part of the directory of where its siblings' clients are: uaid → the sibling worker holding its newest
 * connection, fed by the attach/detach frames its siblings send it directly (mesh.ts). Two layouts (PUSHGATE_WORKER_
 * DIRECTORY, chosen by `directoryLayout`):
 * - replicated: every worker keeps an entry for every sibling's client, so a push asks no other process where a client
 *   is, and one for a client connected nowhere is answered at once. Each connect costs a frame to every sibling and
 *   an entry in each of them (about 150 bytes per client per other worker);
 * - partitioned: each uaid's entry lives on one owner worker (`partitionOwner`), so a connect costs one frame and one
 *   entry whatever the worker count; a push that lands on neither holder nor owner asks the owner, which passes it on.
 * Pure (no sockets), so the takeover rules are tested without processes. The store stays the source of truth for
 * subscriptions and messages; a stale entry only costs a hop answered `absent`.
 */
export interface Holder {
  worker: number;
  connectedAt: number;
}

/**
 * autopush's takeover rule, the newest hello wins, made total so every worker decides alike whatever order the
 * frames arrive in: equal connectedAt on two workers goes to the higher worker index.
 */
export function supersedes(a: Holder, b: Holder): boolean {
  return a.connectedAt > b.connectedAt || (a.connectedAt === b.connectedAt && a.worker > b.worker);
}

/** Which workers keep a uaid's entry: every one (null), or the one this function names. */
export type OwnerOf = ((uaid: string) => number) | null;

/**
 * Up to this many workers `auto` replicates the directory: each connect then costs at most 7 frames and 7 entries
 * (about 1 KiB per connection), and no push for a client connected nowhere crosses to another worker. Above it the
 * replicas' memory and the connect fan-out grow with the machine (about 9 KiB per connection over 64 workers).
 */
export const REPLICATED_UP_TO = 8;

/** The owner rule for `workers` workers under PUSHGATE_WORKER_DIRECTORY (`auto`, `replicated` or `partitioned`). */
export function directoryLayout(setting: 'auto' | 'replicated' | 'partitioned', workers: number): OwnerOf {
  const partitioned = setting === 'partitioned' || (setting === 'auto' && workers > REPLICATED_UP_TO);
  return partitioned ? partitionOwner(workers) : null;
}

/**
 * The owner of a uaid's entry among workers 1..workers: FNV-1a (32-bit) of the uaid, modulo the count. Uaids are
 * random, so owners are even; every worker computes the same owner, and a restarted worker keeps its index.
 */
export function partitionOwner(workers: number): (uaid: string) => number {
  return (uaid) => {
    let h = 0x811c9dc5;
    for (let i = 0; i < uaid.length; i++) h = Math.imul(h ^ uaid.charCodeAt(i), 0x01000193);
    return ((h >>> 0) % workers) + 1;
  };
}

export class ClientDirectory {
  private readonly byUaid = new Map<string, Holder>();

  /** Records a sibling's connection, unless the one recorded for the uaid supersedes it. */
  attach(uaid: string, worker: number, connectedAt: number): void {
    const held = this.byUaid.get(uaid);
    const next = { worker, connectedAt };
    if (!held || held.worker === worker || supersedes(next, held)) this.byUaid.set(uaid, next);
  }

  /** Forgets a connection only if it is still the recorded one (a takeover may have replaced it). */
  detach(uaid: string, worker: number, connectedAt: number): void {
    const held = this.byUaid.get(uaid);
    if (held && held.worker === worker && held.connectedAt === connectedAt) this.byUaid.delete(uaid);
  }

  get(uaid: string): Holder | undefined {
    return this.byUaid.get(uaid);
  }

  /** A sibling died or its link went down: none of its clients are known to be connected any more. */
  forgetWorker(worker: number): void {
    for (const [uaid, held] of this.byUaid) if (held.worker === worker) this.byUaid.delete(uaid);
  }

  get size(): number {
    return this.byUaid.size;
  }
}
