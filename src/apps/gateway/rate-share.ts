/**
 * Clients' publish rates per user across gateway processes and machines: every gateway on one
 * NATS (same control prefix) tells the others, once a second, how many `pub`s each of its users
 * took there (`<control prefix>rate`), and takes what it hears off those users' buckets here
 * (`PublishRate.charge`). So a user whose connections land on several processes gets about its
 * rate over all of them, not its rate on each.
 *
 * Approximate by design, as a rate limit that must not add a round trip to each `pub`: what a
 * user spent elsewhere arrives within about `SHARE_MS` (plus NATS's delivery), so within that
 * window each process may still grant its own burst; sustained, a user gets its rate. What was
 * spent while NATS was down is not told.
 *
 * Wire format (JSON): `{"from":"<gateway id>","spent":{"<user>":[<count>,<rate>],...}}` (the
 * publishes taken, and the rate a second they were taken at: a token's `publish_rate` claim or
 * the gateway's default), at most `MAX_USERS` users per message; a gateway ignores its own and
 * anything malformed.
 *
 * Threading: one gateway (one reactor thread).
 */
import { randomBytes } from 'node:crypto';
import type { Broker } from './broker.js';
import { controlJson } from './operator.js';
import type { PublishRate } from './pub-rate.js';

/** How often a gateway tells what its users spent (ms). */
export const SHARE_MS = 1000;
/** Most users in one message (a larger share is split). */
export const MAX_USERS = 1000;
/** Largest count believed from one message (a user's publishes in one share). */
const MAX_COUNT = 1_000_000;
/** Longest user name carried (longer ones are not shared: a token's `sub` is short). */
const MAX_USER_BYTES = 256;
/** Largest share read (MAX_USERS names of MAX_USER_BYTES, escaped, with their counts). */
const MAX_SHARE_BYTES = 512 * 1024;
/** Slowest rate believed (a publish per 1,000 s): a bucket refilling slower would never be swept. */
const MIN_RATE = 0.001;

/** A rate share read from the wire, or null when it is malformed. */
export function parseRateShare(data: Uint8Array): { from: string; spent: [string, number, number][] } | null {
  if (data.byteLength > MAX_SHARE_BYTES) return null;
  let o: unknown;
  try {
    o = controlJson(data);
  } catch {
    return null;
  }
  if (typeof o !== 'object' || o === null) return null;
  const { from, spent } = o as { from?: unknown; spent?: unknown };
  if (typeof from !== 'string' || typeof spent !== 'object' || spent === null || Array.isArray(spent)) return null;
  const out: [string, number, number][] = [];
  for (const [user, v] of Object.entries(spent as Record<string, unknown>)) {
    if (!Array.isArray(v) || v.length !== 2 || user === '' || Buffer.byteLength(user) > MAX_USER_BYTES) return null;
    const [n, rate] = v as unknown[];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_COUNT) return null;
    if (typeof rate !== 'number' || !(rate >= MIN_RATE) || !Number.isFinite(rate)) return null;
    out.push([user, n, rate]);
  }
  return out.length > MAX_USERS ? null : { from, spent: out };
}

export class RateShare {
  /** This gateway's id on the wire: its own messages come back to it and are ignored. */
  readonly #id = randomBytes(8).toString('hex');
  readonly #rate: PublishRate;
  readonly #broker: Broker;
  readonly #subject: string;
  readonly #onCharged: (publishes: number) => void;
  readonly #known: (user: string) => boolean;
  #timer: NodeJS.Timeout | null = null;

  /**
   * Share `rate`'s users over `broker` on `subject`. Only users known here (a connection in
   * `users`, or a bucket) are charged, so what others tell costs memory only for this gateway's
   * own users; `onCharged` counts the publishes taken off here.
   */
  constructor(rate: PublishRate, broker: Broker, subject: string, users: { of(user: string): readonly unknown[] }, onCharged: (publishes: number) => void) {
    this.#rate = rate;
    this.#broker = broker;
    this.#subject = subject;
    this.#known = (user) => rate.rateOf(user) !== undefined || users.of(user).length > 0;
    this.#onCharged = onCharged;
    rate.shareSpent();
    broker.control(subject, (data) => this.#heard(data));
    this.#timer = setInterval(() => this.#tell(), SHARE_MS);
    this.#timer.unref();
  }

  /** Stop telling (the subscription ends with the broker's connection). */
  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  #tell(): void {
    const spent = this.#rate.takeSpent();
    if (spent.size === 0 || !this.#broker.up) return;
    let chunk: Record<string, [number, number]> = Object.create(null) as Record<string, [number, number]>;
    let n = 0;
    const send = (): void => {
      const data = Buffer.from(JSON.stringify({ from: this.#id, spent: chunk }));
      this.#broker.publishControl(this.#subject, data).catch(() => {}); // lost with NATS: see the model
      chunk = Object.create(null) as Record<string, [number, number]>;
      n = 0;
    };
    for (const [user, [count, rate]] of spent) {
      if (!(rate >= MIN_RATE) || Buffer.byteLength(user) > MAX_USER_BYTES) continue;
      chunk[user] = [count, rate];
      if (++n === MAX_USERS) send();
    }
    if (n > 0) send();
  }

  #heard(data: Uint8Array): void {
    const share = parseRateShare(data);
    if (share === null || share.from === this.#id) return;
    const now = performance.now();
    let total = 0;
    for (const [user, n, rate] of share.spent) {
      if (!this.#known(user)) continue;
      this.#rate.charge(user, n, rate, now);
      total += n;
    }
    this.#onCharged(total);
  }
}
