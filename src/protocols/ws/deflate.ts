/**
 * permessage-deflate (RFC 7692) without sockets: the `Sec-WebSocket-Extensions` grammar,
 * parameter negotiation (server side, and the client's offer and response check), and a
 * per-message codec over Node's synchronous zlib.
 *
 * Model: every message is deflated or inflated by one synchronous zlib call that owns its
 * zlib state for the length of the call only. "Context takeover" (RFC 7692 7.1.1) is the
 * LZ77 window carried from one message to the next; instead of keeping a zlib stream per
 * connection (hundreds of KiB of native state each), a codec that must take context over
 * keeps the last 2^windowBits plaintext bytes of that direction and hands them to zlib as a
 * preset dictionary: that is exactly the window a continuous stream would hold, so the
 * result decodes the same. Without context takeover (the server's default, both ways) a
 * codec holds nothing but its parameters and one instance serves every connection that
 * agreed on them.
 *
 * Invariants:
 *   - a compressed message is the DEFLATE data of one sync flush with its trailing
 *     0x00 0x00 0xff 0xff removed (7.2.1); inflating appends those 4 bytes back (7.2.2);
 *   - inflating never produces more than the caller's limit: zlib stops at
 *     `maxOutputLength`, so a small "zip bomb" costs at most that many bytes of output;
 *   - a history buffer exists only in a direction that takes context over, and never
 *     exceeds 2^windowBits bytes (at most 32 KiB).
 *
 * Errors: helpers that judge peer input skip an invalid offer (server) or describe an invalid
 * response (client, `checkDeflateResponse`); bad options throw `ERR_C1M_INVALID_OPTION`; a
 * compressed message that does not inflate throws `WsProtocolError`
 * (`ERR_C1M_WS_INVALID_COMPRESSED_DATA`, 1007, or `ERR_C1M_WS_MESSAGE_TOO_BIG`, 1009).
 */
import { constants as zc, deflateRawSync, inflateRawSync, type ZlibOptions } from 'node:zlib';
import { checkOption } from '../../core/index.js';
import { WsProtocolError, checkArgument } from './errors.js';

/** The extension token. */
export const PERMESSAGE_DEFLATE = 'permessage-deflate';

/**
 * What the application configures: the server's and the client's option `perMessageDeflate`
 * (`WebSocketServerOptions`, `WebSocketClientHandlerOptions`, `WebSocketClientOptions`). The
 * names are the RFC 7692 parameters', seen from the wire: `server*` is about what the server
 * sends, `client*` about what the client sends, whichever end is configured. Both ends keep
 * the same bound: no compression state per idle connection unless context takeover was
 * agreed, and then at most 2^windowBits bytes per direction that takes over.
 */
export interface PerMessageDeflateOptions {
  /**
   * Server: never carry our compression window from one message to the next, and answer
   * `server_no_context_takeover`. Client: offer `server_no_context_takeover` (a server that
   * accepts must then answer it). Default true: each server message inflates on its own, no
   * per-connection memory. With false, a connection whose ends agree to it keeps up to
   * 2^serverMaxWindowBits bytes (32 KiB at 15) of server-sent plaintext at each end.
   */
  serverNoContextTakeover?: boolean;
  /**
   * Server: answer `client_no_context_takeover` (a server may always add it). Client: offer
   * it and never carry our window over. Default true: each client message inflates on its
   * own. With false, a connection whose ends agree to it keeps up to 2^clientMaxWindowBits
   * bytes of client-sent plaintext at each end.
   */
  clientNoContextTakeover?: boolean;
  /**
   * The largest LZ77 window the server compresses with, in bits: 9-15 (zlib cannot deflate
   * with 8). Server: our window; a client's `server_max_window_bits` offer lowers it, an offer
   * of 8 is declined. Client: offered as `server_max_window_bits` when under 15 (bounding what
   * a context-taking server makes us keep). Default 15.
   */
  serverMaxWindowBits?: number;
  /**
   * The largest window the client compresses with, 8-15. Server: answered as
   * `client_max_window_bits` when the client offered that parameter; when under 15 and the
   * client did not offer it, `client_no_context_takeover` is answered instead, so the memory
   * bound holds. Client: always offered (`client_max_window_bits`, with the value when under
   * 15), and the server may lower it; at 8 the client sends every message uncompressed (zlib
   * cannot deflate with a 256-byte window). Default 15.
   */
  clientMaxWindowBits?: number;
  /** Messages under this many bytes are sent uncompressed. Default 1024. */
  threshold?: number;
  /** zlib compression level, 0-9 (or -1, zlib's default, 6). Default -1. */
  level?: number;
  /** zlib memLevel, 1-9: memory of the compressor (per call) against speed. Default 8. */
  memLevel?: number;
}

