#!/usr/bin/env node
// Timeout sweep cost per tick: this tree's addon (timing wheel) against an older one (by default
// commit c115651's, the last whose sweep checks every slot up to the highest fd on every tick),
// with N idle
// connections that all have an idle timeout.
//
// Model: each trial is a fresh server process that drives the addon directly (create, listen,
// nothing else: accepts are counted quietly, so no poll crosses into JS) and a separate client
// process that opens N connections and holds them idle. Once all are accepted, the server
// measures its own CPU time (user + system, process.cpuUsage) over a window and divides it by
// the ticks its reactor counted (C1M_CTL_TICK). A trial without timeouts gives the tick's fixed
// cost (timerfd read, epoll_wait, Node's loop); the sweep's cost is the difference.
//
// Invariants: the timeout is longer than the run, so no connection times out; trials alternate
// between addons; every child is killed by pid when its trial ends. Prints one JSON document on
// stdout, progress on stderr.
//
//   node bench/timeouts.mjs [--conns 19500] [--tick 10] [--timeout 120000] [--window 20]
//                           [--trials 2] [--old-ref c115651] [--old-addon PATH]
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const REPO = path.dirname(path.dirname(SELF));

function args(argv) {
  const o = { conns: 19500, tick: 10, timeout: 120_000, window: 20, trials: 2, oldRef: 'c115651', oldAddon: '', serve: false, client: false, addon: '', port: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = () => argv[++i];
    if (a === '--conns') o.conns = Number(v());
    else if (a === '--tick') o.tick = Number(v());
    else if (a === '--timeout') o.timeout = Number(v());
    else if (a === '--window') o.window = Number(v());
    else if (a === '--trials') o.trials = Number(v());
    else if (a === '--old-ref') o.oldRef = v();
    else if (a === '--old-addon') o.oldAddon = v();
    else if (a === '--serve') o.serve = true;
    else if (a === '--client') o.client = true;
    else if (a === '--addon') o.addon = v();
    else if (a === '--port') o.port = Number(v());
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

const log = (m) => process.stderr.write(`timeouts: ${m}\n`);

// ---- server: the addon alone ----

function serve(o) {
  const b = createRequire(import.meta.url)(o.addon);
  const k = b.constants;
  const [soft] = b.raiseNofile();
  const nslots = Math.max(soft, 1024);
  const evBytes = k.EV_SIZE ?? k.EV_WORDS * 4; // older addons export words only
  const slots = new ArrayBuffer(nslots * k.SLOT_SIZE), ctlBuf = new ArrayBuffer(k.CTL_WORDS * 4);
  const ctl = new Int32Array(ctlBuf);
  const idleTicks = o.timeout ? Math.ceil(o.timeout / o.tick) : 0;
  const cfg = { nslots, maxIn: 1 << 20, maxOut: 1 << 24, highWater: 1 << 16, tickMs: o.tick, idleTicks, nodelay: 1, readBudget: 65536, quietOpen: 1 };
  const h = b.create(cfg, slots, new ArrayBuffer(4 << 20), new ArrayBuffer(4096 * evBytes), new ArrayBuffer(1 << 20), ctlBuf, () => {});
  const [, port] = b.listen(h, '127.0.0.1', 0, 4096, false, [], 0, 0, 0, 0, 0);
  const out = (m) => process.stdout.write(`${JSON.stringify(m)}\n`);
  out({ port });
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const cmd = JSON.parse(line);
    if (cmd.conns !== undefined) {
      const poll = setInterval(() => {
        if (ctl[k.CTL_CONNS] >= cmd.conns) {
          clearInterval(poll);
          out({ accepted: ctl[k.CTL_CONNS] });
        }
      }, 100);
    } else if (cmd.measure) {
      const tick0 = ctl[k.CTL_TICK], cpu0 = process.cpuUsage(), t0 = process.hrtime.bigint();
      // a timer in this process would add work to the window: sleep in one long timeout
      setTimeout(() => {
        const cpu = process.cpuUsage(cpu0), wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
        const ticks = ctl[k.CTL_TICK] - tick0;
        out({ ticks, wallMs, userUs: cpu.user, systemUs: cpu.system, conns: ctl[k.CTL_CONNS] });
        b.close(h);
        process.exit(0);
      }, cmd.measure * 1000);
    }
  });
}

// ---- client: N idle connections ----

async function client(o) {
  const sockets = [];
  const BATCH = 500;
  for (let i = 0; i < o.conns; i += BATCH) {
    await Promise.all(Array.from({ length: Math.min(BATCH, o.conns - i) }, () => new Promise((resolve, reject) => {
      const s = net.connect(o.port, '127.0.0.1', () => resolve());
      s.on('error', reject);
      sockets.push(s);
    })));
  }
  process.stdout.write(`${JSON.stringify({ connected: sockets.length })}\n`);
  process.stdin.resume(); // held until killed
}

