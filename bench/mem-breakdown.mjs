#!/usr/bin/env node
/**
 * What the `server_bytes_per_conn` of `c1m bench million --ws` is made of (issue 15).
 *
 * Runs `c1m bench million --ws --ping-interval 0 --server-processes 1 --steps N` (default
 * 19,000: one gateway process at the million's per-process load) `--runs` times and takes its
 * own two samples of the server's processes at the bench's two moments: the baseline (after
 * the warm-up and the forced GCs, when the bench logs it) and the end of the hold (just before
 * the bench's no-GC sample; with a hold above 2 s, 1.85 s into it, so that the probes below
 * finish before the bench samples: e.g. `-- --hold 10`). Each sample is, per process, RssAnon and the resident kB of every
 * anonymous mapping of /proc/PID/smaps, classified:
 *
 *   v8        V8 heap pages (256 KiB-aligned mappings in V8's mmap-hint range below 2^46)
 *   code      rwx mappings (V8's code range)
 *   malloc    glibc's main arena ([heap])
 *   arenas    glibc's thread arenas (64 MiB-aligned rw-p mappings followed by their ---p reserve)
 *   stacks    [stack] and thread stacks (rw-p behind a ---p guard)
 *   bss       the anonymous tail of a file mapping (.bss)
 *   other     the rest: malloc's mmapped chunks (ArrayBuffers >= 128 KiB: the reactor's areas),
 *             anything else
 *
 * and, from inside each process (bench/mem-breakdown-preload.cjs, on SIGUSR2), V8's resident
 * bytes per heap space and process.memoryUsage(). `--trim-probe` then calls malloc_trim(0) in
 * the gateway worker through gdb and reports what it returned (that run's bench figure is
 * disturbed; the script's own end sample is taken before); `--gc-probe` first runs the bench's
 * forced GC (SIGUSR1) in it and samples again.
 *
 *   node bench/mem-breakdown.mjs [--steps 19000] [--runs 3] [--port 9731] [--trim-probe] [--gc-probe]
 *                                [--end-at MS] [--out FILE.json] [-- more c1m bench million options]
 *
 * `--end-at MS` moves the end sample to MS into the hold (default 1850; at most the hold less
 * 150 ms): `--end-at 11000 -- --hold 12` samples after compactMemory's after-burst collection
 * and trim (6 s of quiet), which the default sample comes before.
 *
 * One JSON document on stdout (every run's samples and the bench's own result), a table per
 * run on stderr.
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const c1m = join(here, '..', 'bin', 'c1m.js');
const preload = join(here, 'mem-breakdown-preload.cjs');

const dash = process.argv.indexOf('--');
const own = dash < 0 ? process.argv.slice(2) : process.argv.slice(2, dash);
const extra = dash < 0 ? [] : process.argv.slice(dash + 1);
const { values: o } = parseArgs({ args: own, options: {
  steps: { type: 'string', default: '19000' }, runs: { type: 'string', default: '3' }, port: { type: 'string', default: '9731' },
  'trim-probe': { type: 'boolean', default: false }, 'gc-probe': { type: 'boolean', default: false }, out: { type: 'string' },
  'end-at': { type: 'string', default: '1850' },
} });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => process.stderr.write(`[mem-breakdown] ${s}\n`);
const CATS = ['v8', 'code', 'malloc', 'arenas', 'stacks', 'bss', 'other'];
const MIB64 = 64n << 20n, KIB256 = 256n << 10n, V8_HINT_TOP = 1n << 46n;

/** Resident kB of every anonymous mapping of `pid`, by category (see the header). */
export function classifySmaps(text) {
  const maps = [];
  let cur = null;
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (m) {
      cur = { start: BigInt(`0x${m[1]}`), end: BigInt(`0x${m[2]}`), perms: m[3], inode: m[4], name: m[5].trim(), rss: 0 };
      maps.push(cur);
    } else if (cur && line.startsWith('Rss:')) cur.rss = Number(line.split(/\s+/)[1]);
  }
  const out = Object.fromEntries(CATS.map((c) => [c, 0]));
  for (let i = 0; i < maps.length; i++) {
    const m = maps[i], prev = maps[i - 1], next = maps[i + 1];
    const anon = m.inode === '0' && (m.name === '' || m.name.startsWith('[anon') || m.name === '[heap]' || m.name === '[stack]');
    if (!anon || m.rss === 0) continue;
    let c = 'other';
    if (m.name === '[heap]') c = 'malloc';
    else if (m.name === '[stack]') c = 'stacks';
    else if (m.perms.includes('x')) c = 'code';
    else if (m.start % MIB64 === 0n && next && next.start === m.end && next.perms === '---p' && next.end - m.start <= MIB64) c = 'arenas';
    else if (prev && prev.end === m.start && prev.perms === '---p' && prev.end - prev.start <= 65536n) c = 'stacks';
    else if (prev && prev.end === m.start && prev.inode !== '0') c = 'bss';
    else if (m.start < V8_HINT_TOP && m.start % KIB256 === 0n) c = 'v8';
    out[c] += m.rss;
  }
  return out;
}

