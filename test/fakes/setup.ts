import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { makePki, type TestPki } from './pki.js';
import { ADM_CLIENT, APNS_KEY_ID, APNS_TEAM, APNS_TOPIC, ProviderFakes } from './providers.js';

export interface BridgeWorld {
  pki: TestPki;
  fakes: ProviderFakes;
  gw: TestGateway;
  bridgesFile: string;
  close(): Promise<void>;
}

/** The provider fakes, started, and a bridges file pointing every app at them (baseUrl, tokenUrl, ca). */
export async function providerFakes(): Promise<{ pki: TestPki; fakes: ProviderFakes; bridgesFile: string }> {
  const pki = makePki();
  const fakes = new ProviderFakes(pki);
  await fakes.start();
  const at = { baseUrl: fakes.origin, ca: pki.caFile };
  const bridges = {
    fcm: { 'org.example.app': { serviceAccount: fakes.serviceAccountFile, ...at, tokenUrl: `${fakes.origin}/token` } },
    apns: {
      'org.example.app': { topic: APNS_TOPIC, sandbox: false, token: { keyFile: fakes.apnsKeyFile, keyId: APNS_KEY_ID, teamId: APNS_TEAM }, ...at },
      'org.example.app.dev': { topic: APNS_TOPIC, sandbox: true, cert: { certFile: pki.clientCertFile, keyFile: pki.clientKeyFile }, ...at },
    },
    adm: { 'org.example.kindle': { ...ADM_CLIENT, ...at, tokenUrl: `${fakes.origin}/auth/o2/token` } },
    mongoosepush: { fcm: 'org.example.app', 'apns-prod': 'org.example.app', 'apns-dev': 'org.example.app.dev' },
  };
  const bridgesFile = join(pki.dir, 'bridges.json');
  writeFileSync(bridgesFile, JSON.stringify(bridges, null, 2));
  return { pki, fakes, bridgesFile };
}

/** The provider fakes, their bridges file, and a gateway in this process using it. */
export async function bridgeWorld(overrides: Parameters<typeof startGateway>[0] = {}): Promise<BridgeWorld> {
  const { pki, fakes, bridgesFile } = await providerFakes();
  const gw = await startGateway({ bridges: bridgesFile, ...overrides });
  return {
    pki,
    fakes,
    gw,
    bridgesFile,
    async close() {
      await gw.close();
      await fakes.stop();
    },
  };
}
