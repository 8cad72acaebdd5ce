/**
 * The TLS half of the native backend in JS: contexts from resolved options, `conn.tls` facts,
 * and what a TLS failure record (CLOSE with R_TLS, or TLS_REJECT) means. The handshake, record
 * encryption and decryption all happen in native code (native/src/tls.c); nothing here runs
 * per message.
 */
import { X509Certificate } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import type { Binding, NativeConstants, NativeHandle, NativeTlsContext } from '../core/binding.js';
import { C1mError, systemError, withoutStack } from '../core/errors.js';
import type { ResolvedTls } from '../core/options.js';
import type { TlsInfo } from '../core/types.js';

const ETIMEDOUT = osConstants.errno.ETIMEDOUT;

/** A TLS context for resolved options; throws ERR_C1M_TLS_* (before anything listens). */
export function tlsContext(b: Binding, k: NativeConstants, t: ResolvedTls): NativeTlsContext {
  if (!k.TLS_AVAILABLE) throw new C1mError('ERR_C1M_TLS_UNAVAILABLE', 'the native addon was built without OpenSSL headers: TLS is unavailable on this backend');
  try {
    return b.tlsContext({
      server: t.server, cert: t.cert, key: t.key, ca: t.ca, requestCert: t.requestCert, rejectUnauthorized: t.rejectUnauthorized,
      minVersion: t.minVersion, alpn: t.alpn, handshakeMs: t.handshakeMs, sni: t.sni, resume: t.resume,
      ...(t.ticketKeys ? { ticketKeys: t.ticketKeys } : {}),
      ...(t.ciphers !== undefined ? { ciphers: t.ciphers } : {}),
    });
  } catch (err) {
    const e = err as Error & { code?: string };
    throw new C1mError(e.code ?? 'ERR_C1M_TLS_CONFIG', e.message);
  }
}

/** `conn.tls` of a live TLS connection (one addon call); undefined before its handshake completed. */
export function tlsInfo(b: Binding, h: NativeHandle, fd: number, gen: number): TlsInfo | undefined {
  const i = b.tlsInfo(h, fd, gen);
  if (i === undefined) return undefined;
  const peer = i.peerCertificate ? new X509Certificate(i.peerCertificate) : undefined;
  return {
    protocol: i.protocol, cipher: i.cipher, alpnProtocol: i.alpnProtocol, servername: i.servername, resumed: i.resumed,
    authorized: i.verifyResult === 0 && peer !== undefined,
    authorizationError: i.verifyResult !== 0 ? b.tlsErrorText(0, i.verifyResult) : undefined,
    peerCertificate: peer,
  };
}

/** The code and error of a TLS failure record: why (R_TLS or R_ERROR), errno, the OpenSSL code. The error has no JS stack (`withoutStack`: what a peer did). */
export function tlsFailure(b: Binding, k: NativeConstants, why: number, errno: number, detail: number, handshake: boolean): { code: string; error: Error } {
  return withoutStack(() => failureOf(b, k, why, errno, detail, handshake));
}

function failureOf(b: Binding, k: NativeConstants, why: number, errno: number, detail: number, handshake: boolean): { code: string; error: Error } {
  if (why !== k.R_TLS) {
    const error = systemError(errno, 'read');
    error.message = `TLS handshake: ${error.message}`;
    return { code: handshake ? 'ERR_C1M_TLS_HANDSHAKE' : error.code, error };
  }
  if (errno === -ETIMEDOUT) {
    return { code: 'ERR_C1M_TLS_HANDSHAKE_TIMEOUT', error: new C1mError('ERR_C1M_TLS_HANDSHAKE_TIMEOUT', 'TLS handshake timed out') };
  }
  const code = handshake ? 'ERR_C1M_TLS_HANDSHAKE' : 'ERR_C1M_TLS';
  const text = b.tlsErrorText(detail >>> 0, errno > 0 ? errno : 0);
  return { code, error: new C1mError(code, handshake ? `TLS handshake failed: ${text}` : text) };
}
