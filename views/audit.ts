import { Elysia } from "elysia";
import { listAudit } from "../src/db/repo.ts";
import type { Diff } from "../src/db/diff.ts";
import type { UiDeps } from "./context.ts";
import { formatDateTime } from "./format.ts";
import { attr, html, type Html } from "./html.ts";
import { handle, page } from "./http.ts";
import { emptyState } from "./layout.ts";

const PAGE_SIZE = 50;
const RESOURCE_TYPES = ["pipeline", "user", "gateway", "sink", "alarm"];
const MAX_SHOWN_CHANGES = 12;
const MAX_VALUE_CHARS = 80;

function short(value: unknown): string {
  if (value === undefined) return "∅";
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS - 1)}…` : text;
}

function changes(diff: Diff | null): Html {
  if (!diff || Object.keys(diff).length === 0) return html`<span class="muted">—</span>`;
  const entries = Object.entries(diff);
  return html`<ul class="changes">${entries.slice(0, MAX_SHOWN_CHANGES).map(
    ([path, { old, new: next }]) => html`<li><code>${path}</code> <span class="old">${short(old)}</span> → <span class="new">${short(next)}</span></li>`,
  )}${entries.length > MAX_SHOWN_CHANGES ? html`<li class="muted">… ${entries.length - MAX_SHOWN_CHANGES} more</li>` : ""}</ul>`;
}

export function auditPages(deps: UiDeps) {
  return new Elysia({ name: "ui-audit", detail: { hide: true } }).get(
    "/audit",
    handle(deps, async (ctx, viewer) => {
      const resourceType = ctx.query.resource_type || undefined;
      const resourceId = ctx.query.resource_id?.trim() || undefined;
      const before = Number(ctx.query.before);
      const rows = await listAudit(deps.db(), {
        ...(resourceType ? { resourceType } : {}),
        ...(resourceId ? { resourceId } : {}),
        limit: PAGE_SIZE,
        ...(Number.isInteger(before) && before > 0 ? { before } : {}),
      });
      const older = rows.length === PAGE_SIZE ? new URLSearchParams({ resource_type: resourceType ?? "", resource_id: resourceId ?? "", before: String(rows.at(-1)!.id) }) : undefined;
      return page(
        viewer,
        "Audit log",
        html`<section class="card">
  <form class="toolbar" method="get" action="/audit">
    <label for="audit-type">Resource</label>
    <select id="audit-type" name="resource_type"><option value="">all</option>${RESOURCE_TYPES.map((t) => html`<option${attr("selected", t === resourceType)}>${t}</option>`)}</select>
    <label for="audit-id">ID</label><input type="search" id="audit-id" name="resource_id" value="${resourceId ?? ""}" placeholder="e.g. offshore_well_12">
    <button class="btn" type="submit">Filter</button>
    <span class="muted small">Newest first; entries are never changed or removed.</span>
  </form>
  ${
    rows.length === 0
      ? emptyState("No audit entries match.")
      : html`<table class="data audit">
    <thead><tr><th scope="col">Time (UTC)</th><th scope="col">User</th><th scope="col">Action</th><th scope="col">Resource</th><th scope="col">Changes</th><th scope="col">From</th></tr></thead>
    <tbody>${rows.map(
      (r) => html`<tr><td class="mono small">${formatDateTime(r.at)}</td><td>${r.actor}</td><td><code>${r.action}</code></td>
      <td><a href="/audit?resource_type=${encodeURIComponent(r.resourceType)}&amp;resource_id=${encodeURIComponent(r.resourceId)}">${r.resourceType} ${r.resourceId}</a></td>
      <td>${changes(r.changes)}</td><td class="mono small">${r.ip ?? "—"}</td></tr>`,
    )}</tbody>
  </table>`
  }
  ${older ? html`<p><a class="btn" href="/audit?${older.toString()}">Older entries →</a></p>` : ""}
</section>`,
      );
    }),
  );
}