/** Defaults of `PerMessageDeflateOptions`. */
export const DEFLATE_DEFAULTS = {
  serverNoContextTakeover: true,
  clientNoContextTakeover: true,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
  threshold: 1024,
  level: zc.Z_DEFAULT_COMPRESSION,
  memLevel: 8,
} as const;

/** `PerMessageDeflateOptions` with every default filled in and every value checked. */
export type ResolvedDeflateOptions = { readonly [K in keyof PerMessageDeflateOptions]-?: NonNullable<PerMessageDeflateOptions[K]> };

/**
 * The agreed parameters of one connection, seen from the wire: `server*` is what the server
 * compresses with, `client*` what the client compresses with.
 */
export interface DeflateParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  /** 8-15; 15 when the parameter was not agreed. */
  serverMaxWindowBits: number;
  /** 8-15; 15 when the parameter was not agreed. */
  clientMaxWindowBits: number;
}

/** One element of a `Sec-WebSocket-Extensions` value: a name and its parameters, in order. */
export interface ExtensionOffer {
  /** The extension token, lower-cased. */
  name: string;
  /** Parameter names lower-cased; the value `true` for a parameter without `=`. */
  params: [name: string, value: string | true][];
}

/** A server's decision: the parameters in force and the response header value. */
export interface DeflateAgreement {
  params: DeflateParams;
  /** The `Sec-WebSocket-Extensions` value for the 101 response. */
  response: string;
}

const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
const isIntIn = (v: unknown, lo: number, hi: number): v is number => Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;

/**
 * Check `options` once (`true` means every default) and fill in the defaults.
 * Errors: throws `ERR_C1M_INVALID_OPTION` naming the bad field.
 */
export function resolveDeflateOptions(options: true | PerMessageDeflateOptions): ResolvedDeflateOptions {
  const o: PerMessageDeflateOptions = options === true ? {} : options;
  checkOption(typeof o === 'object' && o !== null, 'perMessageDeflate', 'a boolean or an object', o);
  const r = { ...DEFLATE_DEFAULTS } as { -readonly [K in keyof ResolvedDeflateOptions]: ResolvedDeflateOptions[K] };
  for (const key of Object.keys(DEFLATE_DEFAULTS) as (keyof ResolvedDeflateOptions)[]) {
    const v = o[key];
    if (v !== undefined) (r as Record<string, unknown>)[key] = v;
  }
  checkOption(isBool(r.serverNoContextTakeover), 'perMessageDeflate.serverNoContextTakeover', 'a boolean', r.serverNoContextTakeover);
  checkOption(isBool(r.clientNoContextTakeover), 'perMessageDeflate.clientNoContextTakeover', 'a boolean', r.clientNoContextTakeover);
  checkOption(isIntIn(r.serverMaxWindowBits, 9, 15), 'perMessageDeflate.serverMaxWindowBits', 'an integer from 9 to 15', r.serverMaxWindowBits);
  checkOption(isIntIn(r.clientMaxWindowBits, 8, 15), 'perMessageDeflate.clientMaxWindowBits', 'an integer from 8 to 15', r.clientMaxWindowBits);
  checkOption(isIntIn(r.threshold, 0, 0x7fffffff), 'perMessageDeflate.threshold', 'an integer from 0 to 2147483647', r.threshold);
  checkOption(isIntIn(r.level, -1, 9), 'perMessageDeflate.level', 'an integer from -1 to 9', r.level);
  checkOption(isIntIn(r.memLevel, 1, 9), 'perMessageDeflate.memLevel', 'an integer from 1 to 9', r.memLevel);
  return r;
}

