#!/usr/bin/env node
// TLS benchmarks (issue 13), c1m beside node:tls / node:https (and uWebSockets.js's SSLApp for
// HTTPS) and beside tlsref, a minimal C epoll server on the same OpenSSL 3.0 (bench/tlsref: the
// floor OpenSSL itself sets), in one run. One JSON document on stdout, progress on stderr.
//
//   node bench/tls.mjs [--quick] [--parts handshake,echo,https,idle] [--out FILE]
//        [--servers c1m,tlsref,node,uws]
//
// Every server is a fresh process pinned to CPU 0; every generator is pinned to CPU 1.
// Certificates (ECDSA P-256 and RSA 2048, CN=localhost) are made with the `openssl` command in
// a temporary directory, removed at exit. Every child is killed at exit, on failure too.
//
// 1. handshake: `openssl s_time` processes (-new: full handshakes, TLS 1.3; -reuse: resumed;
//    s_time prints one character per connection, 'r' when the session was reused, so the
//    fraction really resumed is measured, and when TLS 1.3 does not resume (s_time reads no
//    post-handshake ticket) the resumed figure is taken with -tls1_2 and says so). Servers:
//    `c1m serve echo --tls-cert/--tls-key`, a node:tls echo server, uWS SSLApp and tlsref echo,
//    for each certificate.
//    handshakes/s and server CPU per handshake (the generator may be the limit: s_time's own
//    client handshake costs about as much as the server's for ECDSA).
// 2. echo: bench/tls-client.mjs (c1m's native client) 1000 x 64 B at depth 16 and 100 x 4 KiB
//    at depth 1 against c1m TLS, c1m plaintext, node:tls echo, tlsref TLS and tlsref plaintext:
//    messages/s, server CPU per message.
// 3. https: `wrk -t1 -c100` against `c1m serve http --tls-*`, node:https and uWS SSLApp:
//    requests/s, server CPU per request.
// 4. idle: 19,000 idle TLS connections (two client processes) held by c1m, node:tls and tlsref:
//    server VmRSS growth per connection over its own baseline, without forced GC, and after a
//    forced GC beside it; for tlsref also malloc's heap growth per connection (mallinfo2), i.e.
//    OpenSSL's own bytes per idle connection.
// `summary` puts each metric of c1m, tlsref and node:tls side by side, with c1m/tlsref and
// node/tlsref ratios (tlsref = 1: the OpenSSL 3.0 floor).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_DIR, REPO_DIR, Server, emit, freePort, log, machineInfo, ratio, round, runClient, sleep, treeCpuSeconds, treeMemKb } from './lib.mjs';

const PROG = 'tls.mjs';
const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    parts: { type: 'string', default: 'handshake,echo,https,idle' },
    host: { type: 'string', default: '127.0.0.1' },
    out: { type: 'string' },
    duration: { type: 'string' },
    'idle-conns': { type: 'string' },
    servers: { type: 'string', default: 'c1m,tlsref,node,uws' },
  },
  strict: true,
});
const QUICK = opt.quick;
const DURATION = Number(opt.duration ?? (QUICK ? 2 : 10));
const IDLE_CONNS = Number(opt['idle-conns'] ?? (QUICK ? 2000 : 19000));
const HOST = opt.host;
const PARTS = new Set(opt.parts.split(','));
for (const p of PARTS) if (!['handshake', 'echo', 'https', 'idle'].includes(p)) fail(`unknown part ${p}`);
if (!(DURATION > 0) || !(IDLE_CONNS > 0)) fail('--duration and --idle-conns must be positive numbers');
const SERVERS = new Set(opt.servers.split(','));
for (const s of SERVERS) if (!['c1m', 'tlsref', 'node', 'uws'].includes(s)) fail(`unknown server family ${s} (c1m, tlsref, node, uws)`);
/** The server kinds of `kinds` whose family (c1m-*, tlsref-*, node-*, uws-*) --servers selects. */
const pick = (kinds) => kinds.filter((k) => SERVERS.has(k.split('-')[0]));

