/**
 * The WebSocket server's heartbeat (`pingInterval`) on every backend, and what the native
 * backend adds: the engine writes the pings and absorbs empty masked pongs itself, so a
 * connection that answers its heartbeats costs the server's JS nothing (no `onData`, no
 * `onTimeout`), while every other byte (a split pong, a pong with a payload, a pong followed by
 * a message, the tail of a large frame that looks like a pong) still reaches JS, and an
 * application with `onPong` still sees every pong. Over ws:// and wss://.
 */
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { describe, test } from 'node:test';
import { createReactor, createWebSocketHandler, type Handler, type WebSocketServerOptions } from '../../src/index.js';
import { backends, type BackendName } from '../helpers/backends.js';
import { GUARD, HOST, deferred, sleep, waitFor } from '../helpers/net.js';
import { testCerts } from '../helpers/tls-certs.js';
import { FrameReader, OP, encodeFrame, type ServerFrame } from '../helpers/ws-raw.js';

const PING_MS = 100;

/** How a test client answers the server's pings. */
type Answer = 'pong' | 'split' | 'pong+message' | 'pong-payload' | 'none';

interface Server {
  port: number;
  /** Calls of the engine-level handler after each upgrade (the upgrade request is one onData). */
  calls: { onData: number; onTimeout: number };
  closes: number[];
  pongs: string[];
  messages: string[];
  close(): Promise<void>;
}

async function server(backend: BackendName, opts: WebSocketServerOptions = {}, tls = false): Promise<Server> {
  const closes: number[] = [];
  const messages: string[] = [];
  const ws = createWebSocketHandler({
    pingInterval: PING_MS,
    onMessage(w, data, isBinary) {
      messages.push(isBinary ? `binary ${data.length}` : data.toString());
      w.send(data, isBinary);
    },
    onClose(_w, code) {
      closes.push(code);
    },
    ...opts,
  });
  const calls = { onData: 0, onTimeout: 0 };
  // Counts what reaches JS from the engine, then hands it to the WebSocket handler.
  const counting: Handler = {
    onReactor: (r) => ws.onReactor?.(r),
    onOpen: (c) => ws.onOpen?.(c),
    onData(c, data) {
      calls.onData++;
      return ws.onData!(c, data);
    },
    onDrain: (c) => ws.onDrain?.(c),
    onTimeout(c) {
      calls.onTimeout++;
      ws.onTimeout!(c);
    },
    onClose: (c, reason) => ws.onClose?.(c, reason),
  };
  const reactor = createReactor(counting, { backend, timerResolution: 20 });
  const certs = tls ? testCerts() : undefined;
  const { port } = await reactor.listen({ port: 0, host: HOST, tls: certs && { cert: certs.server.cert, key: certs.server.key } });
  return { port, calls, closes, pongs: [], messages, close: () => reactor.close(1000) };
}

