/**
 * Property tests of the HTTP/1.1 request parser. A short pass runs with `npm test`;
 * set FUZZ_RUNS (default 200) for a longer one, FUZZ_SEED to replay a failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HttpParseError, RequestParser, type Field, type RequestHead, type RequestParserOptions } from '../../src/protocols/http1/index.js';
import { parseFieldText } from '../../src/protocols/http1/parser.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 200);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const params = { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) };
const TIMEOUT = 60_000 + RUNS * 100;

type Event = ['request', RequestHead] | ['body', string] | ['complete', Field[] | undefined];
interface Outcome {
  events: Event[];
  error: string | null;
  upgradeAt: number | null;
}

const OPTIONS: RequestParserOptions = { maxHeaderBytes: 1024, maxUriLength: 256, maxBodyBytes: 4096, maxHeaders: 20 };

/**
 * Feed `data` cut at `cuts` the way the engine does (unconsumed bytes come back first).
 * Only HttpParseError may escape execute; every call must end, and the parser may never
 * hold back more than maxHeaderBytes.
 */
function run(data: Uint8Array, cuts: number[], lazyFields = false): Outcome {
  const events: Event[] = [];
  const parser: RequestParser = new RequestParser(
    {
      onRequest: (head) => events.push(['request', lazyFields ? fromFieldText(head, parser) : head]),
      onBody: (chunk) => {
        const s = Buffer.from(chunk).toString('latin1');
        const last = events[events.length - 1];
        if (last !== undefined && last[0] === 'body') last[1] += s;
        else events.push(['body', s]);
      },
      onMessageComplete: (trailers) => events.push(['complete', trailers]),
    },
    OPTIONS,
    lazyFields,
  );
  const bounds = [...new Set(cuts.filter((c) => c > 0 && c < data.length))].sort((a, b) => a - b);
  bounds.push(data.length);
  let pending: Uint8Array = new Uint8Array(0);
  let base = 0;
  let from = 0;
  for (const to of bounds) {
    const piece = data.subarray(from, to);
    from = to;
    const input = Buffer.concat([pending, piece]);
    let n: number;
    try {
      n = parser.execute(input);
    } catch (err) {
      if (!(err instanceof HttpParseError)) throw err;
      return { events, error: err.code, upgradeAt: null };
    }
    assert.ok(Number.isInteger(n) && n >= 0 && n <= input.length, `execute returned ${n} for ${input.length} bytes`);
    pending = input.subarray(n);
    base += n;
    assert.ok(pending.length <= OPTIONS.maxHeaderBytes!, `held back ${pending.length} bytes`);
    if (parser.upgraded) return { events, error: null, upgradeAt: base };
  }
  return { events, error: null, upgradeAt: null };
}

/** The head a lazyFields parser reports, with the fields it left as text decoded as the server does. */
function fromFieldText(head: RequestHead, parser: RequestParser): RequestHead {
  const text = parser.fieldText;
  if (text === null) return head;
  assert.deepEqual(head.headers, []);
  assert.equal(head.host, null);
  const headers = parseFieldText(text, parser.fieldStart);
  const host = headers.find(([name]) => name.toLowerCase() === 'host');
  return { ...head, headers, host: host === undefined ? null : host[1] };
}

const cutsFor = (maxLength: number) => fc.array(fc.integer({ min: 1, max: Math.max(1, maxLength) }), { maxLength: 12 });

// ---------------------------------------------------------------------------------------------
// Arbitrary and mutated bytes

