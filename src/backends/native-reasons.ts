/**
 * What the engine's close codes (`C1M_R_*` in native/include/c1m.h) mean to a handler: the
 * `CloseReason` that `onClose` gets. Pure: no state, called once per close.
 */
import type { NativeConstants } from '../core/binding.js';
import { errnoName, systemError } from '../core/errors.js';
import { HANDLER_ERROR, type HandlerErrorReason } from '../core/handler-contract.js';
import type { CloseReason } from '../core/types.js';

/**
 * The reason for close code `why` (with `errno`, -errno or 0). `target` is the address of an
 * outbound connect that failed; `failed` the reason recorded when a callback of this
 * connection failed (what `C1M_R_HANDLER` reports).
 */
export function closeReason(k: NativeConstants, why: number, errno: number, target: { address: string; port: number } | undefined, failed: HandlerErrorReason | undefined): CloseReason {
  switch (why) {
    case k.R_END: return { kind: 'end' };
    case k.R_LOCAL: return { kind: 'local' };
    case k.R_TIMEOUT: return { kind: 'timeout', code: 'ERR_C1M_IDLE_TIMEOUT' };
    case k.R_INBOUND_LIMIT: return { kind: 'inbound-limit', code: 'ERR_C1M_INBOUND_LIMIT' };
    case k.R_SLOW_CONSUMER: return { kind: 'slow-consumer', code: 'ERR_C1M_SLOW_CONSUMER' };
    case k.R_SHUTDOWN: return { kind: 'shutdown', code: 'ERR_C1M_SHUTDOWN' };
    case k.R_HANDLER: return failed ?? { kind: 'handler-error', code: HANDLER_ERROR };
    case k.R_CONNECT_FAILED:
      return { kind: 'connect-failed', code: errnoName(errno), errno, error: systemError(errno, 'connect', target) };
    default:
      return { kind: 'error', code: errnoName(errno), errno, error: systemError(errno, 'read') };
  }
}