// ---- Sec-WebSocket-Extensions (RFC 6455 9.1) -------------------------------------------

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * The extensions in a `Sec-WebSocket-Extensions` value (several header lines may be given
 * joined with commas), in order. Undefined or empty: `[]`. Malformed (not a list of
 * `token *(";" token ["=" (token / quoted-string)])`, or a quoted value that is not a token
 * once unescaped): null.
 */
export function parseExtensions(header: string | undefined): ExtensionOffer[] | null {
  if (header === undefined) return [];
  const s = header;
  const n = s.length;
  const out: ExtensionOffer[] = [];
  let i = 0;
  const ows = (): void => {
    while (i < n && (s.charCodeAt(i) === 0x20 || s.charCodeAt(i) === 0x09)) i++;
  };
  const token = (): string | null => {
    const start = i;
    while (i < n && TCHAR.test(s[i])) i++;
    return i > start ? s.slice(start, i) : null;
  };
  const quoted = (): string | null => {
    // At the opening quote. A quoted-pair escapes one visible character.
    let v = '';
    for (i++; i < n; i++) {
      const c = s[i];
      if (c === '"') {
        i++;
        return TOKEN_RE.test(v) ? v : null;
      }
      if (c === '\\') {
        if (++i >= n) return null;
        v += s[i];
      } else {
        v += c;
      }
    }
    return null;
  };
  for (;;) {
    ows();
    if (i === n) break;
    if (s[i] === ',') {
      // RFC 9110 5.6.1: empty list elements are ignored.
      i++;
      continue;
    }
    const name = token();
    if (name === null) return null;
    const offer: ExtensionOffer = { name: name.toLowerCase(), params: [] };
    ows();
    while (i < n && s[i] === ';') {
      i++;
      ows();
      const param = token();
      if (param === null) return null;
      ows();
      let value: string | true = true;
      if (i < n && s[i] === '=') {
        i++;
        ows();
        const v = i < n && s[i] === '"' ? quoted() : token();
        if (v === null) return null;
        value = v;
        ows();
      }
      offer.params.push([param.toLowerCase(), value]);
    }
    out.push(offer);
    if (i === n) break;
    if (s[i] !== ',') return null;
    i++;
  }
  return out;
}

/** The `Sec-WebSocket-Extensions` element for agreed `params`, parameters in RFC order. */
export function formatDeflateParams(params: DeflateParams, include?: { serverMaxWindowBits?: boolean; clientMaxWindowBits?: boolean }): string {
  let s = PERMESSAGE_DEFLATE;
  if (params.serverNoContextTakeover) s += '; server_no_context_takeover';
  if (params.clientNoContextTakeover) s += '; client_no_context_takeover';
  if (include?.serverMaxWindowBits ?? params.serverMaxWindowBits < 15) s += `; server_max_window_bits=${params.serverMaxWindowBits}`;
  if (include?.clientMaxWindowBits ?? params.clientMaxWindowBits < 15) s += `; client_max_window_bits=${params.clientMaxWindowBits}`;
  return s;
}

// A window-bits value: a decimal integer from 8 to 15, no leading zero (RFC 7692 7.1.2).
const WINDOW_BITS_RE = /^(?:[89]|1[0-5])$/;

/** The permessage-deflate parameters of one offer or response. */
interface RawParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number | undefined;
  /** `true`: the parameter without a value (offers only). */
  clientMaxWindowBits: number | true | undefined;
}

