/**
 * The HTML report (src/cli/bench-report.ts) from result documents built here: the sections
 * and charts each kind of result gets, escaping, rejection of foreign JSON, and (where a
 * Chromium is installed) that the page renders every chart offline without a console error
 * or a request beyond the file itself.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, test } from 'node:test';
import type { BenchResult, BenchRow, BenchSweepResult, MillionResult, MillionStep } from '../../src/cli/bench-results.js';
import { buildReport } from '../../src/cli/bench-report.js';
import { CHROMIUM, CHROMIUM_MISSING, launchChromium } from '../helpers/browser.js';

const MACHINE = { cpus: 2, cpu_model: 'Test CPU', mem_total_kb: 8 << 20, kernel: '6.1.0', node: process.version, nofile: 20_000 };
const lat = (p50: number): BenchResult['latency'] => ({ count: 1000, p50, p90: p50 * 2, p99: p50 * 4, p999: p50 * 8, max: p50 * 10, mean: p50 * 1.5 });

function row(target: string, connections: number, size: number, msgsPerS: number, extra: Partial<BenchResult> = {}): BenchRow {
  return {
    tool: 'c1m bench', scenario: 'echo', host: '127.0.0.1', port: 9000, target: connections, processes: 1, source_ips: 1, connect_concurrency: 1000,
    started: connections, connected: connections, failed: 0, retries: 0, errors: {}, connect_s: 0.1, connect_rate: connections * 10, connect_timeout_hit: false,
    closed_early: 0, close_errors: {}, open_at_end: connections, warmup_s: 1, duration_s: 10, size, depth: 1, rate: null, msgs: msgsPerS * 10,
    msgs_per_s: msgsPerS, payload_bytes_per_s: msgsPerS * size, latency: lat(100 + connections), send_lag: null, deflate: null, verify_errors: null, unexpected_msgs: 0,
    send_skipped: 0, client: { cpu_user_s: 1, cpu_sys_s: 1, rss_kb: 50_000 },
    server: { pids: [1], rss_kb: 60_000 + connections, rss_before_kb: 60_000, bytes_per_conn: 100 + size, cpu_s: 2 },
    http: null, broadcast: null, aborted: false, target_name: target, ...extra,
  };
}

function sweep(): BenchSweepResult {
  const rows: BenchRow[] = [];
  for (const c of [100, 1000]) for (const size of [64, 4096]) for (const t of ['native', 'portable']) rows.push(row(t, c, size, c * (t === 'native' ? 20 : 10) / (size / 64)));
  return {
    tool: 'c1m bench', kind: 'sweep', scenario: 'echo', command: 'c1m bench echo --port 9000 --sweep connections=100,1000 --sweep size=64,4096 --target <x>',
    date: '2026-01-01T00:00:00.000Z', machine: MACHINE,
    targets: [{ name: 'native', cmd: 'a' }, { name: 'portable', cmd: 'b' }], sweep: { connections: [100, 1000], size: [64, 4096] }, rows,
  };
}

function million(): MillionResult {
  const step = (n: number): MillionStep => ({
    target: n, connected: n, added: n / 2, connect_s: 2, connect_rate: n / 4, connect_timeout_hit: false, failed: 0, errors: {}, closed_early: 0,
    mem_available_kb: 20 << 20, slab_kb: 100_000 + n * 8, sunreclaim_kb: 30_000 + n * 4, kernel_bytes_per_conn: 8000, sockets: null, listen_overflows: 0, syn_retransmits: 0,
    server_rss_kb: 300_000, server_rss_growth_kb: n / 10, server_anon_kb: 250_000, server_anon_growth_kb: n / 10, server_bytes_per_conn: 102, server_bytes_per_added_conn: 98, server_processes: 3, client_rss_kb: 200_000,
    echo: { sent: n, answered: n, time_s: 1, latency: lat(n / 100) },
  });
  return {
    tool: 'c1m bench', kind: 'million', command: 'c1m bench million --steps 100000,200000', date: '2026-01-01T00:00:00.000Z', machine: MACHINE, port: 9600,
    steps_asked: [100_000, 200_000], steps_skipped: [], doctor: { max_connections: 262_144, blocking: [] },
    server: { command: 'node run.js serve echo', processes: 11, per_process_cap: 19_000 }, client: { processes: 11, source_ips: 20, per_process: [] },
    baseline: { mem_available_kb: 21 << 20, slab_kb: 100_000, sunreclaim_kb: 30_000, server_rss_kb: 290_000, server_anon_kb: 240_000, sockets: null, warmup: null },
    steps: [step(100_000), step(200_000)], stopped: false, stop_detail: null,
    summary: { connected: 200_000, connect_s: 4, server_bytes_per_conn: 102, server_bytes_per_conn_after_first_step: 102, kernel_bytes_per_conn: 8000 },
    cleanup: { sockets_before: null, sockets_after: null, estab_delta: 0, pids_started: 23, pids_alive_after: [], ok: true },
  };
}

const charts = (page: string): Record<string, unknown>[] =>
  JSON.parse(/<script id="c1m-bench-charts" type="application\/json">(.*?)<\/script>/s.exec(page)![1]!) as Record<string, unknown>[];
const titles = (page: string): string[] => charts(page).map((c) => ((c.config as { options: { plugins: { title: { text: string } } } }).options.plugins.title.text));

describe('bench report', () => {
  test('a sweep over connections and sizes: a throughput chart per swept key, latency, server memory, the table', () => {
    const page = buildReport([sweep()], ['sweep.json']);
    assert.deepEqual(titles(page), ['Throughput vs connections', 'Throughput vs message size (bytes)', 'Latency percentiles', 'Connect rate vs connections',
      'Server memory per connection vs connections', 'Server RSS vs connections']);
    assert.equal((page.match(/<canvas id="chart-\d+">/g) ?? []).length, 6);
    // One line per target and size on the connections chart.
    const byConn = charts(page)[0]!.config as { data: { datasets: { label: string; data: { x: number; y: number }[] }[] } };
    assert.deepEqual(byConn.data.datasets.map((d) => d.label), ['native size=64', 'portable size=64', 'native size=4096', 'portable size=4096']);
    assert.deepEqual(byConn.data.datasets[0]!.data, [{ x: 100, y: 2000 }, { x: 1000, y: 20000 }]);
    assert.equal((page.match(/<tr><td>(native|portable)<\/td>/g) ?? []).length, 8, 'a table row per run');
    assert.match(page, /2 × Test CPU, 8\.0 GiB, Linux 6\.1\.0/);
    assert.match(page, /c1m bench echo --port 9000 --sweep connections=100,1000 --sweep size=64,4096 --target &#60;x&#62;/, 'command shown, escaped');
  });

  test('single results of several files compare side by side; http and broadcast notes; a million ramp', () => {
    const { target_name: _a, ...one } = row('x', 10, 64, 500);
    const http = { ...row('x', 10, 64, 900), scenario: 'http', size: null, http: { status: { 200: 5, 404: 1 }, non_2xx: 1, parse_errors: 0 } };
    const page = buildReport([one, { ...one, msgs_per_s: 700 }, http, million()], ['a/native.json', 'b/portable.json', 'c/http.json', 'm.json']);
    assert.match(page, /<td>native<\/td>/);
    assert.match(page, /<td>portable<\/td>/);
    assert.match(page, /status \{&#34;200&#34;:5,&#34;404&#34;:1\}, non-2xx 1/);
    assert.match(page, /<h2>one-box million ramp<\/h2>/);
    assert.ok(titles(page).includes('Memory per connection') && titles(page).includes('Echo round trip on every connection'));
    assert.throws(() => buildReport([{ hello: 1 }], ['x.json']), /x\.json: not a c1m bench result/);
    assert.throws(() => buildReport([{ tool: 'c1m bench' }], ['y.json']), /y\.json: not a c1m bench result \(neither/);
  });

  test('data that looks like markup cannot break out of the page', () => {
    const evil = sweep();
    evil.rows[0]!.target_name = '</script><script>alert(1)</script>';
    const page = buildReport([evil]);
    assert.equal(page.match(/<script>alert/g), null);
  });

  test('renders in headless Chromium: every chart drawn, no console error, no request but the file', { skip: CHROMIUM_MISSING && `no Chromium at ${CHROMIUM}`, timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'c1m-report-'));
    const browser = await launchChromium();
    try {
      const file = join(dir, 'report.html');
      writeFileSync(file, buildReport([sweep(), million()], ['sweep.json', 'million.json']));
      const page = await browser.newPage();
      const errors: string[] = [], requests: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('request', (r) => requests.push(r.url()));
      await page.goto(pathToFileURL(file).href);
      const drawn = await page.evaluate(() => {
        const w = window as unknown as { Chart: { instances: Record<string, { canvas: HTMLCanvasElement }> } };
        const canvases = [...document.querySelectorAll('canvas')];
        // A drawn canvas has pixels that are not transparent.
        const painted = canvases.filter((c) => {
          const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
          for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return true;
          return false;
        }).length;
        return { canvases: canvases.length, instances: Object.keys(w.Chart.instances).length, painted };
      });
      assert.equal(drawn.canvases, 10);
      assert.deepEqual(drawn, { canvases: 10, instances: 10, painted: 10 });
      assert.deepEqual(errors, []);
      assert.deepEqual(requests, [pathToFileURL(file).href]);
    } finally {
      await browser.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
