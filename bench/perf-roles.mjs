#!/usr/bin/env node
/**
 * Who spent a `perf record -a -g` window, by role: c1m's server workers, `c1m bench`'s client
 * workers, the bench's parent, the gateway's leader, nats-server and the rest, each split into
 * its main thread and its other threads (V8's compiler, marker and sweeper, libuv's pool), with
 * the leaf symbols of the roles asked for.
 *
 *   perf record -a -g -F 499 -o perf.data -- sleep 22      # while the window runs
 *   ps -eo pid,args > ps.txt                                # in the same window
 *   perf script -i perf.data -F comm,pid,tid,ip,sym,dso > perf.txt
 *   node bench/perf-roles.mjs --ps ps.txt --script perf.txt [--symbols server,client,client/threads] [--top 25]
 *
 * Roles come from each sample's process id (not its thread's command name, which is `node` for
 * every thread of every Node process), looked up in the `ps` snapshot: a command line with
 * `bench-worker` is a client, `engine/worker` a server worker, `bench million` the bench's parent,
 * `serve gateway` the gateway's leader, `nats-server` the broker; others by their command.
 * A thread's samples are its process's role plus "/threads". Threads of a Node process are also
 * classed by their stacks: compile (V8's optimizing compiler), mark, sweep, scavenge, other.
 *
 * Prints one JSON document: samples, shares by role (% of all samples), and per asked role its
 * top leaf symbols (% of the role's samples) and, for "/threads" roles, the classes.
 */
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const psFile = opt('--ps'), scriptFile = opt('--script');
if (!psFile || !scriptFile) {
  process.stderr.write('usage: node bench/perf-roles.mjs --ps PS.txt --script PERF.txt [--symbols ROLE,...] [--top N]\n');
  process.exit(2);
}
const wanted = new Set((opt('--symbols', 'server,client,client/threads,bench-parent')).split(',').filter(Boolean));
const top = Number(opt('--top', '25'));

const commandOf = new Map();
for (const line of readFileSync(psFile, 'utf8').split('\n')) {
  const m = /^\s*(\d+)\s+(.*)$/.exec(line);
  if (m) commandOf.set(Number(m[1]), m[2]);
}
const roleOf = (pid) => {
  const c = commandOf.get(pid) ?? '?';
  if (c.includes('bench-worker')) return 'client';
  if (c.includes('engine/worker')) return 'server';
  if (c.includes('bench million')) return 'bench-parent';
  if (c.includes('serve gateway')) return 'gateway-leader';
  if (c.includes('nats-server')) return 'nats';
  return c.split(/\s+/)[0].slice(0, 40);
};
const classOf = (stack) => {
  const s = stack.join(' ');
  if (/compiler::|OptimizedCompilationJob|Turbofan|Maglev/.test(s)) return 'compile';
  if (/Scaveng/.test(s)) return 'scavenge';
  if (/Sweep/.test(s)) return 'sweep';
  if (/Mark/.test(s)) return 'mark';
  return 'other';
};

// `perf script` prints a header line per sample ("comm pid/tid ..."), then its stack, one frame
// a line (address, symbol, dso), then a blank line.
const samples = [];
let cur = null;
for (const line of readFileSync(scriptFile, 'utf8').split('\n')) {
  if (line.trim() === '') {
    if (cur) samples.push(cur);
    cur = null;
    continue;
  }
  const head = /^\S.*?\s(\d+)\/(\d+)\s/.exec(line);
  if (head && !/^\s/.test(line)) {
    cur = { pid: Number(head[1]), tid: Number(head[2]), stack: [] };
    continue;
  }
  if (cur) {
    const frame = line.trim().split(/\s+/).slice(1).join(' ').replace(/\s*\([^)]*\)$/, '');
    cur.stack.push(frame || '?');
  }
}
if (cur) samples.push(cur);

const n = samples.length;
const byRole = new Map(), symbols = new Map(), classes = new Map();
const bump = (m, k) => m.set(k, (m.get(k) ?? 0) + 1);
for (const s of samples) {
  const role = roleOf(s.pid) + (s.pid === s.tid ? '' : '/threads');
  bump(byRole, role);
  if (!wanted.has(role)) continue;
  if (!symbols.has(role)) symbols.set(role, new Map());
  bump(symbols.get(role), s.stack[0] ?? '?');
  if (role.endsWith('/threads')) {
    if (!classes.has(role)) classes.set(role, new Map());
    bump(classes.get(role), classOf(s.stack));
  }
}
const pct = (v, of) => Math.round((1000 * v) / of) / 10;
const sorted = (m, of, k = Infinity) => Object.fromEntries([...m].sort((a, b) => b[1] - a[1]).slice(0, k).map(([key, v]) => [key, pct(v, of)]));
const roles = {};
for (const role of wanted) {
  const total = byRole.get(role) ?? 0;
  if (total === 0) continue;
  roles[role] = { share_of_box: pct(total, n), top_symbols: sorted(symbols.get(role), total, top) };
  if (classes.has(role)) roles[role].classes = sorted(classes.get(role), total);
}
process.stdout.write(`${JSON.stringify({ samples: n, by_role: sorted(byRole, n), roles }, null, 2)}\n`);
