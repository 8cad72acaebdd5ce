/**
 * ExpiryWatch (src/apps/gateway/expiry.ts): a WebSocket filed with its token's `exp` is closed
 * with 4001 once that second has come, exactly once, and never after it closed; driven with a
 * fake clock and fake WebSockets, checked against a brute-force model.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { EXPIRED_CODE, EXPIRED_REASON, ExpiryWatch, type Expiring } from '../../src/apps/gateway/expiry.js';

class FakeWs implements Expiring {
  readyState: 'open' | 'closing' | 'closed' = 'open';
  closes: [number | undefined, string | undefined][] = [];
  constructor(readonly id: number) {}
  close(code?: number, reason?: string): void {
    this.closes.push([code, reason]);
    this.readyState = 'closing';
  }
}

describe('gateway ExpiryWatch', () => {
  test('closes with 4001 "unauthorized: expired" when the second comes, not before; counts each', () => {
    let now = 1000.5;
    const expired: number[] = [];
    const w = new ExpiryWatch<FakeWs>((ws) => expired.push(ws.id), () => now);
    const a = new FakeWs(1), b = new FakeWs(2);
    w.add(a, 1002);
    w.add(b, 1005);
    assert.equal(w.size, 2);
    now = 1001.9;
    w.tick();
    assert.deepEqual(a.closes, []);
    now = 1002;
    w.tick();
    assert.deepEqual(a.closes, [[EXPIRED_CODE, EXPIRED_REASON]]);
    assert.deepEqual(b.closes, []);
    assert.equal(w.size, 1);
    now = 1010;
    w.tick();
    w.tick();
    assert.deepEqual(b.closes, [[4001, 'unauthorized: expired']]);
    assert.deepEqual(expired, [1, 2]);
    assert.equal(w.size, 0);
    w.stop();
  });

  test('a token already expired when filed closes at once; a closed WebSocket is never closed again', () => {
    let now = 500;
    const w = new ExpiryWatch<FakeWs>(() => {}, () => now);
    const late = new FakeWs(1);
    w.add(late, 499);
    assert.equal(late.closes.length, 1);
    assert.equal(w.size, 0);
    const gone = new FakeWs(2);
    w.add(gone, 501);
    gone.readyState = 'closed'; // closed by the peer, and its onClose did not remove it
    now = 502;
    w.tick();
    assert.deepEqual(gone.closes, []);
    w.stop();
  });

  test('remove (on close) forgets it; the same id filed twice counts once', () => {
    let now = 0;
    const w = new ExpiryWatch<FakeWs>(() => {}, () => now);
    const a = new FakeWs(7);
    w.add(a, 10);
    w.add(a, 10);
    assert.equal(w.size, 1);
    w.remove(7, 10);
    w.remove(7, 10);
    assert.equal(w.size, 0);
    now = 20;
    w.tick();
    assert.deepEqual(a.closes, []);
    w.stop();
  });

  test('any order of adds, removes and ticks closes exactly the open, unremoved WebSockets whose second has come', () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('add' as const), id: fc.integer({ min: 0, max: 30 }), exp: fc.integer({ min: 0, max: 60 }) }),
      fc.record({ k: fc.constant('remove' as const), id: fc.integer({ min: 0, max: 30 }) }),
      fc.record({ k: fc.constant('tick' as const), dt: fc.integer({ min: 0, max: 10 }) }),
    );
    fc.assert(fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      let now = 0;
      const w = new ExpiryWatch<FakeWs>(() => {}, () => now);
      const sockets = new Map<number, FakeWs>();
      const filed = new Map<number, number>(); // the model: id -> exp of what is filed
      const check = (): void => {
        for (const [id, exp] of filed) {
          if (exp <= now) filed.delete(id);
        }
        for (const [id, ws] of sockets) {
          const shouldBeOpen = ws.closes.length === 0;
          assert.ok(ws.closes.length <= 1, `id ${id} closed twice`);
          if (filed.has(id)) assert.ok(shouldBeOpen, `id ${id} closed before its second`);
        }
        assert.equal(w.size, filed.size);
      };
      for (const o of ops) {
        if (o.k === 'add') {
          // A new connection (a fresh handle) unless that id is still filed and open.
          let ws = sockets.get(o.id);
          if (ws === undefined || ws.readyState !== 'open' || !filed.has(o.id)) {
            if (filed.has(o.id)) continue; // one grant per connection: never re-filed while filed
            ws = new FakeWs(o.id);
            sockets.set(o.id, ws);
          } else continue;
          w.add(ws, o.exp);
          if (o.exp > now) filed.set(o.id, o.exp);
          else assert.equal(ws.closes.length, 1, 'an expired token closes at once');
        } else if (o.k === 'remove') {
          const exp = filed.get(o.id);
          if (exp === undefined) continue;
          w.remove(o.id, exp);
          filed.delete(o.id);
          sockets.get(o.id)!.readyState = 'closed';
        } else {
          now += o.dt;
          const due = [...filed].filter(([, exp]) => exp <= now).map(([id]) => id);
          w.tick();
          for (const id of due) assert.equal(sockets.get(id)!.closes.length, 1, `id ${id} due at ${filed.get(id)}, now ${now}`);
        }
        check();
      }
      w.stop();
    }), { numRuns: 500 });
  });
});
