#!/usr/bin/env node
// `npm test`: installs what the suite needs on a fresh machine (Debian packages, Python's cryptography and
// schemathesis), builds and type-checks, lints (eslint + prettier --check), runs every test tier with vitest and
// coverage (the 90 % line floor is in vitest.config.ts), and ends with a plain "N passed, N failed" line.
import { execSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const sh = (cmd) => execSync(cmd, { stdio: 'inherit' });
const ok = (cmd) => spawnSync('sh', ['-c', cmd], { stdio: 'ignore' }).status === 0;
const asRoot = process.getuid?.() === 0 ? '' : 'sudo ';

/**
 * Debian packages the interop tests drive: the real Firefox ESR, a real Prosody with mod_cloud_notify
 * (prosody-modules), a real ejabberd (mod_push; test/helpers/ejabberd.ts runs a private instance), openssl for
 * test certificates, and Chromium for the dashboard's browser test.
 */
const DEBIAN = {
  '/usr/bin/chromium': 'chromium',
  '/usr/bin/firefox-esr': 'firefox-esr',
  '/usr/bin/openssl': 'openssl',
  '/usr/bin/prosody': 'prosody',
  '/usr/lib/prosody/modules/mod_cloud_notify/mod_cloud_notify.lua': 'prosody-modules',
  '/usr/sbin/ejabberdctl': 'ejabberd',
};
const missing = Object.entries(DEBIAN)
  .filter(([bin]) => !existsSync(bin))
  .map(([, pkg]) => pkg);
if (missing.length > 0) {
  console.log(`installing Debian packages: ${missing.join(' ')}`);
  sh(`${asRoot}apt-get update -qq`);
  sh(`DEBIAN_FRONTEND=noninteractive ${asRoot}apt-get install -y -qq ${missing.join(' ')}`);
}
// Python's cryptography is the independent Fernet implementation the compatibility tests compare with.
if (!ok('python3 -c "import cryptography.fernet"')) {
  sh('python3 -m pip install --quiet cryptography');
}
// schemathesis, the property-based API fuzzer that test/ops/openapi.test.ts runs against /openapi.json.
const SCHEMATHESIS_VERSION = '4.32.5';
if (!ok(`python3 -m schemathesis.cli --version | grep -q ${SCHEMATHESIS_VERSION}`)) {
  sh(`python3 -m pip install --quiet schemathesis==${SCHEMATHESIS_VERSION}`);
}

// A real MongoDB-wire server: MONGODB_URL or a mongod on PATH when there is one, else FerretDB v1 on its
// SQLite backend, built once from the Go module proxy into ~/.cache/pushgate-test.
const FERRETDB_VERSION = 'v1.24.2';
const ferretdb = process.env.FERRETDB_BIN ?? join(homedir(), '.cache', 'pushgate-test', `ferretdb-${FERRETDB_VERSION}`);
if (!process.env.MONGODB_URL && !ok('command -v mongod') && !existsSync(ferretdb)) {
  console.log(`building FerretDB ${FERRETDB_VERSION} (once; cached in ${dirname(ferretdb)})`);
  const work = mkdtempSync(join(tmpdir(), 'ferretdb-build-'));
  const info = JSON.parse(execSync(`go mod download -json github.com/FerretDB/FerretDB@${FERRETDB_VERSION}`, { cwd: work, encoding: 'utf8' }));
  const src = join(work, 'src');
  sh(`cp -r "${info.Dir}" "${src}" && chmod -R u+w "${src}"`);
  // The module lacks the generated version file its embed needs (an open upstream issue).
  writeFileSync(join(src, 'build', 'version', 'version.txt'), `${FERRETDB_VERSION}\n`);
  mkdirSync(dirname(ferretdb), { recursive: true });
  execSync(`go build -trimpath -o "${ferretdb}" ./cmd/ferretdb`, { cwd: src, stdio: 'inherit' });
}

sh('npx tsc -p tsconfig.json --noEmit');
sh('npx tsc -p tsconfig.build.json');
sh('npx tsc -p tsconfig.web.json');
// Lint failures fail the run, but after the tests, so one run reports both.
const lint = spawnSync('npm', ['run', '--silent', 'lint'], { stdio: 'inherit' });

mkdirSync('.test-tmp', { recursive: true });
const report = '.test-tmp/vitest.json';
const args = ['vitest', 'run', '--coverage', '--reporter=default', '--reporter=json', `--outputFile=${report}`, ...process.argv.slice(2)];
const result = spawnSync('npx', args, { stdio: 'inherit' });

let passed = 0;
let failed = 0;
let skipped = 0;
if (existsSync(report)) {
  const json = JSON.parse(readFileSync(report, 'utf8'));
  passed = json.numPassedTests;
  failed = json.numFailedTests + (json.numRuntimeErrorTestSuites ?? 0);
  skipped = json.numPendingTests + json.numTodoTests;
}
if (result.status !== 0 && failed === 0) failed = 1;
if (lint.status !== 0) console.log('\nlint failed (npm run lint): see above; `npm run format` fixes formatting');
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(result.status === 0 && failed === 0 && passed > 0 && lint.status === 0 ? 0 : 1);
