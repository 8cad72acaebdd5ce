/**
 * A gateway client's ops that wait for the one before them (with the JetStream history every
 * op waits for the one before; without, ops wait for a `refresh` being verified): one promise
 * chain per connection, kept only while something waits.
 */
import { IdMap } from '../../core/index.js';

/** What a queue needs of a WebSocket: its connection id, and a way to end it. */
interface Queued {
  readonly id: number;
  terminate(): void;
}

export class OpQueues {
  /**
   * Keyed by connection id, not by handle: each callback may get another handle of the same
   * WebSocket. An entry lives only while ops are waiting.
   */
  readonly #queues = new IdMap<Promise<void>>();

  /** Whether ops of connection `id` are waiting (a later one must queue behind them). */
  waiting(id: number): boolean {
    return this.#queues.get(id) !== undefined;
  }

  /** Run `fn` once what `ws` has queued has run; an op that throws or rejects ends `ws`. */
  chain(ws: Queued, fn: () => void | Promise<void>): void {
    const id = ws.id;
    const next: Promise<void> = (this.#queues.get(id) ?? Promise.resolve()).then(fn).catch(() => ws.terminate()).finally(() => {
      if (this.#queues.get(id) === next) this.#queues.delete(id);
    });
    this.#queues.set(id, next);
  }
}