/** A raw client that upgrades, then answers each ping as `answer` says. */
class Client {
  readonly frames: ServerFrame[];
  pings = 0;
  closed = false;
  readonly socket: Socket;
  readonly #open = deferred();
  constructor(port: number, public answer: Answer, tls = false) {
    const reader = new FrameReader();
    this.frames = reader.frames;
    this.socket = tls ? tlsConnect({ host: HOST, port, servername: 'localhost', ca: testCerts().ca }) : netConnect({ host: HOST, port });
    this.socket.setNoDelay(true);
    let head: Buffer | null = Buffer.alloc(0);
    this.socket.on('data', (chunk: Buffer) => {
      if (head !== null) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        assert.match(head.subarray(0, end).toString('latin1'), /^HTTP\/1\.1 101/);
        chunk = head.subarray(end + 4);
        head = null;
        this.#open.resolve();
      }
      reader.push(chunk);
      for (; this.pings < this.frames.filter((f) => f.opcode === OP.ping).length; this.pings++) void this.#answer();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => (this.closed = true));
    this.socket.once(tls ? 'secureConnect' : 'connect', () => {
      this.socket.write(`GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
  }
  opened(): Promise<void> {
    return this.#open.promise;
  }
  send(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }
  async #answer(): Promise<void> {
    const pong = encodeFrame({ opcode: OP.pong });
    switch (this.answer) {
      case 'none':
        return;
      case 'pong':
        return this.send(pong);
      case 'split': // two reads on the server, most likely; any split must work
        this.send(pong.subarray(0, 3));
        await sleep(5);
        return this.send(pong.subarray(3));
      case 'pong+message':
        return this.send(Buffer.concat([pong, encodeFrame({ opcode: OP.text, payload: `after ping ${this.pings}` })]));
      case 'pong-payload':
        return this.send(encodeFrame({ opcode: OP.pong, payload: `p${this.pings}` }));
    }
  }
  destroy(): void {
    this.socket.destroy();
  }
}

/** Wait for `n` more pings, the connection staying open. */
async function pingsStayOpen(c: Client, n: number): Promise<void> {
  const want = c.pings + n;
  await waitFor(() => c.pings >= want || c.closed, `${n} heartbeat pings`);
  assert.equal(c.closed, false, 'the connection stayed open');
}

for (const backend of backends) {
  const native = backend === 'native';
  describe(`WebSocket heartbeat (${backend})`, () => {
    test('a client that answers pings with empty pongs stays open; on native, JS sees none of it', GUARD, async () => {
      const s = await server(backend);
      try {
        const c = new Client(s.port, 'pong');
        await c.opened();
        const before = { ...s.calls };
        await pingsStayOpen(c, 4);
        if (native) assert.deepEqual(s.calls, before, 'no onData, no onTimeout: pings and pongs stayed in the engine');
        else assert.ok(s.calls.onData > before.onData, 'the portable backend reads pongs in JS');
        assert.equal(s.calls.onTimeout > before.onTimeout, !native);
        assert.deepEqual(s.closes, []);
        c.destroy();
      } finally {
        await s.close();
      }
    });

    test('a client that does not answer is pinged, then closed (1006)', GUARD, async () => {
      const s = await server(backend);
      try {
        const c = new Client(s.port, 'none');
        await c.opened();
        await waitFor(() => c.closed, 'the server closing the silent client');
        assert.ok(c.pings >= 1, 'pinged before being closed');
        await waitFor(() => s.closes.length === 1, 'onClose');
        assert.deepEqual(s.closes, [1006]);
        assert.equal(s.calls.onTimeout, native ? 1 : 2, native ? 'one TIMEOUT: the unanswered ping' : 'ping, then close');
      } finally {
        await s.close();
      }
    });

    for (const answer of ['split', 'pong+message', 'pong-payload'] as const) {
      test(`pongs that are not one bare empty pong reach JS and keep the connection (${answer})`, GUARD, async () => {
        const pongs: string[] = [];
        const s = await server(backend, { onPong: answer === 'pong-payload' ? (_w, d) => pongs.push(Buffer.from(d).toString()) : undefined });
        try {
          const c = new Client(s.port, answer);
          await c.opened();
          const before = s.calls.onData;
          await pingsStayOpen(c, 3);
          assert.ok(s.calls.onData > before, 'the bytes reached onData');
          if (answer === 'pong+message') {
            await waitFor(() => s.messages.length >= 3, 'the messages after the pongs');
            assert.deepEqual(s.messages.slice(0, 3), ['after ping 0', 'after ping 1', 'after ping 2']);
          }
          if (answer === 'pong-payload') {
            await waitFor(() => pongs.length >= 3, 'the pongs with payloads');
            assert.deepEqual(pongs.slice(0, 3), ['p0', 'p1', 'p2']);
          }
          assert.deepEqual(s.closes, []);
          c.destroy();
        } finally {
          await s.close();
        }
      });
    }

    test('an application with onPong gets every empty pong', GUARD, async () => {
      let pongs = 0;
      const s = await server(backend, { onPong: () => pongs++ });
      try {
        const c = new Client(s.port, 'pong');
        await c.opened();
        await pingsStayOpen(c, 3);
        const answered = c.pings;
        await waitFor(() => pongs >= answered, `${answered} pongs in onPong`);
        assert.ok(pongs >= 3);
        c.destroy();
      } finally {
        await s.close();
      }
    });

    test('the tail of a large streamed frame that looks like a pong is frame data, not a pong', GUARD, async () => {
      const s = await server(backend);
      try {
        const c = new Client(s.port, 'pong');
        await c.opened();
        // 20,000 bytes (over HOLD_FRAME_BYTES: streamed), masking key 0 so the wire carries the
        // payload as it is: its last 6 bytes are an empty masked pong's.
        const body = Buffer.alloc(20_000, 0x61);
        Buffer.from([0x8a, 0x80, 1, 2, 3, 4]).copy(body, body.length - 6);
        const frame = encodeFrame({ opcode: OP.binary, payload: body, key: Buffer.alloc(4) });
        const reads = s.calls.onData;
        c.send(frame.subarray(0, frame.length - 6));
        await waitFor(() => s.calls.onData > reads, 'the server reading the frame\'s start');
        await sleep(PING_MS / 5); // not needed for correctness: lets a wrong absorption show
        c.send(frame.subarray(frame.length - 6));
        await waitFor(() => s.messages.length === 1, 'the whole message');
        assert.deepEqual(s.messages, ['binary 20000']);
        await waitFor(() => c.frames.some((f) => f.opcode === OP.binary), 'the echo');
        assert.ok(c.frames.find((f) => f.opcode === OP.binary)!.payload.equals(body));
        await pingsStayOpen(c, 2); // absorption is back on: heartbeats go on as before
        c.destroy();
      } finally {
        await s.close();
      }
    });

    test('wss: heartbeats are answered, and a silent client is closed (1006)', GUARD, async () => {
      const s = await server(backend, {}, true);
      try {
        const live = new Client(s.port, 'pong', true);
        await live.opened();
        const before = { ...s.calls };
        await pingsStayOpen(live, 3);
        if (native) assert.deepEqual(s.calls, before, 'TLS: pings and pongs stayed in the engine');
        const dead = new Client(s.port, 'none', true);
        await dead.opened();
        await waitFor(() => dead.closed, 'the server closing the silent client');
        await waitFor(() => s.closes.length === 1, 'onClose');
        assert.deepEqual(s.closes, [1006]);
        assert.equal(live.closed, false);
        live.destroy();
      } finally {
        await s.close();
      }
    });
  });
}
