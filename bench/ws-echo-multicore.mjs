// Usage: node bench/ws-echo-multicore.mjs -> JSON on stdout, one line per trial on stderr
// ws-echo depth 16 against c1m serve ws-echo in single/threads/processes modes and refserver,
// loadgen on the same 2 cores (no pinning); server tree CPU per message from /proc.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TCK = 100;
function tree(pid) { const out = [pid]; for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) { try { const st = readFileSync(`/proc/${p}/stat`, 'utf8'); const pp = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]); if (out.includes(pp) && !out.includes(Number(p))) out.push(Number(p)); } catch {} } return out; }
function cpu(pids) { let t = 0; for (const p of pids) { try { const f = readFileSync(`/proc/${p}/stat`, 'utf8').slice(readFileSync(`/proc/${p}/stat`, 'utf8').lastIndexOf(')') + 2).split(' '); t += Number(f[11]) + Number(f[12]); } catch {} } return t / TCK; }
const targets = [
  ['refserver', [new URL('../../shared/bench/refserver', import.meta.url).pathname, ['-p', 'PORT', '-a', '127.0.0.1', '-m', 'ws-echo', '-q']]],
  ['c1m single', ['node', ['bin/c1m.js', 'serve', 'ws-echo', '--port', 'PORT', '--host', '127.0.0.1']]],
  ['c1m --threads 2', ['node', ['bin/c1m.js', 'serve', 'ws-echo', '--port', 'PORT', '--host', '127.0.0.1', '--threads', '2']]],
  ['c1m --processes 2', ['node', ['bin/c1m.js', 'serve', 'ws-echo', '--port', 'PORT', '--host', '127.0.0.1', '--processes', '2']]],
];
const results = [];
for (const rep of [1, 2]) for (const [name, [cmd, args]] of targets) {
  const port = 9500 + Math.floor(Math.random() * 400);
  const srv = spawn(cmd, args.map((a) => (a === 'PORT' ? String(port) : a)), { cwd: new URL('..', import.meta.url).pathname, stdio: 'ignore' });
  await sleep(2500);
  const lg = spawn(new URL('../../shared/bench/loadgen', import.meta.url).pathname, ['-n', '1000', '-p', String(port), '-m', 'ws-echo', '-D', '16', '-d', '6', '-W', '2', '-q'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = ''; lg.stdout.on('data', (d) => (out += d));
  await sleep(2000 + 1500); // connect + warmup
  const pids = tree(srv.pid); const c0 = cpu(pids); const t0 = Date.now();
  await new Promise((r) => lg.on('exit', r));
  const c1 = cpu(tree(srv.pid)); const secs = (Date.now() - t0) / 1000;
  const j = JSON.parse(out.trim().split('\n').pop());
  const msgs = j.msgs_per_s * secs;
  results.push({ rep, name, msgs_per_s: j.msgs_per_s, server_cpu_s: +(c1 - c0).toFixed(2), server_cpu_us_per_msg: +(((c1 - c0) * 1e6) / msgs).toFixed(3), client_cpu_s: j.cpu_user_s + j.cpu_sys_s });
  console.error(JSON.stringify(results.at(-1)));
  srv.kill('SIGTERM'); await sleep(1500); try { process.kill(srv.pid, 'SIGKILL'); } catch {}
}
console.log(JSON.stringify({ date: new Date().toISOString(), workload: '1000 x 64 B ws-echo depth 16, loadgen unpinned on the same 2 cores', results }, null, 1));
