/**
 * ResponseScanner (the `http` bench scenario's response framing): byte fixtures, each fed
 * whole, split in two at every offset, and one byte at a time; the statuses reported, the
 * responses counted and the error must not depend on the split.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_LINE, ResponseScanner } from '../../src/cli/scenarios/http-response.js';

interface Outcome {
  statuses: number[];
  done: number;
  error: string | null;
  closing: boolean;
}

function scan(chunks: Buffer[]): Outcome {
  const statuses: number[] = [];
  const s = new ResponseScanner((st) => statuses.push(st));
  let done = 0;
  for (const c of chunks) done += s.execute(c);
  return { statuses, done, error: s.error, closing: s.closing };
}

/** Every way of feeding `bytes` gives the same outcome; returns it. */
function scanAllSplits(bytes: Buffer): Outcome {
  const whole = scan([bytes]);
  for (let i = 1; i < bytes.length; i++) {
    assert.deepEqual(scan([bytes.subarray(0, i), bytes.subarray(i)]), whole, `split at ${i}`);
  }
  assert.deepEqual(scan([...bytes].map((b) => Buffer.from([b]))), whole, 'byte by byte');
  return whole;
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const HELLO = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!';

describe('ResponseScanner', () => {
  test('Content-Length responses, pipelined back to back', () => {
    const o = scanAllSplits(b(HELLO + HELLO + 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n' + HELLO));
    assert.deepEqual(o, { statuses: [200, 200, 404, 200], done: 4, error: null, closing: false });
  });

  test('chunked bodies with extensions and trailers; bodies may contain CRLF and "HTTP/1.1"', () => {
    const chunked = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '5;ext=1\r\nab\r\nc\r\n' + 'a\r\nHTTP/1.1 2\r\n' + '0\r\nX-Trailer: y\r\n\r\n';
    const o = scanAllSplits(b(chunked + 'HTTP/1.1 201 Created\r\ncontent-length: 4\r\n\r\n\r\n\r\n'));
    assert.deepEqual(o, { statuses: [200, 201], done: 2, error: null, closing: false });
  });

  test('interim 1xx responses are skipped; 204 and 304 have no body', () => {
    const o = scanAllSplits(b('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n' + HELLO));
    assert.deepEqual(o.statuses, [204, 304, 200]);
    assert.equal(o.done, 3);
    assert.equal(o.error, null);
  });

  test('bare LF line ends and HTTP/1.0 status lines are accepted', () => {
    const o = scanAllSplits(b('HTTP/1.0 500 Oops\nContent-Length: 2\n\nxyHTTP/1.1 200\r\nContent-Length: 0\r\n\r\n'));
    assert.deepEqual(o, { statuses: [500, 200], done: 2, error: null, closing: false });
  });

  test('Connection: close is reported on the response that carries it', () => {
    const o = scanAllSplits(b('HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1\r\n\r\nx'));
    assert.equal(o.closing, true);
    assert.deepEqual(o.statuses, [200]);
  });

  const bad: [string, string, RegExp][] = [
    ['not HTTP', 'SSH-2.0-OpenSSH\r\n', /bad status line/],
    ['no framing', 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nbody', /framed by connection close/],
    ['upgrade', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n', /101 Switching Protocols/],
    ['bad Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n', /bad Content-Length/],
    ['conflicting Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', /bad Content-Length/],
    ['gzip only', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n', /does not end in chunked/],
    ['bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /bad chunk size/],
    ['chunk overrun', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n', /longer than its size/],
    ['header without colon', 'HTTP/1.1 200 OK\r\nnocolon\r\n\r\n', /bad header line/],
  ];
  for (const [name, text, why] of bad) {
    test(`error: ${name}, reported whatever the split, counting what completed before it`, () => {
      const o = scanAllSplits(b(HELLO + text));
      assert.equal(o.done, 1);
      assert.deepEqual(o.statuses, [200]);
      assert.match(o.error ?? '', why);
    });
  }

  test('a head line past MAX_LINE is an error; the scanner is dead afterwards', () => {
    const s = new ResponseScanner(() => {});
    assert.equal(s.execute(b(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(MAX_LINE)}`)), 0);
    assert.match(s.error ?? '', /longer than 16384 bytes/);
    assert.equal(s.execute(b(HELLO)), 0);
  });
});
