import { Elysia } from "elysia";
import { checkHealth, type ComponentHealth, type HealthReport } from "../src/api/health/service.ts";
import type { StreamStage } from "../src/api/topology/service.ts";
import type { AdapterStatus } from "../src/supervisor/managed-adapter.ts";
import { sparkline } from "./charts.ts";
import type { UiDeps } from "./context.ts";
import { formatAge, formatRate, toneOf } from "./format.ts";
import { html, type Html } from "./html.ts";
import { handle, page, streamSignal } from "./http.ts";
import { badge, emptyState } from "./layout.ts";
import { sseResponse } from "../src/live/sse.ts";

const OVERVIEW_TICK_MS = 2000;
/** Probes ping Kafka and the DB; several open overviews share one result. */
const HEALTH_CACHE_MS = 4000;

function healthCache(deps: UiDeps) {
  let last: { at: number; report: Promise<HealthReport> } | undefined;
  return () => {
    if (!last || Date.now() - last.at > HEALTH_CACHE_MS) last = { at: Date.now(), report: checkHealth(deps.probes) };
    return last.report;
  };
}

function tile(title: string, status: string, value: Html | string, detail?: Html | string | null): Html {
  const tone = toneOf(status);
  return html`<section class="tile tile-${tone}" aria-label="${title}: ${status}">
  <h2>${title}</h2>
  <div class="tile-value">${value}</div>
  <div class="tile-status">${badge(status, tone)}${detail ? html` <span class="tile-detail">${detail}</span>` : ""}</div>
</section>`;
}

function componentTile(title: string, health: ComponentHealth | undefined): Html {
  if (!health) return tile(title, "unknown", "—", "no probe");
  const value = health.status === "ok" ? "Connected" : health.status === "down" ? "Unreachable" : "Degraded";
  const detail = health.status === "ok" ? (health.latency_ms === undefined ? null : `${health.latency_ms} ms`) : (health.detail ?? null);
  return tile(title, health.status, value, detail);
}

export function adapterTable(adapters: AdapterStatus[], now = Date.now()): Html {
  if (adapters.length === 0) return emptyState("No adapters are running.", html`Create or enable one under <a href="/pipelines">Pipelines</a>.`);
  return html`<table class="data">
  <thead><tr><th scope="col">Pipeline</th><th scope="col">State</th><th scope="col" class="num">Readings/s</th><th scope="col" class="num">Errors/min</th>
  <th scope="col">Last reading</th><th scope="col">Kafka</th><th scope="col" class="num">Buffered</th><th scope="col" class="num">Dropped</th><th scope="col" class="num">Restarts</th></tr></thead>
  <tbody>${adapters.map((a) => {
    const h = a.health;
    return html`<tr>
    <th scope="row"><a href="/pipelines/${encodeURIComponent(a.pipeline_id)}">${a.pipeline_id}</a></th>
    <td>${badge(a.state, toneOf(a.state))}${a.detail ? html` <span class="muted small">${a.detail}</span>` : ""}</td>
    <td class="num">${formatRate(h?.readings_per_sec)}</td>
    <td class="num">${h ? html`<span class="${h.errors_last_minute > 0 ? "text-bad" : ""}">${h.errors_last_minute}</span>` : "—"}</td>
    <td>${h?.last_reading_at ? formatAge(now - Date.parse(h.last_reading_at)) : "—"}</td>
    <td>${h ? badge(h.kafka_connection, h.kafka_connection === "ok" ? "ok" : h.kafka_connection === "down" ? "bad" : "warn") : "—"}</td>
    <td class="num">${h?.buffered_records ?? "—"}</td>
    <td class="num">${h ? html`<span class="${h.dropped_total > 0 ? "text-bad" : ""}">${h.dropped_total}</span>` : "—"}</td>
    <td class="num">${a.restarts}</td>
  </tr>`;
  })}</tbody>
</table>`;
}

interface GroupLag {
  stage: string;
  group: string;
  lag: number;
}

