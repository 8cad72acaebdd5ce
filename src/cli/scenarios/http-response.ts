/**
 * An incremental HTTP/1.1 response scanner for the `http` bench scenario: it frames responses
 * (status line, headers, then a Content-Length or chunked body) across arbitrary splits of
 * the stream and reports each final response's status. It validates only what framing needs;
 * bodies are skipped, never copied.
 *
 * Model: a state machine fed with every received byte (`execute` consumes all of it). The
 * only bytes kept between calls are those of an incomplete head or chunk-size line, bounded
 * by MAX_LINE. After an error (`error` set) the scanner is dead: `execute` returns 0 from then
 * on.
 *
 * Not supported, by design (a keep-alive benchmark cannot use them): responses framed by
 * connection close (neither Content-Length nor chunked), and 101 Switching Protocols.
 * Interim 1xx responses are skipped.
 */

const LF = 0x0a;
/** Longest head or chunk-size line accepted. */
export const MAX_LINE = 16 * 1024;

const enum S {
  Status,
  Header,
  Body,
  ChunkSize,
  ChunkData,
  ChunkEnd,
  Trailer,
}

/** Frames HTTP/1.1 responses across any split of the stream (see the file comment). */
export class ResponseScanner {
  #s = S.Status;
  /** The start of a line that did not end in the last call (latin1). */
  #carry = '';
  #status = 0;
  #length = -1;
  #chunked = false;
  #close = false;
  /** Body or chunk bytes still to skip. */
  #left = 0;
  /** Why the scanner stopped; null while it works. */
  error: string | null = null;
  /** The last complete response asked to close the connection (`Connection: close`). */
  closing = false;
  readonly #onStatus: (status: number) => void;

  /** `onStatus` is called once per final (non-1xx) response, when it is complete. */
  constructor(onStatus: (status: number) => void) {
    this.#onStatus = onStatus;
  }

  /**
   * Scan `data` (all of it); returns the number of responses it completed. Check `error`
   * afterwards: responses completed before an error in the same call are still counted.
   */
  execute(data: Buffer): number {
    if (this.error !== null) return 0;
    let done = 0, pos = 0;
    const end = data.length;
    while (pos < end) {
      if (this.#s === S.Body || this.#s === S.ChunkData) {
        const n = Math.min(this.#left, end - pos);
        pos += n;
        this.#left -= n;
        if (this.#left > 0) break;
        if (this.#s === S.ChunkData) {
          this.#s = S.ChunkEnd;
        } else {
          this.#complete();
          done++;
        }
        continue;
      }
      const nl = data.indexOf(LF, pos);
      if (nl === -1) {
        if (this.#carry.length + end - pos > MAX_LINE) {
          this.#fail(`a line longer than ${MAX_LINE} bytes`);
          break;
        }
        this.#carry += data.toString('latin1', pos, end);
        break;
      }
      let line = this.#carry + data.toString('latin1', pos, nl);
      this.#carry = '';
      pos = nl + 1;
      if (line.length > MAX_LINE) {
        this.#fail(`a line longer than ${MAX_LINE} bytes`);
        break;
      }
      if (line.endsWith('\r')) line = line.slice(0, -1);
      const r = this.#line(line);
      if (r < 0) break;
      done += r;
    }
    return done;
  }

  /** One complete line in a line state: returns responses completed by it (0 or 1), -1 on error. */
  #line(line: string): number {
    switch (this.#s) {
      case S.Status: {
        const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(line);
        if (!m) return this.#fail(`bad status line "${line.slice(0, 80)}"`);
        this.#status = Number(m[1]);
        this.#length = -1;
        this.#chunked = false;
        this.#close = false;
        this.#s = S.Header;
        return 0;
      }
      case S.Header: {
        if (line.length > 0) return this.#header(line);
        const st = this.#status;
        if (st === 101) return this.#fail('101 Switching Protocols');
        if (st < 200) {
          this.#s = S.Status; // interim response: the final one follows
          return 0;
        }
        if (st === 204 || st === 304) return this.#complete();
        if (this.#chunked) {
          this.#s = S.ChunkSize;
          return 0;
        }
        if (this.#length < 0) return this.#fail('a response framed by connection close (no Content-Length, not chunked)');
        if (this.#length === 0) return this.#complete();
        this.#left = this.#length;
        this.#s = S.Body;
        return 0;
      }
      case S.ChunkSize: {
        const m = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/.exec(line);
        if (!m) return this.#fail(`bad chunk size line "${line.slice(0, 80)}"`);
        this.#left = parseInt(m[1]!, 16);
        this.#s = this.#left === 0 ? S.Trailer : S.ChunkData;
        return 0;
      }
      case S.ChunkEnd:
        if (line.length > 0) return this.#fail('chunk data longer than its size');
        this.#s = S.ChunkSize;
        return 0;
      case S.Trailer:
        return line.length === 0 ? this.#complete() : 0;
      default:
        return this.#fail('internal: line in a body state');
    }
  }

  #header(line: string): number {
    const colon = line.indexOf(':');
    if (colon <= 0) return this.#fail(`bad header line "${line.slice(0, 80)}"`);
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim().toLowerCase();
    if (name === 'content-length') {
      if (!/^\d{1,15}$/.test(value) || (this.#length >= 0 && this.#length !== Number(value))) return this.#fail(`bad Content-Length "${value}"`);
      this.#length = Number(value);
    } else if (name === 'transfer-encoding') {
      this.#chunked = /(?:^|,)\s*chunked\s*$/.test(value);
      if (!this.#chunked) return this.#fail(`Transfer-Encoding "${value}" does not end in chunked`);
    } else if (name === 'connection') {
      this.#close = /(?:^|,)\s*close\s*(?:,|$)/.test(value);
    }
    return 0;
  }

  #complete(): 1 {
    this.closing = this.#close;
    this.#s = S.Status;
    this.#onStatus(this.#status);
    return 1;
  }

  #fail(why: string): -1 {
    this.error = why;
    return -1;
  }
}
