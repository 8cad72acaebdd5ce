/**
 * The JS half of the shared-memory layout between a native reactor and JS.
 *
 * Model: `native/include/c1m.h` is the single source. Its structs (slot, event record, command
 * header, broadcast id) and enums (control words, event kinds) are exported by the addon as
 * `offsetof`/`sizeof` values (`NativeConstants`); this module gives them their JS names, once,
 * including what the generic `a`/`b`/`c` fields of an event record mean for each kind. No
 * offset or size is written here as a number.
 *
 * Invariants: every area is viewed as 32-bit words (`Uint32Array`/`Int32Array`), so field
 * indexes are word indexes: field `f` of record `i` is word `i * recordWords + f`; a command
 * header at byte `at` of the send area starts at word `at >> 2` (headers are 8-aligned).
 * test/native/layout.test.ts writes every field through this module and checks that native code
 * reads it from the same C field.
 *
 * Hot path: nothing here is looked up per message. `NativeReactor` copies the numbers it needs
 * into its own fields or into locals once per batch.
 */
import type { NativeConstants } from './binding.js';
import { errnoName, systemError, withoutStack, type SystemError } from './errors.js';
import { HANDLER_ERROR, type HandlerErrorReason } from './handler-contract.js';
import type { CloseReason } from './types.js';

/** Word indexes and sizes of the shared areas. See `native/include/c1m.h` for each field's contract. */
export interface Layout {
  /** Slot table: bytes per slot, 32-bit words per slot, and the word of each field in a slot. */
  readonly slotBytes: number;
  readonly slotWords: number;
  readonly slotGen: number;
  readonly slotFlags: number;
  readonly slotOutLen: number;
  readonly slotDeadline: number;
  readonly slotTimeoutTicks: number;
  readonly slotInLen: number;
  /** Flags of a live connection (established or connecting). */
  readonly liveFlags: number;

  /** Event array: bytes and words per record; kind, fd and gen of every record. */
  readonly evBytes: number;
  readonly evWords: number;
  readonly evKind: number;
  readonly evFd: number;
  readonly evGen: number;
  /** DATA: offset in the receive area, length, and the consumed count JS writes back. */
  readonly dataOffset: number;
  readonly dataLength: number;
  readonly dataConsumed: number;
  /** OPEN: the listener fd (-1: an outbound connection, -2: handed off by another reactor). */
  readonly openFrom: number;
  /** CLOSE (and TLS_REJECT): the reason (`R_*`) and -errno (0 when none; for `R_TLS`,
   *  -ETIMEDOUT or a positive X509 verify result), and OpenSSL's error code for `R_TLS`. */
  readonly closeReason: number;
  readonly closeErrno: number;
  readonly closeDetail: number;
  /** ACCEPT_ERROR: -errno, and 1 when accepting is paused. */
  readonly acceptErrno: number;
  readonly acceptPaused: number;
  /** ERROR (a reactor-level failure): what failed (`E_*`), -errno, and a detail (see c1m.h). */
  readonly errorWhat: number;
  readonly errorErrno: number;
  readonly errorDetail: number;
  /** UDP_MSG: payload offset in the receive area, the datagram's length (as sent), its address entry's offset. */
  readonly udpMsgOffset: number;
  readonly udpMsgLength: number;
  readonly udpMsgAddr: number;
  /** UDP_ERROR: -errno, what failed (`UDP_E_*`), datagrams dropped with it. */
  readonly udpErrorErrno: number;
  readonly udpErrorWhat: number;
  readonly udpErrorCount: number;

  /** Command header in the send area: bytes, and the word of each field. */
  readonly cmdBytes: number;
  readonly cmdOp: number;
  readonly cmdFd: number;
  readonly cmdGen: number;
  readonly cmdLen: number;
  /** Commands start at multiples of `cmdAlign` bytes: a payload of n bytes takes `(n + cmdAlignMask) & ~cmdAlignMask`. */
  readonly cmdAlign: number;
  readonly cmdAlignMask: number;
  /** A BROADCAST's ids, after its header: bytes per id, words of fd and gen in an id. */
  readonly idBytes: number;
  readonly idFd: number;
  readonly idGen: number;

  /** Control words (`Int32Array`): how many, and the index of each. */
  readonly ctlWords: number;
  readonly ctlSendUsed: number;
  readonly ctlConns: number;
  readonly ctlTick: number;
  readonly ctlAcceptPauses: number;
  readonly ctlQuietOpens: number;
  readonly ctlMaxFd: number;
  /** Reactor-level errors so far, and how many of them were reported by this count only. */
  readonly ctlErrors: number;
  readonly ctlErrorsLost: number;
}

/** Bytes of a control word (the control area is an `Int32Array`). */
const WORD = Int32Array.BYTES_PER_ELEMENT;