const status = (pid) => {
  const t = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/RssAnon:\s+(\d+)/.exec(t)?.[1] ?? NaN);
};

/** The server's processes: the supervisor (`serve gateway ... --port P`) and its children. */
function serverPids(port) {
  const all = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  let sup = null;
  const ppid = new Map();
  for (const d of all) {
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      ppid.set(Number(d), Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]));
      const pi = cmd.indexOf('--port');
      if (cmd.includes('serve') && cmd.includes('gateway') && pi >= 0 && cmd[pi + 1] === String(port) && cmd.some((a) => a.endsWith('run.js'))) sup = Number(d);
    } catch {
      // gone
    }
  }
  if (sup === null) return null;
  return { supervisor: sup, workers: [...ppid].filter(([, p]) => p === sup).map(([pid]) => pid) };
}

async function v8Stats(pid, dir) {
  const before = new Set(readdirSync(dir));
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 100; i++) {
    await sleep(20);
    const f = readdirSync(dir).find((x) => x.startsWith(`${pid}-`) && !before.has(x));
    if (f) {
      await sleep(20);
      return JSON.parse(readFileSync(join(dir, f), 'utf8'));
    }
  }
  return null;
}

async function sample(port, dir) {
  const p = serverPids(port);
  if (!p) return null;
  const procs = {};
  for (const [role, pid] of [['supervisor', p.supervisor], ...p.workers.map((w) => ['worker', w])]) {
    const key = role === 'worker' && p.workers.length > 1 ? `worker-${pid}` : role;
    procs[key] = { pid, rss_anon_kb: status(pid), smaps_kb: classifySmaps(readFileSync(`/proc/${pid}/smaps`, 'utf8')), v8: role === 'worker' ? await v8Stats(pid, dir) : null };
  }
  return procs;
}

function diff(a, b, subs) {
  const rows = [];
  for (const k of Object.keys(b)) {
    const x = a?.[k], y = b[k];
    if (!x) continue;
    const row = { proc: k, rss_anon: y.rss_anon_kb - x.rss_anon_kb };
    for (const c of CATS) row[c] = y.smaps_kb[c] - x.smaps_kb[c];
    if (x.v8 && y.v8) {
      for (const [s, v] of Object.entries(y.v8.spaces)) row[`v8:${s}`] = Math.round(((v.physical - (x.v8.spaces[s]?.physical ?? 0)) / 1024));
      row['mem:arrayBuffers'] = Math.round((y.v8.memory.arrayBuffers - x.v8.memory.arrayBuffers) / 1024);
      row['mem:external'] = Math.round((y.v8.memory.external - x.v8.memory.external) / 1024);
      row['v8:malloced'] = Math.round((y.v8.heap.malloced_memory - x.v8.heap.malloced_memory) / 1024);
    }
    row.bytes_per_sub = Math.round((row.rss_anon * 1024) / subs);
    rows.push(row);
  }
  return rows;
}