/** The parameters of one element, or what makes it invalid (RFC 7692 5 and 7.1). */
function readParams(params: ExtensionOffer['params'], clientBitsMayBeEmpty: boolean): RawParams | string {
  const r: RawParams = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: undefined,
    clientMaxWindowBits: undefined,
  };
  const seen = new Set<string>();
  for (const [name, value] of params) {
    // RFC 7692 5: a repeated parameter makes the element invalid.
    if (seen.has(name)) return `parameter ${name} is repeated`;
    seen.add(name);
    const shown = value === true ? name : `${name}=${value}`;
    switch (name) {
      case 'server_no_context_takeover':
        if (value !== true) return `${shown}: this parameter takes no value`;
        r.serverNoContextTakeover = true;
        break;
      case 'client_no_context_takeover':
        if (value !== true) return `${shown}: this parameter takes no value`;
        r.clientNoContextTakeover = true;
        break;
      case 'server_max_window_bits':
        if (value === true || !WINDOW_BITS_RE.test(value)) return `${shown}: window bits must be a decimal from 8 to 15`;
        r.serverMaxWindowBits = Number(value);
        break;
      case 'client_max_window_bits':
        if (value === true) {
          if (!clientBitsMayBeEmpty) return `${shown}: a response must give the window bits`;
          r.clientMaxWindowBits = true;
        } else {
          if (!WINDOW_BITS_RE.test(value)) return `${shown}: window bits must be a decimal from 8 to 15`;
          r.clientMaxWindowBits = Number(value);
        }
        break;
      default:
        return `unknown parameter ${name}`;
    }
  }
  return r;
}

/**
 * Server side: pick the first permessage-deflate offer (client preference) we can accept
 * under `options`, and the response header value. None acceptable: null (answer without
 * the extension). An offer is declined (RFC 7692 5) when it has an unknown or repeated
 * parameter, an invalid value, or asks for `server_max_window_bits=8` (zlib cannot deflate
 * with a 256-byte window).
 *
 * What the response carries: `server_no_context_takeover` when offered or configured;
 * `client_no_context_takeover` when offered, configured, or needed to bound the client
 * window (see `clientMaxWindowBits`); `server_max_window_bits` when offered (the smaller of
 * the offer and ours); `client_max_window_bits` when offered and ours is smaller.
 */
export function negotiateDeflate(offers: readonly ExtensionOffer[], options: ResolvedDeflateOptions): DeflateAgreement | null {
  for (const offer of offers) {
    if (offer.name !== PERMESSAGE_DEFLATE) continue;
    const p = readParams(offer.params, true);
    if (typeof p === 'string' || p.serverMaxWindowBits === 8) continue;
    const offeredServerBits = p.serverMaxWindowBits;
    const serverBits = Math.min(options.serverMaxWindowBits, offeredServerBits ?? 15);
    const offeredClientBits = p.clientMaxWindowBits === true ? 15 : p.clientMaxWindowBits;
    const clientBits = offeredClientBits === undefined ? 15 : Math.min(options.clientMaxWindowBits, offeredClientBits);
    const params: DeflateParams = {
      serverNoContextTakeover: p.serverNoContextTakeover || options.serverNoContextTakeover,
      clientNoContextTakeover:
        p.clientNoContextTakeover || options.clientNoContextTakeover || (offeredClientBits === undefined && options.clientMaxWindowBits < 15),
      serverMaxWindowBits: serverBits,
      clientMaxWindowBits: clientBits,
    };
    const response = formatDeflateParams(params, {
      serverMaxWindowBits: offeredServerBits !== undefined,
      clientMaxWindowBits: offeredClientBits !== undefined && clientBits < offeredClientBits,
    });
    return { params, response };
  }
  return null;
}

/**
 * Client side: the permessage-deflate offer for `Sec-WebSocket-Extensions`. Asks for the
 * server's no-context-takeover and window only when they differ from the RFC defaults;
 * always offers `client_max_window_bits` (so a server may shrink our window).
 */
