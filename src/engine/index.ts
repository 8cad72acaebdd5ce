/**
 * The engine layer (above core and both backends): backend selection, single-reactor
 * servers, and `serve` with its worker threads and prefork processes. The protocol layers
 * import it only from here (and the core only from `src/core/index.ts`).
 */
export { createReactor, defaultBackend } from './reactor.js';
export { listen, nofileLimit, serve, setBatchScheduling } from './server.js';
export { gather, provide } from './gather.js';
export { gatherMetrics, gatherMetricsJson, metricsRegistry, trackReactor, untrackReactor } from './metrics.js';
export type { Server, ServeHandle, ServeOptions, WorkerExitInfo } from './server.js';
export { udp, type UdpServer } from './udp.js';
