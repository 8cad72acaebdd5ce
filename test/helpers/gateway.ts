/**
 * Helpers for the gateway tests: a protocol client (the `ws` package) that collects the
 * server's JSON messages (and binary `msg`s, decoded from docs/gateway.md's layout), JWTs signed with `jose`, a strict Prometheus text-format parser, a
 * `nats-server` on a free port, and the `c1m serve` CLI as a child process.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { listen, type Server } from '../../src/index.js';
import { createGateway, type GatewayOptions } from '../../src/apps/gateway/index.js';
import { HOST, freePort, waitFor, within } from './net.js';

export { freePort };

export type ServerMsg = { op: string; id?: number; [k: string]: unknown };

/** A gateway client: every message it gets, parsed, in order; how it closed. */
export class GatewayClient {
  readonly ws: WebSocket;
  readonly msgs: ServerMsg[] = [];
  closed: { code: number; reason: string } | undefined;
  /** The HTTP status of a refused upgrade. */
  refused: number | undefined;
  readonly opened: Promise<void>;

  constructor(url: string, headers?: Record<string, string>) {
    this.ws = new WebSocket(url, { headers });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('unexpected-response', (_req, res) => {
        this.refused = res.statusCode;
        reject(new Error(`upgrade refused: ${res.statusCode}`));
      });
      this.ws.once('error', reject);
    });
    this.opened.catch(() => {});
    this.ws.on('message', (data, isBinary) => this.msgs.push(isBinary ? binaryMsg(data as Buffer) : (JSON.parse(data.toString()) as ServerMsg)));
    this.ws.on('close', (code, reason) => (this.closed = { code, reason: reason.toString() }));
  }

  send(m: unknown): void {
    this.ws.send(JSON.stringify(m));
  }

  /** A binary `pub`: 0x02, id (u32 BE), topic length (u8), topic, data. */
  sendBinaryPub(id: number, topic: string, data: Uint8Array): void {
    const head = Buffer.alloc(6);
    head[0] = 0x02;
    head.writeUInt32BE(id, 1);
    head[5] = Buffer.byteLength(topic);
    this.ws.send(Buffer.concat([head, Buffer.from(topic), data]));
  }

  /** The first message matching `pred`, waiting for it. */
  async next(pred: (m: ServerMsg) => boolean, what: string): Promise<ServerMsg> {
    await waitFor(() => this.msgs.some(pred) || this.closed !== undefined, what);
    const m = this.msgs.find(pred);
    assert.ok(m, `${what}: closed first (${JSON.stringify(this.closed)}); got ${JSON.stringify(this.msgs)}`);
    return m;
  }

  /** The `msg` deliveries of `topic`, in order. */
  deliveries(topic?: string): ServerMsg[] {
    return this.msgs.filter((m) => m.op === 'msg' && (topic === undefined || m.topic === topic));
  }

  async waitClosed(): Promise<{ code: number; reason: string }> {
    await waitFor(() => this.closed !== undefined, 'the WebSocket to close');
    return this.closed!;
  }

  close(): void {
    this.ws.terminate();
  }
}

/**
 * A binary `msg` (0x01, topic length (u8), topic, seq (u64 BE), data) as a ServerMsg with the
 * data in `binary`; anything else binary as `{ op: 'binary?' }`.
 */
function binaryMsg(b: Buffer): ServerMsg {
  const n = b[1] ?? 0;
  if (b[0] !== 0x01 || b.length < 10 + n) return { op: 'binary?', bytes: b };
  return { op: 'msg', topic: b.toString('latin1', 2, 2 + n), seq: Number(b.readBigUInt64BE(2 + n)), binary: Buffer.from(b.subarray(10 + n)) };
}

/** A gateway made with `o`, listening on a free loopback port in this process. */
export async function startGateway(o: GatewayOptions): Promise<Server> {
  return listen(await createGateway(o), { port: 0, host: HOST });
}

/** Run `fn` with a gateway started with `o`, closing it and every client `fn` tracked after. */
export async function withGateway(o: GatewayOptions, fn: (port: number, track: (c: GatewayClient) => GatewayClient) => Promise<void>): Promise<void> {
  const server = await startGateway(o);
  const clients: GatewayClient[] = [];
  try {
    await fn(server.address.port, (c) => (clients.push(c), c));
  } finally {
    for (const c of clients) c.close();
    await server.close(1000);
  }
}

/** A connected, welcomed client. */
export async function gatewayClient(port: number, query = '', headers?: Record<string, string>): Promise<GatewayClient> {
  const c = new GatewayClient(`ws://${HOST}:${port}/ws${query}`, headers);
  await within(c.opened, 'the upgrade');
  await c.next((m) => m.op === 'welcome', 'welcome');
  return c;
}

/** A JWT signed with `key` (HS256 for bytes, else `alg`), expiring in `expSeconds` (negative: expired). */
export async function signToken(claims: Record<string, unknown>, key: Parameters<SignJWT['sign']>[0], alg = 'HS256', expSeconds = 3600): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg }).setIssuedAt().setExpirationTime(Math.floor(Date.now() / 1000) + expSeconds).sign(key);
}

/** POST a publish; the status and parsed body. */
export async function publishHttp(port: number, topic: string, body: string | Uint8Array, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  return answerOf(await fetch(`http://${HOST}:${port}/publish/${topic}`, { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body), headers }));
}

/** `POST /broadcast` with `body` (a string as it is, anything else as its JSON); `method` to try others. */
export async function broadcastHttp(port: number, body: unknown, headers: Record<string, string> = {}, method = 'POST'): Promise<{ status: number; body: Record<string, unknown> }> {
  const payload = method === 'GET' ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return answerOf(await fetch(`http://${HOST}:${port}/broadcast`, { method, headers, body: payload }));
}

