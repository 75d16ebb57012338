import { Elysia } from "elysia";
import { ModbusTcpConfigSchema } from "../../adapters/modbus-tcp/schema.ts";
import { parseAdapterConfig } from "../../src/adapter-runtime/config.ts";
import { ApiError } from "../../src/api/errors.ts";
import { PipelineService, type PipelineView } from "../../src/api/pipelines/service.ts";
import { actorOf } from "../../src/api/principal.ts";
import { ADAPTERS } from "../../src/adapters.ts";
import { schemaErrors, type FieldError } from "../../src/config/schema-errors.ts";
import { DeclaredPipelineSchema, type DeclaredPipeline } from "../../src/config/schema.ts";
import { completeAdapterConfig } from "../../src/supervisor/pipelines.ts";
import type { AdapterStatus } from "../../src/supervisor/managed-adapter.ts";
import { viewerCan, type UiDeps, type Viewer } from "../context.ts";
import { formatDateTime, formatRate, toneOf } from "../format.ts";
import { html, type Html } from "../html.ts";
import { field, handle, page, readForm, redirect } from "../http.ts";
import { badge, emptyState, htmlResponse } from "../layout.ts";
import { addressingOf, builderForm, formErrors, newBuilderState, parseBuilderForm, stateFromPipeline, type BuilderState, type TestOutcome } from "./builder.ts";
import { previewByteOrders } from "./byte-order.ts";
import { registerRowsFromCsv } from "./csv.ts";
import { emptyRow, notationHtml, registerEditor, registerRow, rowsFromForm } from "./registers.ts";

/** Longest wait for the supervisor to pick up a saved change before answering. */
const RECONCILE_WAIT_MS = 2000;
const CSV_MAX_BYTES = 2 * 1024 * 1024;

function devicesOf(adapter: Record<string, unknown>): string {
  const source = (adapter.source ?? {}) as Record<string, unknown>;
  const connections = source.connections as Array<{ host: string; port?: number }> | undefined;
  if (connections) return connections.map((c) => `${c.host}:${c.port ?? ""}`).join(", ");
  if (typeof source.host === "string") return `${source.host}${source.port ? `:${source.port}` : ""}`;
  return "—";
}

export function pipelineRow(p: PipelineView, status: AdapterStatus | undefined, viewer: Viewer): Html {
  const state = p.enabled ? (status?.state ?? "stopped") : "disabled";
  const canWrite = viewerCan(viewer, "pipelines:write");
  const path = `/pipelines/${encodeURIComponent(p.id)}`;
  return html`<tr id="pipeline-${p.id}">
  <th scope="row"><a href="${path}">${p.name ?? p.id}</a><div class="muted small mono">${p.id}</div></th>
  <td>${String(p.adapter.protocol ?? p.runtime)}</td>
  <td class="mono small">${devicesOf(p.adapter)}</td>
  <td>${badge(state, state === "disabled" ? "muted" : toneOf(state))}${status?.detail ? html`<div class="muted small">${status.detail}</div>` : ""}</td>
  <td class="num">${formatRate(status?.health?.readings_per_sec)}</td>
  <td class="num">${status?.health ? status.health.errors_last_minute : "—"}</td>
  <td class="num">v${p.version}</td>
  <td class="small">${formatDateTime(p.updated_at)}</td>
  <td class="row-buttons">
    <a class="btn btn-small" href="${path}">${canWrite ? "Edit" : "View"}</a>
    ${
      canWrite
        ? html`<button type="button" class="btn btn-small" hx-post="${path}/enabled" hx-vals='${JSON.stringify({ enabled: p.enabled ? "false" : "true" })}'
        hx-target="closest tr" hx-swap="outerHTML" aria-label="${p.enabled ? "Disable" : "Enable"} ${p.name ?? p.id}">${p.enabled ? "Disable" : "Enable"}</button>`
        : ""
    }
  </td>
</tr>`;
}

function listPage(pipelines: PipelineView[], statuses: AdapterStatus[], viewer: Viewer): Html {
  if (pipelines.length === 0) {
    return emptyState("No pipelines yet.", viewerCan(viewer, "pipelines:write") ? html`<a href="/pipelines/new">Create one</a> to start reading a device.` : "An Engineer can create one.");
  }
  const byId = new Map(statuses.map((s) => [s.pipeline_id, s]));
  return html`<section class="card" data-errors>
  <p class="request-error" role="alert"></p>
  <table class="data">
  <thead><tr><th scope="col">Pipeline</th><th scope="col">Adapter</th><th scope="col">Device</th><th scope="col">State</th><th scope="col" class="num">Readings/s</th>
  <th scope="col" class="num">Errors/min</th><th scope="col" class="num">Version</th><th scope="col">Updated (UTC)</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
  <tbody>${pipelines.map((p) => pipelineRow(p, byId.get(p.id), viewer))}</tbody>
  </table>
</section>`;
}