// ---- harness ----

function lines(child) {
  const rl = readline.createInterface({ input: child.stdout });
  const queue = [], waiters = [];
  rl.on('line', (l) => {
    const m = JSON.parse(l);
    if (waiters.length) waiters.shift()(m);
    else queue.push(m);
  });
  return () => new Promise((resolve, reject) => {
    if (queue.length) return resolve(queue.shift());
    const t = setTimeout(() => reject(new Error('no answer from a child within 120 s')), 120_000);
    waiters.push((m) => { clearTimeout(t); resolve(m); });
  });
}

function buildOld(ref) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'c1m-old-addon-'));
  log(`building the ${ref} addon in ${dir}`);
  const tar = spawnSync('sh', ['-c', `git -C "${REPO}" archive "${ref}" binding.gyp native | tar -x -C "${dir}"`], { stdio: 'inherit' });
  if (tar.status !== 0) throw new Error(`cannot export ${ref}`);
  const gyp = process.env.npm_config_node_gyp || path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const gypArgs = [gyp, 'rebuild'];
  if (fs.existsSync('/usr/include/node/node_api.h')) gypArgs.push('--nodedir=/usr');
  const r = spawnSync(process.execPath, gypArgs, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building the ${ref} addon failed:\n${r.stderr}`);
  return path.join(dir, 'build', 'Release', 'c1m.node');
}

async function trial(o, addon, timeout) {
  const server = spawn(process.execPath, [SELF, '--serve', '--addon', addon, '--tick', String(o.tick), '--timeout', String(timeout)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const fromServer = lines(server);
  let cl;
  try {
    const { port } = await fromServer();
    cl = spawn(process.execPath, [SELF, '--client', '--port', String(port), '--conns', String(o.conns)], { stdio: ['pipe', 'pipe', 'inherit'] });
    const fromClient = lines(cl);
    server.stdin.write(`${JSON.stringify({ conns: o.conns })}\n`);
    await fromClient();
    await fromServer();
    await new Promise((r) => setTimeout(r, 2000)); // let the connect burst settle
    server.stdin.write(`${JSON.stringify({ measure: o.window })}\n`);
    const m = await fromServer();
    return { ...m, cpuUsPerTick: (m.userUs + m.systemUs) / m.ticks };
  } finally {
    if (cl) cl.kill('SIGKILL');
    server.kill('SIGKILL');
  }
}

async function main() {
  const o = args(process.argv.slice(2));
  if (o.serve) return serve(o);
  if (o.client) return client(o);
  const addons = {
    new: path.join(REPO, 'build', 'Release', 'c1m.node'),
    old: o.oldAddon || buildOld(o.oldRef),
  };
  const runs = [];
  for (let t = 0; t < o.trials; t++) {
    for (const [name, addon, timeout] of [['new', addons.new, 0], ['old', addons.old, o.timeout], ['new', addons.new, o.timeout]]) {
      const label = `${name}${timeout ? '' : ' (no timeouts)'}`;
      log(`trial ${t + 1}/${o.trials}: ${label}, ${o.conns} connections, ${o.window} s window`);
      const r = await trial(o, addon, timeout);
      log(`  ${r.ticks} ticks, ${r.cpuUsPerTick.toFixed(2)} us CPU per tick`);
      runs.push({ addon: name, timeouts: timeout > 0, ...r });
    }
  }
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const perTick = (addon, timeouts) => median(runs.filter((r) => r.addon === addon && r.timeouts === timeouts).map((r) => r.cpuUsPerTick));
  const base = perTick('new', false), oldT = perTick('old', true), newT = perTick('new', true);
  const result = {
    benchmark: 'timeouts',
    date: new Date().toISOString(),
    conditions: {
      connections: o.conns, tickMs: o.tick, idleTimeoutMs: o.timeout, windowS: o.window, trials: o.trials,
      oldAddon: o.oldAddon || `${o.oldRef} (built from git)`, cpus: os.cpus().length, loadavg: os.loadavg(),
      note: 'server CPU (user+system) over the window / reactor ticks; client in a separate process',
    },
    cpuUsPerTick: { noTimeouts: base, old: oldT, new: newT },
    sweepUsPerTick: { old: oldT - base, new: newT - base },
    runs,
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

main().catch((err) => {
  process.stderr.write(`timeouts: ${err.stack}\n`);
  process.exit(1);
});
