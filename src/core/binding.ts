/**
 * The one loader for the native addon. Loading is tried once; when it fails c1m says why,
 * once, and the portable backend is used instead.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Layout and protocol constants exported by the addon (never hard-coded in JS). Sizes are in
 * bytes; `SLOT_*`, `EV_*` (fields), `CMD_*` (fields), `ID_*` (fields) are 32-bit word indexes
 * computed with `offsetof` from the structs in `native/include/c1m.h`. Read them through
 * `src/core/layout.ts`.
 */
export interface NativeConstants {
  SLOT_SIZE: number; SLOT_WORDS: number; SLOT_GEN: number; SLOT_FLAGS: number; SLOT_OUT_LEN: number;
  SLOT_DEADLINE: number; SLOT_TIMEOUT_TICKS: number; SLOT_IN_LEN: number; GEN_MASK: number;
  F_OPEN: number; F_CONNECTING: number; F_CLOSING: number; F_TLS: number;
  /** 1 when the addon was built with OpenSSL's headers (TLS in the reactor), else 0. */
  TLS_AVAILABLE: number; EV_TLS_REJECT: number; R_TLS: number;
  EV_SIZE: number; EV_WORDS: number; EV_KIND: number; EV_FD: number; EV_GEN: number; EV_A: number; EV_B: number; EV_C: number;
  EV_OPEN: number; EV_DATA: number; EV_DRAIN: number; EV_END: number; EV_TIMEOUT: number;
  EV_CLOSE: number; EV_ACCEPT_ERROR: number; EV_ERROR: number;
  E_WAKE: number; E_WAKE_READ: number; E_TIMER_READ: number; E_POLL: number; E_CLOSE: number; E_EVENT_LOST: number;
  E_READY_LOST: number; E_COMMAND: number; E_TIMERS: number; E_TIMER_SET: number;
  R_END: number; R_LOCAL: number; R_ERROR: number; R_TIMEOUT: number; R_INBOUND_LIMIT: number;
  R_SLOW_CONSUMER: number; R_CONNECT_FAILED: number; R_HANDLER: number; R_SHUTDOWN: number;
  CMD_SIZE: number; CMD_OP: number; CMD_FD: number; CMD_GEN: number; CMD_LEN: number; CMD_ALIGN: number;
  ID_SIZE: number; ID_FD: number; ID_GEN: number;
  OP_WRITE: number; OP_CLOSE: number; OP_DESTROY: number; OP_SHUTDOWN: number; OP_PAUSE: number;
  OP_RESUME: number; OP_TIMEOUT: number; OP_BROADCAST: number; OPF_WANT_DRAIN: number; OPF_HEARTBEAT: number; OPF_PONGS: number; OP_AUTO_PONG: number;
  CTL_SEND_USED: number; CTL_CONNS: number; CTL_TICK: number; CTL_ACCEPT_PAUSES: number; CTL_QUIET_OPENS: number; CTL_MAX_FD: number;
  CTL_ERRORS: number; CTL_ERRORS_LOST: number; CTL_WORDS: number;
  LB_ROUND_ROBIN: number; LB_LEAST_CONN: number; LB_HASH: number;
  // UDP (native/src/udp.c); the address entry's fields are byte offsets
  EV_UDP_MSG: number; EV_UDP_DRAIN: number; EV_UDP_ERROR: number; OP_UDP_SEND: number; F_UDP: number;
  UDP_E_RECV: number; UDP_E_SEND: number; UDP_MCAST_TTL: number; UDP_MCAST_LOOP: number; UDP_MCAST_IF: number; UDP_ADDR_SIZE: number; SA_FAMILY: number; SA_FAMILY_SIZE: number;
  AF_INET: number; AF_INET6: number; SIN_PORT: number; SIN_ADDR: number; SIN6_PORT: number; SIN6_ADDR: number; SIN6_SCOPE_ID: number;
}

/** An opaque reactor handle owned by the addon. */
export type NativeHandle = { readonly __brand: 'c1m.reactor' };

export interface NativeConfig {
  nslots: number; maxIn: number; maxOut: number; highWater: number; tickMs: number; idleTicks: number;
  nodelay: number; readBudget: number;
  /** 1: accepts are counted in CTL_QUIET_OPENS instead of reported as OPEN records. */
  quietOpen: number;
}

