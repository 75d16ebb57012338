import { collectDefaultMetrics, Registry } from "prom-client";

/** One registry per process; the adapter child processes each have their own. */
export function createMetricsRegistry(defaultLabels: Record<string, string> = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels(defaultLabels);
  collectDefaultMetrics({ register: registry });
  return registry;
}