// Fragments that steer random input deep into the state machine (fields, bodies, chunks).
const PREFIXES = ['', 'GET / HTTP/1.1\r\n', 'POST /p HTTP/1.1\r\nHost: h\r\n', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n'];
const FRAGMENTS = [
  'GET', 'POST', ' ', '/', 'HTTP/1.1', 'HTTP/1.0', '\r\n', '\r\n\r\n', '\r', '\n', ':', ': ', 'Host: h\r\n', 'X-A: b\r\n',
  'Content-Length: 3\r\n', 'Content-Length: ', 'Transfer-Encoding: chunked\r\n', 'Connection: close\r\n',
  'Upgrade: x\r\nConnection: upgrade\r\n', 'Expect: 100-continue\r\n', '0\r\n', '5\r\nhello\r\n', 'f', ';', '=', '"', '\\',
  ' ', '\t', '\x00', '\x7f', '\xff', 'abc',
];
const httpish = fc
  .tuple(fc.constantFrom(...PREFIXES), fc.array(fc.oneof(fc.constantFrom(...FRAGMENTS), fc.string({ maxLength: 4 })), { maxLength: 40 }))
  .map(([prefix, parts]) => Buffer.from(prefix + parts.join(''), 'latin1'));
const anyBytes = fc.oneof(fc.uint8Array({ maxLength: 600 }), httpish);

test('arbitrary bytes: only HttpParseError escapes, every call ends, split-independent outcome', { timeout: TIMEOUT }, () => {
  fc.assert(
    fc.property(anyBytes, cutsFor(600), (data, cuts) => {
      const whole = run(data, []);
      const split = run(data, cuts);
      assert.deepEqual(split, whole);
      const bytewise = run(data, Array.from(data, (_, k) => k));
      assert.deepEqual(bytewise, whole);
      // The server's parser (field lines left as text) reports the same, once they are decoded.
      assert.deepEqual(run(data, [], true), whole);
      assert.deepEqual(run(data, cuts, true), whole);
    }),
    params,
  );
});

// ---------------------------------------------------------------------------------------------
// Generated valid requests

const tokenChars = [..."!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"];
const token = (maxLength: number) => fc.string({ unit: fc.constantFrom(...tokenChars), minLength: 1, maxLength });
const targetChars = [...'abcxyz0123456789-._~!$&\'()*+,;=:@/?%'];
const target = fc.oneof(
  fc.string({ unit: fc.constantFrom(...targetChars), maxLength: 40 }).map((s) => `/${s}`),
  fc.constant('*'),
  fc.constant('http://example.com/abs?x=1'),
);
const valueChars = [...'abc XYZ019 \t!"#;,=/\\\xe9\xff~'];
const value = fc
  .string({ unit: fc.constantFrom(...valueChars), maxLength: 30 })
  .map((s) => s.replace(/^[ \t]+|[ \t]+$/g, ''));
const FRAMING = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'expect']);
const field = fc.tuple(token(16), value).filter(([n]) => !FRAMING.has(n.toLowerCase()));
const bodyBytes = fc.uint8Array({ minLength: 1, maxLength: 200 });

interface Model {
  method: string;
  target: string;
  versionMinor: 0 | 1;
  fields: [string, string][];
  close: boolean;
  body: { kind: 'none' } | { kind: 'length'; data: Uint8Array } | { kind: 'chunked'; chunks: Uint8Array[]; ext: boolean; trailers: [string, string][] };
}

const body = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  bodyBytes.map((data) => ({ kind: 'length' as const, data })),
  fc.record({
    kind: fc.constant('chunked' as const),
    chunks: fc.array(bodyBytes, { maxLength: 4 }),
    ext: fc.boolean(),
    trailers: fc.array(field, { maxLength: 3 }),
  }),
);

const model: fc.Arbitrary<Model> = fc
  .record({
    method: fc.oneof(fc.constantFrom('GET', 'POST', 'PUT', 'HEAD', 'DELETE', 'OPTIONS'), token(10)),
    target,
    versionMinor: fc.constantFrom(0 as const, 1 as const),
    fields: fc.array(field, { maxLength: 8 }),
    close: fc.boolean(),
    body,
  })
  .filter((m) => m.method !== 'CONNECT')
  // Transfer-Encoding is refused in HTTP/1.0.
  .map((m) => (m.versionMinor === 0 && m.body.kind === 'chunked' ? { ...m, body: { kind: 'none' as const } } : m));

