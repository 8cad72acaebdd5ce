/**
 * The handler contract on every backend: whatever a handler returns from `onData` or throws
 * from any callback, only that connection closes (`'handler-error'`), `onError` gets a readable
 * Error, the other connections keep echoing and the reactor keeps accepting. Every wait is for
 * an event (bounded only against hangs).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createReactor, type CloseReason, type Connection, type Handler, type Reactor } from '../../src/index.js';
import { backends, type BackendName } from '../helpers/backends.js';
import { GUARD, HOST, RawClient, echoHandler, rawClient, startServer, waitFor } from '../helpers/net.js';

const TEN_MB = 10 * 1024 * 1024;
/** Longest message a reported Error may have to count as readable here. */
const READABLE = 400;

/** onData results that are neither a byte count in range, an Action nor undefined. */
const badResults: [name: string, make: (length: number) => unknown, shown: RegExp][] = [
  ['an object', () => ({ consumed: 1 }), /^\{ consumed: 1 \}$/],
  ['a null-prototype object', () => Object.create(null), /^\[Object: null prototype\] \{\}$/],
  ['a negative number', () => -5, /^-5$/],
  ['a count above the length', (length) => length + 1, /^\d+$/],
  ['NaN', () => NaN, /^NaN$/],
  ['a non-integer', () => 0.5, /^0\.5$/],
  ['a string', () => '3', /^'3'$/],
  ['a Symbol', () => Symbol('three'), /^Symbol\(three\)$/],
  ['a bigint', () => 3n, /^3n$/],
  ['true', () => true, /^true$/],
];

/** Values thrown by onData that are not Errors. */
const badThrows: [name: string, make: () => unknown, shown: RegExp][] = [
  ['a plain non-Error value', () => 42, /^42$/],
  ['a null-prototype object', () => Object.create(null), /^\[Object: null prototype\] \{\}$/],
  [
    'an object with a throwing getter',
    () => ({
      get message(): string {
        throw new Error('getter');
      },
      toString(): string {
        throw new Error('toString');
      },
    }),
    /^\{ message: \[Getter\], toString: \[Function: toString\] \}$/,
  ],
  ['a Symbol', () => Symbol('thrown'), /^Symbol\(thrown\)$/],
  ['a 10 MB string', () => 'x'.repeat(TEN_MB), /^'x+'\.\.\. \d+ more characters$/],
  ['undefined', () => undefined, /^undefined$/],
  ['null', () => null, /^null$/],
];

/** A server that records opens (by client port), closes, and what reached onError. */
async function recording(backend: BackendName, handler: Handler, options = {}) {
  const byPort = new Map<number, Connection>();
  const closes = new Map<number, CloseReason>();
  const reported: [err: unknown, id: number | undefined][] = [];
  const srv = await startServer(backend, {
    ...handler,
    onOpen(c) {
      byPort.set(c.remotePort!, c);
      handler.onOpen?.(c);
    },
    onClose(c, r) {
      closes.set(c.id, r);
      handler.onClose?.(c, r);
    },
  }, { onError: (err: Error, conn?: Connection) => void reported.push([err, conn?.id]), ...options });
  const conn = async (client: RawClient): Promise<Connection> => {
    await waitFor(() => byPort.has(client.socket.localPort!), 'server onOpen');
    return byPort.get(client.socket.localPort!)!;
  };
  const closeOf = async (id: number): Promise<CloseReason> => {
    await waitFor(() => closes.has(id), `close of ${id}`);
    return closes.get(id)!;
  };
  return { ...srv, closes, reported, conn, closeOf };
}

type Recording = Awaited<ReturnType<typeof recording>>;

/** Echo `text` through each client and check it came back (appended to what came before). */
async function echoes(clients: RawClient[], text: string): Promise<void> {
  for (const c of clients) {
    const before = c.length;
    await c.send(text);
    await c.waitBytes(before + text.length);
    assert.equal(c.text().slice(before), text);
  }
}