async function oneRun(run, dir) {
  const port = Number(o.port);
  const args = [c1m, 'bench', 'million', '--ws', '--ping-interval', '0', '--server-processes', '1', '--steps', o.steps, '--port', String(port), '--json', ...extra];
  log(`run ${run}: node ${args.join(' ')}`);
  const env = { ...process.env, NODE_OPTIONS: [process.env.NODE_OPTIONS, `--require ${preload}`].filter(Boolean).join(' '), C1M_MEMDBG_DIR: dir };
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', buf = '';
  let base = null, end = null, trim = null, gcProbe = null;
  const pending = [];
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (/\] step .*holding|server process\(es\) \(|stopping|ws summary|summary:/.test(line)) log(`  ${line.slice(0, 200)}`);
      if (/\d+ server process\(es\) \(/.test(line)) pending.push(sample(port, dir).then((s) => (base = s)));
      const h = /holding (\d+(?:\.\d+)?)s/.exec(line);
      if (h) {
        pending.push(sleep(Math.min(Number(o['end-at']), Math.max(0, Number(h[1]) * 1000 - 150))).then(() => sample(port, dir)).then(async (s) => {
          end = s;
          if (o['gc-probe'] && s?.worker) {
            // The bench's forced GC (SIGUSR1 under --expose-gc), then a sample when RssAnon is steady.
            process.kill(s.worker.pid, 'SIGUSR1');
            await sleep(1500);
            gcProbe = await sample(port, dir);
          }
          if (o['trim-probe'] && s?.worker) {
            const pid = s.worker.pid, before = status(pid);
            try {
              execFileSync('gdb', ['-p', String(pid), '-batch', '-ex', 'call (int)malloc_trim(0)'], { stdio: 'ignore', timeout: 60_000 });
              trim = { before_kb: before, after_kb: status(pid), smaps_after_kb: classifySmaps(readFileSync(`/proc/${pid}/smaps`, 'utf8')) };
            } catch (e) {
              trim = { error: e.message };
            }
          }
        }));
      }
    }
  });
  await new Promise((r) => child.once('close', r));
  await Promise.all(pending);
  let bench = null;
  try {
    bench = JSON.parse(out.trim().split('\n').at(-1));
  } catch {
    log(`run ${run}: no JSON from the bench`);
  }
  const step = bench?.steps?.at(-1);
  const subs = step?.subscribed ?? Number(o.steps);
  const rows = base && end ? diff(base, end, subs) : [];
  const sumAnon = (s) => (s ? Object.values(s).reduce((n, p) => n + p.rss_anon_kb, 0) : null);
  const r = {
    run, subscribed: subs,
    bench: step ? { baseline_anon_kb: bench.baseline.server_anon_kb, growth_no_gc_kb: step.server_anon_growth_no_gc_kb, bytes_per_conn_no_gc: step.server_bytes_per_conn_no_gc, bytes_per_conn_after_gc: step.server_bytes_per_conn } : null,
    own: { baseline_anon_kb: sumAnon(base), end_anon_kb: sumAnon(end) },
    rows, trim, base, end, gc_probe: gcProbe, gc_probe_rows: gcProbe ? diff(base, gcProbe, subs) : null,
  };
  log(`run ${run}: bench ${r.bench?.bytes_per_conn_no_gc ?? '?'} B/sub without GC (${r.bench?.bytes_per_conn_after_gc ?? '?'} after); own baseline ${r.own.baseline_anon_kb} kB vs bench ${r.bench?.baseline_anon_kb ?? '?'} kB`);
  for (const row of rows) log(`  ${Object.entries(row).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  for (const row of r.gc_probe_rows ?? []) log(`  after a forced GC: ${Object.entries(row).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  if (trim) log(`  malloc_trim(0) in the worker: ${trim.error ?? `${trim.before_kb} -> ${trim.after_kb} kB RssAnon (${trim.after_kb - trim.before_kb} kB)`}`);
  return r;
}

const dir = mkdtempSync(join(tmpdir(), 'c1m-memdbg-'));
const runs = [];
try {
  for (let i = 1; i <= Number(o.runs); i++) {
    runs.push(await oneRun(i, dir));
    log(`uptime: ${execFileSync('uptime', { encoding: 'utf8' }).trim()}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const doc = { tool: 'bench/mem-breakdown.mjs', date: new Date().toISOString(), steps: o.steps, extra, runs };
if (o.out) writeFileSync(o.out, JSON.stringify(doc, null, 1));
process.stdout.write(`${JSON.stringify(doc)}\n`);
