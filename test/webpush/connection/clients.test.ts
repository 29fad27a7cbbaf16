// The one durable delivery (deliverDurably in src/webpush/connection/clients.ts) that the endpoint's local path, the
// fleet's peer link and the workers' mesh share, and offerToClient around it: without sockets, a recording client and
// a real SQLite store (and that store failing, as an outage does).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Notification, openStore, type Store, StoreUnavailableError } from '../../../src/store/index.js';
import {
  ClientRegistry,
  type ConnectedClient,
  type DirectOptions,
  type DirectSave,
  deliverDurably,
  offerToClient,
} from '../../../src/webpush/connection/clients.js';
import { testNotification } from '../../helpers/push.js';

const UAID = 'a'.repeat(32);

let seq = 0;
const note = (ttl = 60): Notification => testNotification({ uaid: UAID, seq: ++seq, ttl });

/**
 * A client that takes direct messages when `ready`, recording what it got and when storage was rung. Like a session
 * whose client has no ack-delay estimate yet, it begins each message's save at once.
 */
function recorder(store: Store, ready: boolean) {
  const events: string[] = [];
  const given: { n: Notification; options: DirectOptions }[] = [];
  /** What the store held for the uaid when the session was told to read storage. */
  const storedWhenRung: Promise<number>[] = [];
  const client: ConnectedClient = {
    uaid: UAID,
    connectedAt: 1,
    channels: new Map([['ch', null]]),
    deliverDirect(n, options = {}) {
      if (!ready) return false;
      given.push({ n, options });
      void options.save?.begin();
      events.push(`deliver ${n.version}`);
      return true;
    },
    storageChanged() {
      events.push('storageChanged');
      storedWhenRung.push(store.countMessages(UAID, 10));
    },
    close: () => {},
  };
  return { client, events, given, storedWhenRung };
}

/** A registry holding `client`, as the caller's is. */
function registered(client: ConnectedClient): ClientRegistry {
  const clients = new ClientRegistry();
  clients.add(client);
  return clients;
}

/** The store with every message write failing as an outage does. */
function failing(store: Store): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'saveMessage') return () => Promise.reject(new StoreUnavailableError('down'));
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
}

// Each test gets a fresh in-memory store.
let store: Store;
beforeEach(async () => {
  store = await openStore('sqlite::memory:');
});
afterEach(() => store.close());

