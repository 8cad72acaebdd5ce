#!/usr/bin/env node
// Builds the native addon with node-gyp. Without --strict a failed build is not fatal:
// c1m then runs on the portable backend and says so once at start.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';

const strict = process.argv.includes('--strict');
if (process.platform !== 'linux') {
  console.log('c1m: the native backend is Linux-only; using the portable backend (node:net).');
  process.exit(0);
}
let gyp = process.env.npm_config_node_gyp;
if (!gyp || !existsSync(gyp)) {
  try {
    gyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    gyp = undefined;
  }
}
const args = ['rebuild'];
if (!process.env.npm_config_nodedir && existsSync('/usr/include/node/node_api.h')) args.push('--nodedir=/usr');
const r = gyp
  ? spawnSync(process.execPath, [gyp, ...args], { stdio: 'inherit' })
  : spawnSync('npx', ['--yes', 'node-gyp', ...args], { stdio: 'inherit' });
if (r.status !== 0) {
  const msg = 'c1m: the native addon could not be built; c1m will use the portable backend (node:net).';
  if (strict) {
    console.error(msg);
    process.exit(1);
  }
  console.warn(msg);
}
