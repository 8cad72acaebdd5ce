/**
 * Fan-out across processes and machines through NATS (the official `nats` client).
 *
 * Interest: this process holds a NATS subscription to `<prefix><topic>` exactly while it has
 * a stream for the topic (history.ts: from its first local subscriber until the stream is
 * dropped, at once after the last subscriber left when there is no history to keep). So a
 * message reaches every process that has subscribers for its topic, and no other.
 *
 * Exactly once: a publish from this gateway (HTTP) goes to NATS only; NATS delivers it back
 * to every interested process, this one included (echo), and delivery happens there, from the
 * subscription (queued by its callback and run one macrotask later: inbound.ts, so an HTTP
 * publish is answered without waiting for local sends). A process has one NATS subscription
 * per topic, so each of its subscribers gets each message once.
 *
 * Outages: nats.js reconnects forever and re-subscribes every live subscription on
 * reconnect; interest changes made meanwhile are queued by it. While disconnected, `publish`
 * refuses (the HTTP publish answers 503) instead of letting nats.js buffer messages that may
 * never leave; local subscribers keep what they have.
 */
import { connect, headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from 'nats';
import { deliverLater } from './inbound.js';

export interface BrokerOptions {
  /** NATS server URL(s), comma-separated. */
  servers: string;
  /** Subject prefix of topics. Default `c1m.topic.`. */
  prefix?: string;
  /** Connection name shown by the NATS server. */
  name?: string;
  /** Runs after each reconnection (the JetStream history restarts its consumers). */
  onReconnect?: () => void;
}

/** A message from NATS for a topic this process is interested in. */
export interface BrokerMessage {
  topic: string;
  data: Uint8Array;
  contentType: string | undefined;
  /** When the publishing gateway accepted it (ms since the epoch), if it says. */
  publishedAt: number | undefined;
}

export class Broker {
  readonly #nc: NatsConnection;
  readonly #prefix: string;
  readonly #subs = new Map<string, Subscription>();
  readonly #onMessage: (m: BrokerMessage) => void;
  #up = true;
  /** Reconnections so far (metrics). */
  reconnects = 0;

  private constructor(nc: NatsConnection, prefix: string, onMessage: (m: BrokerMessage) => void, onReconnect: (() => void) | undefined) {
    this.#nc = nc;
    this.#prefix = prefix;
    this.#onMessage = onMessage;
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') this.#up = false;
        else if (s.type === 'reconnect') {
          this.#up = true;
          this.reconnects++;
          onReconnect?.();
        }
      }
    })();
  }

  /**
   * Connect (one attempt, so a gateway pointed at no server fails to start with a clear
   * error); after that nats.js reconnects forever.
   */
  static async connect(o: BrokerOptions, onMessage: (m: BrokerMessage) => void): Promise<Broker> {
    const nc = await connect({
      servers: o.servers.split(',').map((s) => s.trim()).filter(Boolean),
      name: o.name ?? `c1m-gateway-${process.pid}`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 10_000,
    });
    return new Broker(nc, o.prefix ?? 'c1m.topic.', onMessage, o.onReconnect);
  }

  /** Connected to a server now. */
  get up(): boolean {
    return this.#up && !this.#nc.isClosed();
  }

  /** The connection (the JetStream history works on it). Lifetime: until `close`. */
  get connection(): NatsConnection {
    return this.#nc;
  }

  /** NATS subscriptions held (one per interested topic). */
  get subscriptions(): number {
    return this.#subs.size;
  }

  /** Start or end this process's interest in `topic`. */
  interest(topic: string, active: boolean): void {
    if (this.#nc.isClosed()) return;
    if (!active) {
      this.#subs.get(topic)?.unsubscribe();
      this.#subs.delete(topic);
      return;
    }
    if (this.#subs.has(topic)) return;
    const prefixLength = this.#prefix.length;
    this.#subs.set(topic, this.#nc.subscribe(this.#prefix + topic, {
      callback: (err, msg: Msg) => {
        if (err !== null) return;
        const h = msg.headers;
        const at = h?.get('C1m-Published-At');
        const m: BrokerMessage = {
          topic: msg.subject.slice(prefixLength),
          data: msg.data,
          contentType: h?.get('Content-Type') || undefined,
          publishedAt: at ? Number(at) : undefined,
        };
        deliverLater(() => this.#onMessage(m));
      },
    }));
  }

  /**
   * Publish one message to each of `topics` on NATS and wait until the server has them all
   * (one flush: the server answers our PING after it has routed what came before it).
   * Resolves before this process's own copies are delivered here: they come ahead of the
   * answer on the connection, and are queued (inbound.ts). Rejects when disconnected or when
   * the server does not answer within `timeoutMs`.
   */
  async publish(topics: readonly string[], data: Uint8Array, contentType: string | undefined, timeoutMs = 2000): Promise<void> {
    if (!this.up) throw new Error('NATS is not connected');
    const h = natsHeaders();
    if (contentType !== undefined) h.set('Content-Type', contentType);
    h.set('C1m-Published-At', String(performance.timeOrigin + performance.now()));
    for (const t of topics) this.#nc.publish(this.#prefix + t, data, { headers: h });
    await this.#confirm(timeoutMs);
  }

  /**
   * Subscribe to `subject`, outside the topics, for the connection's life (a control message:
   * `disconnect`); each message's data goes to `onMessage`, queued like topic messages.
   * Errors: a subscription the server refuses (a permission) is reported as a process warning,
   * not silently lost: this gateway then gets no control messages.
   */
  control(subject: string, onMessage: (data: Uint8Array) => void): void {
    this.#nc.subscribe(subject, {
      callback: (err, msg: Msg) => {
        if (err !== null) process.emitWarning(`c1m gateway: the NATS control subscription ${subject} failed: ${err.message}`);
        else deliverLater(() => onMessage(msg.data));
      },
    });
  }

  /** Publish a control message to `subject` and wait for the server, as `publish` does. */
  async publishControl(subject: string, data: Uint8Array, timeoutMs = 2000): Promise<void> {
    if (!this.up) throw new Error('NATS is not connected');
    this.#nc.publish(subject, data);
    await this.#confirm(timeoutMs);
  }

  /** A flush (the server has routed what was published before it), or a rejection after `timeoutMs`. */
  async #confirm(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#nc.flush(),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('NATS did not confirm the publish in time')), timeoutMs))),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Drain and close the connection. A drain needs the server (it ends with a flush): when NATS
   * is down, or goes away while draining, the connection is closed after `timeoutMs` instead,
   * so a gateway never stays alive reconnecting to a NATS that is gone.
   */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.#nc.isClosed()) return;
    if (!this.up) return this.#nc.close();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#nc.drain(),
      new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]).catch(() => {});
    clearTimeout(timer);
    if (!this.#nc.isClosed()) await this.#nc.close();
  }
}