/** Schema of the pipeline body, plus the adapter's own validation: every failing path at once. */
function validationErrors(service: PipelineService, body: DeclaredPipeline): FieldError[] {
  const errors = schemaErrors(DeclaredPipelineSchema, body).filter((e) => !e.path.startsWith("adapter"));
  try {
    service.validate(body);
  } catch (error) {
    if (!(error instanceof ApiError) || !error.fields) throw error;
    errors.push(...error.fields);
  }
  return formErrors(errors);
}

function builderResponse(state: BuilderState, status = 200): Response {
  return htmlResponse(builderForm(state), status);
}

export function pipelinePages(deps: UiDeps) {
  const service = new PipelineService(deps.db, deps.config, deps.log);
  const flags = (viewer: Viewer) => ({ canTest: viewerCan(viewer, "pipelines:test"), canWrite: viewerCan(viewer, "pipelines:write") });

  async function storedAdapter(form: FormData): Promise<Record<string, unknown> | undefined> {
    if (field(form, "_mode") !== "update") return undefined;
    return (await service.get(field(form, "_id"))).adapter;
  }

  async function runTest(body: DeclaredPipeline): Promise<TestOutcome> {
    const started = performance.now();
    const result = await service.connectionTest(body);
    const outcome: TestOutcome = { ok: result.ok, readings: result.readings, previews: [], durationMs: 0, ...(result.error ? { error: result.error } : {}) };
    const complete = completeAdapterConfig(body.id, body.adapter, deps.config);
    outcome.device = devicesOf(complete);
    // The raw words behind the decoded values, for Modbus TCP: the byte-order preview.
    if (complete.protocol === "modbus_tcp" && result.ok) {
      try {
        outcome.previews = await previewByteOrders(parseAdapterConfig(ModbusTcpConfigSchema, complete));
      } catch (error) {
        outcome.previewError = (error as Error).message;
      }
    }
    outcome.durationMs = performance.now() - started;
    return outcome;
  }

  return new Elysia({ name: "ui-pipelines", detail: { hide: true } })
    .get(
      "/pipelines",
      handle(deps, async (_ctx, viewer) => {
        const { items } = await service.list(500, 0);
        const actions = viewerCan(viewer, "pipelines:write") ? html`<a class="btn btn-primary" href="/pipelines/new">New pipeline</a>` : undefined;
        return page(viewer, "Pipelines", listPage(items, deps.supervisor.status(), viewer), actions ? { actions } : {});
      }),
    )
    .get(
      "/pipelines/new",
      handle(deps, (ctx, viewer) => {
        const protocol = ctx.query.protocol ?? ADAPTERS[0]!.protocol;
        if (!ADAPTERS.some((a) => a.protocol === protocol)) throw new ApiError(404, "not_found", `no adapter type ${protocol}`);
        const picker =
          ADAPTERS.length > 1
            ? html`<nav class="adapter-picker" aria-label="Adapter type">${ADAPTERS.map((a) => html`<a href="/pipelines/new?protocol=${a.protocol}"${a.protocol === protocol ? html` aria-current="page"` : ""}>${a.protocol}</a>`)}</nav>`
            : "";
        return page(viewer, "New pipeline", html`${picker}${builderForm(newBuilderState(protocol, flags(viewer).canTest))}`);
      }),
    )
    .get(
      "/pipelines/:id",
      handle(deps, async (ctx, viewer) => {
        const pipeline = await service.get(ctx.params.id!);
        const { canTest, canWrite } = flags(viewer);
        const state = stateFromPipeline(pipeline, { readonly: !canWrite, canTest, canWrite });
        const saved = ctx.query.saved;
        if (saved) state.notice = `Saved as version ${saved}. The supervisor applies it within seconds.`;
        const status = deps.supervisor.status().find((s) => s.pipeline_id === pipeline.id);
        const state_ = pipeline.enabled ? (status?.state ?? "stopped") : "disabled";
        const actions = html`${badge(state_, state_ === "disabled" ? "muted" : toneOf(state_))} <span class="muted small">version ${pipeline.version} · updated ${formatDateTime(pipeline.updated_at)} UTC</span>`;
        return page(viewer, pipeline.name ?? pipeline.id, builderForm(state), { actions });
      }),
    )
    .post(
      "/pipelines/save",
      handle(deps, async (ctx, viewer) => {
        const form = await readForm(ctx.request);
        const { state, body } = parseBuilderForm(form, await storedAdapter(form), flags(viewer));
        state.errors.push(...validationErrors(service, body));
        if (state.errors.length > 0) return builderResponse(state, 422);
        try {
          const { view } = await service.save(body, ...actorOf(ctx), state.mode === "create" ? 0 : (state.version ?? 0));
          if (deps.reconcileNow) await Promise.race([deps.reconcileNow().catch(() => undefined), Bun.sleep(RECONCILE_WAIT_MS)]);
          return redirect(ctx.request, `/pipelines/${encodeURIComponent(view.id)}?saved=${view.version}`);
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          if (error.status === 409) state.errors.push({ path: "id", message: `a pipeline ${body.id} already exists; choose another ID` });
          else if (error.status === 412) state.errors.push({ path: "(pipeline)", message: `${error.message}. Someone saved it after you opened it: reload to see their version.` });
          else if (error.fields) state.errors.push(...error.fields);
          else throw error;
          return builderResponse(state, 422);
        }
      }),
      { parse: "none" },
    )
    .post(
      "/pipelines/test",
      handle(deps, async (ctx, viewer) => {
        const form = await readForm(ctx.request);
        const { state, body } = parseBuilderForm(form, await storedAdapter(form), flags(viewer));
        // An unsaved pipeline has no ID yet; the test needs one only for its log lines.
        const testBody = { ...body, id: body.id || "connection-test" };
        state.errors.push(...validationErrors(service, testBody));
        if (state.errors.length > 0) return builderResponse(state, 422);
        state.test = await runTest(testBody);
        return builderResponse(state);
      }),
      { parse: "none" },
    )
    .post(
      "/pipelines/:id/enabled",
      handle(deps, async (ctx, viewer) => {
        const form = await readForm(ctx.request);
        const current = await service.get(ctx.params.id!);
        const enabled = field(form, "enabled") === "true";
        const { view } = await service.save(
          { id: current.id, ...(current.name ? { name: current.name } : {}), enabled, runtime: current.runtime, ...(current.image ? { image: current.image } : {}), adapter: current.adapter },
          ...actorOf(ctx),
          current.version,
        );
        if (deps.reconcileNow) await Promise.race([deps.reconcileNow().catch(() => undefined), Bun.sleep(RECONCILE_WAIT_MS)]);
        return htmlResponse(pipelineRow(view, deps.supervisor.status().find((s) => s.pipeline_id === view.id), viewer));
      }),
      { parse: "none" },
    )
    .post(
      "/pipelines/:id/delete",
      handle(deps, async (ctx) => {
        await service.remove(ctx.params.id!, ...actorOf(ctx));
        if (deps.reconcileNow) await Promise.race([deps.reconcileNow().catch(() => undefined), Bun.sleep(RECONCILE_WAIT_MS)]);
        return redirect(ctx.request, "/pipelines");
      }),
      { parse: "none" },
    )
    .get(
      "/pipelines/builder/row",
      handle(deps, (ctx) => {
        const addressing = ctx.query["adapter.mapping.addressing"] === "explicit" ? "explicit" : "modicon";
        return htmlResponse(registerRow(emptyRow(), { addressing, readonly: false }));
      }),
    )
    .get(
      "/pipelines/builder/address",
      handle(deps, (ctx) => {
        const addressing = ctx.query["adapter.mapping.addressing"] === "explicit" ? "explicit" : "modicon";
        return htmlResponse(notationHtml(ctx.query["reg.address"] ?? "", addressing));
      }),
    )
    .post(
      "/pipelines/builder/csv",
      handle(deps, async (ctx) => {
        const form = await readForm(ctx.request);
        const addressing = addressingOf({ mapping: { addressing: field(form, "adapter.mapping.addressing") } });
        const file = form.get("csv_file");
        let text = field(form, "csv");
        const messages: string[] = [];
        if (file instanceof Blob && file.size > 0) {
          if (file.size > CSV_MAX_BYTES) messages.push(`the file is larger than ${CSV_MAX_BYTES / 1024 / 1024} MB; not imported`);
          else text = await file.text();
        }
        const existing = rowsFromForm(form);
        if (!text.trim()) {
          messages.push("paste CSV text or choose a file first");
          return htmlResponse(registerEditor({ rows: existing, addressing, readonly: false, csvStatus: { imported: 0, messages } }));
        }
        const imported = registerRowsFromCsv(text);
        const rows = field(form, "csv_mode") === "replace" ? imported.rows : [...existing, ...imported.rows];
        return htmlResponse(registerEditor({ rows, addressing, readonly: false, csvStatus: { imported: imported.rows.length, messages: [...messages, ...imported.errors] } }));
      }),
      { parse: "none" },
    );
}
