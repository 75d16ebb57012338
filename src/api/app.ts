import { openapi } from "@elysiajs/openapi";
import { Elysia } from "elysia";
import type { Registry } from "prom-client";
import type { AuthService } from "../auth/service.ts";
import { toFieldPath } from "../config/schema-errors.ts";
import type { ApplianceConfig } from "../config/schema.ts";
import type { Db } from "../db/client.ts";
import type { Logger } from "../log/logger.ts";
import type { Supervisor } from "../supervisor/supervisor.ts";
import { VERSION } from "../version.ts";
import { alarmRuleRoutes } from "./alarm-rules/index.ts";
import { AlarmRuleService } from "./alarm-rules/service.ts";
import { alarmRoutes } from "./alarms/index.ts";
import { AlarmService } from "./alarms/service.ts";
import { auditRoutes } from "./audit/index.ts";
import { authRoutes } from "./auth/index.ts";
import { ApiError } from "./errors.ts";
import { adapterCatalogueRoutes, gatewayRoutes } from "./gateways/index.ts";
import { guard } from "./guard.ts";
import { healthRoutes } from "./health/index.ts";
import type { HealthProbe } from "./health/service.ts";
import { pipelineRoutes } from "./pipelines/index.ts";
import { PipelineService } from "./pipelines/service.ts";
import { sinkRoutes } from "./sinks/index.ts";
import { SinkService } from "./sinks/service.ts";
import { topologyRoutes } from "./topology/index.ts";
import type { StreamStage } from "./topology/service.ts";
import { userRoutes } from "./users/index.ts";

export interface AppDeps {
  config: ApplianceConfig;
  probes: HealthProbe[];
  metrics: Registry;
  auth: AuthService;
  db: () => Db;
  supervisor: Supervisor;
  log: Logger;
  stages?: () => StreamStage[];
  /** Alarm list and operator commands; default: read model only (commands answer 503 without a producer). */
  alarms?: AlarmService;
  /** Alarm rules; default: stored only (nothing tells the evaluators). */
  alarmRules?: AlarmRuleService;
  /** Sinks; default: stored only (nothing running follows the changes). */
  sinks?: SinkService;
  /** Extra routes (the web UI) mounted behind the same guard. */
  extend?: (app: Elysia) => Elysia;
}

const API_REQUESTS_PER_MINUTE = 1200;

interface ValidationLike {
  all: Array<{ path: string; message: string; summary?: string; value?: unknown }>;
}

function validationFields(error: ValidationLike, where: string) {
  const seen = new Set<string>();
  return error.all
    .map((e) => ({ path: toFieldPath(e.path, where === "body" ? "" : where), message: (e.summary ?? e.message).replace(/^Expected/, "expected") }))
    .filter((f) => (seen.has(f.path) ? false : (seen.add(f.path), true)));
}

export function buildApp(deps: AppDeps) {
  const pipelines = new PipelineService(deps.db, deps.config, deps.log);
  const limit = deps.config.http.body_limit_bytes;
  const app = new Elysia({ serve: { maxRequestBodySize: limit } })
    // Bun.serve enforces the limit on the wire; this answers early, with our error format, when the length is declared.
    .onRequest(({ request, set }) => {
      const length = Number(request.headers.get("content-length") ?? 0);
      if (length > limit) {
        set.status = 413;
        return new ApiError(413, "body_too_large", `request body is ${length} bytes; the limit is ${limit} (http.body_limit_bytes)`).body();
      }
    })
    .onError(({ error, code, set }) => {
      if (error instanceof ApiError) {
        set.status = error.status;
        Object.assign(set.headers, error.headers);
        return error.body();
      }
      if (code === "VALIDATION") {
        set.status = 422;
        const validation = error as unknown as ValidationLike & { type: string };
        const fields = validationFields(validation, validation.type);
        return new ApiError(422, "validation_failed", `${fields.length} field(s) failed validation`, fields).body();
      }
      if (code === "PARSE") {
        set.status = 400;
        return new ApiError(400, "malformed_body", `request body is not valid JSON: ${(error as Error).message}`).body();
      }
      if (code === "NOT_FOUND") {
        set.status = 404;
        return new ApiError(404, "not_found", "no such route").body();
      }
      deps.log.error({ err: error }, "request failed");
      set.status = 500;
      return new ApiError(500, "internal", "internal error; see the gateway log").body();
    })
    .use(
      openapi({
        path: "/api/docs",
        documentation: {
          info: { title: "Industrial Data Gateway API", version: VERSION },
          components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
          security: [{ bearer: [] }],
        },
      }),
    )
    .use(guard({ auth: deps.auth, requestsPerMinute: API_REQUESTS_PER_MINUTE }))
    .use(healthRoutes(deps.probes))
    .get(
      "/metrics",
      async ({ set }) => {
        set.headers["content-type"] = deps.metrics.contentType;
        return deps.metrics.metrics();
      },
      { detail: { summary: "Prometheus metrics" } },
    )
    .use(authRoutes(deps.auth))
    .use(adapterCatalogueRoutes())
    .use(pipelineRoutes(pipelines))
    .use(gatewayRoutes(deps.db))
    .use(topologyRoutes(pipelines, deps.supervisor, deps.stages ?? (() => [])))
    .use(auditRoutes(deps.db))
    .use(userRoutes(deps.db, deps.auth))
    .use(alarmRoutes(deps.alarms ?? new AlarmService({ db: deps.db, log: deps.log })))
    .use(alarmRuleRoutes(deps.alarmRules ?? new AlarmRuleService(deps.db, deps.config.gateway_id)))
    .use(sinkRoutes(deps.sinks ?? new SinkService(deps.db, deps.config, deps.log)));
  return deps.extend ? deps.extend(app as unknown as Elysia) : app;
}
