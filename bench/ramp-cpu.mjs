#!/usr/bin/env node
/**
 * Where the box's CPU goes in the middle of a connect ramp, by group of processes, per connection.
 *
 *   node bench/ramp-cpu.mjs [--lo 600000] [--hi 1700000] [--label L] -- CMD [ARGS...]
 *
 * Runs CMD (a `c1m bench million`, or a shell line that starts `refserver` and `loadgen`) and
 * samples /proc once a second meanwhile: the box's busy ticks (/proc/stat), TCP sockets in use
 * (/proc/net/sockstat) and the CPU ticks of every thread on the box, grouped by process (c1m's
 * server workers, c1m's bench clients, other Node processes, and other programs by command
 * name: `loadgen`, `refserver`, the VM's own agent, kernel threads). The window is from the
 * first sample with at least `--lo` TCP sockets in use to the first with at least `--hi` (both
 * ends of a loopback connection count, so 600,000 to 1,700,000 is 550,000 connections), which
 * leaves out start-up, warm-up, the ramp's first and last seconds and the teardown. Threads that
 * start or end inside the window are left out of the groups (not of the box figure).
 *
 * Why: `c1m bench million` reports its own processes' CPU, and the C reference's `loadgen` its
 * own; neither shows what else the box spent. On the VMs these benchmarks run on, the guest's
 * agent (PID 1) takes a fifth of the box during a million-connection ramp whichever side runs
 * (BENCHMARKS.md, ninth sitting), so only per-group figures of one window compare the two.
 *
 * Prints one JSON document on stdout (CMD's stdout goes to stderr).
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const dash = args.indexOf('--');
if (dash < 0 || dash === args.length - 1) {
  process.stderr.write('usage: node bench/ramp-cpu.mjs [--lo N] [--hi N] [--label L] -- CMD [ARGS...]\n');
  process.exit(2);
}
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 && i < dash ? args[i + 1] : def;
};
const lo = Number(opt('--lo', '600000'));
const hi = Number(opt('--hi', '1700000'));
const label = opt('--label', null);
const cmd = args.slice(dash + 1);
const HZ = 100; // USER_HZ: the unit of /proc's CPU ticks, 100 on Linux

const read = (p) => {
  try {
    return readFileSync(p, 'latin1');
  } catch {
    return null;
  }
};

/** The group a process counts in. */
function groupOf(pid, comm) {
  if (comm === 'node') {
    const a = read(`/proc/${pid}/cmdline`) ?? '';
    if (a.includes('bench-worker')) return 'c1m-client';
    if (a.includes('ramp-cpu')) return 'sampler';
    if (a.includes('engine/worker') || a.includes(' serve') || a.includes('\0serve')) return 'c1m-server';
    return 'node-other';
  }
  if (/^(kworker|ksoftirqd|rcu|migration)/.test(comm)) return comm.split('/')[0];
  return comm;
}

function sample() {
  const stat = (read('/proc/stat') ?? '').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
  const busy = stat.reduce((a, b) => a + b, 0) - (stat[3] ?? 0) - (stat[4] ?? 0);
  const inuse = Number(/^TCP: inuse (\d+)/m.exec(read('/proc/net/sockstat') ?? '')?.[1] ?? 0);
  const tasks = new Map();
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const comm = (read(`/proc/${pid}/comm`) ?? '').trim();
    if (!comm) continue;
    const group = groupOf(pid, comm);
    let tids;
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      const s = read(`/proc/${pid}/task/${tid}/stat`);
      if (!s) continue;
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      tasks.set(tid, { group, ticks: Number(f[11]) + Number(f[12]) });
    }
  }
  return { t: performance.now(), busy, inuse, tasks };
}

const samples = [];
const child = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 2, 2] });
const timer = setInterval(() => samples.push(sample()), 1000);
samples.push(sample());
child.on('exit', (code) => {
  clearInterval(timer);
  const a = samples.find((s) => s.inuse >= lo);
  const b = samples.find((s) => s.inuse >= hi);
  const out = { tool: 'ramp-cpu', label, command: cmd.join(' '), exit_code: code, lo, hi, window: null, groups: {} };
  if (a && b && b !== a) {
    const seconds = (b.t - a.t) / 1000;
    const conns = (b.inuse - a.inuse) / 2;
    const per = {};
    for (const [tid, x] of b.tasks) {
      const y = a.tasks.get(tid);
      if (y === undefined) continue;
      per[x.group] = (per[x.group] ?? 0) + (x.ticks - y.ticks);
    }
    const boxS = (b.busy - a.busy) / HZ;
    out.window = {
      seconds: Math.round(seconds * 10) / 10,
      connections: conns,
      conns_per_s: Math.round(conns / seconds),
      box_cpus: Math.round((boxS / seconds) * 100) / 100,
      box_us_per_conn: Math.round((boxS / conns) * 1e7) / 10,
    };
    for (const [g, t] of Object.entries(per).sort((x, y) => y[1] - x[1])) {
      if (t <= 0) continue;
      out.groups[g] = { us_per_conn: Math.round((t / HZ / conns) * 1e7) / 10, cpus: Math.round((t / HZ / seconds) * 100) / 100 };
    }
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
});
