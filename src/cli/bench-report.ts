/**
 * HTML reports of `c1m bench` results: one self-contained page (Chart.js inlined, the data
 * embedded as JSON, a Content-Security-Policy that forbids every fetch), so it opens from
 * disk and renders with no network.
 *
 * Model: results (single runs, sweeps, million ramps) are normalised into sections; the
 * charts are computed here as Chart.js configurations (plain JSON) and the page only hands
 * each to `new Chart`. Single runs and sweep rows are grouped by scenario, so the rows of
 * several result files compare targets side by side. Under the charts: a table of the
 * numbers, then each result's command, date and machine.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { MachineInfo } from './bench-proc.js';
import type { BenchResult, BenchRow, BenchSweepResult, MillionResult } from './bench-results.js';
import type { LatencySummary } from './bench-stats.js';
import { scenario as scenarioByName } from './scenarios/index.js';

/** `c1m bench report --help`. */
export const REPORT_USAGE = 'usage: c1m bench report RESULTS.json... -o REPORT.html';

/** A Chart.js configuration plus where it goes. */
interface ChartSpec {
  id: string;
  config: Record<string, unknown>;
}

interface Section {
  title: string;
  charts: ChartSpec[];
  table: { head: string[]; rows: (string | number)[][] };
  notes: string[];
}

/** Where a result came from: its command, date and machine (absent from single-run JSON). */
interface Provenance {
  label: string;
  command: string | null;
  date: string | null;
  machine: MachineInfo | null;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const SWEPT = [['target', 'connections'], ['size', 'size'], ['depth', 'depth'], ['rate', 'rate']] as const;

type Row = BenchRow;

let chartSeq = 0;

function chartSpec(title: string, type: 'line' | 'bar', data: Record<string, unknown>, x: { title: string; log?: boolean; category?: boolean }, y: { title: string; log?: boolean }): ChartSpec {
  return {
    id: `chart-${chartSeq++}`,
    config: {
      type,
      data,
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: { title: { display: true, text: title } },
        scales: {
          x: { type: x.category ? 'category' : x.log ? 'logarithmic' : 'linear', title: { display: true, text: x.title } },
          y: { type: y.log ? 'logarithmic' : 'linear', beginAtZero: !y.log, title: { display: true, text: y.title } },
        },
      },
    },
  };
}

function color(i: number): { borderColor: string; backgroundColor: string } {
  const c = PALETTE[i % PALETTE.length]!;
  return { borderColor: c, backgroundColor: `${c}99` };
}

/** Log scale when the values span two decades or more. */
function spansDecades(values: number[]): boolean {
  const pos = values.filter((v) => v > 0);
  return pos.length > 1 && Math.max(...pos) / Math.min(...pos) >= 100;
}

function fieldOf(r: Row, key: (typeof SWEPT)[number][0]): number | null {
  return r[key];
}

/** A line chart of `y(row)` against a swept field, one line per series. */
function lineBy(rows: Row[], xKey: (typeof SWEPT)[number][0], xTitle: string, series: (r: Row) => string, y: (r: Row) => number | null, title: string, yTitle: string): ChartSpec | null {
  const groups = new Map<string, { x: number; y: number }[]>();
  for (const r of rows) {
    const xv = fieldOf(r, xKey), yv = y(r);
    if (xv === null || yv === null) continue;
    const name = series(r);
    if (!groups.has(name)) groups.set(name, []);
    groups.get(name)!.push({ x: xv, y: yv });
  }
  if (groups.size === 0) return null;
  const datasets = [...groups].map(([label, pts], i) => ({ label, data: pts.sort((a, b) => a.x - b.x), tension: 0, ...color(i) }));
  const xs = rows.map((r) => fieldOf(r, xKey) ?? 0);
  return chartSpec(title, 'line', { datasets }, { title: xTitle, log: spansDecades(xs) }, { title: yTitle });
}

function rowLabel(r: Row, varying: readonly (typeof SWEPT)[number][0][]): string {
  const parts = [r.target_name];
  for (const k of varying) {
    const v = fieldOf(r, k);
    if (v !== null) parts.push(`${k === 'target' ? 'c' : k}=${v}`);
  }
  return parts.join(' ');
}

