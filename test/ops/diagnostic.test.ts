// Tests of `pushgate endpoint-diagnostic`'s report (src/ops/diagnostic.ts) against an in-memory SQLite store.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointDiagnostic } from '../../src/ops/diagnostic.js';
import { openStore, type Store } from '../../src/store/index.js';
import { makeEndpoint } from '../../src/webpush/protocol/endpoint-token.js';
import { FernetKey, MultiFernet } from '../../src/webpush/protocol/fernet.js';

const fernet = new MultiFernet([FernetKey.generate()]);
const uaid = '0123456789abcdef0123456789abcdef';
const chid = '01234567-89ab-cdef-0123-456789abcdef';
let store: Store;

beforeAll(async () => {
  store = await openStore('sqlite::memory:');
});
afterAll(() => store.close());

describe('endpointDiagnostic', () => {
  it('refuses URLs that are not push endpoints and tokens of other keys', async () => {
    expect(await endpointDiagnostic('https://x/elsewhere', fernet, store)).toMatchObject({ valid: false });
    expect(await endpointDiagnostic('/wpush/v1/abc', fernet, store)).toMatchObject({ valid: false, reason: expect.stringContaining('v1') });
    const foreign = makeEndpoint('https://x', new MultiFernet([FernetKey.generate()]), uaid, chid, null);
    expect(await endpointDiagnostic(foreign, fernet, store)).toMatchObject({ valid: false });
  });

  it('names what the token holds and says the endpoint is gone when the store does not know it', async () => {
    const report = await endpointDiagnostic(makeEndpoint('https://x', fernet, uaid, chid, null), fernet, store);
    expect(report).toMatchObject({ valid: true, apiVersion: 'v1', uaid, channelID: chid, vapidKeyHash: null, user: null, channel: { registered: false } });
    expect(report['verdict']).toMatch(/^gone: the uaid is unknown/);
  });
});
