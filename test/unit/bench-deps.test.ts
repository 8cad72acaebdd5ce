/**
 * The library does not load what only the bench needs: `import('c1m')` (the package entry,
 * dist/index.js) and the CLI as `c1m serve` and `c1m doctor` load it (dist/cli/main.js) must
 * load neither `chart.js` (HTML reports) nor `hdr-histogram-js` (bench latency histograms).
 *
 * Each probe runs in a fresh node with a module resolve hook that throws on either package,
 * so any static or dynamic ESM import of them fails the import; CommonJS loads (which the
 * hooks do not see on Node 20) are caught by looking through require's module cache. A control
 * shows the probe can fail: the bench's own loader is refused under the same hook.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DIST = new URL('../../../dist/', import.meta.url);
// The bench's (chart.js, hdr-histogram-js) and the gateway's and metrics' (prom-client, jose, nats):
// each is loaded only by the command or call that needs it.
const FORBIDDEN = String.raw`/[\\/]node_modules[\\/](chart\.js|hdr-histogram-js|prom-client|jose|nats)[\\/]/`;
const HOOKS = `export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (${FORBIDDEN}.test(r.url)) throw new Error('FORBIDDEN ' + r.url);
  return r;
}`;

interface Probe {
  code: number | null;
  /** The last stdout line, parsed: what the body reported plus the CommonJS modules loaded. */
  out: { cjs: string[]; [k: string]: unknown } | null;
  stderr: string;
}

/** Run `body` (ESM, top-level await) in a fresh node under the hook, from the package root. */
function probe(body: string): Probe {
  const script = `import { createRequire, register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOKS)}));
const report = {};
${body}
report.cjs = Object.keys(createRequire(process.cwd() + '/').cache).filter((f) => ${FORBIDDEN}.test(f));
console.log(JSON.stringify(report));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  const last = r.stdout.trim().split('\n').at(-1);
  return { code: r.status, out: last ? JSON.parse(last) : null, stderr: r.stderr };
}

test('dist/ is built (npm run build)', () => {
  assert.ok(existsSync(new URL('index.js', DIST)), 'dist/index.js');
  assert.ok(existsSync(new URL('cli/main.js', DIST)), 'dist/cli/main.js');
});

test("import('c1m'), 'c1m/http' and 'c1m/ws' load none of the bench's, the gateway's or the metrics' packages", () => {
  // The package imports itself by name: its "exports" map sends 'c1m' to dist/index.js.
  const p = probe(`const c1m = await import('c1m');
await import('c1m/http');
await import('c1m/ws');
report.exports = typeof c1m.createReactor === 'function' && typeof c1m.serve === 'function';`);
  assert.equal(p.code, 0, p.stderr);
  assert.deepEqual(p.out, { exports: true, cjs: [] });
});

test('the CLI module (c1m serve, c1m doctor) loads neither until a bench runs', () => {
  const p = probe(`const cli = await import(${JSON.stringify(new URL('cli/main.js', DIST).href)});
report.main = typeof cli.main === 'function';`);
  assert.equal(p.code, 0, p.stderr);
  assert.deepEqual(p.out, { main: true, cjs: [] });
});

test('control: the probe refuses the bench histograms, so the checks above can fail', () => {
  const p = probe(`const stats = await import(${JSON.stringify(new URL('cli/bench-stats.js', DIST).href)});
report.refused = await stats.loadHistograms().then(() => null, (e) => e.message);`);
  assert.equal(p.code, 0, p.stderr);
  assert.match(String(p.out?.refused), /^FORBIDDEN .*hdr-histogram-js/);
  assert.deepEqual(p.out?.cjs, []);
});
