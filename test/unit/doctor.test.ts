import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { keepAliveBacklogWarning, netdevBacklog, applyFixes, diagnose, doctorMain, formatReport, type DoctorCheck, type DoctorReport } from '../../src/cli/doctor.js';

/** A box that holds 1,000,000 loopback connections with room to spare; every file present. */
const HEALTHY: Record<string, string> = {
  '/proc/self/limits':
    'Limit                     Soft Limit           Hard Limit           Units     \n' +
    'Max cpu time              unlimited            unlimited            seconds   \n' +
    'Max open files            1024                 2000000              files     \n',
  '/proc/self/smaps': '00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/node\nSize:                328 kB\nKernelPageSize:        4 kB\n',
  '/proc/meminfo': 'MemTotal:       65000000 kB\nMemFree:        30000000 kB\nMemAvailable:   40000000 kB\n',
  '/proc/modules': 'nf_conntrack 172032 1 nf_nat, Live 0x0000000000000000\n',
  '/proc/sys/fs/nr_open': '2000000\n',
  '/proc/sys/fs/file-max': '9223372036854775807\n',
  '/proc/sys/fs/file-nr': '1000\t0\t9223372036854775807\n',
  '/proc/sys/net/core/somaxconn': '65535\n',
  '/proc/sys/net/core/netdev_max_backlog': '65536\n',
  '/proc/sys/net/ipv4/tcp_max_syn_backlog': '65535\n',
  '/proc/sys/net/ipv4/ip_local_port_range': '1024\t65535\n',
  '/proc/sys/net/ipv4/tcp_mem': '3000000\t4000000\t6000000\n',
  '/proc/sys/net/ipv4/tcp_max_orphans': '2000000\n',
  '/proc/sys/net/ipv4/tcp_max_tw_buckets': '2000000\n',
  '/proc/sys/net/ipv4/tcp_ehash_entries': '4194304\n',
  '/proc/sys/net/netfilter/nf_conntrack_max': '4000000\n',
  '/proc/sys/net/netfilter/nf_conntrack_count': '100\n',
};

