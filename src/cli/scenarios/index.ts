/**
 * The scenario registry: the scenarios `c1m bench` runs, by name. A new scenario is a module
 * in this folder (see `types.ts`) and one entry here.
 */
import { broadcast } from './broadcast.js';
import { connect } from './connect.js';
import { echo } from './echo.js';
import { hold } from './hold.js';
import { http } from './http.js';
import { ping } from './ping.js';
import type { ScenarioSpec } from './types.js';
import { wsEcho } from './ws-echo.js';
import { wsHold } from './ws-hold.js';
import { wsSubscribe } from './ws-subscribe.js';

export type * from './types.js';

/** Scenarios on the command line, in the order `--help` lists them. */
export const SCENARIOS: readonly ScenarioSpec[] = [hold, echo, http, broadcast, wsHold, wsEcho, connect];

/** Every scenario a worker can run, including the ones only `c1m bench million` uses. */
const ALL = new Map<string, ScenarioSpec>([...SCENARIOS, ping, wsSubscribe].map((s) => [s.name, s]));

/** The scenario called `name`; undefined when there is none. */
export function scenario(name: string): ScenarioSpec | undefined {
  return ALL.get(name);
}
