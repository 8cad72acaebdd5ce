/**
 * `wss:` for the WebSocket client: the `tls` options each connect passes to `reactor.connect`.
 *
 * The engine keeps a TLS client context, and the sessions it resumes, per `tls` options object
 * (`TlsConnectOptions.resume`). So that every `wss:` connect to one server name shares them, the
 * handler derives one options object per (options the caller gave, server name) and reuses it:
 * a fresh object literal per connect would otherwise build a new context and never resume.
 */
import type { TlsConnectOptions } from '../../core/index.js';

/** Server names remembered per caller's options object; past it the oldest is forgotten. */
const NAMES = 1024;

/** One derived `tls` options object per (caller's options, server name). */
export class WssOptions {
  /** Derived objects for connects that gave no `tls`, by server name. */
  readonly #bare = new Map<string, TlsConnectOptions>();
  readonly #byOptions = new WeakMap<TlsConnectOptions, Map<string, TlsConnectOptions>>();

  /**
   * The object to connect with: `given` itself when it names its server (`servername`), else
   * `{ ...given, servername: hostname }` (the URL's host), the same object every time.
   */
  for(given: TlsConnectOptions | undefined, hostname: string): TlsConnectOptions {
    if (given?.servername !== undefined) return given;
    let byName = given === undefined ? this.#bare : this.#byOptions.get(given);
    if (byName === undefined) this.#byOptions.set(given!, byName = new Map());
    let o = byName.get(hostname);
    if (o === undefined) {
      o = { ...given, servername: hostname };
      byName.set(hostname, o);
      if (byName.size > NAMES) byName.delete(byName.keys().next().value!);
    }
    return o;
  }
}