function serialize(m: Model, last: boolean): { wire: string; expected: Event[] } {
  const fields: [string, string][] = [];
  if (m.versionMinor === 1) fields.push(['Host', 'example.com:8080']);
  fields.push(...m.fields);
  // Every request but the last keeps the connection open, so the next one is parsed.
  const keepAlive = !(last && m.close);
  if (!keepAlive) fields.push(['Connection', 'close']);
  else if (m.versionMinor === 0) fields.push(['Connection', 'keep-alive']);
  const expected: Event[] = [];
  let payload = '';
  if (m.body.kind === 'length') {
    fields.push(['Content-Length', String(m.body.data.length)]);
    payload = Buffer.from(m.body.data).toString('latin1');
  } else if (m.body.kind === 'chunked') {
    fields.push(['Transfer-Encoding', 'chunked']);
    for (const c of m.body.chunks) {
      payload += `${c.length.toString(16)}${m.body.ext ? ';n="v"' : ''}\r\n${Buffer.from(c).toString('latin1')}\r\n`;
    }
    payload += '0\r\n' + m.body.trailers.map(([n, v]) => `${n}: ${v}\r\n`).join('') + '\r\n';
  }
  const wire = `${m.method} ${m.target} HTTP/1.${m.versionMinor}\r\n${fields.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n${payload}`;
  expected.push([
    'request',
    {
      method: m.method,
      target: m.target,
      versionMinor: m.versionMinor,
      headers: fields,
      host: m.versionMinor === 1 ? 'example.com:8080' : null,
      contentLength: m.body.kind === 'length' ? m.body.data.length : null,
      chunked: m.body.kind === 'chunked',
      keepAlive,
      upgrade: false,
      upgradeProtocol: null,
      expectContinue: false,
    },
  ]);
  const data =
    m.body.kind === 'length' ? [m.body.data] : m.body.kind === 'chunked' ? m.body.chunks : [];
  if (data.length > 0) expected.push(['body', data.map((d) => Buffer.from(d).toString('latin1')).join('')]);
  const trailers = m.body.kind === 'chunked' && m.body.trailers.length > 0 ? m.body.trailers : undefined;
  expected.push(['complete', trailers]);
  return { wire, expected };
}

test('generated valid requests, pipelined: parsed as generated, identically at any split', { timeout: TIMEOUT }, () => {
  fc.assert(
    fc.property(fc.array(model, { minLength: 1, maxLength: 3 }), cutsFor(2000), (models, cuts) => {
      const parts = models.map((m, k) => serialize(m, k === models.length - 1));
      const data = Buffer.from(parts.map((p) => p.wire).join(''), 'latin1');
      const expected = parts.flatMap((p) => p.expected);
      const whole = run(data, []);
      assert.deepEqual(whole, { events: expected, error: null, upgradeAt: null });
      assert.deepEqual(run(data, cuts.map((c) => c % data.length)), whole);
      assert.deepEqual(run(data, [], true), whole);
      assert.deepEqual(run(data, cuts.map((c) => c % data.length), true), whole);
    }),
    params,
  );
});

test('mutated valid requests: only HttpParseError escapes, split-independent outcome', { timeout: TIMEOUT }, () => {
  const mutated = fc
    .tuple(model, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'insert', 'delete')), { minLength: 1, maxLength: 4 }))
    .map(([m, edits]) => {
      const bytes = [...Buffer.from(serialize(m, true).wire, 'latin1')];
      for (const [at, b, op] of edits) {
        const k = at % (bytes.length + 1);
        if (op === 'insert') bytes.splice(k, 0, b);
        else if (k < bytes.length) {
          if (op === 'flip') bytes[k] = b;
          else bytes.splice(k, 1);
        }
      }
      return Uint8Array.from(bytes);
    });
  fc.assert(
    fc.property(mutated, cutsFor(800), (data, cuts) => {
      assert.deepEqual(run(data, cuts), run(data, []));
    }),
    params,
  );
});
