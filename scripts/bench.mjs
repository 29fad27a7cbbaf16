#!/usr/bin/env node
// `npm run bench [-- --quick]`: builds the gateway and the benchmark, then runs bench/run.ts (see bench/).
import { execSync, spawnSync } from 'node:child_process';

execSync('npx tsc -p tsconfig.bench.json', { stdio: 'inherit' });
const r = spawnSync(process.execPath, ['.bench-build/bench/run.js', ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
