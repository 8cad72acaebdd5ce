/**
 * What the protocol layers (src/protocols) may use of the core: they import it only from here.
 * The core is the contracts (types, options, errors) and the addon loader; it imports nothing
 * above itself. `createReactor` picks a backend, so it lives a layer up: `src/engine/index.ts`.
 */
export { C1mError, checkOption, errnoName, systemError } from './errors.js';
export type { SystemError } from './errors.js';
export { Action } from './types.js';
export { areaOf, offsetOf } from './area-view.js';
export { IdMap } from './id-map.js';
export { spreadOver } from './spread.js';
export type { CloseReason, Connection, EngineOptions, Handler, ListenAddress, Reactor, TlsConnectOptions, TlsInfo } from './types.js';
export type { UdpAddress, UdpBatch, UdpDestination, UdpHandler, UdpOptions, UdpSocket, UdpStats } from './udp-types.js';
