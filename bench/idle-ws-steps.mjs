// Usage: node bench/idle-ws-steps.mjs [path/to/bin/c1m.js] [c1m serve flags...] -> one JSON line
// Idle WebSocket RSS as a user sees it: `c1m serve ws-echo` (no warm-up, no forced GC), settled
// RSS idle, then with 9,500 and 19,000 idle upgraded WebSockets (loadgen -m ws-hold, 2 steps).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
async function settled(pid) { const s = []; for (let i = 0; i < 60; i++) { s.push(rss(pid)); const l = s.slice(-4); if (l.length === 4 && Math.max(...l) - Math.min(...l) <= Math.max(...l) * 0.002) return l.at(-1); await sleep(500); } return s.at(-1); }
const bin = process.argv[2] || new URL('../bin/c1m.js', import.meta.url).pathname;
const extra = process.argv.slice(3);
const port = 9900 + Math.floor(Math.random() * 90);
const srv = spawn('taskset', ['-c', '0', 'node', bin, 'serve', 'ws-echo', '--port', String(port), '--host', '127.0.0.1', ...extra], { stdio: 'ignore' });
await sleep(2000);
const base = await settled(srv.pid);
const lgs = [];
const out = { bin, extra, base_kb: base };
for (const [step, src] of [[9500, '127.0.0.2'], [9500, '127.0.0.10']]) {
  const lg = spawn('taskset', ['-c', '1', new URL('../../shared/bench/loadgen', import.meta.url).pathname, '-n', String(step), '-p', String(port), '-m', 'ws-hold', '-f', '1', '-k', '4', '-S', src, '-d', '300', '-q'], { stdio: 'ignore' });
  lgs.push(lg);
  await sleep(6000);
  out[`rss_kb_${lgs.length * 9500}`] = await settled(srv.pid);
}
out.per_conn_19000 = Math.round(((out.rss_kb_19000 - base) * 1024) / 19000);
out.per_conn_9500 = Math.round(((out.rss_kb_9500 - base) * 1024) / 9500);
out.slope_9500_19000 = Math.round(((out.rss_kb_19000 - out.rss_kb_9500) * 1024) / 9500);
for (const lg of lgs) lg.kill('SIGKILL');
srv.kill('SIGTERM');
await sleep(1000);
console.log(JSON.stringify(out));
process.exit(0);