/** The addon's export table (native/src/addon.c). */
export interface Binding {
  constants: NativeConstants;
  create(cfg: NativeConfig, slots: ArrayBuffer, recv: ArrayBuffer, events: ArrayBuffer, send: ArrayBuffer,
    ctl: ArrayBuffer, onBatch: (n: number) => void): NativeHandle;
  close(h: NativeHandle): void;
  ref(h: NativeHandle, on: boolean): void;
  /** 0: poll when the reactor's epoll fd is readable; ms > 0: poll every ms from a timer instead. */
  pollInterval(h: NativeHandle, ms: number): void;
  flush(h: NativeHandle): void;
  /** keepIdle 0: no TCP keep-alive (else SO_KEEPALIVE with TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, inherited by accepted sockets). */
  listen(h: NativeHandle, ip: string, port: number, backlog: number, reusePort: boolean, targets: number[], policy: number, deferAccept: number, keepIdle: number, keepIntvl: number, keepCnt: number): [fd: number, port: number];
  unlisten(h: NativeHandle, fd: number): number;
  /** Replace a hand-off listener's targets (registry ids); 0 or -errno. */
  retarget(h: NativeHandle, fd: number, targets: number[]): number;
  connect(h: NativeHandle, ip: string, port: number, localIp: string | undefined, keepIdle: number, keepIntvl: number, keepCnt: number): number;
  writeDirect(h: NativeHandle, fd: number, gen: number, data: Uint8Array): number;
  sockname(h: NativeHandle, fd: number, gen: number, peer: boolean): [string, number] | undefined;
  id(h: NativeHandle): number;
  raiseNofile(): [number, number];
  /** glibc M_TRIM_THRESHOLD (process-wide): 0 or -errno (-ENOTSUP without glibc). */
  mallocTrimThreshold(bytes: number): number;
  /** glibc malloc_trim(0) (process-wide): 1 when memory went back to the kernel, 0 when none, -errno (-ENOTSUP without glibc). */
  mallocTrim(): number;
  /** Every thread of the process under SCHED_BATCH (true) or SCHED_OTHER: threads switched, or -errno. */
  schedBatch(on: boolean): number;
  fdInfo(fd: number): { nonblock: boolean; cloexec: boolean; nodelay: number; keepalive?: [idle: number, interval: number, count: number] } | undefined;
  /** The name of a positive or negative errno (every Linux errno), undefined for none. */
  errname(errno: number): string | undefined;
  /** For the layout test: the struct at the start of `mem` as native code reads it, by C field name. */
  layoutProbe(area: 'slot' | 'event' | 'cmd' | 'id' | 'ctl', mem: ArrayBuffer): Record<string, number>;
  // ---- UDP (native/src/udp.c): sockets named by (fd, gen), gen read from the slot table ----
  /** Open a bound UDP socket; throws a system error. */
  udpOpen(h: NativeHandle, ip: string, port: number, o: { reusePort: boolean; ipv6Only: boolean; recvBufferSize: number;
    sendBufferSize: number; maxMessageSize: number; sendQueueBytes: number; gso: boolean; gro: boolean }): [fd: number, port: number];
  /** 0 or -errno. */
  udpClose(h: NativeHandle, fd: number, gen: number): number;
  /** connect(2) (ip undefined: dissolve the association); 0 or -errno. */
  udpConnect(h: NativeHandle, fd: number, gen: number, ip: string | undefined, port: number): number;
  udpMembership(h: NativeHandle, fd: number, gen: number, join: boolean, group: string, iface: string | undefined): number;
  /** A multicast sending option (what: k.UDP_MCAST_*; IF: iface for IPv4, value = index for IPv6); 0 or -errno. */
  udpMulticast(h: NativeHandle, fd: number, gen: number, what: number, value: number, iface: string | undefined): number;
  /** [sent, drops, sendErrors, queued, queuedBytes, gsoSent, groReceived] */
  udpStats(h: NativeHandle, fd: number, gen: number): [number, number, number, number, number, number, number] | undefined;
  udpSockname(h: NativeHandle, fd: number, gen: number, peer: boolean): [string, number] | undefined;
  /** Write the address entry of ip:port into out (32 bytes); 0 or -EINVAL. */
  udpEncode(ip: string, port: number, out: Uint8Array): number;
  /** A TLS context (native/src/tls.c), freed when the handle is collected and no listener or
   *  connection uses it. Throws ERR_C1M_TLS_CONFIG / _KEY_MISMATCH / _UNAVAILABLE. */
  tlsContext(o: { server: boolean; cert?: Buffer; key?: Buffer; ca?: Buffer; requestCert: boolean; rejectUnauthorized: boolean;
    minVersion: number; alpn?: Buffer; handshakeMs: number; ticketKeys?: Buffer; ciphers?: string; sni: [string, Buffer, Buffer][]; resume: boolean }): NativeTlsContext;
  /** Make a listener accept TLS with ctx (or replace its context); 0 or -errno. */
  tlsListen(h: NativeHandle, fd: number, ctx: NativeTlsContext): number;
  /** Make a connecting connection speak TLS; with a sessionKey (and a context made with resume)
   *  it offers the session kept under that key and keeps the ones it gets there. 0 or -errno. */
  tlsConnect(h: NativeHandle, fd: number, gen: number, ctx: NativeTlsContext, servername: string | undefined, sessionKey: string | undefined): number;
  tlsInfo(h: NativeHandle, fd: number, gen: number): NativeTlsInfo | undefined;
  /** OpenSSL's text for a TLS_REJECT/CLOSE record's error code and X509 verify result. */
  tlsErrorText(code: number, verify: number): string;
  /** [live SSL objects, live TLS contexts] in the whole process (all reactors): the no-leak check. */
  tlsLive(): [number, number];
}

