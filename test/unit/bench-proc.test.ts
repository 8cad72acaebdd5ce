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
import { clockTicks, machineInfo, procAlive, procStat, processTree, sampleTree } from '../../src/cli/bench-proc.js';

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