/**
 * The victim's connection closed with 'handler-error' and `code`; onError got exactly one Error
 * for it, the same one as `reason.error`, with a readable message matching `message`.
 */
async function assertFailed(s: Recording, victim: Connection, code: string, message: RegExp): Promise<Error> {
  const reason = await s.closeOf(victim.id);
  assert.equal(reason.kind, 'handler-error');
  assert.equal(reason.code, 'ERR_C1M_HANDLER');
  const mine = s.reported.filter(([, id]) => id === victim.id);
  assert.equal(mine.length, 1, 'onError called once for the connection');
  const err = mine[0]![0];
  assert.ok(err instanceof Error, 'onError receives an Error');
  assert.equal(reason.error, err, 'reason.error is what onError got');
  assert.equal((err as Error & { code?: string }).code, code);
  assert.equal(typeof err.message, 'string');
  assert.ok(err.message.length <= READABLE, `message of ${err.message.length} chars`);
  assert.match(err.message, message);
  return err;
}

for (const backend of backends) {
  describe(`handler contract: onData (${backend})`, () => {
    let s: Recording;
    let bystanders: RawClient[] = [];
    let bystanderIds: number[] = [];

    before(async () => {
      s = await recording(backend, {
        onData(conn, data) {
          const text = data.toString('latin1');
          const ret = /^ret:(\d+)$/.exec(text);
          if (ret) return badResults[Number(ret[1])]![1](data.length) as number;
          const thr = /^throw:(\d+)$/.exec(text);
          if (thr) throw badThrows[Number(thr[1])]![1]();
          conn.write(data);
          return undefined;
        },
      });
      bystanders = await Promise.all([rawClient(s.port), rawClient(s.port)]);
      bystanderIds = await Promise.all(bystanders.map(async (c) => (await s.conn(c)).id));
      await echoes(bystanders, 'hello');
    });

    after(async () => {
      for (const c of bystanders) c.destroy();
      await s.reactor.close(1000);
    });

    /** Trigger `command` on a fresh connection; check the contract; check the rest still works. */
    async function victimOf(command: string, code: string, prefix: string, message: RegExp, shown: RegExp): Promise<void> {
      const client = await rawClient(s.port);
      const victim = await s.conn(client);
      await client.send(command);
      const err = await assertFailed(s, victim, code, message);
      assert.ok(err.message.startsWith(prefix), err.message.slice(0, 120));
      const value = err.message.slice(prefix.length).replace(/; expected .*$/, '');
      assert.match(value, shown, `the value is described: ${err.message.slice(0, 120)}`);
      await client.waitClosed();
      for (const id of bystanderIds) assert.equal(s.closes.has(id), false, 'only the failing connection closed');
      await echoes(bystanders, `after ${command}`);
      // The reactor still accepts: a new connection echoes.
      const fresh = await rawClient(s.port);
      await echoes([fresh], 'fresh');
      fresh.destroy();
    }

    for (const [i, [name, , shown]] of badResults.entries()) {
      test(`returning ${name}: ERR_C1M_HANDLER_RESULT, only that connection closes`, GUARD, async () => {
        await victimOf(`ret:${i}`, 'ERR_C1M_HANDLER_RESULT', 'onData returned ', /^onData returned .+; expected a byte count from 0 to \d+, an Action, or undefined$/, shown);
      });
    }

    for (const [i, [name, , shown]] of badThrows.entries()) {
      test(`throwing ${name}: ERR_C1M_HANDLER, only that connection closes`, GUARD, async () => {
        await victimOf(`throw:${i}`, 'ERR_C1M_HANDLER', 'onData threw a non-Error value: ', /^onData threw a non-Error value: /, shown);
      });
    }
  });

  describe(`handler contract: other callbacks (${backend})`, () => {
    /** Which callback throws a null-prototype object next (once), for the connection that asked. */
    let armed: string | undefined;
    let victimId = -1;
    const fire = (callback: string, conn: Connection): void => {
      if (armed === callback && conn.id === victimId) {
        armed = undefined;
        throw Object.create(null);
      }
    };
    let s: Recording;
    let bystanders: RawClient[] = [];
    let bystanderIds: number[] = [];
    const chunk = Buffer.alloc(64 * 1024, 0x61);

    before(async () => {
      s = await recording(backend, {
        onOpen(conn) {
          if (armed === 'onOpen') {
            armed = undefined;
            victimId = conn.id;
            throw Object.create(null);
          }
        },
        onData(conn, data) {
          const text = data.toString('latin1');
          if (text === 'timeout') conn.setTimeout(50);
          else if (text === 'drain') for (let i = 0; i < 64 && conn.write(chunk); i++);
          else conn.write(data);
        },
        onDrain: (conn) => fire('onDrain', conn),
        onEnd(conn) {
          fire('onEnd', conn);
          conn.close();
        },
        onTimeout: (conn) => fire('onTimeout', conn),
        onClose: (conn) => fire('onClose', conn),
      }, { timerResolution: 20 });
      bystanders = await Promise.all([rawClient(s.port), rawClient(s.port)]);
      bystanderIds = await Promise.all(bystanders.map(async (c) => (await s.conn(c)).id));
    });

    after(async () => {
      for (const c of bystanders) c.destroy();
      await s.reactor.close(1000);
    });

    async function stillWorks(tag: string): Promise<void> {
      for (const id of bystanderIds) assert.equal(s.closes.has(id), false, 'only the failing connection closed');
      await echoes(bystanders, `after ${tag}`);
      const fresh = await rawClient(s.port);
      await echoes([fresh], 'fresh');
      fresh.destroy();
    }

    test('onOpen throwing a null-prototype object resets that connection', GUARD, async () => {
      armed = 'onOpen';
      const client = new RawClient(s.port);
      await waitFor(() => armed === undefined, 'onOpen');
      await assertFailed(s, { id: victimId } as Connection, 'ERR_C1M_HANDLER', /^onOpen threw a non-Error value: \[Object: null prototype\] \{\}$/);
      await client.waitClosed();
      await stillWorks('onOpen');
    });

    for (const [callback, trigger] of [
      ['onDrain', (c: RawClient) => c.send('drain')],
      ['onEnd', (c: RawClient) => void c.socket.end()],
      ['onTimeout', (c: RawClient) => c.send('timeout')],
    ] as const) {
      test(`${callback} throwing a null-prototype object resets that connection`, GUARD, async () => {
        // The client half-closes for onEnd only; elsewhere a FIN closes it as surely as a reset
        // (the portable backend's reset can reach a client with unread bytes as a FIN).
        const client = await rawClient(s.port, { allowHalfOpen: callback === 'onEnd' });
        const victim = await s.conn(client);
        victimId = victim.id;
        armed = callback;
        await trigger(client);
        await assertFailed(s, victim, 'ERR_C1M_HANDLER', new RegExp(`^${callback} threw a non-Error value: \\[Object: null prototype\\] \\{\\}$`));
        await client.waitClosed();
        await stillWorks(callback);
      });
    }

    test('onClose throwing is reported with the closed handle; nothing else changes', GUARD, async () => {
      const client = await rawClient(s.port);
      const victim = await s.conn(client);
      victimId = victim.id;
      armed = 'onClose';
      client.destroy();
      const reason = await s.closeOf(victim.id);
      assert.notEqual(reason.kind, 'handler-error', 'the connection closed for its own reason');
      await waitFor(() => s.reported.some(([, id]) => id === victim.id), 'onError for onClose');
      const mine = s.reported.filter(([, id]) => id === victim.id);
      assert.equal(mine.length, 1);
      const err = mine[0]![0] as Error & { code?: string };
      assert.ok(err instanceof Error);
      assert.equal(err.code, 'ERR_C1M_HANDLER');
      assert.equal(err.message, 'onClose threw a non-Error value: [Object: null prototype] {}');
      await stillWorks('onClose');
    });
  });

  describe(`handler contract: reactor callbacks and onError (${backend})`, () => {
    test('onReactor throwing is reported; the reactor works as usual', GUARD, async () => {
      const errors: Error[] = [];
      const reactor = createReactor({
        ...echoHandler,
        onReactor() {
          throw Symbol('no reactor for me');
        },
      }, { backend, onError: (e) => void errors.push(e) });
      try {
        assert.equal(errors.length, 1);
        assert.ok(errors[0] instanceof Error);
        assert.equal(errors[0]!.message, 'onReactor threw a non-Error value: Symbol(no reactor for me)');
        const { port } = await reactor.listen({ port: 0, host: HOST });
        const c = await rawClient(port);
        await echoes([c], 'works');
        c.destroy();
      } finally {
        await reactor.close(1000);
      }
    });

    test('onShutdown throwing is reported; the shutdown completes', GUARD, async () => {
      const reported: [Error, Connection | undefined][] = [];
      const closes: CloseReason[] = [];
      const s = await startServer(backend, {
        ...echoHandler,
        onShutdown() {
          throw Object.create(null);
        },
        onClose: (_c, r) => void closes.push(r),
      }, { onError: (e, c) => void reported.push([e, c]) });
      const c = await rawClient(s.port);
      await echoes([c], 'before');
      await s.reactor.close(200);
      assert.equal(reported.length, 1);
      assert.ok(reported[0]![0] instanceof Error);
      assert.equal(reported[0]![0].message, 'onShutdown threw a non-Error value: [Object: null prototype] {}');
      assert.equal(reported[0]![1], undefined);
      assert.deepEqual(closes.map((r) => r.kind), ['shutdown'], 'what remained was closed at the deadline');
      await c.waitClosed();
    });

    test('an onError that throws does not escape: the failing connection still closes, others keep working', GUARD, async () => {
      const write = process.stderr.write;
      let stderr = '';
      process.stderr.write = ((chunk: string | Uint8Array): boolean => {
        stderr += String(chunk);
        return true;
      }) as typeof process.stderr.write;
      let reactor: Reactor | undefined;
      try {
        const closes = new Map<number, CloseReason>();
        const byPort = new Map<number, number>();
        reactor = createReactor({
          onOpen: (conn) => void byPort.set(conn.remotePort!, conn.id),
          onData(conn, data) {
            const text = data.toString();
            if (text === 'ret') return Object.create(null) as number;
            if (text === 'throw') throw Object.create(null);
            conn.write(data);
            return undefined;
          },
          onClose: (conn, r) => void closes.set(conn.id, r),
        }, {
          backend,
          onError() {
            throw Object.create(null);
          },
        });
        const { port } = await reactor.listen({ port: 0, host: HOST });
        const bystander = await rawClient(port);
        for (const command of ['ret', 'throw']) {
          const client = await rawClient(port);
          await waitFor(() => byPort.has(client.socket.localPort!), 'onOpen');
          const id = byPort.get(client.socket.localPort!)!;
          await client.send(command);
          await waitFor(() => closes.has(id), `close after ${command}`);
          assert.equal(closes.get(id)!.kind, 'handler-error');
          assert.equal(closes.get(id)!.code, 'ERR_C1M_HANDLER');
          await client.waitClosed();
          await echoes([bystander], `after ${command}`);
        }
        bystander.destroy();
      } finally {
        process.stderr.write = write;
        await reactor?.close(1000);
      }
      assert.match(stderr, /c1m: onError threw \[Object: null prototype\] \{\}\nc1m: while reporting C1mError: onData returned \[Object: null prototype\] \{\}/);
      assert.match(stderr, /c1m: while reporting C1mError: onData threw a non-Error value: \[Object: null prototype\] \{\}/);
    });
  });
}
