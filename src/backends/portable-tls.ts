/**
 * The portable backend's TLS: the engine's `tls` options mapped onto `node:tls`, so the same
 * options and the same facts (`conn.tls`, `tls-error`, `stats.tlsRejects`) hold on both
 * backends.
 *
 * Model: a TLS listener is a `tls.Server` whose `secureConnection` sockets the engine adopts
 * like `net` ones; an outbound TLS connection is a `tls.connect` socket that counts as
 * connected at `secureConnect`. Contexts are built here, once per listen or reload, so a bad
 * certificate or key throws the same `ERR_C1M_TLS_*` codes as the native backend.
 */
import { constants as cryptoConstants, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { checkServerIdentity, createSecureContext, TLSSocket, type ConnectionOptions, type SecureContext, type TlsOptions } from 'node:tls';
import { C1mError } from '../core/errors.js';
import type { ResolvedTls } from '../core/options.js';
import type { CloseReason, TlsInfo } from '../core/types.js';

const version = (v: number): 'TLSv1.2' | 'TLSv1.3' => (v === 0x0304 ? 'TLSv1.3' : 'TLSv1.2');

/** The native backend's defaults (tls.c), so both backends prefer the same suites. */
const DEFAULT_CIPHERS = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:' +
  'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:' +
  'ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:HIGH:!aNULL:!eNULL:!MD5:!RC4:!3DES:!PSK:!SRP:!CAMELLIA:!DSS';

/** node:tls's `ciphers` for resolved options: the user's string with the parts it leaves out at their defaults. */
function ciphersOf(t: Pick<ResolvedTls, 'ciphers'>): string {
  if (t.ciphers === undefined) return DEFAULT_CIPHERS;
  const parts = t.ciphers.split(':').filter((p) => p.length > 0);
  const v13 = parts.filter((p) => p.startsWith('TLS_')), v12 = parts.filter((p) => !p.startsWith('TLS_'));
  const defaults = DEFAULT_CIPHERS.split(':');
  return [...(v13.length ? v13 : defaults.filter((p) => p.startsWith('TLS_'))), ...(v12.length ? v12 : defaults.filter((p) => !p.startsWith('TLS_')))].join(':');
}

/** A secure context for cert + key (+ ca); throws `ERR_C1M_TLS_KEY_MISMATCH` / `ERR_C1M_TLS_CONFIG`. */
function context(t: Pick<ResolvedTls, 'cert' | 'key' | 'ca' | 'minVersion' | 'ciphers'>): SecureContext {
  try {
    if (t.ca) new X509Certificate(t.ca); // node:tls ignores a CA it cannot parse; the native backend refuses it
    return createSecureContext({ cert: t.cert, key: t.key, ca: t.ca, minVersion: version(t.minVersion), ciphers: ciphersOf(t) });
  } catch (err) {
    const e = err as Error & { code?: string };
    const code = /KEY_VALUES_MISMATCH/i.test(e.code ?? '') || /key values mismatch/i.test(e.message) ? 'ERR_C1M_TLS_KEY_MISMATCH' : 'ERR_C1M_TLS_CONFIG';
    throw new C1mError(code, e.message, { cause: err });
  }
}

/** `tls.Server` options for a listener. */
export function serverOptions(t: ResolvedTls): TlsOptions {
  const main = context(t);
  const byName = new Map(t.sni.map(([name, cert, key]) => [name.toLowerCase(), context({ cert, key, ca: t.ca, minVersion: t.minVersion, ciphers: t.ciphers })]));
  // tls.Server builds its own context from cert/key/ca (it ignores `secureContext`); `main` validated them
  const o: TlsOptions = {
    cert: t.cert,
    key: t.key,
    requestCert: t.requestCert,
    rejectUnauthorized: t.requestCert ? t.rejectUnauthorized : false,
    minVersion: version(t.minVersion),
    ciphers: ciphersOf(t),
    honorCipherOrder: true, // the native backend's server preference (a client listing ChaCha20 first still gets it)
    secureOptions: cryptoConstants.SSL_OP_NO_RENEGOTIATION | cryptoConstants.SSL_OP_PRIORITIZE_CHACHA,
    handshakeTimeout: t.handshakeMs === 0 ? 2 ** 31 - 1 : t.handshakeMs,
  };
  if (t.ca) o.ca = t.ca;
  if (t.alpnList) o.ALPNProtocols = t.alpnList;
  // node:tls takes 48 bytes (name, HMAC and AES keys of 16 each): the name and the first 16 of each secret
  if (t.ticketKeys) o.ticketKeys = Buffer.concat([t.ticketKeys.subarray(0, 16), t.ticketKeys.subarray(16, 32), t.ticketKeys.subarray(48, 64)]);
  if (byName.size > 0) {
    o.SNICallback = (name, cb) => {
      const n = name.toLowerCase();
      const dot = n.indexOf('.');
      cb(null, byName.get(n) ?? (dot > 0 ? byName.get(`*${n.slice(dot)}`) : undefined) ?? main);
    };
  }
  return o;
}

/** `tls.connect` options for an outbound connection (without host, port and socket options). */
export function connectOptions(t: ResolvedTls): ConnectionOptions {
  context(t); // validate as the native backend does
  const name = t.servername!;
  const o: ConnectionOptions = {
    rejectUnauthorized: t.rejectUnauthorized,
    minVersion: version(t.minVersion),
    ciphers: ciphersOf(t),
    // node:tls checks an IP address only against the certificate when no SNI name is sent
    checkServerIdentity: (_host, cert) => checkServerIdentity(name, cert),
  };
  if (isIP(name) === 0) o.servername = name;
  if (t.ca) o.ca = t.ca;
  if (t.cert) o.cert = t.cert;
  if (t.key) o.key = t.key;
  if (t.alpnList) o.ALPNProtocols = t.alpnList;
  return o;
}

/** Sessions kept per key (at most this many per options object), as the native backend does. */
const SESSIONS = 64;

/**
 * Client sessions for resumption (`TlsConnectOptions.resume`): per `tls` options object, the
 * newest session (node:tls 'session' event) per key (server name and port), the oldest key
 * evicted beyond 64. Collected with the options object.
 */
export class ClientSessions {
  readonly #byOptions = new WeakMap<object, Map<string, Buffer>>();
  /** Watched sockets that have not received a session yet. */
  readonly #waiting = new WeakSet<TLSSocket>();

  /** The session to offer (`tls.connect({ session })`), if one is kept. */
  get(options: object, key: string): Buffer | undefined {
    return this.#byOptions.get(options)?.get(key);
  }

  /** Keep the sessions `socket` receives under `key`. */
  watch(socket: TLSSocket, options: object, key: string): void {
    this.#waiting.add(socket);
    socket.on('session', (session: Buffer) => {
      this.#waiting.delete(socket);
      let kept = this.#byOptions.get(options);
      if (kept === undefined) this.#byOptions.set(options, kept = new Map());
      kept.delete(key); // re-inserted last: Map order is storage order
      kept.set(key, session);
      if (kept.size > SESSIONS) kept.delete(kept.keys().next().value!);
    });
  }

  /**
   * Whether a graceful close of `socket` should read on until the server's close: a watched
   * TLS 1.3 socket that has no session yet (TLS 1.3 sessions come after the handshake, and a
   * socket destroyed once its own close_notify is flushed never reads them).
   */
  awaits(socket: unknown): boolean {
    return socket instanceof TLSSocket && this.#waiting.has(socket) && socket.getProtocol() === 'TLSv1.3';
  }
}

/**
 * Each socket's `conn.tls`, made once: node:tls gives the peer's certificate to the first
 * `getPeerX509Certificate()` only (Node 20: later calls return undefined), and nothing in it
 * changes after the handshake (a TLS 1.2 renegotiation aside: the first handshake's facts stay).
 */
const infos = new WeakMap<TLSSocket, TlsInfo>();

/** `conn.tls` of a socket (undefined for plain TCP or before its handshake completed). */
export function tlsInfo(socket: unknown, servername: string | undefined): TlsInfo | undefined {
  // Node's own flag for a completed handshake (getProtocol() answers before it: nothing to cache then).
  if (!(socket instanceof TLSSocket) || (socket as TLSSocket & { _secureEstablished?: boolean })._secureEstablished !== true) return undefined;
  let info = infos.get(socket);
  if (info === undefined) infos.set(socket, (info = readTlsInfo(socket, servername)));
  return info;
}

function readTlsInfo(socket: TLSSocket, servername: string | undefined): TlsInfo {
  const peer = socket.getPeerX509Certificate();
  const sni = (socket as TLSSocket & { servername?: string | false }).servername;
  return {
    protocol: socket.getProtocol() ?? '',
    cipher: socket.getCipher()?.standardName ?? '',
    alpnProtocol: socket.alpnProtocol || undefined,
    servername: typeof sni === 'string' && sni ? sni : servername,
    resumed: socket.isSessionReused(),
    // node:tls has no peer certificate on a resumed session; it was verified when the session was made
    authorized: socket.authorized && (peer !== undefined || socket.isSessionReused()),
    authorizationError: socket.authorizationError ? String(socket.authorizationError) : undefined,
    peerCertificate: peer,
  };
}

/** The close reason for an error of a TLS socket, or undefined for a plain socket error. */
export function tlsCloseReason(err: NodeJS.ErrnoException, secure: boolean): CloseReason | undefined {
  const code = err.code ?? '';
  const tlsish = code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || code.startsWith('ERR_OSSL') ||
    (!secure && err.syscall === undefined) || /certificate|CERT_/i.test(code);
  if (!tlsish) return undefined;
  const c = code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? 'ERR_C1M_TLS_HANDSHAKE_TIMEOUT' : 'ERR_C1M_TLS';
  return { kind: 'tls-error', code: c, error: new C1mError(c, err.message, { cause: err }) };
}

/** The error `onError` gets for a dropped inbound handshake (`tlsClientError`). */
export function handshakeError(err: NodeJS.ErrnoException): C1mError {
  const code = err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? 'ERR_C1M_TLS_HANDSHAKE_TIMEOUT' : 'ERR_C1M_TLS_HANDSHAKE';
  return new C1mError(code, code === 'ERR_C1M_TLS_HANDSHAKE' ? `TLS handshake failed: ${err.message}` : 'TLS handshake timed out', { cause: err });
}