function percentileBars(rows: Row[], labels: string[], pick: (r: Row) => LatencySummary | null, title: string): ChartSpec | null {
  if (!rows.some((r) => pick(r) !== null)) return null;
  const pcts = [['p50', 'p50'], ['p90', 'p90'], ['p99', 'p99'], ['p99.9', 'p999'], ['max', 'max']] as const;
  const datasets = pcts.map(([label, k], i) => ({ label, data: rows.map((r) => pick(r)?.[k] ?? null), ...color(i) }));
  return chartSpec(title, 'bar', { labels, datasets }, { title: 'run', category: true }, { title: 'µs (log scale)', log: true });
}

const us = (v: number | undefined | null): string => (v === undefined || v === null ? '-' : String(v));

function scenarioSection(scenario: string, rows: Row[]): Section {
  const unit = scenarioByName(scenario)?.unit ?? null;
  const varying = SWEPT.map(([k]) => k).filter((k) => new Set(rows.map((r) => fieldOf(r, k))).size > 1);
  const labels = rows.map((r) => rowLabel(r, varying));
  const charts: (ChartSpec | null)[] = [];
  const xTitle: Record<string, string> = { target: 'connections', size: 'message size (bytes)', depth: 'depth (in flight per connection)', rate: 'rate (per second)' };
  if (unit !== null) {
    for (const k of varying) {
      const others = varying.filter((o) => o !== k);
      charts.push(lineBy(rows, k, xTitle[k]!, (r) => rowLabel(r, others), (r) => r.msgs_per_s, `Throughput vs ${xTitle[k]}`, `${unit}/s`));
    }
    if (varying.length === 0) {
      charts.push(chartSpec('Throughput', 'bar', { labels, datasets: [{ label: `${unit}/s`, data: rows.map((r) => r.msgs_per_s), ...color(0) }] }, { title: 'run', category: true }, { title: `${unit}/s` }));
    }
    charts.push(percentileBars(rows, labels, (r) => r.latency, scenario === 'broadcast' ? 'Delivery latency percentiles' : 'Latency percentiles'));
    if (scenario === 'broadcast') charts.push(percentileBars(rows, labels, (r) => r.broadcast?.last_receiver ?? null, 'Last-receiver latency percentiles (per publish)'));
  }
  if (varying.includes('target')) {
    const others = varying.filter((o) => o !== 'target');
    charts.push(lineBy(rows, 'target', 'connections', (r) => rowLabel(r, others), (r) => r.connect_rate, 'Connect rate vs connections', 'connections/s'));
  }
  if (rows.some((r) => r.server !== null)) {
    if (varying.includes('target')) {
      const others = varying.filter((o) => o !== 'target');
      charts.push(lineBy(rows, 'target', 'connections', (r) => rowLabel(r, others), (r) => r.server?.bytes_per_conn ?? null, 'Server memory per connection vs connections', 'bytes of RSS growth per connection'));
      charts.push(lineBy(rows, 'target', 'connections', (r) => rowLabel(r, others), (r) => (r.server ? Math.round(r.server.rss_kb / 102.4) / 10 : null), 'Server RSS vs connections', 'MiB'));
    } else {
      charts.push(chartSpec('Server memory per connection', 'bar', { labels, datasets: [{ label: 'bytes of RSS growth per connection', data: rows.map((r) => r.server?.bytes_per_conn ?? null), ...color(0) }] },
        { title: 'run', category: true }, { title: 'bytes per connection' }));
    }
  }
  const head = ['target', 'connections', 'size', 'depth', 'rate', 'connected', 'failed', 'connect s', unit === null ? 'msgs/s' : `${unit}/s`,
    'p50 µs', 'p99 µs', 'p99.9 µs', 'max µs', 'server RSS kB', 'B/conn', 'server CPU s', 'aborted'];
  const table = rows.map((r) => [r.target_name, r.target, us(r.size), us(r.depth), us(r.rate), r.connected, r.failed, r.connect_s, r.msgs_per_s,
    us(r.latency?.p50), us(r.latency?.p99), us(r.latency?.p999), us(r.latency?.max),
    us(r.server?.rss_kb), us(r.server?.bytes_per_conn), us(r.server?.cpu_s), r.aborted === false ? '' : r.aborted]);
  const notes: string[] = [];
  for (const r of rows) {
    if (r.http) notes.push(`${rowLabel(r, varying)}: status ${JSON.stringify(r.http.status)}, non-2xx ${r.http.non_2xx}, parse errors ${r.http.parse_errors}`);
    if (r.broadcast) {
      const b = r.broadcast;
      notes.push(`${rowLabel(r, varying)}: ${b.published} publishes at ${b.rate}/s to ${b.receivers} receivers, ${b.complete} reached all; ${b.deliveries_per_s} deliveries/s; ` +
        `last receiver p50 ${us(b.last_receiver?.p50)} µs, p99 ${us(b.last_receiver?.p99)} µs, max ${us(b.last_receiver?.max)} µs`);
    }
    if (Object.keys(r.errors).length > 0) notes.push(`${rowLabel(r, varying)}: connect errors ${JSON.stringify(r.errors)}`);
  }
  return { title: `${scenario}`, charts: charts.filter((c): c is ChartSpec => c !== null), table: { head, rows: table }, notes };
}