const roots: string[] = [];
process.on('exit', () => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** A fake root: HEALTHY with `changes` applied; a null value removes that file. */
function fakeRoot(changes: Record<string, string | null> = {}): string {
  const root = mkdtempSync(join(tmpdir(), 'c1m-doctor-'));
  roots.push(root);
  for (const [path, text] of Object.entries({ ...HEALTHY, ...changes })) {
    if (text === null) continue;
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

function limits(soft: number, hard: number): string {
  return `Limit                     Soft Limit           Hard Limit           Units     \nMax open files            ${soft}                ${hard}                files     \n`;
}

function check(r: DoctorReport, name: string): DoctorCheck {
  const c = r.checks.find((x) => x.name === name);
  assert.ok(c, `no check named ${name}`);
  return c;
}

function capture(): { out: string[]; err: string[]; options: { stdout: (t: string) => void; stderr: (t: string) => void } } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, options: { stdout: (t) => out.push(t), stderr: (t) => err.push(t) } };
}

test('a healthy box is ok for 1M and names the limit closest to binding', () => {
  const r = diagnose({ connections: 1_000_000, root: fakeRoot() });
  assert.equal(r.ok, true);
  for (const c of r.checks) assert.equal(c.ok, true, `${c.name}: ${c.note}`);
  // tcp_mem max 6,000,000 pages x 4 KiB / 8 KiB per pair = 3,000,000; RLIMIT 2,000,000 - 500 is lower.
  assert.equal(r.bindingLimit?.name, 'RLIMIT_NOFILE');
  assert.equal(r.maxConnections, 1_999_500);
  assert.ok(r.checks.every((c) => c.fix === null && c.sysctl === null));
});

test('the hard RLIMIT_NOFILE binds first, with per-process figures in the note', () => {
  const r = diagnose({ connections: 1_000_000, root: fakeRoot({ '/proc/self/limits': limits(1024, 20_000) }) });
  assert.equal(r.ok, false);
  assert.equal(r.bindingLimit?.name, 'RLIMIT_NOFILE');
  assert.equal(r.maxConnections, 19_500);
  const c = check(r, 'RLIMIT_NOFILE');
  assert.equal(c.current, 20_000);
  assert.equal(c.required, 1_000_500);
  assert.equal(c.fix, 'ulimit -n 1000500');
  assert.equal(c.sysctl, null);
  assert.match(c.note, /soft 1,024, hard 20,000/);
  assert.match(c.note, /raises its soft limit to the hard limit/);
  assert.match(c.note, /~19,500 are usable per process: 52 processes per side/);
  assert.match(c.note, /2,000,500 if one process holds both ends/);
});

test('without CAP_SYS_RESOURCE (a container) the fix is more processes, not a ulimit that fails', () => {
  const status = (capBnd: string): string => `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t${capBnd}\n`;
  const stuck = check(diagnose({ connections: 1_000_000, root: fakeRoot({ '/proc/self/limits': limits(1024, 20_000), '/proc/self/status': status('000001fffeffffff') }) }), 'RLIMIT_NOFILE');
  assert.equal(stuck.fix, 'use 52 processes per side (--processes 52): this container cannot raise its hard limit (no CAP_SYS_RESOURCE); or start it with --ulimit nofile=1000500:1000500');
  const root = check(diagnose({ connections: 1_000_000, root: fakeRoot({ '/proc/self/limits': limits(1024, 20_000), '/proc/self/status': status('000001ffffffffff') }) }), 'RLIMIT_NOFILE');
  assert.equal(root.fix, 'ulimit -n 1000500', 'with the capability, the ulimit works');
});

test('each limit binds first when it is the lowest', () => {
  const cases: [Record<string, string>, string, number][] = [
    [{ '/proc/sys/fs/nr_open': '300500\n' }, 'fs.nr_open', 300_000],
    [{ '/proc/sys/fs/file-max': '801000\n' }, 'fs.file-max', 400_000],
    [{ '/proc/sys/net/ipv4/ip_local_port_range': '60000 60999\n' }, 'net.ipv4.ip_local_port_range', 100 * 1000],
    [{ '/proc/sys/net/netfilter/nf_conntrack_max': '262144\n' }, 'net.netfilter.nf_conntrack_max', 262_044],
    [{ '/proc/sys/net/ipv4/tcp_mem': '287901 383868 575802\n' }, 'net.ipv4.tcp_mem', 287_901],
    [{ '/proc/meminfo': 'MemAvailable:    1600000 kB\n' }, 'MemAvailable', 200_000],
  ];
  for (const [changes, name, allows] of cases) {
    const r = diagnose({ connections: 1_000_000, root: fakeRoot(changes) });
    assert.equal(r.bindingLimit?.name, name);
    assert.equal(r.maxConnections, allows, name);
    assert.equal(r.ok, false, name);
    assert.equal(check(r, name).ok, false, name);
  }
});

test('the lower of two low limits binds first', () => {
  const r = diagnose({
    connections: 1_000_000,
    root: fakeRoot({ '/proc/self/limits': limits(1024, 65_536), '/proc/sys/net/netfilter/nf_conntrack_max': '65536\n' }),
  });
  assert.equal(r.bindingLimit?.name, 'RLIMIT_NOFILE');
  assert.equal(r.maxConnections, 65_036);
  assert.equal(check(r, 'net.netfilter.nf_conntrack_max').binds, 65_436);
});

test('required values follow N', () => {
  const r = diagnose({ connections: 250_000, root: fakeRoot() });
  assert.equal(r.sockets, 500_000);
  assert.equal(r.sourceAddresses, 25);
  assert.equal(check(r, 'RLIMIT_NOFILE').required, 250_500);
  assert.equal(check(r, 'fs.nr_open').required, 250_500);
  assert.equal(check(r, 'fs.file-max').required, 500_000 + 1000);
  assert.equal(check(r, 'net.ipv4.ip_local_port_range').required, 10_000);
  assert.equal(check(r, 'net.ipv4.ip_local_port_range').binds, 25 * 64_512);
  assert.equal(check(r, 'net.netfilter.nf_conntrack_max').required, 250_100);
  assert.equal(check(r, 'net.ipv4.tcp_mem').required, 500_000);
  assert.equal(check(r, 'MemAvailable').required, 2_000_000);
  assert.equal(check(r, 'net.core.somaxconn').required, 65_535);
  assert.equal(check(r, 'net.ipv4.tcp_max_orphans').required, 250_000);
  // keep-alive probes of the connections of one ~2 s timer bucket leave together: N/16, a power of two
  assert.equal(check(r, 'net.core.netdev_max_backlog').required, 16_384);
  assert.equal(check(r, 'net.core.netdev_max_backlog').kind, 'advice');
  assert.deepEqual([1, 15_000, 20_000, 1_000_000, 10_000_000].map(netdevBacklog), [1000, 1024, 2048, 65_536, 65_536]);
  assert.match(check(r, 'net.ipv4.ip_local_port_range').note, /25 source addresses \(127\.0\.0\.1-127\.0\.0\.25;/);

  const small = diagnose({ connections: 15_000, root: fakeRoot({ '/proc/sys/net/ipv4/ip_local_port_range': '60000 67999\n' }) });
  // 15,000 over two source addresses is 7,500 ports each; 8,000 suffice.
  assert.equal(small.sourceAddresses, 2);
  assert.equal(check(small, 'net.ipv4.ip_local_port_range').required, 7500);
  assert.equal(check(small, 'net.ipv4.ip_local_port_range').ok, true);
  assert.equal(check(small, 'net.core.somaxconn').required, 15_000);
});

test('tcp_mem counts in the kernel page size from smaps', () => {
  const root = fakeRoot({
    '/proc/self/smaps': 'Size: 64 kB\nKernelPageSize:       64 kB\n',
    '/proc/sys/net/ipv4/tcp_mem': '10000 20000 30000\n',
  });
  const c = check(diagnose({ connections: 1_000_000, root }), 'net.ipv4.tcp_mem');
  assert.equal(c.required, 125_000);
  assert.equal(c.binds, 240_000);
  // min kept, pressure at 2/3 of the new max.
  assert.equal(c.fix, 'sysctl -w net.ipv4.tcp_mem="10000 83334 125000"');
});

test('advice checks warn but never fail the report', () => {
  const r = diagnose({
    connections: 1_000_000,
    root: fakeRoot({ '/proc/sys/net/core/somaxconn': '128\n', '/proc/sys/net/ipv4/tcp_max_tw_buckets': '4096\n' }),
  });
  assert.equal(r.ok, true);
  const c = check(r, 'net.core.somaxconn');
  assert.equal(c.kind, 'advice');
  assert.equal(c.ok, false);
  assert.equal(c.binds, null);
  assert.equal(c.fix, 'sysctl -w net.core.somaxconn=65535');
  assert.match(formatReport(r), /Advice \(does not cap N\): net\.core\.somaxconn, net\.ipv4\.tcp_max_tw_buckets/);
});

test('the established-connection hash: advice with chains of at most 2, fixed at boot, not by --apply', () => {
  const r = diagnose({ connections: 1_000_000, root: fakeRoot({ '/proc/sys/net/ipv4/tcp_ehash_entries': '262144\n' }) });
  assert.equal(r.ok, true, 'advice never fails the report');
  const c = check(r, 'net.ipv4.tcp_ehash_entries');
  assert.deepEqual([c.kind, c.ok, c.current, c.required, c.sysctl], ['advice', false, 262_144, 1_048_576, null]);
  assert.match(c.note, /2,000,000 sockets in 262,144 make chains of 7\.6 on average/);
  assert.match(c.fix ?? '', /thash_entries=1048576.*tcp_child_ehash_entries=1048576/);
  // A namespace sharing the boot table reports its size negated.
  const shared = check(diagnose({ connections: 1_000_000, root: fakeRoot({ '/proc/sys/net/ipv4/tcp_ehash_entries': '-2097152\n' }) }), 'net.ipv4.tcp_ehash_entries');
  assert.deepEqual([shared.ok, shared.current], [true, 2_097_152]);
  assert.equal(check(diagnose({ connections: 1000, root: fakeRoot() }), 'net.ipv4.tcp_ehash_entries').required, 1024);
  const unread = check(diagnose({ connections: 1000, root: fakeRoot({ '/proc/sys/net/ipv4/tcp_ehash_entries': null }) }), 'net.ipv4.tcp_ehash_entries');
  assert.deepEqual([unread.ok, unread.current, unread.fix], [false, null, null]);
});

test('no conntrack: the check passes with nothing to fill', () => {
  const root = fakeRoot({
    '/proc/modules': 'ext4 1000 1 - Live 0x0\n',
    '/proc/sys/net/netfilter/nf_conntrack_max': null,
    '/proc/sys/net/netfilter/nf_conntrack_count': null,
  });
  const c = check(diagnose({ connections: 1_000_000, root }), 'net.netfilter.nf_conntrack_max');
  assert.deepEqual([c.ok, c.current, c.binds, c.fix], [true, null, null, null]);
  assert.match(c.note, /not loaded/);

  const noModules = fakeRoot({ '/proc/modules': null, '/proc/sys/net/netfilter/nf_conntrack_max': null });
  assert.equal(check(diagnose({ connections: 10, root: noModules }), 'net.netfilter.nf_conntrack_max').ok, true);
});

test('conntrack loaded but its sysctl unreadable is reported, not guessed', () => {
  const root = fakeRoot({ '/proc/sys/net/netfilter/nf_conntrack_max': null });
  const r = diagnose({ connections: 1_000_000, root });
  const c = check(r, 'net.netfilter.nf_conntrack_max');
  assert.deepEqual([c.ok, c.current, c.binds, c.fix, c.sysctl], [false, null, null, null, null]);
  assert.equal(r.ok, false);
  assert.match(formatReport(r), /Not checked \(unreadable\): net\.netfilter\.nf_conntrack_max/);
});

test('legacy net.nf_conntrack_max is read when the netfilter one is absent', () => {
  const root = fakeRoot({ '/proc/sys/net/netfilter/nf_conntrack_max': null, '/proc/sys/net/nf_conntrack_max': '500000\n' });
  assert.equal(check(diagnose({ connections: 1_000_000, root }), 'net.netfilter.nf_conntrack_max').binds, 499_900);
});

test('an empty root reads nothing, throws nothing, and is not ok', async () => {
  const root = mkdtempSync(join(tmpdir(), 'c1m-doctor-'));
  roots.push(root);
  const r = diagnose({ connections: 1000, root });
  assert.equal(r.ok, false);
  assert.equal(r.bindingLimit, null);
  assert.equal(r.maxConnections, null);
  for (const c of r.checks.filter((x) => x.name !== 'net.netfilter.nf_conntrack_max')) {
    assert.equal(c.current, null, c.name);
    assert.equal(c.fix, null, c.name);
  }
  assert.match(formatReport(r), /Not checked \(unreadable\): RLIMIT_NOFILE, fs\.nr_open, fs\.file-max/);
  const io = capture();
  assert.equal(await doctorMain(['--connections', '1000'], { root, ...io.options }), 1);
});

test('LONG_MAX file-max and unlimited values format as unlimited', () => {
  const text = formatReport(diagnose({ connections: 1_000_000, root: fakeRoot() }));
  assert.match(text, /fs\.file-max\s+unlimited files\s+2,001,000 files\s+unlimited/);
});

test('formatReport marks the binding limit and lists every fix in order', () => {
  const root = fakeRoot({
    '/proc/self/limits': limits(1024, 20_000),
    '/proc/sys/fs/nr_open': '1048576\n',
    '/proc/sys/fs/file-max': '1500000\n',
    '/proc/sys/net/core/somaxconn': '4096\n',
  });
  const text = formatReport(diagnose({ connections: 1_000_000, root }));
  assert.match(text, /^> LOW\s+RLIMIT_NOFILE\s+20,000 files\s+1,000,500 files\s+19,500\s+<== binds first$/m);
  assert.match(text, /^  LOW\s+fs\.file-max\s+1,500,000 files/m);
  assert.match(text, /^LOW: RLIMIT_NOFILE binds first: it allows 19,500 of 1,000,000 connections\.$/m);
  const fixes = text.slice(text.indexOf('Fixes, in order'));
  const order = ['sysctl -w fs.file-max=2001000', 'sysctl -w net.core.somaxconn=65535', 'ulimit -n 1000500'].map((f) => fixes.indexOf(f));
  assert.ok(order.every((i) => i > 0) && order[0]! < order[1]! && order[1]! < order[2]!, fixes);
  assert.match(text, /^  fs\.file-max = 2001000$/m);
});

test('--json prints the report with the documented shape', async () => {
  const io = capture();
  const code = await doctorMain(['--json', '--connections', '1_000_000'], { root: fakeRoot({ '/proc/self/limits': limits(1024, 20_000) }), ...io.options });
  assert.equal(code, 1);
  const r = JSON.parse(io.out.join('')) as DoctorReport;
  assert.deepEqual(Object.keys(r).sort(), ['bindingLimit', 'checks', 'connections', 'maxConnections', 'ok', 'sockets', 'sourceAddresses']);
  assert.equal(r.connections, 1_000_000);
  assert.equal(r.ok, false);
  assert.equal(r.maxConnections, 19_500);
  assert.equal(r.bindingLimit?.name, 'RLIMIT_NOFILE');
  assert.equal(r.checks.length, 13);
  for (const c of r.checks) {
    assert.deepEqual(Object.keys(c).sort(), ['binds', 'current', 'fix', 'kind', 'name', 'note', 'ok', 'required', 'sysctl', 'unit']);
    assert.equal(typeof c.name, 'string');
    assert.ok(c.kind === 'limit' || c.kind === 'advice');
    assert.ok(c.current === null || typeof c.current === 'number');
    assert.equal(typeof c.required, 'number');
    assert.equal(typeof c.ok, 'boolean');
    assert.ok(c.binds === null || typeof c.binds === 'number');
    assert.ok(c.fix === null || typeof c.fix === 'string');
    assert.equal(typeof c.note, 'string');
  }
  assert.equal(io.err.join(''), '');
});

test('exit code 0 when every limit allows N', async () => {
  const io = capture();
  assert.equal(await doctorMain(['-n', '1000000'], { root: fakeRoot(), ...io.options }), 0);
  assert.match(io.out.join(''), /^OK: every limit allows 1,000,000 connections; the first to bind is RLIMIT_NOFILE at 1,999,500\.$/m);
});

test('applyFixes writes each low sysctl under the root and logs the command first', () => {
  const root = fakeRoot({
    '/proc/self/limits': limits(1024, 20_000),
    '/proc/sys/fs/nr_open': '1048576\n',
    '/proc/sys/fs/file-max': '1500000\n',
    '/proc/sys/net/ipv4/ip_local_port_range': '60000\t60999\n',
    '/proc/sys/net/netfilter/nf_conntrack_max': '262144\n',
    '/proc/sys/net/ipv4/tcp_mem': '287901\t383868\t575802\n',
    '/proc/sys/net/core/somaxconn': '4096\n',
  });
  const before = diagnose({ connections: 2_000_000, root });
  const lines: string[] = [];
  const result = applyFixes(before, { root, log: (l) => lines.push(l) });
  const expected = [
    'sysctl -w fs.nr_open=2000500',
    'sysctl -w fs.file-max=4001000',
    'sysctl -w net.ipv4.ip_local_port_range="1024 65535"',
    'sysctl -w net.netfilter.nf_conntrack_max=2000100',
    'sysctl -w net.ipv4.tcp_mem="287901 2666667 4000000"',
    'sysctl -w net.core.somaxconn=65535',
  ];
  assert.deepEqual(result.applied, expected);
  assert.deepEqual(result.failed, []);
  assert.deepEqual(lines.slice(0, expected.length), expected);
  assert.match(lines.join('\n'), /# RLIMIT_NOFILE: a process cannot raise its own hard limit\. .*: ulimit -n 2000500/);
  assert.equal(readFileSync(join(root, 'proc/sys/fs/nr_open'), 'utf8'), '2000500\n');
  assert.equal(readFileSync(join(root, 'proc/sys/net/ipv4/ip_local_port_range'), 'utf8'), '1024 65535\n');
  assert.equal(readFileSync(join(root, 'proc/sys/net/ipv4/tcp_mem'), 'utf8'), '287901 2666667 4000000\n');

  const after = diagnose({ connections: 2_000_000, root });
  assert.deepEqual(after.checks.filter((c) => !c.ok).map((c) => c.name), ['RLIMIT_NOFILE']);
  assert.equal(after.bindingLimit?.name, 'RLIMIT_NOFILE');
});

test('applyFixes reports a write that fails and carries on', () => {
  const root = fakeRoot({ '/proc/sys/fs/nr_open': '1000\n', '/proc/sys/net/core/somaxconn': '128\n' });
  const r = diagnose({ connections: 1_000_000, root });
  // A directory where the file was: the write fails with EISDIR even as root.
  rmSync(join(root, 'proc/sys/fs/nr_open'));
  mkdirSync(join(root, 'proc/sys/fs/nr_open'));
  const lines: string[] = [];
  const result = applyFixes(r, { root, log: (l) => lines.push(l) });
  assert.deepEqual(result.applied, ['sysctl -w net.core.somaxconn=65535']);
  assert.equal(result.failed.length, 1);
  assert.equal(result.failed[0]!.command, 'sysctl -w fs.nr_open=1000500');
  assert.match(result.failed[0]!.error, /EISDIR/);
  assert.ok(lines.some((l) => /failed: .*EISDIR/.test(l)));
});

test('--apply through doctorMain writes, then reports the box as it is after', async () => {
  const root = fakeRoot({ '/proc/sys/net/netfilter/nf_conntrack_max': '262144\n' });
  const io = capture();
  assert.equal(await doctorMain(['--apply'], { root, ...io.options }), 0);
  const out = io.out.join('');
  assert.match(out, /^sysctl -w net\.netfilter\.nf_conntrack_max=1000100$/m);
  assert.match(out, /^OK: every limit allows 1,000,000 connections/m);
  assert.equal(readFileSync(join(root, 'proc/sys/net/netfilter/nf_conntrack_max'), 'utf8'), '1000100\n');

  const json = capture();
  const root2 = fakeRoot({ '/proc/sys/net/core/somaxconn': '128\n' });
  assert.equal(await doctorMain(['--apply', '--json'], { root: root2, ...json.options }), 0);
  const r = JSON.parse(json.out.join('')) as DoctorReport & { apply: { applied: string[] } };
  assert.deepEqual(r.apply.applied, ['sysctl -w net.core.somaxconn=65535']);
  assert.match(json.err.join(''), /sysctl -w net\.core\.somaxconn=65535/);
});

test('bad arguments exit 2 with the usage on stderr', async () => {
  const bad = [['--connections', 'abc'], ['--connections', '0'], ['--connections', '-5'], ['--connections', '1.5'], ['--connections'], ['--bogus'], ['extra'], ['--json=yes']];
  for (const argv of bad) {
    const io = capture();
    assert.equal(await doctorMain(argv, { root: fakeRoot(), ...io.options }), 2, argv.join(' '));
    assert.match(io.err.join(''), /Usage: c1m doctor/, argv.join(' '));
    assert.equal(io.out.join(''), '', argv.join(' '));
  }
});

test('--help prints the usage and exits 0', async () => {
  const io = capture();
  assert.equal(await doctorMain(['--help'], io.options), 0);
  assert.match(io.out.join(''), /^Usage: c1m doctor/);
});

test('diagnose rejects a bad target with ERR_C1M_INVALID_OPTION', () => {
  for (const connections of [0, -1, 1.5, Number.NaN, 2 ** 53]) {
    assert.throws(() => diagnose({ connections, root: '/nonexistent' }), { code: 'ERR_C1M_INVALID_OPTION' });
  }
});

test('c1m bench million --tcp-keepalive warns when netdev_max_backlog is below the advice', () => {
  const low = diagnose({ connections: 1_000_000, root: fakeRoot({ '/proc/sys/net/core/netdev_max_backlog': '1000\n' }) });
  assert.equal(
    keepAliveBacklogWarning(low),
    'warning: net.core.netdev_max_backlog is 1,000, below the 65,536 c1m doctor advises for 1,000,000: keep-alive probes that fire together will be dropped and live connections reset (fix: sysctl -w net.core.netdev_max_backlog=65536)',
  );
  assert.equal(keepAliveBacklogWarning(diagnose({ connections: 1_000_000, root: fakeRoot() })), undefined, 'enough');
  assert.equal(keepAliveBacklogWarning(diagnose({ connections: 1_000_000, root: fakeRoot({ '/proc/sys/net/core/netdev_max_backlog': null }) })), undefined, 'unreadable');
});
