import { Elysia } from "elysia";
import { checkHealth, type HealthProbe } from "./service.ts";

export function healthRoutes(probes: HealthProbe[]) {
  return new Elysia({ name: "health" }).get(
    "/api/v1/health",
    async ({ set }) => {
      const report = await checkHealth(probes);
      set.status = report.status === "unhealthy" ? 503 : 200;
      return report;
    },
    { detail: { summary: "Aggregated health of Kafka, the control DB, adapters, workers and sinks" } },
  );
}
