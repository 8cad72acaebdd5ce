/**
 * The /proc readers `c1m bench` and bench/*.mjs share (src/cli/bench-proc.ts): the CPU tick
 * rate comes from the system, a process tree holds its children and drops them once they are
 * gone, and a sample sums its members. Facts of this process and of a child it starts, no
 * timing thresholds.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { clockTicks, cpuPhase, cpuSample, machineInfo, procAlive, procStat, processTree, sampleTree, type CpuSample } from '../../src/cli/bench-proc.js';

test('clockTicks is what getconf CLK_TCK says, read once', () => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const expected = r.status === 0 ? Number(r.stdout.trim()) : 100;
  assert.equal(clockTicks(), expected);
  assert.equal(clockTicks(), expected);
});

test('procStat parses this process, comm included', () => {
  const st = procStat(process.pid);
  assert.ok(st);
  assert.equal(st.ppid, process.ppid);
  assert.ok(st.comm.length > 0);
  assert.ok(st.utime + st.stime > 0, 'a test runner has used CPU by now');
  assert.equal(procStat(2 ** 22 + 1), null, 'above pid_max: no such process');
});

test('processTree and sampleTree cover a child while it lives, not after', async () => {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    const pid = child.pid!;
    assert.ok(processTree([process.pid]).includes(pid));
    const s = sampleTree([process.pid]);
    assert.deepEqual(new Set(s.pids), new Set(processTree([process.pid])));
    assert.equal(s.rssKb, [...s.rssByPid.values()].reduce((a, b) => a + b, 0));
    assert.equal(s.anonKb, [...s.anonByPid.values()].reduce((a, b) => a + b, 0));
    assert.ok(s.rssByPid.get(pid)! > 0 && s.anonKb > 0 && s.fileKb > 0);
    assert.ok(s.rssKb >= s.anonKb + s.fileKb, 'VmRSS = RssAnon + RssFile + RssShmem');
    assert.ok(s.cpuS > 0);
  } finally {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
  assert.equal(procAlive(child.pid!), false);
  assert.ok(!processTree([process.pid]).includes(child.pid!));
  assert.deepEqual(sampleTree([child.pid!]).pids, []);
});

test('machineInfo describes this machine', () => {
  const m = machineInfo(1024);
  assert.ok(m.cpus >= 1 && m.mem_total_kb > 0 && m.cpu_model.length > 0);
  assert.equal(m.node, process.version);
  assert.equal(m.nofile, 1024);
  assert.equal(machineInfo().nofile, null);
});

test('cpuPhase: the box busy fraction, each side\'s user and sys seconds, CPU per connection', () => {
  const a: CpuSample = { box: { total: 10_000, idle: 4_000 }, server: { user: 100, sys: 200 }, clients: { user: 50, sys: 60 } };
  const b: CpuSample = { box: { total: 12_000, idle: 4_500 }, server: { user: 400, sys: 500 }, clients: { user: 250, sys: 460 } };
  const p = cpuPhase(a, b, 10_000, 100);
  assert.deepEqual(p, {
    box_busy: 0.75, box_cpu_s: 20,
    server_user_s: 3, server_sys_s: 3, client_user_s: 2, client_sys_s: 4,
    us_per_conn: 1200, // 12 s of CPU over 10,000 connections
  });
  assert.equal(cpuPhase({ ...a, box: null }, b, 10_000, 100).box_busy, null, 'no /proc/stat: no busy figure');
  assert.equal(cpuPhase(a, b, 0, 100).us_per_conn, null, 'no connection: no per-connection figure');
});

test('cpuSample reads the box and counts the CPU a process burns, and nothing for a gone one', () => {
  const a = cpuSample([process.pid], [2 ** 22 + 1]);
  assert.ok(a.box && a.box.total > a.box.idle, 'Linux: /proc/stat has ticks');
  // Burn CPU until the kernel has charged this process at least one more tick, and /proc/stat
  // (sampled at the timer tick, apart from the per-process figures) has counted a busy one (bounded).
  const start = a.server.user + a.server.sys;
  const busy = (x: typeof a): number => x.box!.total - x.box!.idle;
  let b = a;
  for (const end = Date.now() + 10_000; Date.now() < end && (b.server.user + b.server.sys === start || busy(b) === busy(a));) {
    for (let i = 0, x = 0; i < 1e6; i++) x += Math.sqrt(i);
    b = cpuSample([process.pid], [2 ** 22 + 1]);
  }
  const p = cpuPhase(a, b, 1);
  assert.ok(p.server_user_s + p.server_sys_s > 0);
  assert.equal(p.client_user_s + p.client_sys_s, 0, 'a pid above pid_max counts nothing');
  assert.ok(p.box_busy !== null && p.box_busy > 0 && p.box_busy <= 1);
});
