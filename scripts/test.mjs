#!/usr/bin/env node
// `npm test`: installs what the suite needs on a fresh machine (Debian packages, Python's cryptography),
// builds and type-checks, runs every test with vitest, and ends with a plain "N passed, N failed" line.
import { execSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';

const sh = (cmd) => execSync(cmd, { stdio: 'inherit' });
const ok = (cmd) => spawnSync('sh', ['-c', cmd], { stdio: 'ignore' }).status === 0;
const asRoot = process.getuid?.() === 0 ? '' : 'sudo ';

/** Debian packages the interop tests drive: the real Firefox ESR, and openssl for test certificates. */
const DEBIAN = { '/usr/bin/firefox-esr': 'firefox-esr', '/usr/bin/openssl': 'openssl' };
const missing = Object.entries(DEBIAN).filter(([bin]) => !existsSync(bin)).map(([, pkg]) => pkg);
if (missing.length > 0) {
  console.log(`installing Debian packages: ${missing.join(' ')}`);
  sh(`${asRoot}apt-get update -qq`);
  sh(`DEBIAN_FRONTEND=noninteractive ${asRoot}apt-get install -y -qq ${missing.join(' ')}`);
}
// Python's cryptography is the independent Fernet implementation the compatibility tests compare with.
if (!ok('python3 -c "import cryptography.fernet"')) {
  sh('python3 -m pip install --quiet cryptography');
}

sh('npx tsc -p tsconfig.json --noEmit');
sh('npx tsc -p tsconfig.build.json');

mkdirSync('.test-tmp', { recursive: true });
const report = '.test-tmp/vitest.json';
const args = ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile=${report}`, ...process.argv.slice(2)];
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
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(result.status === 0 && failed === 0 && passed > 0 ? 0 : 1);
