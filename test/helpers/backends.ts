/**
 * The backends the integration suite runs on: native only when the addon loads here
 * (C1M_REQUIRE_NATIVE=1 makes a missing addon an error instead of a silent skip).
 */
import { loadBinding, nativeUnavailableReason } from '../../src/core/binding.js';

export type BackendName = 'native' | 'portable';

export const nativeAvailable: boolean = loadBinding() !== null;

if (!nativeAvailable && process.env.C1M_REQUIRE_NATIVE === '1') {
  throw new Error(`C1M_REQUIRE_NATIVE=1 but the native backend is unavailable: ${nativeUnavailableReason()}`);
}

/** Every backend to `describe` a suite on. */
const all: BackendName[] = nativeAvailable ? ['native', 'portable'] : ['portable'];
/** C1M_TEST_BACKENDS=native (or portable) narrows the list, e.g. for the AddressSanitizer run. */
const only = process.env.C1M_TEST_BACKENDS?.split(',').filter((b): b is BackendName => b === 'native' || b === 'portable');
export const backends: readonly BackendName[] = only?.length ? all.filter((b) => only.includes(b)) : all;