const C1M_BIN = process.env.C1M_BIN ?? path.join(REPO_DIR, 'bin/c1m.js');
const NODE_TLS = path.join(BENCH_DIR, 'servers/tls-node.mjs');
const UWS = path.join(BENCH_DIR, 'servers/uws-https.mjs');
const CLIENT = path.join(BENCH_DIR, 'tls-client.mjs');
const TLSREF_DIR = path.join(BENCH_DIR, 'tlsref');
const TLSREF = process.env.TLSREF_BIN ?? path.join(TLSREF_DIR, 'tlsref');
const TLSREF_ARGS = (process.env.TLSREF_ARGS ?? '').split(/\s+/).filter(Boolean); // e.g. -K (keep buffers)

function fail(msg) {
  process.stderr.write(`${PROG}: ${msg}\n`);
  process.exit(2);
}
function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}
for (const cmd of ['openssl', 'taskset']) if (!have(cmd)) fail(`${cmd} is required`);
if (!fs.existsSync(path.join(REPO_DIR, 'dist/index.js'))) fail('dist/index.js is missing: npm run build first');
if (SERVERS.has('tlsref') && !process.env.TLSREF_BIN) {
  const r = spawnSync('make', ['-s', '-C', TLSREF_DIR], { encoding: 'utf8' }); // builds once, then a no-op
  if (r.status !== 0) fail(`make -C bench/tlsref failed (apt-get install libssl-dev?): ${r.stderr}`);
}

// ---------------------------------------------------------------- certificates
const DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'c1m-tlsbench-'));
process.once('exit', () => fs.rmSync(DIR, { recursive: true, force: true }));
const SAN = ['-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'];
const CERTS = {
  ecdsa: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'],
  rsa: ['-newkey', 'rsa:2048'],
};
for (const [name, key] of Object.entries(CERTS)) {
  const r = spawnSync('openssl', ['req', '-x509', ...key, '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', '/CN=localhost', '-days', '2', ...SAN], { cwd: DIR, encoding: 'utf8' });
  if (r.status !== 0) fail(`openssl req (${name}): ${r.stderr}`);
}
const cert = (name) => ({ cert: path.join(DIR, `${name}.crt`), key: path.join(DIR, `${name}.key`) });

// ---------------------------------------------------------------- servers
/**
 * The argv of a server; `kind`: c1m-tls-echo, c1m-echo, c1m-tls-http, node-tls-echo, node-tls-hold,
 * node-https, uws-https, tlsref-echo, tlsref-hold, tlsref-plain.
 */
function serverArgv(kind, port, certName) {
  const c = cert(certName);
  const node = [process.execPath, '--expose-gc'];
  const common = ['--port', String(port), '--host', HOST];
  switch (kind) {
    case 'c1m-echo': return [...node, C1M_BIN, 'serve', 'echo', ...common, '--backend', 'native'];
    case 'c1m-tls-echo': return [...node, C1M_BIN, 'serve', 'echo', ...common, '--backend', 'native', '--tls-cert', c.cert, '--tls-key', c.key];
    case 'c1m-tls-http': return [...node, C1M_BIN, 'serve', 'http', ...common, '--backend', 'native', '--tls-cert', c.cert, '--tls-key', c.key];
    case 'node-tls-echo': return [...node, NODE_TLS, '--mode', 'echo', '--cert', c.cert, '--key', c.key, ...common];
    case 'node-tls-hold': return [...node, NODE_TLS, '--mode', 'hold', '--cert', c.cert, '--key', c.key, ...common];
    case 'node-https': return [...node, NODE_TLS, '--mode', 'https', '--cert', c.cert, '--key', c.key, ...common];
    case 'uws-https': return [...node, UWS, '--cert', c.cert, '--key', c.key, ...common];
    case 'tlsref-echo': case 'tlsref-hold': case 'tlsref-plain':
      return [TLSREF, '-m', kind.slice(7), '-c', c.cert, '-k', c.key, '-p', String(port), '-a', HOST, ...TLSREF_ARGS];
    default: throw new Error(`unknown server ${kind}`);
  }
}

