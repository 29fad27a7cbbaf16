import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throw-away PKI for the provider fakes, made with the openssl command line: a test CA, a server
 * certificate whose names cover the real provider hosts and 127.0.0.1, and an APNs client certificate that
 * carries Apple's environment extensions (OIDs 1.2.840.113635.100.6.3.1 and .2), as node-apn requires.
 */
export interface TestPki {
  dir: string;
  caFile: string;
  ca: Buffer;
  serverKey: Buffer;
  serverCert: Buffer;
  clientCertFile: string;
  clientKeyFile: string;
}

const HOSTS = ['fcm.googleapis.com', 'oauth2.googleapis.com', 'api.push.apple.com', 'api.sandbox.push.apple.com', 'api.amazon.com', 'localhost'];

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

/** A new P-256 key (`-keyout`) with a self-signed certificate or a request (`-out`), as every PEM here is made. */
const EC_REQ = ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A self-signed certificate whose subject and address are `cn` (127.0.0.1 by default), for TLS listeners in tests. */
export function selfSignedCertificate(cn = '127.0.0.1'): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pushgate-tls-'));
  openssl(dir, ...EC_REQ, '-x509', '-days', '2', '-subj', `/CN=${cn}`, '-addext', `subjectAltName=IP:${cn}`, '-keyout', 'key.pem', '-out', 'cert.pem');
  return { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
}

export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'pushgate-pki-'));
  openssl(dir, ...EC_REQ, '-x509', '-days', '2', '-subj', '/CN=Pushgate Test CA', '-keyout', 'ca.key', '-out', 'ca.pem');
  const sans = [...HOSTS.map((h) => `DNS:${h}`), 'IP:127.0.0.1'].join(',');
  writeFileSync(join(dir, 'server.ext'), `subjectAltName=${sans}\nextendedKeyUsage=serverAuth\n`);
  openssl(dir, ...EC_REQ, '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr');
  signByCa(dir, 'server');
  // Apple's push certificates carry these extensions (value: ASN.1 NULL).
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n1.2.840.113635.100.6.3.1=DER:0500\n1.2.840.113635.100.6.3.2=DER:0500\n');
  openssl(
    dir,
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/UID=org.example.pushgate/CN=Apple Push Services: org.example.pushgate',
    '-keyout',
    'client.key',
    '-out',
    'client.csr',
  );
  signByCa(dir, 'client');
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    ca: readFileSync(join(dir, 'ca.pem')),
    serverKey: readFileSync(join(dir, 'server.key')),
    serverCert: readFileSync(join(dir, 'server.pem')),
    clientCertFile: join(dir, 'client.pem'),
    clientKeyFile: join(dir, 'client.key'),
  };
}

/** Signs `<name>.csr` with the test CA for two days, with the extensions in `<name>.ext`, into `<name>.pem`. */
function signByCa(dir: string, name: string): void {
  openssl(
    dir,
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.pem`,
  );
}