/** An opaque TLS context handle owned by the addon. */
export type NativeTlsContext = { readonly __brand: 'c1m.tls' };

/** The addon's TLS facts of one connection. */
export interface NativeTlsInfo {
  protocol: string; cipher: string; alpnProtocol: string | undefined; servername: string | undefined;
  resumed: boolean; verifyResult: number; peerCertificate?: Buffer;
}

let loaded: Binding | null | undefined;
let failure = '';
let warned = false;

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'binding.gyp'))) return dir;
    const up = dirname(dir);
    if (up === dir) return dirname(fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** The addon, or null when it cannot be loaded on this machine (see `nativeUnavailableReason`). */
export function loadBinding(): Binding | null {
  if (loaded !== undefined) return loaded;
  if (process.platform !== 'linux') {
    failure = `the native backend needs Linux (this is ${process.platform})`;
    loaded = null;
    return loaded;
  }
  // C1M_ADDON_PATH: load another build of the addon (the AddressSanitizer one in scripts/asan.sh).
  const path = process.env.C1M_ADDON_PATH || join(packageRoot(), 'build', 'Release', 'c1m.node');
  try {
    loaded = createRequire(import.meta.url)(path) as Binding;
    // The addon adds its constants one by one, which leaves V8 holding them in dictionary mode:
    // every `k.NAME` in optimized code would be a generic LoadIC. A copy made in one step is a
    // fast-mode object.
    loaded.constants = Object.freeze({ ...loaded.constants });
  } catch (err) {
    failure = `the native addon could not be loaded from ${path}: ${(err as Error).message.split('\n')[0]} (run "npm run build:native")`;
    loaded = null;
  }
  return loaded;
}

/** Why the native backend is unavailable ('' when it is available). */
export function nativeUnavailableReason(): string {
  loadBinding();
  return failure;
}

/** Print, once per process, that the portable backend is used and why. */
export function warnPortableFallback(): void {
  if (warned || !failure) return;
  warned = true;
  process.emitWarning(`c1m: ${failure}; using the portable backend (node:net).`, { code: 'C1M_PORTABLE_FALLBACK' });
}

let nofile: [number, number] | undefined;

/** Raise RLIMIT_NOFILE's soft limit to the hard limit (once per process); returns [soft, hard]. */
export function raiseNofile(b: Binding): [number, number] {
  nofile ??= b.raiseNofile();
  return nofile;
}
