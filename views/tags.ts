import { Elysia } from "elysia";
import type { TagView } from "../src/live/tag-cache.ts";
import { sseResponse } from "../src/live/sse.ts";
import type { UiDeps } from "./context.ts";
import { formatAge, formatTime, formatValue, toneOf } from "./format.ts";
import { html, type Html } from "./html.ts";
import { handle, isHtmx, page, streamSignal } from "./http.ts";
import { badge, htmlResponse } from "./layout.ts";

const TAG_ROWS_MAX = 1000;
const TAGS_TICK_MS = 1000;
/** Ages ("3 s ago") move even when no value does. */
const TAGS_REFRESH_MS = 5000;

function rows(tags: TagView[], now: number): Html {
  if (tags.length === 0) return html`<tr><td colspan="8" class="empty-row">No tags match.</td></tr>`;
  return html`${tags.map(
    (t) => html`<tr>
  <th scope="row"><span class="mono">${t.asset_id}/<strong>${t.parameter}</strong></span></th>
  <td class="num value${t.quality === "BAD" ? " text-bad" : ""}">${formatValue(t.value)}</td>
  <td>${t.unit ?? ""}</td>
  <td>${badge(t.quality, toneOf(t.quality))}${t.error ? html`<div class="small text-bad">${t.error}</div>` : ""}</td>
  <td class="mono small"><time datetime="${t.device_time ?? ""}">${formatTime(t.device_time, now)}</time></td>
  <td class="mono small"><time datetime="${t.gateway_time ?? ""}">${formatTime(t.gateway_time, now)}</time></td>
  <td class="small">${formatAge(now - t.received_at)}</td>
  <td class="small">${t.stage}${t.pipeline_id ? html` · <a href="/pipelines/${encodeURIComponent(t.pipeline_id)}">${t.pipeline_id}</a>` : ""}</td>
</tr>`,
  )}`;
}

function countLine(shown: number, matched: number, total: number, q: string): string {
  const base = q ? `${matched} of ${total} tags match` : `${total} tags`;
  return shown < matched ? `${base}; showing the first ${shown}, narrow the filter` : base;
}

function liveTable(deps: UiDeps, q: string): Html {
  const now = Date.now();
  const cache = deps.live?.tags;
  const { tags, matched } = cache ? cache.list(q, TAG_ROWS_MAX) : { tags: [], matched: 0 };
  const problem = deps.live ? deps.live.status().problem : "live data is off on this appliance";
  return html`<div id="tag-live" hx-ext="sse" sse-connect="/live/tags?q=${encodeURIComponent(q)}">
  ${problem ? html`<p class="notice notice-warn">${problem}</p>` : ""}
  <p class="muted small" sse-swap="count" aria-live="polite">${countLine(tags.length, matched, cache?.size ?? 0, q)}</p>
  <div class="table-scroll">
  <table class="data tags">
    <thead><tr><th scope="col">Tag (asset/parameter)</th><th scope="col" class="num">Value</th><th scope="col">Unit</th><th scope="col">Quality</th>
    <th scope="col">Device time</th><th scope="col">Gateway time</th><th scope="col">Received</th><th scope="col">Source</th></tr></thead>
    <tbody sse-swap="rows">${rows(tags, now)}</tbody>
  </table>
  </div>
</div>`;
}

export function tagPages(deps: UiDeps) {
  return new Elysia({ name: "ui-tags", detail: { hide: true } })
    .get(
      "/tags",
      handle(deps, (ctx, viewer) => {
        const q = ctx.query.q ?? "";
        return page(
          viewer,
          "Tags",
          html`<section class="card">
  <div class="toolbar">
    <label for="tag-filter">Filter</label>
    <input type="search" id="tag-filter" name="q" value="${q}" placeholder="asset, parameter, unit, quality…" autocomplete="off"
      hx-get="/tags/rows" hx-trigger="input changed delay:300ms, search" hx-target="#tag-live" hx-swap="outerHTML">
    <span class="muted small">Latest value per tag from telemetry.raw (and telemetry.clean when validated) · times UTC</span>
  </div>
  ${liveTable(deps, q)}
</section>`,
        );
      }),
    )
    .get(
      "/tags/rows",
      handle(deps, (ctx) => {
        const q = ctx.query.q ?? "";
        if (!isHtmx(ctx.request)) return new Response(null, { status: 303, headers: { location: `/tags?q=${encodeURIComponent(q)}` } });
        return htmlResponse(liveTable(deps, q));
      }),
    )
    .get("/live/tags", ({ request, query }) => {
      const q = String((query as Record<string, string | undefined>).q ?? "");
      let sentVersion = -1;
      let sentAt = 0;
      return sseResponse({
        signal: streamSignal(request, deps),
        intervalMs: TAGS_TICK_MS,
        tick: () => {
          const cache = deps.live?.tags;
          if (!cache) return [];
          const now = Date.now();
          if (cache.version === sentVersion && now - sentAt < TAGS_REFRESH_MS) return [];
          sentVersion = cache.version;
          sentAt = now;
          const { tags, matched } = cache.list(q, TAG_ROWS_MAX);
          return [
            { event: "rows", data: rows(tags, now).value },
            { event: "count", data: html`${countLine(tags.length, matched, cache.size, q)}`.value },
          ];
        },
      });
    });
}
