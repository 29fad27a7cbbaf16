import { afterAll, beforeAll } from 'vitest';
import { MongoStore } from '../../src/store/mongodb.js';
import { mongoServer, type MongoServer } from '../helpers/mongo.js';
import { storeContract } from './contract.js';

let server: MongoServer;
let n = 0;
beforeAll(async () => {
  server = await mongoServer();
});
afterAll(async () => {
  await server?.stop();
});

// FerretDB scans the collection for each of the model test's queries: fewer runs keep it within seconds.
storeContract('MongoDB', async () => MongoStore.connect(server.url(`contract${++n}`)), 30);
