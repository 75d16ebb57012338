import { desc } from "drizzle-orm";
import { Elysia } from "elysia";
import { sinks } from "../src/db/schema.ts";
import type { UiDeps } from "./context.ts";
import { formatDateTime } from "./format.ts";
import { html } from "./html.ts";
import { handle, page } from "./http.ts";
import { badge, emptyState } from "./layout.ts";

/** Read-only: sinks are changed in the appliance config (`sinks:`), through /api/v1/sinks, or run alone as `gateway sink` (src/sinks/README.md). */
export function sinkPages(deps: UiDeps) {
  return new Elysia({ name: "ui-sinks", detail: { hide: true } }).get(
    "/sinks",
    handle(deps, async (_ctx, viewer) => {
      const rows = await deps.db().select().from(sinks).orderBy(desc(sinks.updatedAt));
      const body =
        rows.length === 0
          ? emptyState("No sinks configured.", "Sinks (PostgreSQL, HTTP, S3/Parquet) write Kafka topics to other systems; list them under `sinks:` in the appliance config, create them through /api/v1/sinks, or run one with `gateway sink`.")
          : html`<section class="card"><table class="data">
  <thead><tr><th scope="col">Sink</th><th scope="col">Type</th><th scope="col">Gateway</th><th scope="col">State</th><th scope="col" class="num">Version</th><th scope="col">Updated (UTC)</th></tr></thead>
  <tbody>${rows.map(
    (s) => html`<tr><th scope="row">${s.name}<div class="muted small mono">${s.id}</div></th><td>${s.type}</td><td>${s.gatewayId ?? html`<span class="muted">all</span>`}</td>
    <td>${s.enabled ? badge("enabled", "ok") : badge("disabled", "muted")}</td><td class="num">v${s.version}</td><td class="small">${formatDateTime(s.updatedAt)}</td></tr>`,
  )}</tbody></table></section>`;
      return page(viewer, "Sinks", body);
    }),
  );
}