/** The layout described by the addon's constants. */
export function layoutOf(k: NativeConstants): Layout {
  return Object.freeze({
    slotBytes: k.SLOT_SIZE,
    slotWords: k.SLOT_WORDS,
    slotGen: k.SLOT_GEN,
    slotFlags: k.SLOT_FLAGS,
    slotOutLen: k.SLOT_OUT_LEN,
    slotDeadline: k.SLOT_DEADLINE,
    slotTimeoutTicks: k.SLOT_TIMEOUT_TICKS,
    slotInLen: k.SLOT_IN_LEN,
    liveFlags: k.F_OPEN | k.F_CONNECTING,

    evBytes: k.EV_SIZE,
    evWords: k.EV_WORDS,
    evKind: k.EV_KIND,
    evFd: k.EV_FD,
    evGen: k.EV_GEN,
    dataOffset: k.EV_A,
    dataLength: k.EV_B,
    dataConsumed: k.EV_C,
    openFrom: k.EV_A,
    closeReason: k.EV_A,
    closeErrno: k.EV_B,
    closeDetail: k.EV_C,
    acceptErrno: k.EV_A,
    acceptPaused: k.EV_B,
    errorWhat: k.EV_A,
    errorErrno: k.EV_B,
    errorDetail: k.EV_C,
    udpMsgOffset: k.EV_A,
    udpMsgLength: k.EV_B,
    udpMsgAddr: k.EV_C,
    udpErrorErrno: k.EV_A,
    udpErrorWhat: k.EV_B,
    udpErrorCount: k.EV_C,

    cmdBytes: k.CMD_SIZE,
    cmdOp: k.CMD_OP,
    cmdFd: k.CMD_FD,
    cmdGen: k.CMD_GEN,
    cmdLen: k.CMD_LEN,
    cmdAlign: k.CMD_ALIGN,
    cmdAlignMask: k.CMD_ALIGN - 1,
    idBytes: k.ID_SIZE,
    idFd: k.ID_FD,
    idGen: k.ID_GEN,

    ctlWords: k.CTL_WORDS,
    ctlSendUsed: k.CTL_SEND_USED,
    ctlConns: k.CTL_CONNS,
    ctlTick: k.CTL_TICK,
    ctlAcceptPauses: k.CTL_ACCEPT_PAUSES,
    ctlQuietOpens: k.CTL_QUIET_OPENS,
    ctlMaxFd: k.CTL_MAX_FD,
    ctlErrors: k.CTL_ERRORS,
    ctlErrorsLost: k.CTL_ERRORS_LOST,
  });
}

/** Bytes of the control area. */
export function ctlBytes(l: Layout): number {
  return l.ctlWords * WORD;
}

/**
 * The error an ERROR record reports (a reactor-level failure that closed nothing): a system
 * error named after what failed, with the fd concerned. See `C1M_E_*` in c1m.h.
 */
export function reactorError(k: NativeConstants, what: number, errno: number, fd: number, detail: number): SystemError {
  let syscall = 'reactor';
  let about = '';
  switch (what) {
    case k.E_WAKE: syscall = 'eventfd write'; about = 'a wake-up may come late'; break;
    case k.E_WAKE_READ: syscall = 'eventfd read'; break;
    case k.E_TIMER_READ: syscall = 'timerfd read'; about = 'a timer tick is late'; break;
    case k.E_POLL: syscall = 'epoll_wait'; break;
    case k.E_CLOSE: syscall = 'close'; about = 'the fd is released anyway'; break;
    case k.E_EVENT_LOST: syscall = 'malloc'; about = `event of kind ${detail} lost`; break;
    case k.E_READY_LOST: syscall = 'malloc'; about = 'read at its next readiness instead'; break;
    case k.E_COMMAND: syscall = 'command'; about = `unknown command ${detail} skipped`; break;
    case k.E_TIMERS: syscall = 'malloc'; about = 'timeout not armed'; break;
    case k.E_TIMER_SET: syscall = 'timerfd_settime'; about = detail ? 'the tick did not restart: timeouts wait for the next try' : 'the tick keeps running'; break;
  }
  const err = systemError(errno, syscall);
  err.message += ` (reactor-level${fd >= 0 ? `, fd ${fd}` : ''}${about ? `: ${about}` : ''})`;
  return err;
}

/**
 * The `CloseReason` for `onClose` of a CLOSE record: its reason (`R_*`, see c1m.h) and -errno.
 * `failed`: the reason kept for a connection a failed callback reset; `target`: where an
 * outbound connection that was still connecting was going.
 */
export function closeReason(
  k: NativeConstants, why: number, errno: number,
  failed: HandlerErrorReason | undefined, target: { address: string; port: number } | undefined,
): CloseReason {
  switch (why) {
    case k.R_END: return { kind: 'end' };
    case k.R_LOCAL: return { kind: 'local' };
    case k.R_TIMEOUT: return { kind: 'timeout', code: 'ERR_C1M_IDLE_TIMEOUT' };
    case k.R_INBOUND_LIMIT: return { kind: 'inbound-limit', code: 'ERR_C1M_INBOUND_LIMIT' };
    case k.R_SLOW_CONSUMER: return { kind: 'slow-consumer', code: 'ERR_C1M_SLOW_CONSUMER' };
    case k.R_SHUTDOWN: return { kind: 'shutdown', code: 'ERR_C1M_SHUTDOWN' };
    case k.R_HANDLER: return failed ?? { kind: 'handler-error', code: HANDLER_ERROR };
    case k.R_CONNECT_FAILED: return { kind: 'connect-failed', code: errnoName(errno), errno, error: withoutStack(() => systemError(errno, 'connect', target)) };
    default: return { kind: 'error', code: errnoName(errno), errno, error: withoutStack(() => systemError(errno, 'read')) };
  }
}
