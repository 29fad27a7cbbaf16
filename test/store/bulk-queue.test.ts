// MongoDB's group commit (src/store/mongodb.ts BulkQueue) against a real MongoDB-wire server: the writes of one
// turn share one ordered bulk command, and each caller learns its own write's outcome — a failing write fails
// alone and the writes after it in the batch still happen.
import { type Collection, MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BulkQueue } from '../../src/store/mongodb.js';
import { mongoServer, type MongoServer } from '../helpers/mongo.js';

interface Doc {
  _id: string;
  n: number;
}

let server: MongoServer;
let client: MongoClient;
let collection: Collection<Doc>;
let commands = 0;
beforeAll(async () => {
  server = await mongoServer();
  client = new MongoClient(server.url('bulkqueue'), { monitorCommands: true });
  client.on('commandStarted', (e) => {
    if (e.commandName === 'insert' || e.commandName === 'update' || e.commandName === 'delete') commands++;
  });
  await client.connect();
  collection = client.db().collection<Doc>('docs');
});
afterAll(async () => {
  await client?.close();
  await server?.stop();
});

describe('BulkQueue', () => {
  it("sends one turn's writes as one command and settles each caller with its own outcome", async () => {
    const queue = new BulkQueue(collection);
    commands = 0;
    const outcomes = await Promise.allSettled([
      queue.add({ insertOne: { document: { _id: 'a', n: 1 } } }),
      queue.add({ insertOne: { document: { _id: 'b', n: 2 } } }),
      // A duplicate key: this write alone fails.
      queue.add({ insertOne: { document: { _id: 'a', n: 3 } } }),
      queue.add({ insertOne: { document: { _id: 'c', n: 4 } } }),
      queue.add({ replaceOne: { filter: { _id: 'b' }, replacement: { n: 5 }, upsert: true } }),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(String((outcomes[2] as PromiseRejectedResult).reason)).toMatch(/duplicate key|E11000/i);
    // In order: b was replaced after its insert; the failed write changed nothing.
    expect(await collection.find().sort({ _id: 1 }).toArray()).toEqual([
      { _id: 'a', n: 1 },
      { _id: 'b', n: 5 },
      { _id: 'c', n: 4 },
    ]);
    // One `insert` command for the four inserts, stopped at the duplicate; then the two writes after it, sent
    // again: one `insert` and one `update` (a bulk command carries one kind of write).
    expect(commands).toBe(3);
  });

  it('fails every write of a batch while the server is gone, and writes again once it is back', async () => {
    const impatient = new MongoClient(server.url('bulkqueue'), { serverSelectionTimeoutMS: 500 });
    await impatient.connect();
    const queue = new BulkQueue(impatient.db().collection<Doc>('docs'));
    await server.stop();
    try {
      const outcomes = await Promise.allSettled([
        queue.add({ insertOne: { document: { _id: 'd', n: 6 } } }),
        queue.add({ insertOne: { document: { _id: 'e', n: 7 } } }),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    } finally {
      await server.start();
    }
    await queue.add({ insertOne: { document: { _id: 'd', n: 6 } } });
    expect(await collection.countDocuments({ _id: { $in: ['d', 'e'] } })).toBe(1);
    await impatient.close();
    // A stop (bounded at 5 s) and a start (bounded at 30 s, failing with the server's own words) fit: the default
    // 30 s did not once, in a loaded full run, and hid which step was slow.
  }, 60_000);
});
