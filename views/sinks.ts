import { desc } from "drizzle-orm";
import { Elysia } from "elysia";
import { sinks } from "../src/db/schema.ts";
import type { UiDeps } from "./context.ts";
import { formatDateTime, toneOf } from "./format.ts";
import { html } from "./html.ts";
import { handle, page } from "./http.ts";
import { badge, emptyState } from "./layout.ts";

/**
 * Read-only: every sink this appliance knows — those stored in the control DB (created through
 * /api/v1/sinks) and those of its config file (`sinks:`) — with the state of the ones running here.
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
  <thead><tr><th scope="col">Sink</th><th scope="col">Type</th><th scope="col">Reads</th><th scope="col">From</th><th scope="col">State</th><th scope="col">Updated (UTC)</th></tr></thead>
  <tbody>${fromFile.map(
    (r) => html`<tr><th scope="row">${r.id}</th><td>${r.type}</td><td class="small mono">${r.topics.join(", ")}</td><td>config file</td><td>${state(r.id)}</td><td class="small muted">-</td></tr>`,
  )}${rows.map(
    (s) => html`<tr><th scope="row">${s.name}<div class="muted small mono">${s.id}</div></th><td>${s.type}</td><td class="small mono">${((s.config as { kafka?: { topics?: string[] } }).kafka?.topics ?? []).join(", ")}</td>
    <td>control DB v${s.version}${s.gatewayId ? "" : html` <span class="muted">(all gateways)</span>`}</td><td>${s.enabled ? state(s.id) : badge("disabled", "muted")}</td><td class="small">${formatDateTime(s.updatedAt)}</td></tr>`,
  )}</tbody></table></section>`;
      return page(viewer, "Sinks", body);
    }),
  );
}
