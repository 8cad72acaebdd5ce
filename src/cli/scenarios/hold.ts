/** `hold`: open the connections and keep them; nothing is sent. */
import type { ScenarioSpec } from './types.js';

/** The `hold` scenario. */
export const hold: ScenarioSpec = {
  name: 'hold',
  summary: 'open N connections and hold them idle (connect rate, server memory per connection)',
  options: ['tls'],
  unit: null,
  create: () => ({
    init: () => undefined,
    open() {},
    data() {},
    startTraffic() {},
    stopTraffic() {},
  }),
};