async function startServer(kind, certName = 'ecdsa') {
  const port = await freePort(HOST);
  const server = new Server(kind, { argv: serverArgv(kind, port, certName), ready: 'stdout', gc: true, stats: false }, { host: HOST, port, cpu: 0 });
  try {
    await server.waitReady(20000);
  } catch (err) {
    await server.stop(1000);
    throw err;
  }
  return server;
}

/** Runs `fn(server)` on a fresh server; the server is stopped whatever happens. */
async function withServer(kind, certName, fn) {
  const server = await startServer(kind, certName);
  try {
    return await fn(server);
  } finally {
    const s = await server.stop(3000);
    if (!s.graceful) log(`[tls] ${kind}: not a graceful exit (code ${s.code}, signal ${s.signal})`);
  }
}

/** One measurement that may fail: the failure is recorded, the run goes on. */
async function trial(label, fn) {
  log(`[tls] ${label}`);
  try {
    return { ok: true, ...(await fn()) };
  } catch (err) {
    log(`[tls] ${label} failed: ${err.message}`);
    return { ok: false, error: err.message };
  }
}

// ---------------------------------------------------------------- 1. handshakes
const STIME_PROCS = 2;

/** `openssl s_time` x STIME_PROCS on CPU 1: connections, how many were resumed, seconds. */
async function sTime(port, how, extra) {
  const runs = Array.from({ length: STIME_PROCS }, () =>
    runClient(['openssl', 's_time', '-connect', `${HOST}:${port}`, how, '-time', String(DURATION), ...extra], { cpu: 1, timeoutMs: (DURATION + 30) * 1000 }));
  const done = await Promise.all(runs.map((r) => r.done));
  let conns = 0, rate = 0, reused = 0, marks = 0;
  for (const d of done) {
    const text = d.stdout.join('\n');
    // one character per connection: 'r' reused; '*', 't', '1', '2', '3' ... a full handshake
    for (const line of d.stdout) {
      if (/connections|Collecting|timing|^\s*$/i.test(line) || line.includes(' ')) continue;
      marks += line.length;
      reused += (line.match(/r/g) ?? []).length;
    }
    const m = [...text.matchAll(/(\d+) connections in ([\d.]+) real seconds/g)];
    if (m.length === 0) throw new Error(`s_time printed no result (code ${d.code}): ${d.stderrTail.slice(-3).join(' | ')}`);
    conns += Number(m[m.length - 1][1]);
    rate += Number(m[m.length - 1][1]) / Number(m[m.length - 1][2]);
  }
  return { conns, rate, resumed_fraction: marks ? round(reused / marks, 3) : null };
}

async function handshakes(kind, certName, how, extra) {
  return withServer(kind, certName, async (server) => {
    await sTime(server.port, how, [...extra, '-time', '1']).catch(() => {}); // warm-up
    const cpu0 = treeCpuSeconds(server.pid);
    const t0 = performance.now();
    const r = await sTime(server.port, how, extra);
    const secs = (performance.now() - t0) / 1000;
    const cpu = treeCpuSeconds(server.pid) - cpu0;
    return {
      handshakes: r.conns, seconds: round(secs, 2), handshakes_per_s: round(r.rate, 0),
      server_cpu_s: round(cpu, 2), server_cpu_us_per_handshake: r.conns ? round((cpu * 1e6) / r.conns, 1) : null,
      server_cpu_share: round(cpu / secs, 2), resumed_fraction: r.resumed_fraction, s_time_args: [how, ...extra],
    };
  });
}

