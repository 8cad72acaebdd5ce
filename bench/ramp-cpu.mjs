#!/usr/bin/env node
/**
 * Where the box's CPU goes in the middle of a connect ramp, by group of processes, per connection.
 *
 *   node bench/ramp-cpu.mjs [--lo 600000] [--hi 1700000] [--label L] -- CMD [ARGS...]
 *
 * Runs CMD (a `c1m bench million`, or a shell line that starts `refserver` and `loadgen`) and
 * samples /proc once a second meanwhile: the box's busy ticks (/proc/stat), TCP sockets in use
 * (/proc/net/sockstat) and the CPU ticks of every process on the box (`cpuSnapshot` of lib.mjs),
 * grouped: c1m's server workers, c1m's bench clients, other Node processes, and other programs
 * by command name (`loadgen`, `refserver`, the VM's own agent, kernel threads). The window is from the
 * first sample with at least `--lo` TCP sockets in use to the first with at least `--hi` (both
 * ends of a loopback connection count, so 600,000 to 1,700,000 is 550,000 connections), which
 * leaves out start-up, warm-up, the ramp's first and last seconds and the teardown. Processes
 * that start or end inside the window are left out of the groups (not of the box figure).
 *
 * Why: `c1m bench million` reports its own processes' CPU, and the C reference's `loadgen` its
 * own; neither shows what else the box spent. On the VMs these benchmarks run on, the guest's
 * agent (PID 1) takes a fifth of the box during a million-connection ramp whichever side runs
 * (BENCHMARKS.md, ninth sitting), so only per-group figures of one window compare the two.
 *
 * Prints one JSON document on stdout (CMD's stdout goes to stderr).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { CLK_TCK, cpuSnapshot } from './lib.mjs';

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

/** The group of each process seen, by pid (a Node process's role is in its command line, read once). */
const groups = new Map();
function groupOf(pid, comm) {
  const g = groups.get(pid);
  if (g !== undefined && g.comm === comm) return g.group;
  let group = comm;
  if (comm === 'node') {
    let a = '';
    try {
      a = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
    } catch {
      // gone meanwhile
    }
    group = a.includes('bench-worker') ? 'c1m-client'
      : a.includes('ramp-cpu') ? 'sampler'
      : a.includes('engine/worker') || a.includes('\0serve') ? 'c1m-server'
      : 'node-other';
  } else if (/^(kworker|ksoftirqd|rcu|migration)/.test(comm)) {
    group = comm.split('/')[0];
  }
  groups.set(pid, { comm, group });
  return group;
}

/** Box and per-process ticks (lib.mjs; a process's ticks include all its threads'), TCP sockets in use. */
function sample() {
  const s = cpuSnapshot();
  const inuse = Number(/^TCP: inuse (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'latin1'))?.[1] ?? 0);
  for (const [pid, p] of s.procs) p.group = groupOf(pid, p.comm);
  return { ...s, inuse };
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
    const seconds = (b.t_ms - a.t_ms) / 1000;
    const conns = (b.inuse - a.inuse) / 2;
    const per = {};
    for (const [pid, x] of b.procs) {
      const y = a.procs.get(pid);
      if (y === undefined || y.comm !== x.comm) continue;
      per[x.group] = (per[x.group] ?? 0) + (x.ticks - y.ticks);
    }
    const boxS = (b.busy_ticks - a.busy_ticks) / CLK_TCK;
    out.window = {
      seconds: Math.round(seconds * 10) / 10,
      connections: conns,
      conns_per_s: Math.round(conns / seconds),
      box_cpus: Math.round((boxS / seconds) * 100) / 100,
      box_us_per_conn: Math.round((boxS / conns) * 1e7) / 10,
    };
    for (const [g, t] of Object.entries(per).sort((x, y) => y[1] - x[1])) {
      if (t <= 0) continue;
      out.groups[g] = { us_per_conn: Math.round((t / CLK_TCK / conns) * 1e7) / 10, cpus: Math.round((t / CLK_TCK / seconds) * 100) / 100 };
    }
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
});
