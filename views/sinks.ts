import { desc } from "drizzle-orm";
import { ApiError } from "../src/api/errors.ts";
import { Elysia } from "elysia";
import { sinks } from "../src/db/schema.ts";
import type { ConnectionTestResult } from "../src/sinks/define.ts";
import { viewerCan, type UiDeps, type Viewer } from "./context.ts";
import { formatDateTime, toneOf } from "./format.ts";
import { html, type Html } from "./html.ts";
import { handle, page } from "./http.ts";
import { badge, emptyState, htmlResponse } from "./layout.ts";

/** A sink's connection test, where its button was: what was reached, or why not. */
function connectionTestResult(result: ConnectionTestResult): Html {
  return html`${badge(result.ok ? "reachable" : "failed", result.ok ? "ok" : "bad")} <span class="small">${result.detail}</span> <span class="muted small">${result.elapsed_ms} ms</span>`;
}

function testButton(viewer: Viewer, id: string): Html {
  if (!viewerCan(viewer, "sinks:write")) return html`<span class="muted">—</span>`;
  const target = `sink-test-${id.replace(/[^A-Za-z0-9_-]/g, "_")}`;
  return html`<button type="button" class="btn btn-small" hx-post="/sinks/${encodeURIComponent(id)}/test" hx-target="#${target}" hx-swap="innerHTML">Test connection</button>
    <span id="${target}" aria-live="polite"></span>`;
}

/**
 * Every sink this appliance knows — those stored in the control DB (created through
 * /api/v1/sinks) and those of its config file (`sinks:`) — with the state of the ones running here
 * and a connection test; sinks are changed through the API.
 */
export function sinkPages(deps: UiDeps) {
  return new Elysia({ name: "ui-sinks", detail: { hide: true } }).get(
    "/sinks",
    handle(deps, async (_ctx, viewer) => {
      const rows = await deps.db().select().from(sinks).orderBy(desc(sinks.updatedAt));
      const running = new Map((deps.runningSinks?.() ?? []).map((r) => [r.id, r]));
      const state = (id: string) => {
        const sink = running.get(id);
        if (!sink) return badge("not running here", "muted");
        return badge(sink.state.replace("_", " "), toneOf(sink.state));
      };
      const stored = new Set(rows.map((r) => r.id));
      const fromFile = [...running.values()].filter((r) => r.revision === "config file" && !stored.has(r.id));
      const body =
        rows.length === 0 && fromFile.length === 0
          ? emptyState("No sinks configured.", "Sinks (PostgreSQL, HTTP, S3/Parquet) write Kafka topics to other systems; list them under `sinks:` in the appliance config, create them through /api/v1/sinks, or run one with `gateway sink`.")
          : html`<section class="card"><table class="data">
  <thead><tr><th scope="col">Sink</th><th scope="col">Type</th><th scope="col">Reads</th><th scope="col">From</th><th scope="col">State</th><th scope="col">Updated (UTC)</th><th scope="col">Connection</th></tr></thead>
  <tbody>${fromFile.map(
    (r) => html`<tr><th scope="row">${r.id}</th><td>${r.type}</td><td class="small mono">${r.topics.join(", ")}</td><td>config file</td><td>${state(r.id)}</td><td class="small muted">-</td><td>${testButton(viewer, r.id)}</td></tr>`,
  )}${rows.map(
    (s) => html`<tr><th scope="row">${s.name}<div class="muted small mono">${s.id}</div></th><td>${s.type}</td><td class="small mono">${((s.config as { kafka?: { topics?: string[] } }).kafka?.topics ?? []).join(", ")}</td>
    <td>control DB v${s.version}${s.gatewayId ? "" : html` <span class="muted">(all gateways)</span>`}</td><td>${s.enabled ? state(s.id) : badge("disabled", "muted")}</td><td class="small">${formatDateTime(s.updatedAt)}</td><td>${testButton(viewer, s.id)}</td></tr>`,
  )}</tbody></table></section>`;
      return page(viewer, "Sinks", body);
    }),
  ).post(
    "/sinks/:id/test",
    handle(deps, async (ctx) => {
      const id = ctx.params.id!;
      if (!deps.sinkService) throw new ApiError(503, "unavailable", "connection tests are not available here");
      // A sink of the config file runs even where the DB has one of the same id, so that is the one tested.
      const fromFile = deps.config.sinks.find((s) => s.sink_id === id);
      const result = fromFile ? await deps.sinkService.testUnsaved({ config: fromFile }) : await deps.sinkService.testStored(id);
      return htmlResponse(connectionTestResult(result));
    }),
    { parse: "none" },
  );
}
