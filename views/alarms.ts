import { Elysia } from "elysia";
import { ApiError } from "../src/api/errors.ts";
import { actorOf } from "../src/api/principal.ts";
import { appendAudit, listAlarmRules } from "../src/db/repo.ts";
import { UnknownAlarmError, type Alarm, type AlarmFilter } from "../src/live/alarms.ts";
import { alarmRulesSection } from "./alarm-rules.ts";
import { viewerCan, type UiDeps, type Viewer } from "./context.ts";
import { formatDateTime, toneOf } from "./format.ts";
import { attr, html, type Html } from "./html.ts";
import { field, handle, isHtmx, page, readForm } from "./http.ts";
import { badge, emptyState, htmlResponse } from "./layout.ts";

const SUPPRESS_CHOICES_MIN = [15, 60, 240, 480];
const MAX_SUPPRESS_MIN = 24 * 60;
const ALARMS_REFRESH = "every 5s";
/** Fired (HX-Trigger) by a refused or unconfirmed command: the table reloads at once to show the alarm as it is. */
const ALARMS_CHANGED = "alarms-changed";

function severityTone(severity: string | null): string {
  const s = (severity ?? "").toLowerCase();
  if (["critical", "high", "urgent", "1"].includes(s)) return "bad";
  if (["medium", "warning", "2"].includes(s)) return "warn";
  return "muted";
}

function alarmRow(a: Alarm, viewer: Viewer): Html {
  const canAck = viewerCan(viewer, "alarms:ack");
  const suppressed = a.suppressed_until && Date.parse(a.suppressed_until) > Date.now();
  return html`<tr>
  <td class="small mono">${formatDateTime(a.raised_at)}</td>
  <td>${a.severity ? badge(a.severity, severityTone(a.severity)) : "—"}</td>
  <th scope="row">${a.asset_id ?? "—"}${a.parameter ? html`/<strong>${a.parameter}</strong>` : ""}</th>
  <td>${a.message ?? ""}</td>
  <td>${badge(a.state, toneOf(a.state))}${suppressed ? html` ${badge("suppressed", "muted")}` : ""}</td>
  <td class="small">${a.acked_by ? html`${a.acked_by}<div class="muted">${formatDateTime(a.acked_at)}</div>` : html`<span class="muted">not acknowledged</span>`}</td>
  <td class="small">${suppressed ? html`until ${formatDateTime(a.suppressed_until)}<div class="muted">by ${a.suppressed_by}</div>` : "—"}</td>
  <td class="row-buttons">${
    canAck
      ? html`${a.acked_by ? "" : html`<button type="button" class="btn btn-small" hx-post="/alarms/${encodeURIComponent(a.id)}/ack" hx-target="#alarm-table" hx-swap="outerHTML">Acknowledge</button>`}
    <form class="inline" hx-post="/alarms/${encodeURIComponent(a.id)}/suppress" hx-target="#alarm-table" hx-swap="outerHTML">
      <label class="visually-hidden" for="suppress-${a.id}">Suppress for</label>
      <select id="suppress-${a.id}" name="minutes">${SUPPRESS_CHOICES_MIN.map((m) => html`<option value="${m}">${m < 60 ? `${m} min` : `${m / 60} h`}</option>`)}</select>
      <button type="submit" class="btn btn-small">Suppress</button>
    </form>`
      : ""
  }</td>
</tr>`;
}

/**
 * The alarm table; it reloads itself. Errors show in the card's slot above it (outside what the
 * reload replaces), so a refused command's reason stays until the user acts again. `notice`: what
 * became of the command just sent, when the evaluator has not confirmed it yet.
 */