async function partHandshake() {
  const out = {};
  for (const certName of ['ecdsa', 'rsa']) {
    for (const kind of pick(['c1m-tls-echo', 'node-tls-echo', 'uws-https', 'tlsref-echo'])) {
      const key = `${certName}/${kind}`;
      out[key] = { full: await trial(`handshake full ${key}`, () => handshakes(kind, certName, '-new', [])) };
      let resumed = await trial(`handshake resumed TLS 1.3 ${key}`, () => handshakes(kind, certName, '-reuse', []));
      if (resumed.ok && !(resumed.resumed_fraction >= 0.9)) {
        log(`[tls] ${key}: s_time -reuse resumed ${resumed.resumed_fraction} with TLS 1.3; measuring TLS 1.2 resumption`);
        const tls13 = resumed;
        resumed = await trial(`handshake resumed TLS 1.2 ${key}`, () => handshakes(kind, certName, '-reuse', ['-tls1_2']));
        resumed.note = `TLS 1.2: s_time -reuse over TLS 1.3 resumed only ${tls13.resumed_fraction} of its connections`;
      }
      out[key].resumed = resumed;
    }
    const pairs = [['uws', 'uws-https', 'node_tls', 'node-tls-echo'], ['c1m', 'c1m-tls-echo', 'node_tls', 'node-tls-echo'],
      ['c1m', 'c1m-tls-echo', 'tlsref', 'tlsref-echo'], ['node_tls', 'node-tls-echo', 'tlsref', 'tlsref-echo']];
    for (const how of ['full', 'resumed']) {
      for (const [an, a, bn, b] of pairs) {
        const x = out[`${certName}/${a}`]?.[how], y = out[`${certName}/${b}`]?.[how];
        if (!x || !y) continue;
        out[`${certName}/${how}_${an}_vs_${bn}`] = {
          handshakes_per_s: ratio(x.handshakes_per_s, y.handshakes_per_s),
          server_cpu_per_handshake: ratio(x.server_cpu_us_per_handshake, y.server_cpu_us_per_handshake),
        };
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- 2. echo
const ECHO_WORKLOADS = [
  { name: '1000x64B-d16', conns: 1000, size: 64, depth: 16 },
  { name: '100x4096B-d1', conns: 100, size: 4096, depth: 1 },
];

async function echoTrial(kind, w) {
  return withServer(kind, 'ecdsa', async (server) => {
    const tls = !['c1m-echo', 'tlsref-plain'].includes(kind);
    let cpuAt = null;
    const run = runClient([process.execPath, CLIENT, '--mode', 'echo', '--port', String(server.port), '--host', HOST, ...(tls ? ['--tls'] : []),
      '--conns', String(w.conns), '--size', String(w.size), '--depth', String(w.depth), '--warmup', QUICK ? '1' : '2', '--duration', String(DURATION)], {
      cpu: 1,
      timeoutMs: (DURATION + 90) * 1000,
      onStdout: (l) => {
        if (l.includes('"measure"')) cpuAt = treeCpuSeconds(server.pid);
        if (l.includes('"done"') && cpuAt !== null) cpuAt = treeCpuSeconds(server.pid) - cpuAt;
      },
    });
    const d = await run.done;
    const last = d.stdout.map((l) => { try { return JSON.parse(l); } catch { return null; } }).find((o) => o?.phase === 'done');
    if (!last) throw new Error(`client gave no result (code ${d.code}): ${d.stderrTail.slice(-3).join(' | ')}`);
    if (last.failed) throw new Error(`${last.failed} connection(s) failed: ${last.firstError}`);
    const cpu = cpuAt;
    return {
      messages: last.messages, seconds: round(last.seconds, 2), msgs_per_s: round(last.messages / last.seconds, 0),
      server_cpu_s: round(cpu, 2), server_cpu_ns_per_msg: last.messages ? round((cpu * 1e9) / last.messages, 0) : null,
    };
  });
}

async function partEcho() {
  const out = {};
  for (const w of ECHO_WORKLOADS) {
    const r = (out[w.name] = {});
    for (const kind of pick(['c1m-tls-echo', 'c1m-echo', 'node-tls-echo', 'tlsref-echo', 'tlsref-plain'])) r[kind] = await trial(`echo ${w.name} ${kind}`, () => echoTrial(kind, w));
    const msgs = (k) => r[k]?.msgs_per_s, cpu = (k) => r[k]?.server_cpu_ns_per_msg;
    r.ratios = {
      c1m_tls_vs_c1m_plain_msgs: ratio(msgs('c1m-tls-echo'), msgs('c1m-echo')),
      c1m_tls_vs_node_tls_msgs: ratio(msgs('c1m-tls-echo'), msgs('node-tls-echo')),
      c1m_tls_vs_node_tls_cpu_per_msg: ratio(cpu('c1m-tls-echo'), cpu('node-tls-echo')),
      tlsref_tls_vs_tlsref_plain_msgs: ratio(msgs('tlsref-echo'), msgs('tlsref-plain')),
      tlsref_tls_vs_tlsref_plain_cpu_per_msg: ratio(cpu('tlsref-echo'), cpu('tlsref-plain')),
      c1m_tls_vs_tlsref_msgs: ratio(msgs('c1m-tls-echo'), msgs('tlsref-echo')),
      c1m_tls_vs_tlsref_cpu_per_msg: ratio(cpu('c1m-tls-echo'), cpu('tlsref-echo')),
      node_tls_vs_tlsref_cpu_per_msg: ratio(cpu('node-tls-echo'), cpu('tlsref-echo')),
    };
  }
  return out;
}

// ---------------------------------------------------------------- 3. https
async function wrkTrial(kind) {
  return withServer(kind, 'ecdsa', async (server) => {
    const url = `https://${HOST}:${server.port}/`;
    await runClient(['wrk', '-t1', '-c100', '-d1s', url], { cpu: 1, timeoutMs: 30000 }).done; // warm-up
    const cpu0 = treeCpuSeconds(server.pid);
    const d = await runClient(['wrk', '-t1', '-c100', `-d${DURATION}s`, url], { cpu: 1, timeoutMs: (DURATION + 30) * 1000 }).done;
    const cpu = treeCpuSeconds(server.pid) - cpu0;
    const text = d.stdout.join('\n');
    const reqs = Number(text.match(/(\d+) requests in/)?.[1]);
    const rps = Number(text.match(/Requests\/sec:\s*([\d.]+)/)?.[1]);
    const errors = text.match(/Socket errors:.*|Non-2xx.*/g) ?? [];
    if (!Number.isFinite(reqs) || !Number.isFinite(rps)) throw new Error(`wrk gave no result (code ${d.code}): ${[...d.stdout, ...d.stderrTail].slice(-4).join(' | ')}`);
    return { requests: reqs, requests_per_s: round(rps, 0), server_cpu_s: round(cpu, 2), server_cpu_us_per_request: reqs ? round((cpu * 1e6) / reqs, 2) : null, wrk_errors: errors };
  });
}

async function partHttps() {
  if (!have('wrk')) return { skipped: 'wrk is not installed (apt-get install wrk)' };
  const out = {};
  for (const kind of pick(['c1m-tls-http', 'node-https', 'uws-https'])) out[kind] = await trial(`https ${kind}`, () => wrkTrial(kind));
  out.ratios = {
    c1m_vs_node_https_rps: ratio(out['c1m-tls-http']?.requests_per_s, out['node-https']?.requests_per_s),
    c1m_vs_node_https_cpu_per_request: ratio(out['c1m-tls-http']?.server_cpu_us_per_request, out['node-https']?.server_cpu_us_per_request),
    uws_vs_node_https_rps: ratio(out['uws-https']?.requests_per_s, out['node-https']?.requests_per_s),
  };
  return out;
}

// ---------------------------------------------------------------- 4. idle memory
async function idleTrial(kind) {
  return withServer(kind, 'ecdsa', async (server) => {
    await sleep(1000);
    const base = treeMemKb(server.pid).rss_kb;
    const heap0 = await server.requestGc(); // tlsref answers with malloc's heap (mallinfo2)
    const baseGc = treeMemKb(server.pid).rss_kb;
    const procs = 2;
    const per = Math.ceil(IDLE_CONNS / procs);
    const held = [];
    const clients = Array.from({ length: procs }, (_, i) => {
      const n = i === procs - 1 ? IDLE_CONNS - per * (procs - 1) : per;
      let resolve;
      held.push(new Promise((r) => (resolve = r)));
      return runClient([process.execPath, CLIENT, '--mode', 'hold', '--tls', '--port', String(server.port), '--host', HOST, '--conns', String(n)], {
        cpu: 1,
        timeoutMs: 600_000,
        onStdout: (l) => l.includes('"held"') && resolve(JSON.parse(l)),
      });
    });
    try {
      const exits = clients.map((c) => c.done.then((d) => { throw new Error(`a hold client exited early (code ${d.code}): ${d.stderrTail.slice(-3).join(' | ')}`); }));
      const h = await Promise.race([Promise.all(held), Promise.all(exits)]);
      const open = h.reduce((n, x) => n + x.conns, 0);
      const failed = h.reduce((n, x) => n + x.failed, 0);
      if (failed) throw new Error(`${failed} connection(s) failed: ${h.find((x) => x.firstError)?.firstError}`);
      await sleep(2000); // settle
      const rss = treeMemKb(server.pid).rss_kb;
      const heap1 = await server.requestGc();
      const rssGc = treeMemKb(server.pid).rss_kb;
      const heap = (h) => (typeof h?.heap_in_use === 'number' ? h.heap_in_use + h.heap_mmapped : null);
      const heapGrowth = heap(heap0) !== null && heap(heap1) !== null ? heap(heap1) - heap(heap0) : null;
      return {
        conns: open, baseline_rss_kb: base, rss_kb: rss, baseline_rss_after_gc_kb: baseGc, rss_after_gc_kb: rssGc,
        bytes_per_conn: round(((rss - base) * 1024) / open, 0), bytes_per_conn_after_gc: round(((rssGc - baseGc) * 1024) / open, 0),
        ...(heapGrowth === null ? {} : { malloc_heap_bytes_per_conn: round(heapGrowth / open, 0), server_open_conns: heap1.open }),
      };
    } finally {
      for (const c of clients) c.stop();
      await Promise.all(clients.map((c) => c.done));
    }
  });
}

async function partIdle() {
  const out = {};
  for (const kind of pick(['c1m-tls-echo', 'node-tls-hold', 'tlsref-hold'])) out[kind] = await trial(`idle ${IDLE_CONNS} TLS connections ${kind}`, () => idleTrial(kind));
  const b = (k) => out[k]?.bytes_per_conn, bgc = (k) => out[k]?.bytes_per_conn_after_gc;
  out.ratios = {
    c1m_vs_node_tls: ratio(b('c1m-tls-echo'), b('node-tls-hold')),
    c1m_vs_node_tls_after_gc: ratio(bgc('c1m-tls-echo'), bgc('node-tls-hold')),
    c1m_vs_tlsref: ratio(b('c1m-tls-echo'), b('tlsref-hold')),
    c1m_vs_tlsref_after_gc: ratio(bgc('c1m-tls-echo'), bgc('tlsref-hold')),
    node_tls_vs_tlsref: ratio(b('node-tls-hold'), b('tlsref-hold')),
  };
  out.targets = { bytes_per_conn_max: 16384, vs_node_tls_max: 0.333 };
  return out;
}

// ---------------------------------------------------------------- summary: c1m | tlsref | node:tls
/**
 * One row per metric: the figure of c1m, tlsref and node:tls and the c1m/tlsref and node/tlsref
 * ratios (lower is better for CPU and bytes, higher for rates). Rows whose parts did not run are left out.
 */
function summarize(res) {
  const rows = {};
  const row = (name, c1m, tlsref, node, extra = {}) => {
    if (c1m === undefined && tlsref === undefined && node === undefined) return;
    rows[name] = { c1m: c1m ?? null, tlsref: tlsref ?? null, node_tls: node ?? null, c1m_vs_tlsref: ratio(c1m, tlsref), node_tls_vs_tlsref: ratio(node, tlsref), ...extra };
  };
  const hs = res.handshake;
  for (const certName of hs ? ['ecdsa', 'rsa'] : []) {
    for (const how of ['full', 'resumed']) {
      const g = (k) => hs[`${certName}/${k}`]?.[how];
      const note = ['c1m-tls-echo', 'tlsref-echo', 'node-tls-echo'].map((k) => g(k)?.note).find(Boolean);
      row(`${how}_handshake_server_cpu_us/${certName}`, g('c1m-tls-echo')?.server_cpu_us_per_handshake, g('tlsref-echo')?.server_cpu_us_per_handshake,
        g('node-tls-echo')?.server_cpu_us_per_handshake, note ? { note } : {});
      row(`${how}_handshakes_per_s/${certName}`, g('c1m-tls-echo')?.handshakes_per_s, g('tlsref-echo')?.handshakes_per_s, g('node-tls-echo')?.handshakes_per_s);
    }
  }
  if (res.idle) {
    const g = (k, f) => res.idle[k]?.[f];
    row('idle_rss_bytes_per_conn', g('c1m-tls-echo', 'bytes_per_conn'), g('tlsref-hold', 'bytes_per_conn'), g('node-tls-hold', 'bytes_per_conn'), { conns: IDLE_CONNS });
    row('idle_rss_bytes_per_conn_after_gc', g('c1m-tls-echo', 'bytes_per_conn_after_gc'), g('tlsref-hold', 'bytes_per_conn_after_gc'), g('node-tls-hold', 'bytes_per_conn_after_gc'));
    const heap = g('tlsref-hold', 'malloc_heap_bytes_per_conn');
    if (heap !== undefined) rows.tlsref_openssl_malloc_bytes_per_idle_conn = heap;
  }
  for (const [w, r] of Object.entries(res.echo ?? {})) {
    row(`echo_${w}_msgs_per_s`, r['c1m-tls-echo']?.msgs_per_s, r['tlsref-echo']?.msgs_per_s, r['node-tls-echo']?.msgs_per_s);
    row(`echo_${w}_server_cpu_ns_per_msg`, r['c1m-tls-echo']?.server_cpu_ns_per_msg, r['tlsref-echo']?.server_cpu_ns_per_msg, r['node-tls-echo']?.server_cpu_ns_per_msg);
    row(`echo_${w}_plaintext_msgs_per_s`, r['c1m-echo']?.msgs_per_s, r['tlsref-plain']?.msgs_per_s, undefined);
    row(`echo_${w}_tls_vs_plaintext_msgs`, r.ratios.c1m_tls_vs_c1m_plain_msgs ?? undefined, r.ratios.tlsref_tls_vs_tlsref_plain_msgs ?? undefined, undefined);
  }
  return rows;
}

// ---------------------------------------------------------------- run
const doc = {
  benchmark: 'tls',
  started: new Date().toISOString(),
  quick: QUICK,
  duration_s: DURATION,
  machine: machineInfo(),
  load_at_start: os.loadavg().map((x) => round(x, 2)),
  node: process.version,
  openssl: spawnSync('openssl', ['version'], { encoding: 'utf8' }).stdout.trim(),
  openssl_node: process.versions.openssl,
  tlsref_args: TLSREF_ARGS,
  results: {},
};
if (PARTS.has('handshake')) doc.results.handshake = await partHandshake();
if (PARTS.has('echo')) doc.results.echo = await partEcho();
if (PARTS.has('https')) doc.results.https = await partHttps();
if (PARTS.has('idle')) doc.results.idle = await partIdle();
doc.summary = summarize(doc.results);
doc.load_at_end = os.loadavg().map((x) => round(x, 2));
doc.finished = new Date().toISOString();
emit(doc, opt.out);
process.exit(0);