/** An operator request's answer: its status, and its JSON body (`{ text }` when not JSON). */
async function answerOf(res: Response): Promise<{ status: number; body: Record<string, unknown> }> {
  const text = await res.text();
  const json = /^application\/json/.test(res.headers.get('content-type') ?? '');
  return { status: res.status, body: json ? (JSON.parse(text) as Record<string, unknown>) : { text } };
}

// ---- Prometheus text format (exposition format 0.0.4), parsed strictly. ----

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface PromFamily {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  samples: PromSample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/;

function parseLabels(s: string, line: number): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"\s*(,|$)/y;
  let at = 0;
  while (at < s.length) {
    re.lastIndex = at;
    const m = re.exec(s);
    assert.ok(m, `line ${line}: bad labels {${s}}`);
    assert.ok(!(m[1]! in out), `line ${line}: label ${m[1]} twice`);
    out[m[1]!] = m[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    at = re.lastIndex;
  }
  return out;
}

function parseValue(s: string, line: number): number {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  assert.match(s, /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/, `line ${line}: bad value ${s}`);
  return Number(s);
}

/**
 * Parse the text format: every sample belongs to the family its `# TYPE` announced (histogram
 * samples `_bucket`/`_sum`/`_count`), no family twice, HELP and TYPE before samples, the text
 * ends with a newline. Fails (assert) on anything else.
 */
export function parsePrometheus(text: string): Map<string, PromFamily> {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const families = new Map<string, PromFamily>();
  let current: PromFamily | undefined;
  const lines = text.split('\n').slice(0, -1);
  lines.forEach((l, i) => {
    const n = i + 1;
    if (l === '') return;
    let m: RegExpExecArray | null;
    if ((m = /^# HELP (\S+) (.*)$/.exec(l))) {
      assert.match(m[1]!, NAME, `line ${n}: metric name`);
      assert.ok(!families.has(m[1]!), `line ${n}: family ${m[1]} twice`);
      current = { name: m[1]!, help: m[2]!, type: 'untyped', samples: [] };
      families.set(current.name, current);
    } else if ((m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(l))) {
      assert.equal(m[1], current?.name, `line ${n}: TYPE for ${m[1]} outside its family`);
      assert.equal(current!.samples.length, 0, `line ${n}: TYPE after samples`);
      current!.type = m[2] as PromFamily['type'];
    } else if (l.startsWith('#')) {
      // another comment: allowed
    } else {
      m = SAMPLE.exec(l);
      assert.ok(m, `line ${n}: not a sample: ${l}`);
      assert.ok(current, `line ${n}: a sample before any family`);
      const name = m[1]!;
      const suffixes = current.type === 'histogram' ? ['_bucket', '_sum', '_count'] : current.type === 'summary' ? ['', '_sum', '_count'] : [''];
      assert.ok(suffixes.some((s) => name === current!.name + s), `line ${n}: sample ${name} in family ${current.name} (${current.type})`);
      current.samples.push({ name, labels: m[2] ? parseLabels(m[2], n) : {}, value: parseValue(m[3]!, n) });
    }
  });
  for (const f of families.values()) {
    if (f.type === 'histogram') {
      const inf = f.samples.find((s) => s.name.endsWith('_bucket') && s.labels.le === '+Inf');
      const count = f.samples.find((s) => s.name.endsWith('_count'));
      assert.ok(inf && count && inf.value === count.value, `${f.name}: the +Inf bucket equals _count`);
    }
  }
  return families;
}

/** The value of an unlabelled sample. */
export function promValue(families: Map<string, PromFamily>, name: string): number {
  const f = families.get(name);
  assert.ok(f, `metric ${name} present`);
  const s = f.samples.find((x) => x.name === name && Object.keys(x.labels).length === 0);
  assert.ok(s, `${name} has an unlabelled sample`);
  return s.value;
}

export async function scrape(port: number): Promise<Map<string, PromFamily>> {
  const res = await fetch(`http://${HOST}:${port}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parsePrometheus(await res.text());
}

// ---- nats-server and the CLI. ----

export const NATS_SERVER = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' }).stdout.trim();
export const NATS_MISSING = NATS_SERVER === '' && 'nats-server is not installed (apt-get install nats-server; .ci/run installs it)';

/** A nats-server on `port` (loopback), with `extra` arguments (`-js -sd DIR`); resolves once it accepts connections. */
export async function startNats(port: number, extra: string[] = []): Promise<ChildProcess> {
  const child = spawn(NATS_SERVER, ['-a', HOST, '-p', String(port), ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  await waitFor(() => /Server is ready/.test(log) || child.exitCode !== null, 'nats-server to be ready');
  assert.equal(child.exitCode, null, `nats-server exited: ${log}`);
  return child;
}

export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await within(gone, 'a child process to exit', 30_000);
}

const runJs = fileURLToPath(new URL('../../src/cli/run.js', import.meta.url));

export interface Cli {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function cli(args: string[]): Cli {
  const child = spawn(process.execPath, [runJs, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const c: Cli = {
    child, stdout: '', stderr: '',
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
  };
  child.stdout!.on('data', (d: Buffer) => (c.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (c.stderr += d.toString()));
  return c;
}

/** Wait for the CLI's "listening on" line; returns its port. */
export async function listening(c: Cli): Promise<number> {
  let exited = false;
  void c.exited.then(() => (exited = true));
  await waitFor(() => /listening on/.test(c.stdout) || exited, 'the listening line', 60_000);
  const m = / listening on [\d.]+:(\d+) /.exec(c.stdout);
  assert.ok(m, `stdout ${JSON.stringify(c.stdout)}, stderr ${JSON.stringify(c.stderr)}`);
  return Number(m[1]);
}
