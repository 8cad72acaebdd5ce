/**
 * The gateway's client protocol (docs/gateway.md): JSON text messages, one per WebSocket
 * message, and two binary messages for binary data (a `pub` from a client, a `msg` to one).
 * Pure functions: parsing what a client sends, encoding what the server sends.
 *
 * Client -> server: `sub`, `unsub`, `pub`, `ping`, `refresh`. Server -> client: `welcome`, `ack`, `error`,
 * `pong`, and `msg`, the delivery, whose text depends only on the topic message (topic, seq,
 * data), never on the subscriber, so it is encoded once and the same frame goes to every
 * subscriber of the topic.
 */
import { isTopic } from './auth.js';

/** A topic message's data as the gateway carries it: JSON text, or the bytes of a binary message. */
export type MessageData = string | Uint8Array;

/** A delivery frame: JSON text (`{"op":"msg",...}`) or a binary `msg` (`encodeMsg`). */
export type Frame = string | Uint8Array;

/** First byte of a binary `msg` (server to client) and of a binary `pub` (client to server). */
export const BINARY_MSG = 0x01;
export const BINARY_PUB = 0x02;

/** The content type of binary data, over HTTP and in NATS headers. */
export const BINARY_TYPE = 'application/octet-stream';

/** A position in a topic's stream, as a client remembers it. */
export interface Position {
  seq: number;
  epoch: string;
}

export type ClientOp =
  | { op: 'sub'; id: number; topics: string[]; since: ReadonlyMap<string, Position> }
  | { op: 'unsub'; id: number; topics: string[] }
  /** A publish over the WebSocket; `data` is the value's JSON text (normalised: one parse, one stringify), or the bytes of a binary `pub`. */
  | { op: 'pub'; id: number; topic: string; data: MessageData }
  | { op: 'ping'; id: number }
  | { op: 'refresh'; id: number; token: string };

/** Wire error codes (the `code` of an `error` op; also the close reasons of 4001). */
export type ErrorCode = 'bad_request' | 'invalid_topic' | 'forbidden' | 'limit' | 'unavailable' | 'unauthorized';

/** A client message that cannot be served, with the id it carried (0 when none). */
export class OpError extends Error {
  readonly code: ErrorCode;
  readonly id: number;
  readonly topic: string | undefined;
  constructor(code: ErrorCode, id: number, message: string, topic?: string) {
    super(message);
    this.code = code;
    this.id = id;
    this.topic = topic;
  }
}

/** Longest token a `refresh` may carry (a JWT's characters). */
export const MAX_TOKEN_LENGTH = 8192;

/** Most topics in one `sub` or `unsub`. */
export const MAX_TOPICS_PER_OP = 100;

const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isSeq = isId;

/**
 * A list of 1 to `MAX_TOPICS_PER_OP` topics, deduplicated. Errors: an `OpError` with `id`:
 * `bad_request` when not such a list, `invalid_topic` naming the first bad topic.
 */
export function topicList(v: unknown, id: number): string[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_TOPICS_PER_OP) {
    throw new OpError('bad_request', id, `topics must be an array of 1 to ${MAX_TOPICS_PER_OP} topics`);
  }
  for (const t of v) if (!isTopic(t)) throw new OpError('invalid_topic', id, 'not a valid topic', typeof t === 'string' ? t.slice(0, 128) : undefined);
  // One topic (the usual connect): nothing to deduplicate.
  return v.length === 1 ? (v as string[]) : [...new Set(v as string[])];
}

/** Parse one client message. Errors: throws an `OpError` (the reply to send). */
export function parseClientOp(text: string): ClientOp {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    throw new OpError('bad_request', 0, 'not JSON');
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new OpError('bad_request', 0, 'not a JSON object');
  const o = m as Record<string, unknown>;
  const id = o.id === undefined ? 0 : o.id;
  if (!isId(id)) throw new OpError('bad_request', 0, 'id must be a non-negative integer');
  switch (o.op) {
    case 'sub': {
      const topics = topicList(o.topics, id);
      const since = new Map<string, Position>();
      if (o.since !== undefined) {
        if (typeof o.since !== 'object' || o.since === null || Array.isArray(o.since)) throw new OpError('bad_request', id, 'since must be an object: topic -> {seq, epoch}');
        for (const [topic, p] of Object.entries(o.since as Record<string, unknown>)) {
          const pos = p as Partial<Position> | null;
          if (!topics.includes(topic) || typeof pos !== 'object' || pos === null || !isSeq(pos.seq) || typeof pos.epoch !== 'string') {
            throw new OpError('bad_request', id, 'since: each entry is a subscribed topic -> {seq, epoch}', isTopic(topic) ? topic : undefined);
          }
          since.set(topic, { seq: pos.seq, epoch: pos.epoch });
        }
      }
      return { op: 'sub', id, topics, since };
    }
    case 'unsub':
      return { op: 'unsub', id, topics: topicList(o.topics, id) };
    case 'pub': {
      if (!isTopic(o.topic)) throw new OpError('invalid_topic', id, 'not a valid topic', typeof o.topic === 'string' ? o.topic.slice(0, 128) : undefined);
      if (o.data === undefined) throw new OpError('bad_request', id, 'pub needs data: any JSON value', o.topic);
      return { op: 'pub', id, topic: o.topic, data: JSON.stringify(o.data) };
    }
    case 'ping':
      return { op: 'ping', id };
    case 'refresh':
      if (typeof o.token !== 'string' || o.token.length === 0 || o.token.length > MAX_TOKEN_LENGTH) {
        throw new OpError('bad_request', id, `token must be a string of 1 to ${MAX_TOKEN_LENGTH} characters`);
      }
      return { op: 'refresh', id, token: o.token };
    default:
      throw new OpError('bad_request', id, 'op must be sub, unsub, pub, ping or refresh');
  }
}