export function deflateOffer(options: ResolvedDeflateOptions): string {
  let s = PERMESSAGE_DEFLATE;
  if (options.serverNoContextTakeover) s += '; server_no_context_takeover';
  if (options.clientNoContextTakeover) s += '; client_no_context_takeover';
  if (options.serverMaxWindowBits < 15) s += `; server_max_window_bits=${options.serverMaxWindowBits}`;
  s += options.clientMaxWindowBits < 15 ? `; client_max_window_bits=${options.clientMaxWindowBits}` : '; client_max_window_bits';
  return s;
}

/**
 * Client side: check the server's `Sec-WebSocket-Extensions` answer to `deflateOffer(options)`.
 * Returns the agreed parameters, `false` when the server declined (no extension in the
 * answer), or a description of what makes the answer invalid, in which case the client must
 * fail the connection (RFC 7692 5 and 7.1): malformed syntax, another extension,
 * permessage-deflate twice, an unknown, repeated or out-of-range parameter,
 * `client_max_window_bits` without a value, a window larger than offered, or a parameter the
 * offer required missing.
 *
 * The parameters seen from the client: it inflates with `serverMaxWindowBits` (15 when the
 * answer has none) and compresses with `clientMaxWindowBits` (the answer's, else our own);
 * `clientNoContextTakeover` is true when the server asked for it or we chose it.
 */
export function checkDeflateResponse(header: string | undefined, options: ResolvedDeflateOptions): DeflateParams | false | string {
  const elements = parseExtensions(header);
  if (elements === null) return `malformed Sec-WebSocket-Extensions ${JSON.stringify(header)}`;
  if (elements.length === 0) return false;
  const names = elements.map((e) => e.name);
  const other = names.find((n) => n !== PERMESSAGE_DEFLATE);
  if (other !== undefined) return `the server selected extension ${other}, which we did not offer`;
  if (elements.length > 1) return `the server selected ${PERMESSAGE_DEFLATE} ${elements.length} times`;
  const p = readParams(elements[0].params, false);
  if (typeof p === 'string') return `${PERMESSAGE_DEFLATE}: ${p}`;
  if (options.serverNoContextTakeover && !p.serverNoContextTakeover) {
    return `${PERMESSAGE_DEFLATE}: server_no_context_takeover was offered and is missing from the answer`;
  }
  // We offered server_max_window_bits only below 15: the answer must then carry it, no larger.
  if (options.serverMaxWindowBits < 15 && (p.serverMaxWindowBits === undefined || p.serverMaxWindowBits > options.serverMaxWindowBits)) {
    return `${PERMESSAGE_DEFLATE}: server_max_window_bits=${options.serverMaxWindowBits} was offered, the answer has ${p.serverMaxWindowBits ?? 'none'}`;
  }
  const clientBits = p.clientMaxWindowBits as number | undefined;
  if (clientBits !== undefined && clientBits > options.clientMaxWindowBits) {
    return `${PERMESSAGE_DEFLATE}: client_max_window_bits=${clientBits} is larger than the ${options.clientMaxWindowBits} offered`;
  }
  return {
    serverNoContextTakeover: p.serverNoContextTakeover,
    clientNoContextTakeover: p.clientNoContextTakeover || options.clientNoContextTakeover,
    serverMaxWindowBits: p.serverMaxWindowBits ?? 15,
    clientMaxWindowBits: clientBits ?? options.clientMaxWindowBits,
  };
}

/**
 * `checkDeflateResponse` without the description: the agreed parameters, `false` when the
 * server declined, or null when the answer is invalid and the client must fail the connection.
 */
export function acceptDeflateResponse(header: string | undefined, options: ResolvedDeflateOptions): DeflateParams | false | null {
  const r = checkDeflateResponse(header, options);
  return typeof r === 'string' ? null : r;
}

/** True when `data` takes at least `threshold` bytes (UTF-8 for a string), without encoding it when the length decides. */
export function reachesThreshold(data: Uint8Array | string, threshold: number): boolean {
  if (typeof data !== 'string') return data.length >= threshold;
  // A UTF-16 code unit takes 1 to 3 UTF-8 bytes.
  if (data.length >= threshold) return true;
  if (data.length * 3 < threshold) return false;
  return Buffer.byteLength(data) >= threshold;
}

