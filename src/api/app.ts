import { Elysia } from "elysia";
import type { Registry } from "prom-client";
import type { ApplianceConfig } from "../config/schema.ts";
import { healthRoutes } from "./health/index.ts";
import type { HealthProbe } from "./health/service.ts";

export interface AppDeps {
  config: ApplianceConfig;
  probes: HealthProbe[];
  metrics: Registry;
}

export function buildApp(deps: AppDeps) {
  return new Elysia({ serve: { maxRequestBodySize: deps.config.http.body_limit_bytes } })
    .use(healthRoutes(deps.probes))
    .get(
      "/metrics",
      async ({ set }) => {
        set.headers["content-type"] = deps.metrics.contentType;
        return deps.metrics.metrics();
      },
      { detail: { summary: "Prometheus metrics" } },
    )
    .get("/", ({ set }) => {
      set.headers["content-type"] = "text/html; charset=utf-8";
      return `<!doctype html><title>Industrial Data Gateway</title><h1>Industrial Data Gateway</h1><p>Mode: ${deps.config.mode} · Gateway: ${deps.config.gateway_id}</p><p><a href="/api/v1/health">Health</a> · <a href="/metrics">Metrics</a></p>`;
    });
}