/**
 * Parse one binary client message: a `pub` of binary data. Layout: 0x02, the id (u32,
 * big-endian), the topic's length (u8), the topic (ASCII), then the data (the rest, possibly
 * empty). Lifetime: the data is a view of `b` (copy `b` first when it is the reader's).
 * Errors: throws an `OpError`.
 */
export function parseClientBinary(b: Uint8Array): ClientOp {
  if (b.length < 7 || b[0] !== BINARY_PUB) {
    throw new OpError('bad_request', 0, 'a binary message is a pub: 0x02, id (u32), topic length (u8), topic, data');
  }
  const id = ((b[1]! << 24) >>> 0) + (b[2]! << 16) + (b[3]! << 8) + b[4]!;
  const n = b[5]!;
  if (6 + n > b.length) throw new OpError('bad_request', id, 'the topic runs past the message');
  const topic = Buffer.from(b.buffer, b.byteOffset + 6, n).toString('latin1');
  if (!isTopic(topic)) throw new OpError('invalid_topic', id, 'not a valid topic', String(topic).slice(0, 128));
  return { op: 'pub', id, topic, data: b.subarray(6 + n) };
}

/** What the gateway reads of a connect URL's query: `URLSearchParams` has it. */
export interface QueryParams {
  /** The first value of parameter `name` (decoded), or null. */
  get(name: string): string | null;
}

/**
 * A query without `%` and `+` (the usual `topics=a,b`): nothing to decode, so its parameters are
 * its own substrings, found by a scan per `get` instead of a parse into a list (and
 * `URLSearchParams`'s strings and objects) per connect. Gives what `URLSearchParams` gives.
 */
class PlainQuery implements QueryParams {
  readonly #text: string;
  constructor(text: string) {
    this.#text = text;
  }
  get(name: string): string | null {
    const q = this.#text;
    const n = q.length;
    for (let at = 0; at < n;) {
      let end = q.indexOf('&', at);
      if (end < 0) end = n;
      let eq = q.indexOf('=', at);
      if (eq < 0 || eq > end) eq = end;
      if (eq - at === name.length && q.startsWith(name, at)) return eq === end ? '' : q.slice(eq + 1, end);
      at = end + 1;
    }
    return null;
  }
}

const NO_QUERY: QueryParams = new PlainQuery('');

/**
 * The query of a request target (what follows its first `?`), read as
 * `new URLSearchParams(query)` reads it (which also drops one more leading `?`).
 */
export function queryOf(target: string): QueryParams {
  const q = target.indexOf('?');
  if (q < 0) return NO_QUERY;
  const query = target.slice(q + 1);
  // Percent-escapes and `+` need URLSearchParams's decoding (which drops one leading `?` itself);
  // without them a name or value is its substring (a latin1 string survives the UTF-8 round
  // trip of the decoding unchanged).
  if (query.indexOf('%') >= 0 || query.indexOf('+') >= 0) return new URLSearchParams(query);
  return new PlainQuery(query.charCodeAt(0) === 0x3f ? query.slice(1) : query);
}

/** The `since` of a `sub` that gave none (read only). */
const NO_SINCE: ReadonlyMap<string, Position> = new Map();

/**
 * The `sub` of a connect URL's query: `topics=a,b` and `since=a:12:EPOCH,b:3:EPOCH`.
 * Returns null when the query names no topics. Errors: an `OpError` with id 0.
 */
export function parseQuerySub(query: QueryParams): Extract<ClientOp, { op: 'sub' }> | null {
  const list = query.get('topics');
  if (list === null || list === '') return null;
  const topics = topicList(list.split(','), 0);
  const s = query.get('since');
  if (s === null || s === '') return { op: 'sub', id: 0, topics, since: NO_SINCE };
  const since = new Map<string, Position>();
  for (const item of s.split(',')) {
    const [topic, seq, epoch, extra] = item.split(':');
    if (extra !== undefined || !topics.includes(topic!) || !/^\d{1,15}$/.test(seq ?? '') || !epoch) {
      throw new OpError('bad_request', 0, 'since is topic:seq:epoch,... for topics in topics=');
    }
    since.set(topic!, { seq: Number(seq), epoch });
  }
  return { op: 'sub', id: 0, topics, since };
}