function millionSection(m: MillionResult): Section {
  const ws = m.mode === 'ws';
  const xs = m.steps.map((s) => s.target);
  const log = spansDecades(xs);
  const line = (title: string, yTitle: string, sets: [string, (s: MillionResult['steps'][number]) => number | null][], yLog = false): ChartSpec =>
    chartSpec(title, 'line', {
      datasets: sets.map(([label, f], i) => ({ label, data: m.steps.map((s) => ({ x: s.connected, y: f(s) })).filter((p) => p.y !== null), tension: 0, ...color(i) })),
    }, { title: 'connections open', log }, { title: yTitle, log: yLog });
  const charts = [
    line('Connect rate per step', 'connections/s', [['connect rate', (s) => s.connect_rate]]),
    line('Memory per connection', 'bytes per connection', [
      ['server RSS growth', (s) => s.server_bytes_per_conn],
      ['server RSS growth per connection added in the step', (s) => s.server_bytes_per_added_conn ?? null],
      ['kernel slab growth (both ends)', (s) => s.kernel_bytes_per_conn],
    ]),
    line('Memory vs connections', 'MiB', [
      ['server RSS growth', (s) => Math.round(s.server_rss_growth_kb / 102.4) / 10],
      ['kernel slab (whole box)', (s) => (s.slab_kb === null ? null : Math.round(s.slab_kb / 102.4) / 10)],
      ['client RSS', (s) => Math.round(s.client_rss_kb / 102.4) / 10],
    ]),
    ws
      ? line('One broadcast: publish to delivery, every subscriber', 'µs (log scale)', [
        ['p50', (s) => s.broadcast?.latency?.p50 ?? null], ['p99', (s) => s.broadcast?.latency?.p99 ?? null], ['max (the last subscriber)', (s) => s.broadcast?.latency?.max ?? null],
      ], true)
      : line('Echo round trip on every connection', 'µs (log scale)', [
        ['p50', (s) => s.echo.latency?.p50 ?? null], ['p99', (s) => s.echo.latency?.p99 ?? null], ['max', (s) => s.echo.latency?.max ?? null],
      ], true),
  ];
  if (ws) {
    charts.splice(2, 0, line('Server memory per subscriber, with and without a forced GC', 'bytes per connection', [
      ['server private memory, no forced GC', (s) => s.server_bytes_per_conn_no_gc ?? null],
      ['server private memory after a full GC', (s) => s.server_bytes_per_conn],
    ]));
  }
  const head = ['step', 'connected', 'added', 'connect s', 'conn/s', 'failed', 'errors', 'MemAvailable MiB', 'Slab MiB', 'SUnreclaim MiB', 'kernel B/conn',
    'server RSS growth MiB', 'server B/conn', 'server B/added conn', 'listen overflows', 'SYN retransmits',
    ...(ws ? ['subscribed', 'delivered', 'delivery p50 µs', 'delivery p99 µs', 'last delivery µs', 'server B/conn no GC'] : ['echo answered', 'echo p50 µs', 'echo p99 µs', 'echo max µs'])];
  const mb = (kb: number | null): string => (kb === null ? '-' : (kb / 1024).toFixed(1));
  const rows = m.steps.map((s) => [s.target, s.connected, s.added, s.connect_s, s.connect_rate, s.failed, Object.keys(s.errors).length ? JSON.stringify(s.errors) : '',
    mb(s.mem_available_kb), mb(s.slab_kb), mb(s.sunreclaim_kb), us(s.kernel_bytes_per_conn), mb(s.server_rss_growth_kb), us(s.server_bytes_per_conn),
    us(s.server_bytes_per_added_conn ?? null), s.listen_overflows ?? '-', s.syn_retransmits ?? '-',
    ...(ws
      ? [s.subscribed ?? '-', s.broadcast?.delivered ?? '-', us(s.broadcast?.latency?.p50), us(s.broadcast?.latency?.p99), us(s.broadcast?.latency?.max), us(s.server_bytes_per_conn_no_gc ?? null)]
      : [s.echo.answered, us(s.echo.latency?.p50), us(s.echo.latency?.p99), us(s.echo.latency?.max)])]);
  const c = m.cleanup;
  const notes = [
    `${m.server.processes} server processes (${m.server.command}), ${m.client.processes} client processes, ${m.client.source_ips} source addresses.`,
    m.doctor.blocking.length ? `c1m doctor: blocked by ${m.doctor.blocking.map((b) => `${b.name} (allows ${b.allows ?? '?'})`).join(', ')}` : 'c1m doctor: no box-wide limit blocked the largest step.',
    m.steps_skipped.length ? `skipped steps: ${m.steps_skipped.join(', ')}` : '',
    m.stopped ? `stopped early: ${m.stopped}: ${m.stop_detail}` : 'every step ran.',
    // Results written before the summary existed have none.
    m.summary?.connected != null
      ? `${m.summary.connected} connections; connect phases ${m.summary.connect_s} s in all; server RSS ${m.summary.server_bytes_per_conn ?? '?'} B per connection from the processes' start, ` +
        `${m.summary.server_bytes_per_conn_after_first_step ?? '?'} B per connection after the first step.`
      : '',
    ws
      ? `WebSocket subscribers of the gateway (NATS ${m.nats?.url ?? '?'}${m.nats?.started_here ? ', started by the run' : ''}): ${m.summary.subscribed ?? '?'} subscribed; ` +
        `server private memory ${m.summary.server_bytes_per_conn ?? '?'} B per subscriber without a forced GC (${m.summary.server_bytes_per_conn_after_gc ?? '?'} after one); ` +
        `broadcast: ${m.summary.delivered ?? '?'} delivered, the last ${m.summary.broadcast_last_ms ?? '?'} ms after the publish.`
      : '',
    `cleanup: ${c.pids_alive_after.length === 0 ? `all ${c.pids_started} processes gone` : `still alive: ${c.pids_alive_after.join(', ')}`}; TCP established ${c.sockets_before?.tcp_estab ?? '?'} before, ` +
      `${c.sockets_after?.tcp_estab ?? '?'} after; TIME-WAIT after ${c.sockets_after?.tcp_timewait ?? '?'}.`,
  ].filter(Boolean);
  return { title: ws ? 'one-box million ramp: WebSocket subscribers and a broadcast' : 'one-box million ramp', charts, table: { head, rows }, notes };
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null;
}

