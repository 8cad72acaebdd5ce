/**
 * What the protocol layers (src/protocols) may use of the core: they import it only from here.
 */
export { C1mError, checkOption, errnoName, systemError } from './errors.js';
export type { SystemError } from './errors.js';
export { Action } from './types.js';
export { createReactor } from './reactor.js';
export type { CloseReason, Connection, EngineOptions, Handler, ListenAddress, Reactor } from './types.js';
