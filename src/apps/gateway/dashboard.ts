/**
 * The gateway's operations routes: `/metrics` (Prometheus text, every worker summed),
 * `/stats` (the same numbers as one JSON object, for the dashboard), and `/dashboard`, a page
 * that polls `/stats` each second and draws connections, messages/s, deliveries/s, delivery
 * latency and memory over the last minutes with Chart.js. No build step: the page is this
 * file's HTML, and Chart.js is the UMD build of the installed `chart.js` package (an optional
 * dependency of c1m), served as `/dashboard/chart.js`.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { RouteHandler } from '../../protocols/http1/index.js';
import { gatherMetrics } from '../../engine/index.js';
import { dashboardStats } from './metrics.js';

let chartJs: Buffer | null | undefined;

/** The Chart.js UMD build, or null when the optional `chart.js` package is not installed. */
function chartJsSource(): Buffer | null {
  if (chartJs === undefined) {
    try {
      chartJs = readFileSync(join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js'));
    } catch {
      chartJs = null;
    }
  }
  return chartJs;
}

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>c1m gateway</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .8em; }
#numbers { display: flex; flex-wrap: wrap; gap: 1.5em; margin-bottom: 1em; }
#numbers div { min-width: 9em; }
#numbers b { display: block; font-size: 1.6em; font-variant-numeric: tabular-nums; }
#charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1em; }
#charts div { height: 220px; }
#status { color: #888; }
</style></head>
<body>
<h1>c1m gateway <span id="status">connecting…</span></h1>
<div id="numbers">
  <div>connections<b id="n-connections">–</b></div>
  <div>subscriptions<b id="n-subscriptions">–</b></div>
  <div>topics<b id="n-topics">–</b></div>
  <div>messages/s<b id="n-messages">–</b></div>
  <div>deliveries/s<b id="n-deliveries">–</b></div>
  <div>latency (ms)<b id="n-latency">–</b></div>
  <div>memory (MiB)<b id="n-memory">–</b></div>
  <div>workers<b id="n-workers">–</b></div>
</div>
<div id="charts">
  <div><canvas id="c-connections"></canvas></div>
  <div><canvas id="c-rates"></canvas></div>
  <div><canvas id="c-latency"></canvas></div>
  <div><canvas id="c-memory"></canvas></div>
</div>
<script src="/dashboard/chart.js"></script>
<script>
const KEEP = 300;
const charts = {};
function chart(id, labels) {
  if (typeof Chart === 'undefined') return null;
  return charts[id] = new Chart(document.getElementById('c-' + id), {
    type: 'line',
    data: { labels: [], datasets: labels.map((label) => ({ label, data: [], pointRadius: 0, borderWidth: 1.5 })) },
    options: { animation: false, maintainAspectRatio: false, scales: { y: { beginAtZero: true } } },
  });
}
chart('connections', ['connections', 'subscriptions']);
chart('rates', ['messages/s', 'deliveries/s']);
chart('latency', ['mean delivery latency (ms)', 'event-loop delay max (ms)']);
chart('memory', ['RSS (MiB)', 'heap used (MiB)']);
function push(id, label, values) {
  const c = charts[id];
  if (!c) return;
  c.data.labels.push(label);
  values.forEach((v, i) => c.data.datasets[i].data.push(v));
  if (c.data.labels.length > KEEP) { c.data.labels.shift(); c.data.datasets.forEach((d) => d.data.shift()); }
  c.update();
}
const show = (id, v) => { document.getElementById('n-' + id).textContent = v; };
let last = null;
async function tick() {
  try {
    const s = await (await fetch('/stats', { cache: 'no-store' })).json();
    const label = new Date(s.time).toLocaleTimeString();
    const mib = (b) => Math.round((b || 0) / 1048576 * 10) / 10;
    show('connections', s.c1m_connections ?? 0);
    show('subscriptions', s.c1m_gateway_subscriptions ?? 0);
    show('topics', s.c1m_gateway_topics ?? 0);
    show('memory', mib(s.c1m_memory_rss_bytes));
    show('workers', s.c1m_workers ?? 0);
    push('connections', label, [s.c1m_connections ?? 0, s.c1m_gateway_subscriptions ?? 0]);
    push('memory', label, [mib(s.c1m_memory_rss_bytes), mib(s.c1m_memory_heap_used_bytes)]);
    if (last !== null) {
      const dt = Math.max(0.001, (s.time - last.time) / 1000);
      const rate = (k) => Math.max(0, Math.round(((s[k] ?? 0) - (last[k] ?? 0)) / dt));
      const n = (s.c1m_gateway_delivery_latency_seconds_count ?? 0) - (last.c1m_gateway_delivery_latency_seconds_count ?? 0);
      const sum = (s.c1m_gateway_delivery_latency_seconds_sum ?? 0) - (last.c1m_gateway_delivery_latency_seconds_sum ?? 0);
      const latency = n > 0 ? Math.round(sum / n * 1e5) / 100 : 0;
      show('messages', rate('c1m_gateway_messages_in_total'));
      show('deliveries', rate('c1m_gateway_deliveries_total'));
      show('latency', latency);
      push('rates', label, [rate('c1m_gateway_messages_in_total'), rate('c1m_gateway_deliveries_total')]);
      push('latency', label, [latency, Math.round((s.c1m_event_loop_delay_max_seconds ?? 0) * 1e5) / 100]);
    }
    last = s;
    document.getElementById('status').textContent = typeof Chart === 'undefined' ? '(chart.js not installed: numbers only)' : '';
  } catch (err) {
    document.getElementById('status').textContent = 'unreachable: ' + err.message;
  }
}
tick();
setInterval(tick, 1000);
</script>
</body></html>
`;

/** The routes (exact paths) of `/metrics`, `/stats` and the dashboard. */
export function dashboardRoutes(): Record<string, RouteHandler> {
  return {
    'GET /metrics': async (_req, res) => {
      const m = await gatherMetrics();
      res.setHeader('Content-Type', m.contentType).end(m.text);
    },
    'GET /stats': async (_req, res) => {
      res.setHeader('Content-Type', 'application/json').setHeader('Cache-Control', 'no-store').end(JSON.stringify(await dashboardStats()));
    },
    'GET /dashboard': (_req, res) => {
      res.setHeader('Content-Type', 'text/html; charset=utf-8').end(PAGE);
    },
    'GET /dashboard/chart.js': (_req, res) => {
      const src = chartJsSource();
      if (src === null) return void res.status(404).setHeader('Content-Type', 'text/plain').end('chart.js is not installed (an optional dependency of c1m): npm install chart.js');
      res.setHeader('Content-Type', 'text/javascript; charset=utf-8').setHeader('Cache-Control', 'max-age=3600').end(src);
    },
  };
}
