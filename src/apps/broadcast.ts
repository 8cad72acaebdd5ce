/**
 * The handler behind `c1m serve broadcast`: a line protocol in which every connection is a
 * subscriber, and a connection that sends `PUB <payload>\n` has `<payload>\n` written to every
 * connection of this reactor (the publisher included) with one `reactor.broadcast`. Other
 * lines are ignored. A handler module, so each reactor of a multi-core server loads its own.
 *
 * Invariant: `ids` holds exactly the open connections of this reactor, unordered; `slot`
 * maps an id to its index in `ids`, so joining and leaving are O(1) (swap-remove) and a
 * publish hands the array to the engine without building one.
 *
 * Scope: with `--threads` or `--processes` each reactor broadcasts to its own connections
 * only (no fan-out between reactors).
 */
import type { Handler, Reactor } from '../core/index.js';

const NL = 0x0a;
const PUB = Buffer.from('PUB ');

/** One handler per reactor (`serve` calls this in each thread or process). */
export function createHandler(): Handler {
  let reactor: Reactor | undefined;
  const ids: number[] = [];
  const slot = new Map<number, number>();
  return {
    onReactor(r) {
      reactor = r;
    },
    onOpen(conn) {
      slot.set(conn.id, ids.length);
      ids.push(conn.id);
    },
    onData(_conn, data) {
      // Whole lines only: the tail of an incomplete line stays in the engine and comes back,
      // followed by the next bytes, on the next call.
      let start = 0;
      for (let nl = data.indexOf(NL); nl !== -1; nl = data.indexOf(NL, start)) {
        if (nl - start >= PUB.length && data.compare(PUB, 0, PUB.length, start, start + PUB.length) === 0) {
          reactor!.broadcast(ids, data.subarray(start + PUB.length, nl + 1));
        }
        start = nl + 1;
      }
      return start;
    },
    onClose(conn) {
      const i = slot.get(conn.id);
      if (i === undefined) return;
      slot.delete(conn.id);
      const last = ids.pop()!;
      if (i < ids.length) {
        ids[i] = last;
        slot.set(last, i);
      }
    },
  };
}
