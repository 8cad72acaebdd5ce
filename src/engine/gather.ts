/**
 * Gathering a value from every worker of a server: how an application in one worker learns
 * what all the others hold (metrics, summed by whoever asked). The only app-level messages
 * the supervisors relay.
 *
 * Model: each process (or thread) `provide`s named values. `gather(key)` from a worker asks its
 * supervisor, which asks every live worker (the asker included), collects the replies for at
 * most `timeoutMs`, and answers with the list. In single mode (no supervisor) `gather`
 * returns this process's own value. A supervisor can gather itself (`GatherRelay.collect`),
 * which is how `serve({ metricsPort })` sums its workers.
 *
 * Protocol (over the IPC channel or a worker thread's port, beside workers.ts's):
 *   worker -> supervisor  {type: 'c1m-gather', id, key}
 *   supervisor -> worker  {type: 'c1m-gather-ask', id, key}
 *   worker -> supervisor  {type: 'c1m-gather-reply', id, value}
 *   supervisor -> worker  {type: 'c1m-gather-result', id, values}
 * A worker that does not answer in time is left out; a provider that throws answers null.
 *
 * Threading: per thread (each worker thread has its own providers and transport).
 */

export type GatherMessage =
  | { type: 'c1m-gather'; id: number; key: string }
  | { type: 'c1m-gather-ask'; id: number; key: string }
  | { type: 'c1m-gather-reply'; id: number; value: unknown }
  | { type: 'c1m-gather-result'; id: number; values: unknown[] };

/** How a worker talks to its supervisor. */
export interface GatherTransport {
  send(m: GatherMessage): void;
  onMessage(fn: (m: unknown) => void): void;
}

type Provider = () => unknown;
const providers = new Map<string, Provider>();
let transport: GatherTransport | null = null;
let nextId = 1;
const waiting = new Map<number, (values: unknown[]) => void>();

const isGather = (m: unknown): m is GatherMessage =>
  typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string' && (m as { type: string }).type.startsWith('c1m-gather');

/** This thread's value for `key` (null when none is provided or the provider fails). */
async function local(key: string): Promise<unknown> {
  const p = providers.get(key);
  if (p === undefined) return null;
  try {
    return (await p()) ?? null;
  } catch {
    return null;
  }
}

/** Provide `key`'s value of this worker (replaces an earlier provider of the same key). */
export function provide(key: string, fn: Provider): void {
  providers.set(key, fn);
}

/**
 * `key`'s value from every worker of this server: one per live worker that answered within
 * `timeoutMs` (this one's alone in single mode). Never rejects.
 */
export function gather(key: string, timeoutMs = 2000): Promise<unknown[]> {
  if (transport === null) return local(key).then((v) => [v]);
  const id = nextId++;
  const t = transport;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      waiting.delete(id);
      void local(key).then((v) => resolve([v])); // the supervisor is gone: what we know
    }, timeoutMs + 1000);
    waiting.set(id, (values) => {
      clearTimeout(timer);
      resolve(values);
    });
    t.send({ type: 'c1m-gather', id, key });
  });
}

/** Called once by the worker entry (worker.ts) with its channel to the supervisor. */
export function attachGatherTransport(t: GatherTransport): void {
  transport = t;
  t.onMessage((m) => {
    if (!isGather(m)) return;
    if (m.type === 'c1m-gather-ask') {
      void local(m.key).then((value) => t.send({ type: 'c1m-gather-reply', id: m.id, value }));
    } else if (m.type === 'c1m-gather-result') {
      waiting.get(m.id)?.(m.values);
      waiting.delete(m.id);
    }
  });
}

/** A supervisor's view of one worker. */
export interface GatherPeer {
  send(m: GatherMessage): void;
}

/** The supervisor's half: relays workers' `gather` calls and gathers for itself. */
export class GatherRelay {
  readonly #peers: () => GatherPeer[];
  readonly #timeoutMs: number;
  #nextId = 1;
  readonly #pending = new Map<number, { left: Set<GatherPeer>; values: unknown[]; done: () => void }>();

  constructor(peers: () => GatherPeer[], timeoutMs = 2000) {
    this.#peers = peers;
    this.#timeoutMs = timeoutMs;
  }

  /** Every live worker's value for `key`. Never rejects. */
  collect(key: string): Promise<unknown[]> {
    const peers = this.#peers();
    if (peers.length === 0) return Promise.resolve([]);
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const entry = { left: new Set(peers), values: [] as unknown[], done: () => {} };
      const timer = setTimeout(() => entry.done(), this.#timeoutMs);
      entry.done = () => {
        clearTimeout(timer);
        this.#pending.delete(id);
        resolve(entry.values);
      };
      this.#pending.set(id, entry);
      for (const p of peers) {
        try {
          p.send({ type: 'c1m-gather-ask', id, key });
        } catch {
          entry.left.delete(p); // exiting: not counted
        }
      }
      if (entry.left.size === 0) entry.done();
    });
  }

  /** Handle a message from worker `from`; returns true when it was one of gather's. */
  handle(from: GatherPeer, m: unknown): boolean {
    if (!isGather(m)) return false;
    if (m.type === 'c1m-gather') {
      void this.collect(m.key).then((values) => {
        try {
          from.send({ type: 'c1m-gather-result', id: m.id, values });
        } catch {
          // the asker exited meanwhile
        }
      });
    } else if (m.type === 'c1m-gather-reply') {
      const e = this.#pending.get(m.id);
      if (e !== undefined && e.left.delete(from)) {
        e.values.push(m.value);
        if (e.left.size === 0) e.done();
      }
    }
    return true;
  }
}
