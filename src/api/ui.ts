import type { Elysia } from "elysia";
import { alarmPages } from "../../views/alarms.ts";
import { assetResponse, ASSETS } from "../../views/assets.ts";
import { auditPages } from "../../views/audit.ts";
import type { UiDeps } from "../../views/context.ts";
import { browserError } from "../../views/http.ts";
import { dlqPages } from "../../views/dlq.ts";
import { loginPages } from "../../views/login.ts";
import { overviewPages } from "../../views/overview.ts";
import { pipelinePages } from "../../views/pipelines/index.ts";
import { sinkPages } from "../../views/sinks.ts";
import { tagPages } from "../../views/tags.ts";
import { topologyPages } from "../../views/topology.ts";
import { userPages } from "../../views/users.ts";

export type { UiDeps };

/**
 * The web UI: server-rendered pages and htmx partials, mounted through buildApp's `extend` so
 * every route passes the same guard (session cookie, CSRF header, ROUTE_PERMISSIONS). Pages live
 * in views/; the live data behind them in src/live/.
 */
export function uiRoutes(deps: UiDeps) {
  return (app: Elysia): Elysia => {
    for (const name of Object.keys(ASSETS)) app.get(`/assets/${name}`, ({ request }) => assetResponse(name, request), { detail: { hide: true } });
    return app
      // Hands back the value unchanged when it is not a browser's error page: returning undefined
      // from a global mapResponse makes Elysia 1.4 drop the body of its NOT_FOUND response.
      .mapResponse({ as: "global" }, (ctx) => browserError(ctx, deps) ?? (ctx.responseValue as never))
      .use(loginPages(deps))
      .use(overviewPages(deps))
      .use(pipelinePages(deps))
      .use(topologyPages(deps))
      .use(tagPages(deps))
      .use(sinkPages(deps))
      .use(alarmPages(deps))
      .use(dlqPages(deps))
      .use(auditPages(deps))
      .use(userPages(deps)) as unknown as Elysia;
  };
}
