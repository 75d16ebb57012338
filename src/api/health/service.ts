/**
 * Aggregated health: each component reports itself through a probe, and the appliance is
 * unhealthy (HTTP 503) when a component it cannot work without (Kafka, the control DB) is down.
 */
export type ComponentStatus = "ok" | "degraded" | "down";

export interface ComponentHealth {
  status: ComponentStatus;
  detail?: string;
  latency_ms?: number;
  [extra: string]: unknown;
}

export interface HealthProbe {
  name: string;
  /** A critical component being down makes the whole appliance unhealthy. */
  critical: boolean;
  check(): Promise<ComponentHealth>;
}

export interface HealthReport {
  status: "healthy" | "degraded" | "unhealthy";
  checked_at: string;
  components: Record<string, ComponentHealth>;
}

const PROBE_TIMEOUT_MS = 4000;

async function runProbe(probe: HealthProbe): Promise<ComponentHealth> {
  const started = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const result = await Promise.race([
      probe.check(),
      new Promise<ComponentHealth>((resolve) => {
        timer = setTimeout(() => resolve({ status: "down", detail: `no answer within ${PROBE_TIMEOUT_MS} ms` }), PROBE_TIMEOUT_MS);
      }),
    ]);
    return { latency_ms: Math.round(performance.now() - started), ...result };
  } catch (error) {
    return { status: "down", detail: (error as Error).message, latency_ms: Math.round(performance.now() - started) };
  } finally {
    clearTimeout(timer);
  }
}

export function overallStatus(probes: HealthProbe[], results: ComponentHealth[]): HealthReport["status"] {
  const criticalDown = probes.some((p, i) => p.critical && results[i]!.status === "down");
  if (criticalDown) return "unhealthy";
  return results.some((r) => r.status !== "ok") ? "degraded" : "healthy";
}

export async function checkHealth(probes: HealthProbe[]): Promise<HealthReport> {
  const results = await Promise.all(probes.map(runProbe));
  return {
    status: overallStatus(probes, results),
    checked_at: new Date().toISOString(),
    components: Object.fromEntries(probes.map((p, i) => [p.name, results[i]!])),
  };
}

/** Probe from a ping function: resolves → ok, rejects → down with the reason. */
export function pingProbe(name: string, critical: boolean, ping: () => Promise<void>): HealthProbe {
  return {
    name,
    critical,
    async check() {
      await ping();
      return { status: "ok" };
    },
  };
}