async function alarmTable(deps: UiDeps, viewer: Viewer, filter: AlarmFilter, notice?: string): Promise<Html> {
  const query = new URLSearchParams({ state: filter.state ?? "active", q: filter.q ?? "" }).toString();
  const common = html` id="alarm-table" hx-get="/alarms?${query}" hx-trigger="${ALARMS_REFRESH}, ${ALARMS_CHANGED} from:body" hx-swap="outerHTML"`;
  if (!deps.live) return html`<div${common}>${emptyState("No alarms.", "Live data is off on this appliance.")}</div>`;
  const alarms = await deps.live.alarms.list(filter);
  if (alarms.length === 0) {
    return html`<div${common}>${emptyState(
      filter.state === "all" ? "No alarms." : "No active alarms.",
      "Alarms are raised by the evaluator from the alarm rules below, and appear here as they happen.",
    )}</div>`;
  }
  return html`<div${common}>
  ${notice ? html`<div class="notice" role="status"><p>${notice}</p></div>` : ""}
  <table class="data">
  <thead><tr><th scope="col">Raised (UTC)</th><th scope="col">Severity</th><th scope="col">Tag</th><th scope="col">Message</th><th scope="col">State</th>
  <th scope="col">Acknowledged</th><th scope="col">Suppressed</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
  <tbody>${alarms.map((a) => alarmRow(a, viewer))}</tbody>
  </table>
</div>`;
}

const filterOf = (query: Record<string, string | undefined>): AlarmFilter => ({ state: query.state === "all" ? "all" : "active", q: query.q ?? "" });

export function alarmPages(deps: UiDeps) {
  const act = async (ctx: Parameters<Parameters<typeof handle>[1]>[0], viewer: Viewer, action: "ack" | "suppress") => {
    if (!deps.live) throw new ApiError(503, "live_unavailable", "live data is off on this appliance");
    const [actor, ip] = actorOf(ctx);
    const id = ctx.params.id!;
    let result: Alarm;
    try {
      if (action === "ack") result = await deps.live.alarms.ack(id, actor);
      else {
        const minutes = Number(field(await readForm(ctx.request), "minutes"));
        if (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_SUPPRESS_MIN) throw new ApiError(422, "validation_failed", `minutes: expected 1-${MAX_SUPPRESS_MIN}`);
        const until = new Date(Date.now() + minutes * 60_000);
        result = await deps.live.alarms.suppress(id, actor, until);
      }
    } catch (error) {
      if (error instanceof UnknownAlarmError) throw new ApiError(404, "not_found", error.message);
      // Refused (the alarm changed: cleared, or acknowledged by someone else): the reason shows above
      // the table, and the table reloads to show the alarm as it is now.
      if (error instanceof ApiError && error.status === 409) throw new ApiError(409, error.code, error.message, error.fields, { ...error.headers, "HX-Trigger": ALARMS_CHANGED });
      throw error;
    }
    // Same action names as the API's (`alarm.acknowledge|suppress`), so the audit log reads one way.
    await appendAudit(deps.db(), { actor, ip, action: `alarm.${action === "ack" ? "acknowledge" : action}`, resourceType: "alarm", resourceId: id, changes: null });
    const notice = result.pending ? `${action === "ack" ? "Acknowledgement" : "Suppression"} sent, not confirmed yet: ${result.pending}` : undefined;
    return htmlResponse(await alarmTable(deps, viewer, filterOf(ctx.query), notice));
  };
  return new Elysia({ name: "ui-alarms", detail: { hide: true } })
    .get(
      "/alarms",
      handle(deps, async (ctx, viewer) => {
        const filter = filterOf(ctx.query);
        const table = await alarmTable(deps, viewer, filter);
        if (isHtmx(ctx.request)) return htmlResponse(table);
        const rules = await listAlarmRules(deps.db(), { gatewayId: deps.config.gateway_id });
        return page(
          viewer,
          "Alarms",
          html`<section class="card" data-errors>
  <form class="toolbar" method="get" action="/alarms">
    <label for="alarm-q">Filter</label><input type="search" id="alarm-q" name="q" value="${filter.q ?? ""}" placeholder="tag, message, severity…">
    <label for="alarm-state">Show</label>
    <select id="alarm-state" name="state"><option value="active"${attr("selected", filter.state !== "all")}>active</option><option value="all"${attr("selected", filter.state === "all")}>all, incl. cleared</option></select>
    <button class="btn" type="submit">Apply</button>
  </form>
  <p class="request-error" role="alert"></p>
  ${table}
</section>
${alarmRulesSection(rules)}`,
        );
      }),
    )
    .post("/alarms/:id/ack", handle(deps, (ctx, viewer) => act(ctx, viewer, "ack")), { parse: "none" })
    .post("/alarms/:id/suppress", handle(deps, (ctx, viewer) => act(ctx, viewer, "suppress")), { parse: "none" });
}