/** Normalise result documents into sections; throws on something that is not a c1m bench result. */
function sections(docs: readonly unknown[], names: readonly string[]): { sections: Section[]; provenance: Provenance[] } {
  const byScenario = new Map<string, Row[]>();
  const out: Section[] = [];
  const provenance: Provenance[] = [];
  docs.forEach((doc, i) => {
    const name = names[i] ?? `result ${i + 1}`;
    if (!isObject(doc) || doc.tool !== 'c1m bench') throw new Error(`${name}: not a c1m bench result (no "tool": "c1m bench")`);
    if (doc.kind === 'million') {
      const m = doc as unknown as MillionResult;
      out.push(millionSection(m));
      provenance.push({ label: name, command: m.command, date: m.date, machine: m.machine });
      return;
    }
    let rows: Row[];
    if (doc.kind === 'sweep') {
      const s = doc as unknown as BenchSweepResult;
      rows = s.rows;
      provenance.push({ label: name, command: s.command, date: s.date, machine: s.machine });
    } else if (typeof doc.scenario === 'string' && typeof doc.connected === 'number') {
      rows = [{ ...(doc as unknown as BenchResult), target_name: names[i] ? basename(names[i]!).replace(/\.json$/, '') : 'server' }];
      provenance.push({ label: name, command: null, date: null, machine: null });
    } else {
      throw new Error(`${name}: not a c1m bench result (neither a run, a sweep nor a million ramp)`);
    }
    for (const r of rows) {
      if (!byScenario.has(r.scenario)) byScenario.set(r.scenario, []);
      byScenario.get(r.scenario)!.push(r);
    }
  });
  for (const [scenario, rows] of byScenario) out.unshift(scenarioSection(scenario, rows));
  return { sections: out, provenance };
}

const esc = (s: string | number): string => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** JSON for a `<script type="application/json">`: nothing in it can close the element. */
const scriptJson = (x: unknown): string => JSON.stringify(x).replace(/</g, '\\u003c');

/**
 * The Chart.js UMD build from the installed `chart.js` package, read as text (never loaded as a
 * module: it runs in the page). `chart.js` is an optional dependency of c1m that only reports
 * need. Errors: throws with an install hint when it is missing.
 */