// ---- The codec ----------------------------------------------------------------------------

const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
// zlib's deflate can reach back its window size minus MIN_LOOKAHEAD (262 bytes).
const MIN_LOOKAHEAD = 262;

/** Options of a `PerMessageDeflate` codec. */
export interface PerMessageDeflateCodecOptions {
  /** Which end we are: a server compresses with the `server*` parameters. Required. */
  role: 'server' | 'client';
  /** The agreed parameters. Required. */
  params: DeflateParams;
  /** zlib level, -1 to 9. Default -1 (6). */
  level?: number;
  /** zlib memLevel, 1 to 9. Default 8. */
  memLevel?: number;
}

/** Up to `size` bytes of the most recent plaintext of one direction (a sliding window). */
class History {
  readonly #buf: Buffer;
  #len = 0;
  constructor(size: number) {
    this.#buf = Buffer.allocUnsafe(size);
  }
  get bytes(): Buffer | undefined {
    return this.#len === 0 ? undefined : this.#buf.subarray(0, this.#len);
  }
  append(data: Uint8Array): void {
    const buf = this.#buf;
    const size = buf.length;
    const n = data.length;
    if (n >= size) {
      buf.set(data.subarray(n - size));
      this.#len = size;
      return;
    }
    const keep = Math.min(this.#len, size - n);
    if (keep < this.#len) buf.copyWithin(0, this.#len - keep, this.#len);
    buf.set(data, keep);
    this.#len = keep + n;
  }
}

/**
 * Compresses and decompresses whole messages for one agreement.
 *
 * Memory: `stateful` false (no context takeover either way): the codec holds only its
 * parameters and may be shared by any number of connections with the same agreement. A
 * direction with context takeover keeps a history buffer of 2^windowBits bytes (allocated
 * at its first message): one codec per connection then. zlib state exists only during a call.
 * Threading: one thread; calls are synchronous and never re-entered.
 */
export class PerMessageDeflate {
  /** The agreed parameters. */
  readonly params: DeflateParams;
  /** True when the codec keeps history, so it belongs to one connection. */
  readonly stateful: boolean;
  readonly #ourBits: number;
  readonly #level: number;
  readonly #memLevel: number;
  readonly #sendHistorySize: number;
  readonly #recvHistorySize: number;
  #sent: History | null = null;
  #received: History | null = null;

  /** Errors: throws `ERR_C1M_INVALID_OPTION` for a bad option or parameter. */
  constructor(options: PerMessageDeflateCodecOptions) {
    const role = options?.role;
    checkOption(role === 'server' || role === 'client', 'role', "'server' or 'client'", role);
    const p = options.params;
    checkOption(
      typeof p === 'object' && p !== null && isBool(p.serverNoContextTakeover) && isBool(p.clientNoContextTakeover) &&
        isIntIn(p.serverMaxWindowBits, 8, 15) && isIntIn(p.clientMaxWindowBits, 8, 15),
      'params', 'DeflateParams', p,
    );
    const level = options.level ?? DEFLATE_DEFAULTS.level;
    const memLevel = options.memLevel ?? DEFLATE_DEFAULTS.memLevel;
    checkOption(isIntIn(level, -1, 9), 'level', 'an integer from -1 to 9', level);
    checkOption(isIntIn(memLevel, 1, 9), 'memLevel', 'an integer from 1 to 9', memLevel);
    const server = role === 'server';
    const ourNoTakeover = server ? p.serverNoContextTakeover : p.clientNoContextTakeover;
    const theirNoTakeover = server ? p.clientNoContextTakeover : p.serverNoContextTakeover;
    // 8 bits is a valid agreement zlib cannot deflate with: `canCompress` is then false.
    const ourBits = server ? p.serverMaxWindowBits : p.clientMaxWindowBits;
    this.params = { ...p };
    this.stateful = !ourNoTakeover || !theirNoTakeover;
    this.#ourBits = ourBits;
    this.#level = level;
    this.#memLevel = memLevel;
    this.#sendHistorySize = ourNoTakeover ? 0 : 1 << ourBits;
    this.#recvHistorySize = theirNoTakeover ? 0 : 1 << (server ? p.clientMaxWindowBits : p.serverMaxWindowBits);
  }

  /**
   * False when the agreed window is 8 bits, which zlib cannot produce: send every message
   * uncompressed then (always allowed, RFC 7692 6).
   */
  get canCompress(): boolean {
    return this.#ourBits >= 9;
  }

  /**
   * One message's payload, compressed (RFC 7692 7.2.1): send it with RSV1 on the first
   * frame. With context takeover the message joins the history the next one is compressed
   * against, so every compressed result must be sent, in order.
   *
   * Lifetime: `data` is read during the call only; the result is a new Buffer.
   * Errors: throws `ERR_C1M_WS_INVALID_ARGUMENT` when `canCompress` is false.
   */
  compress(data: Uint8Array): Buffer {
    checkArgument(this.canCompress, 'cannot compress with an 8-bit window (see canCompress)');
    let windowBits = this.#ourBits;
    const opts: ZlibOptions = { finishFlush: zc.Z_SYNC_FLUSH, level: this.#level, memLevel: this.#memLevel };
    if (this.#sendHistorySize === 0) {
      // The message is the whole window: a smaller one that still covers it loses nothing and
      // makes zlib allocate less.
      while (windowBits > 9 && (1 << (windowBits - 1)) - MIN_LOOKAHEAD >= data.length) windowBits--;
    } else {
      const dictionary = this.#sent?.bytes;
      if (dictionary !== undefined) opts.dictionary = dictionary;
    }
    opts.windowBits = windowBits;
    const out = deflateRawSync(data, opts);
    if (this.#sendHistorySize !== 0) (this.#sent ??= new History(this.#sendHistorySize)).append(data);
    // A sync flush always ends with an empty stored block, 0x00 0x00 0xff 0xff: drop it.
    return out.subarray(0, out.length - 4);
  }

  /**
   * One compressed message's payload, inflated (RFC 7692 7.2.2): at most `maxLength` bytes.
   *
   * Lifetime: `data` is read during the call only; the result is a new Buffer.
   * Errors: `WsProtocolError` `ERR_C1M_WS_MESSAGE_TOO_BIG` (1009) when the message inflates
   * past `maxLength` (zlib stops there), `ERR_C1M_WS_INVALID_COMPRESSED_DATA` (1007) when it
   * is not valid DEFLATE data. A stateful codec is unusable after either.
   */
  decompress(data: Uint8Array, maxLength: number): Buffer {
    const input = Buffer.allocUnsafe(data.length + 4);
    input.set(data);
    TAIL.copy(input, data.length);
    // windowBits 15 inflates data made with any smaller window.
    const opts: ZlibOptions = { finishFlush: zc.Z_SYNC_FLUSH, windowBits: 15, maxOutputLength: Math.max(1, maxLength) };
    const dictionary = this.#received?.bytes;
    if (dictionary !== undefined) opts.dictionary = dictionary;
    let out: Buffer;
    try {
      out = inflateRawSync(input, opts);
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') tooBig(maxLength);
      throw new WsProtocolError('ERR_C1M_WS_INVALID_COMPRESSED_DATA', `compressed message does not inflate: ${(err as Error).message}`);
    }
    if (out.length > maxLength) tooBig(maxLength);
    if (this.#recvHistorySize !== 0) (this.#received ??= new History(this.#recvHistorySize)).append(out);
    return out;
  }
}

function tooBig(maxLength: number): never {
  throw new WsProtocolError('ERR_C1M_WS_MESSAGE_TOO_BIG', `inflated message exceeds maxPayload (${maxLength} bytes)`);
}
