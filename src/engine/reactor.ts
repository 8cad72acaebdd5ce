/**
 * Backend selection: one entry point that gives a Reactor on the native backend when the addon
 * loads (Linux), else on the portable node:net backend.
 *
 * This is the first module above both backends: `core` holds the contracts they implement
 * (types, options, errors, the addon loader) and never imports them; everything that has to
 * choose between them, or needs the native backend's own capabilities (fd hand-off, registry
 * ids), lives in this layer (`src/engine`).
 */
import { loadBinding, nativeUnavailableReason, warnPortableFallback } from '../core/binding.js';
import { C1mError } from '../core/errors.js';
import { deliverReactor, type ErrorSink } from '../core/handler-contract.js';
import { resolveOptions } from '../core/options.js';
import type { EngineOptions, Handler, Reactor } from '../core/types.js';
import { createNativeReactor, type NativeReactor } from '../backends/native.js';
import { createPortableReactor } from '../backends/portable.js';

/** Which backend `backend: 'auto'` picks on this machine. */
export function defaultBackend(): 'native' | 'portable' {
  return loadBinding() ? 'native' : 'portable';
}

function checkHandler(handler: Handler): void {
  if (handler === null || typeof handler !== 'object') {
    throw new C1mError('ERR_C1M_INVALID_OPTION', 'handler must be an object with onOpen/onData/... methods');
  }
}

/** Give the handler its reactor (`onReactor`), once, before any event: every reactor goes through here. */
function deliver<R extends Reactor>(handler: Handler, reactor: R, onError: ErrorSink): R {
  deliverReactor(handler, reactor, onError); // a throw is reported, never escapes (handler-contract.ts)
  return reactor;
}

/**
 * Create a reactor: one event loop with its connections, for servers and clients alike.
 *
 * Threading: the reactor and its handler run on the calling thread.
 * Errors: `ERR_C1M_INVALID_OPTION` for bad options; `ERR_C1M_NATIVE_UNAVAILABLE` when
 * `backend: 'native'` is asked for and the addon cannot load.
 */
export function createReactor(handler: Handler, options: EngineOptions = {}): Reactor {
  checkHandler(handler);
  const opts = resolveOptions(options);
  const binding = opts.backend === 'portable' ? null : loadBinding();
  let reactor: Reactor;
  if (binding) {
    reactor = createNativeReactor(binding, handler, opts);
  } else {
    if (opts.backend === 'native') {
      throw new C1mError('ERR_C1M_NATIVE_UNAVAILABLE', `backend 'native' is unavailable: ${nativeUnavailableReason()}`);
    }
    if (opts.backend === 'auto') warnPortableFallback();
    reactor = createPortableReactor(handler, opts);
  }
  return deliver(handler, reactor, opts.onError);
}

/**
 * A reactor on the native backend, typed as such: what `serve`'s threads mode needs (registry
 * id, hand-off listener, retarget) without a cast. Internal to the engine layer.
 *
 * Errors: `ERR_C1M_NATIVE_UNAVAILABLE` when the addon cannot load; as `createReactor`.
 */
export function createNativeEngineReactor(handler: Handler, options: EngineOptions = {}): NativeReactor {
  checkHandler(handler);
  const opts = resolveOptions({ ...options, backend: 'native' });
  const binding = loadBinding();
  if (!binding) throw new C1mError('ERR_C1M_NATIVE_UNAVAILABLE', `backend 'native' is unavailable: ${nativeUnavailableReason()}`);
  return deliver(handler, createNativeReactor(binding, handler, opts), opts.onError);
}