function chartJsSource(): string {
  let main: string;
  try {
    main = createRequire(import.meta.url).resolve('chart.js');
  } catch {
    throw new Error('an HTML report needs the chart.js package, an optional dependency of c1m left out of this install: npm install chart.js');
  }
  return readFileSync(join(dirname(main), 'chart.umd.min.js'), 'utf8').replace(/<\/script/gi, '<\\/script');
}

function machineLine(m: MachineInfo | null): string {
  if (!m) return 'machine not recorded';
  return `${m.cpus} × ${m.cpu_model}, ${(m.mem_total_kb / 1024 / 1024).toFixed(1)} GiB, Linux ${m.kernel}, Node ${m.node}` + (m.nofile ? `, RLIMIT_NOFILE ${m.nofile}` : '');
}

const RENDER = `for (const spec of JSON.parse(document.getElementById('c1m-bench-charts').textContent)) {
  new Chart(document.getElementById(spec.id), spec.config);
}`;

/**
 * The HTML report for `docs` (parsed result JSON: single runs, sweeps, million ramps);
 * `names` label them (file names). Errors: throws on a document that is not a result.
 */
export function buildReport(docs: readonly unknown[], names: readonly string[] = []): string {
  chartSeq = 0;
  const { sections: secs, provenance } = sections(docs, names);
  const body: string[] = [];
  for (const s of secs) {
    body.push(`<section><h2>${esc(s.title)}</h2>`);
    body.push('<div class="charts">');
    for (const c of s.charts) body.push(`<div class="chart"><canvas id="${c.id}"></canvas></div>`);
    body.push('</div>');
    body.push(`<table><thead><tr>${s.table.head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>`);
    for (const r of s.table.rows) body.push(`<tr>${r.map((v) => `<td>${esc(typeof v === 'number' ? v.toLocaleString('en-US') : v)}</td>`).join('')}</tr>`);
    body.push('</tbody></table>');
    if (s.notes.length) body.push(`<ul>${s.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`);
    body.push('</section>');
  }
  body.push('<section><h2>Runs</h2><ul>');
  for (const p of provenance) {
    body.push(`<li><b>${esc(p.label)}</b>: ${p.command ? `<code>${esc(p.command)}</code>` : 'command not recorded'}; ${esc(p.date ?? 'date not recorded')}; ${esc(machineLine(p.machine))}</li>`);
  }
  body.push('</ul></section>');
  const charts = secs.flatMap((s) => s.charts);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>c1m bench report</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 1em; }
.chart { position: relative; height: 320px; }
table { border-collapse: collapse; margin: 1em 0; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f3f3f3; }
code { font-size: 12px; }
</style>
</head>
<body>
<h1>c1m bench report</h1>
${body.join('\n')}
<script id="c1m-bench-data" type="application/json">${scriptJson(docs)}</script>
<script id="c1m-bench-charts" type="application/json">${scriptJson(charts)}</script>
<script>${chartJsSource()}</script>
<script>${RENDER}</script>
</body>
</html>
`;
}

/** Read one result file: a JSON document, or JSON lines of which the last parses. */
function readResult(file: string): unknown {
  const text = readFileSync(file, 'utf8');
  try {
    return JSON.parse(text);
  } catch {
    const lines = text.trim().split('\n');
    for (let i = lines.length - 1; i >= 0; i--) {
      try {
        return JSON.parse(lines[i]!);
      } catch {
        // not this line
      }
    }
    throw new Error(`${file}: no JSON result in it`);
  }
}

/** `c1m bench report RESULTS.json... -o REPORT.html`. */
export async function reportMain(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { out: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h' } } });
  } catch (e) {
    err.write(`c1m bench report: ${(e as Error).message}\n${REPORT_USAGE}\n`);
    return 2;
  }
  if (parsed.values.help) {
    out.write(`${REPORT_USAGE}\n`);
    return 0;
  }
  const files = parsed.positionals, target = parsed.values.out;
  if (files.length === 0 || target === undefined) {
    err.write(`c1m bench report: ${files.length === 0 ? 'give at least one result file' : '-o REPORT.html is required'}\n${REPORT_USAGE}\n`);
    return 2;
  }
  try {
    const html = buildReport(files.map(readResult), files);
    writeFileSync(target, html);
  } catch (e) {
    err.write(`c1m bench report: ${(e as Error).message}\n`);
    return 1;
  }
  err.write(`c1m bench report: ${target} from ${files.length} result file(s)\n`);
  return 0;
}
