// The process's one Prometheus registry: every component registers its metrics here, /metrics serves it.
import { Registry, collectDefaultMetrics } from 'prom-client';

/** A registry with Node's process metrics (CPU, memory, event-loop lag, GC) under the `granary_` prefix. */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'granary_' });
  return registry;
}
