/**
 * Local delivery of what NATS brings, one macrotask after the read that brought it.
 *
 * Why. nats.js parses a read synchronously and runs a subscription's callback inside the
 * parse; the server's answer to an HTTP publish's flush (its PONG), or JetStream's ack, comes
 * on the same connection behind our own copy of the message (and behind whatever else NATS had
 * for us). Delivering inside the callback would make the publish's answer wait for every local
 * send queued ahead of it (19,000 per process under the million benchmark's load). So a
 * callback only queues the message here; the queue runs from `setImmediate`, after the
 * microtasks of the read (where the publish's answer is staged and the engine flushes it).
 *
 * Invariants: one queue per thread, so messages are delivered in the order NATS gave them,
 * core subscriptions and JetStream feeds alike; everything the delivery decides (a topic
 * message's number, a feed's position) is decided when it runs, never when it is queued, so a
 * queued message is simply one that arrived a moment later. A delivery that throws does not
 * lose the ones queued behind it: they run in the next macrotask, and the error goes on
 * uncaught (the process's policy applies: a `serve` worker that dies of it is replaced),
 * where inside nats.js's parse it would have stopped the connection's reader for good.
 *
 * Threading: per thread (module state; each worker thread has its own).
 */

let queue: (() => void)[] = [];
let scheduled = false;

function drain(): void {
  const q = queue;
  queue = [];
  scheduled = false;
  let i = 0;
  try {
    for (; i < q.length; i++) q[i]!();
  } finally {
    if (i + 1 < q.length) {
      // q[i] threw: what followed it runs next time, ahead of anything queued meanwhile.
      queue = q.slice(i + 1).concat(queue);
      schedule();
    }
  }
}

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(drain);
}

/** Run `deliver` after the current read's microtasks, in order with everything queued before it. */
export function deliverLater(deliver: () => void): void {
  queue.push(deliver);
  schedule();
}