describe('deliverDurably', () => {
  it('sends a TTL > 0 message directly, saved in parallel, and answers delivered only once the save committed', async () => {
    const { client, given } = recorder(store, true);
    const n = note();
    const answer = deliverDurably(store, registered(client), client, n);
    // What the store holds the moment the answer comes: the commit is in.
    const storedAtAnswer = answer.then(() => store.fetchMessages(UAID, 0, 10, Date.now()));
    // The frame went out at once, before the commit: the send does not wait for the store.
    expect(given.map((g) => g.n.version)).toEqual([n.version]);
    expect(await answer).toBe('delivered');
    expect(await storedAtAnswer).toEqual([n]);
    // The session learns the save committed, so its delete on ack comes after it.
    expect(await given[0]!.options.save!.begun).toBe(true);
  });

  it('sends a TTL 0 message without storing it', async () => {
    const { client, given } = recorder(store, true);
    expect(await deliverDurably(store, registered(client), client, note(0))).toBe('delivered');
    expect(given[0]!.options.save).toBeUndefined();
    expect(await store.countMessages(UAID, 10)).toBe(0);
  });

  it('stores a message a busy client cannot take, then tells its session to read storage', async () => {
    const { client, events, storedWhenRung } = recorder(store, false);
    const n = note();
    expect(await deliverDurably(store, registered(client), client, n)).toBe('stored');
    expect(events).toEqual(['storageChanged']);
    expect(await storedWhenRung[0]).toBe(1);
    expect(await store.fetchMessages(UAID, 0, 10, Date.now())).toEqual([n]);
  });

  it('tells the newer connection of the uaid, not the one that left, when the client went while its message was saved', async () => {
    const old = recorder(store, false);
    const newer = recorder(store, true);
    const clients = registered(old.client);
    const n = note();
    const answer = deliverDurably(store, clients, old.client, n);
    // A newer connection takes over during the save's group commit, after it read storage.
    clients.add(newer.client);
    expect(await answer).toBe('stored');
    expect(old.events).toEqual([]);
    expect(newer.events).toEqual(['storageChanged']);
    expect(await newer.storedWhenRung[0]).toBe(1);
  });

  it('drops nothing into storage for a busy client and a TTL 0 message: busy, for the caller to drop', async () => {
    const { client, events } = recorder(store, false);
    expect(await deliverDurably(store, registered(client), client, note(0))).toBe('busy');
    expect(events).toEqual([]);
    expect(await store.countMessages(UAID, 10)).toBe(0);
  });

  it('keeps delivering to a connected client during a store outage, and tells the session the save failed', async () => {
    const { client, given } = recorder(store, true);
    expect(await deliverDurably(failing(store), registered(client), client, note())).toBe('delivered');
    // Not saved: the session stores it itself when the connection ends, and deletes nothing on ack.
    expect(await given[0]!.options.save!.begun).toBe(false);
  });

  /** Delivers `n` to a client that hands its save to the test, which plays the session's ack wait with it. */
  function deliverWaiting(n: Notification) {
    let save: DirectSave | undefined;
    const client: ConnectedClient = { ...recorder(store, true).client, deliverDirect: (_n, o = {}) => ((save = o.save), true) };
    const answer = deliverDurably(store, registered(client), client, n);
    return { answer, save: save! };
  }

  it('answers delivered with nothing written when the client acks before its save begins (the session waits for acks)', async () => {
    const { answer, save } = deliverWaiting(note());
    save.beginAfter(60_000);
    // The ack (Session.ack releases the save): the answer comes, and nothing was written.
    expect(save.release()).toBeNull();
    expect(await answer).toBe('delivered');
    expect(await store.countMessages(UAID, 10)).toBe(0);
  });

  it('answers only once the save the end of the wait began has committed, when no ack came', async () => {
    const n = note();
    const { answer, save } = deliverWaiting(n);
    save.beginAfter(5);
    const storedAtAnswer = answer.then(() => store.fetchMessages(UAID, 0, 10, Date.now()));
    expect(await answer).toBe('delivered');
    expect(await storedAtAnswer).toEqual([n]);
    // An ack after the save began: release hands back that save, after whose commit the session deletes it.
    expect(await save.release()).toBe(true);
  });

  it('throws the outage (503 backOff) when a busy client’s message cannot be saved', async () => {
    const { client, events } = recorder(store, false);
    await expect(deliverDurably(failing(store), registered(client), client, note())).rejects.toMatchObject({ kind: 'backOff' });
    expect(events).toEqual([]);
  });
});

describe('offerToClient', () => {
  it('saves in the registry’s store as the local path does; absent and no-channel without touching it', async () => {
    const clients = new ClientRegistry();
    clients.store = store;
    const ready = recorder(store, true);
    clients.add(ready.client);
    const n = note();
    expect(await offerToClient(clients, n)).toBe('delivered');
    expect(await store.fetchMessages(UAID, 0, 10, Date.now())).toEqual([n]);
    expect(await offerToClient(clients, { ...note(), uaid: 'b'.repeat(32) })).toBe('absent');
    expect(await offerToClient(clients, { ...note(), channelID: 'other' })).toBe('no-channel');
    expect(await store.countMessages(UAID, 10)).toBe(1);
  });

  it('answers busy, never throws, when this process cannot save a message its client cannot take: the endpoint stores it', async () => {
    const clients = new ClientRegistry();
    clients.store = failing(store);
    clients.add(recorder(store, false).client);
    expect(await offerToClient(clients, note())).toBe('busy');
    clients.store = null;
    expect(await offerToClient(clients, note())).toBe('busy');
  });
});
