/**
 * Send times of the messages in flight on one connection, oldest first: a growable ring of
 * doubles (`performance.now()` ms). Replies come back in order (TCP), so each reply pops the
 * oldest.
 */
export class SendTimes {
  #buf: Float64Array;
  #head = 0;
  length = 0;
  constructor(capacity: number) {
    this.#buf = new Float64Array(Math.max(1, capacity));
  }
  push(t: number): void {
    if (this.length === this.#buf.length) this.#grow();
    this.#buf[(this.#head + this.length) % this.#buf.length] = t;
    this.length++;
  }
  shift(): number {
    const t = this.#buf[this.#head]!;
    this.#head = (this.#head + 1) % this.#buf.length;
    this.length--;
    return t;
  }
  #grow(): void {
    const next = new Float64Array(this.#buf.length * 2);
    for (let i = 0; i < this.length; i++) next[i] = this.#buf[(this.#head + i) % this.#buf.length]!;
    this.#buf = next;
    this.#head = 0;
  }
}

/**
 * `done` replies arrived at `now`: pop that many send times (at most what is outstanding),
 * record each reply's round trip, and return how many were popped. Messages sent together
 * share a send time, so each run of equal times is recorded once with its count.
 */
export function answer(times: SendTimes, done: number, now: number, record: (ns: number, count: number) => void): number {
  let answered = 0, run = 0, runT = 0;
  while (done > 0 && times.length > 0) {
    const t = times.shift();
    if (run > 0 && t !== runT) {
      record(Math.max(1, Math.round((now - runT) * 1e6)), run);
      run = 0;
    }
    runT = t;
    run++;
    answered++;
    done--;
  }
  if (run > 0) record(Math.max(1, Math.round((now - runT) * 1e6)), run);
  return answered;
}