/** Unread records of each stream worker's and sink's consumer group (from the health report), with the stage's state. */
export function lagTable(groups: GroupLag[], stages: StreamStage[]): Html {
  if (groups.length === 0) return emptyState("No stream workers or sinks run here.", html`Sinks are listed under <a href="/sinks">Sinks</a>.`);
  const byId = new Map(stages.map((s) => [s.id, s]));
  return html`<table class="data">
  <thead><tr><th scope="col">Worker or sink</th><th scope="col">Consumer group</th><th scope="col">State</th><th scope="col" class="num">Unread records</th></tr></thead>
  <tbody>${groups.map((g) => {
    const stage = byId.get(g.stage);
    return html`<tr><th scope="row">${stage?.label ?? g.stage}</th><td class="mono small">${g.group}</td>
    <td>${stage?.status ? badge(stage.status.replace("_", " "), toneOf(stage.status)) : html`<span class="muted">—</span>`}</td>
    <td class="num">${g.lag.toLocaleString("en-US")}</td></tr>`;
  })}</tbody>
</table>`;
}

async function liveRegion(deps: UiDeps, health: () => Promise<HealthReport>): Promise<Html> {
  const report = await health();
  const adapters = deps.supervisor.status();
  const running = adapters.filter((a) => a.state === "running").length;
  const adapterHealth = report.components.adapters;
  const series = deps.live?.rates.series();
  const liveStatus = deps.live?.status();
  const totalRate = adapters.reduce((sum, a) => sum + (a.health?.readings_per_sec ?? 0), 0);
  const rateProblem = !deps.live ? "live data is off" : liveStatus?.problem;
  const lagHealth = report.components.consumer_lag;
  const groups = (lagHealth?.groups as GroupLag[] | undefined) ?? [];
  const totalLag = groups.reduce((sum, g) => sum + g.lag, 0);
  return html`<div class="tiles">
  ${componentTile("Kafka", report.components.kafka)}
  ${componentTile("Control DB", report.components.control_db)}
  ${tile("Adapters", adapters.length === 0 ? "none" : (adapterHealth?.status ?? "unknown"), html`${running} <small>of ${adapters.length} running</small>`)}
  ${tile("Readings/s", totalRate > 0 ? "ok" : "idle", formatRate(totalRate), "reported by adapters")}
  ${tile("Tags", deps.live && deps.live.tags.size > 0 ? "ok" : "idle", String(deps.live?.tags.size ?? 0), rateProblem ?? "seen on telemetry topics")}
  ${tile("Consumer lag", lagHealth?.status ?? "unknown", totalLag.toLocaleString("en-US"), lagHealth?.detail ?? "records unread by workers and sinks")}
</div>
<section class="card">
  <div class="card-head"><h2>Readings per second on telemetry.raw</h2><span class="muted small">5 s buckets, last 5 minutes · now ${formatRate(series?.current ?? 0)}/s</span></div>
  ${series ? sparkline(series.rates, { label: "Readings per second on telemetry.raw, last 5 minutes", unit: "/s" }) : emptyState("Live data is not available.", rateProblem)}
  ${rateProblem && series ? html`<p class="notice notice-warn small">${rateProblem}</p>` : ""}
</section>
<section class="card">
  <div class="card-head"><h2>Adapters</h2><span class="muted small">overall: ${badge(report.status, toneOf(report.status))}</span></div>
  ${adapterTable(adapters)}
</section>
<section class="card">
  <div class="card-head"><h2>Stream workers and sinks</h2><span class="muted small">consumer lag per group</span></div>
  ${lagTable(groups, deps.stages?.() ?? [])}
</section>`;
}

export function overviewPages(deps: UiDeps) {
  const health = healthCache(deps);
  return new Elysia({ name: "ui-overview", detail: { hide: true } })
    .get(
      "/",
      handle(deps, async (_ctx, viewer) =>
        page(
          viewer,
          "Overview",
          html`<div hx-ext="sse" sse-connect="/live/overview"><div id="overview-live" sse-swap="overview">${await liveRegion(deps, health)}</div></div>`,
        ),
      ),
    )
    .get("/live/overview", ({ request }) =>
      sseResponse({
        signal: streamSignal(request, deps),
        intervalMs: OVERVIEW_TICK_MS,
        tick: async () => [{ event: "overview", data: (await liveRegion(deps, health)).value }],
        onError: (error) => deps.log.warn({ err: (error as Error).message }, "overview stream tick failed"),
      }),
    );
}