/** What the server tells of one topic in an `ack` of `sub`. */
export interface TopicState {
  seq: number;
  epoch: string;
  /** Present when the client gave a position: whether every missed message follows. */
  recovered?: boolean;
}

/**
 * An `ack`: the same text as `JSON.stringify({ op: 'ack', id, topics })`, built by
 * concatenation (one per connect that subscribes in its URL: no object walk).
 */
export function encodeAck(id: number, topics?: Record<string, TopicState>): string {
  if (topics === undefined) return `{"op":"ack","id":${id}}`;
  let out = `{"op":"ack","id":${id},"topics":{`;
  let first = true;
  for (const t in topics) {
    const st = topics[t]!;
    out += `${first ? '' : ','}${ackEntry(t, st.seq, st.epoch)}${st.recovered === undefined ? '' : `,"recovered":${st.recovered}`}}`;
    first = false;
  }
  return `${out}}}`;
}

/** One topic's state in an ack, up to its closing brace. */
const ackEntry = (topic: string, seq: number, epoch: string): string => `${JSON.stringify(topic)}:{"seq":${seq},"epoch":${JSON.stringify(epoch)}`;

/** `encodeAck(id, { [topic]: { seq, epoch } })` without the object: the ack of a connect's one topic. */
export const encodeAckOne = (id: number, topic: string, seq: number, epoch: string): string =>
  `{"op":"ack","id":${id},"topics":{${ackEntry(topic, seq, epoch)}}}}`;

export const encodeError = (e: OpError): string =>
  JSON.stringify(e.topic === undefined ? { op: 'error', id: e.id, code: e.code, message: e.message } : { op: 'error', id: e.id, code: e.code, message: e.message, topic: e.topic });

/** The welcome of an open gateway's clients (user ''), made once. */
const OPEN_WELCOME = JSON.stringify({ op: 'welcome', user: '' });

export const encodeWelcome = (user: string): string => (user === '' ? OPEN_WELCOME : JSON.stringify({ op: 'welcome', user }));

export const encodePong = (id: number): string => `{"op":"pong","id":${id}}`;

/**
 * The server put the client on topics (an operator's `POST /subscribe/<user>`), with each
 * one's position as an `ack` gives it; `reason` says why.
 */
export const encodeSubscribed = (topics: Record<string, TopicState>, reason: string): string => JSON.stringify({ op: 'subscribed', topics, reason });

/**
 * The server took the client off `topics` (a server-side unsubscribe of its user, or a
 * `refresh` whose token no longer grants them); `reason` says which.
 */
export const encodeUnsubscribed = (topics: readonly string[], reason: string): string => JSON.stringify({ op: 'unsubscribed', topics, reason });

/**
 * The `ack` of a `pub`: where the message went, as `POST /publish` answers it (`delivered`,
 * `seq`, `epoch`; null when not known here, see docs/gateway.md).
 */
export const encodePubAck = (id: number, delivered: number | null, seq: number | null, epoch: string | null): string =>
  `{"op":"ack","id":${id},"delivered":${delivered},"seq":${seq},"epoch":${epoch === null ? 'null' : JSON.stringify(epoch)}}`;

/**
 * A delivery frame, once per topic message. JSON data (already validated and normalised) gives
 * a text frame built by concatenation. Binary data gives a binary frame: 0x01, the topic's
 * length (u8), the topic (ASCII), seq (u64, big-endian), then the data.
 */
export function encodeMsg(topic: string, seq: number, data: MessageData): Frame {
  if (typeof data === 'string') return `{"op":"msg","topic":"${topic}","seq":${seq},"data":${data}}`;
  const n = topic.length; // topics are ASCII (isTopic)
  const b = Buffer.allocUnsafe(10 + n + data.length);
  b[0] = BINARY_MSG;
  b[1] = n;
  b.write(topic, 2, 'latin1');
  b.writeUInt32BE(Math.floor(seq / 2 ** 32), 2 + n);
  b.writeUInt32BE(seq >>> 0, 6 + n);
  b.set(data, 10 + n);
  return b;
}

/** Whether a content type names binary data (`application/octet-stream`). */
export const isBinaryType = (contentType: string | undefined): boolean =>
  contentType !== undefined && /^\s*application\/octet-stream\s*(?:;|$)/i.test(contentType);

/**
 * The `data` of a published body: with `application/octet-stream`, the body's bytes (a binary
 * message; the caller's buffer, not copied); otherwise JSON text: with a JSON content type the
 * body must be JSON (normalised by a parse and a stringify, so a frame is always one valid
 * JSON object); anything else is UTF-8 text and becomes a JSON string. Returns null for a body
 * that claims JSON and is not.
 */
export function messageData(body: Uint8Array, contentType: string | undefined): MessageData | null {
  if (isBinaryType(contentType)) return body;
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  if (contentType !== undefined && /^application\/(?:[\w.+-]+\+)?json\b/i.test(contentType.trim())) {
    try {
      return JSON.stringify(JSON.parse(text));
    } catch {
      return null;
    }
  }
  return JSON.stringify(text);
}
