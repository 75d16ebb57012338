/**
 * The pipeline builder: a form generated from the adapter's config schema, the register-map
 * editor, "Test connection" with decoded values and the byte-order preview, and Save with the
 * validator's errors next to the inputs they concern.
 */
import type { AddressingMode } from "../../adapters/modbus/address.ts";
import { ADAPTERS } from "../../src/adapters.ts";
import type { FieldError } from "../../src/config/schema-errors.ts";
import type { DeclaredPipeline } from "../../src/config/schema.ts";
import type { AdapterDefinition, Sample } from "../../src/registry.ts";
import { formatValue, toneOf } from "../format.ts";
import { attr, html, type Html } from "../html.ts";
import { badge } from "../layout.ts";
import type { OrderPreview } from "./byte-order.ts";
import { registerEditor, registersFromRows, REGISTERS_PATH, rowErrors, rowsFromForm, rowsFromRegisters, type RegisterRow, type TestView } from "./registers.ts";
import { errorMap, inputId, readObject, renderObject, type JsonSchema } from "./schema-form.ts";

/** Filled in by the appliance, or reserved: not shown, kept as stored. */
export const HIDDEN_PATHS: ReadonlySet<string> = new Set([
  "adapter.pipeline_id",
  "adapter.adapter_id",
  "adapter.output.kafka_bootstrap",
  "adapter.output.schema_registry",
  "adapter.health",
]);

export interface TestOutcome {
  ok: boolean;
  error?: string;
  readings: Sample[];
  previews: OrderPreview[];
  previewError?: string;
  durationMs: number;
  device?: string;
}

export interface BuilderState {
  mode: "create" | "update";
  protocol: string;
  id: string;
  name: string;
  enabled: boolean;
  version?: number;
  adapter: Record<string, unknown>;
  rows: RegisterRow[];
  errors: FieldError[];
  raw: Map<string, string>;
  readonly: boolean;
  canTest: boolean;
  canWrite: boolean;
  test?: TestOutcome;
  notice?: string;
  csvStatus?: { imported: number; messages: string[] };
}

export function adapterDefinition(protocol: string): AdapterDefinition | undefined {
  return ADAPTERS.find((a) => a.protocol === protocol);
}

export function addressingOf(adapter: Record<string, unknown>): AddressingMode {
  const mapping = (adapter.mapping ?? {}) as Record<string, unknown>;
  return mapping.addressing === "explicit" ? "explicit" : "modicon";
}

export function newBuilderState(protocol: string, canTest: boolean): BuilderState {
  return { mode: "create", protocol, id: "", name: "", enabled: true, adapter: { protocol }, rows: [], errors: [], raw: new Map(), readonly: false, canTest, canWrite: true };
}

export function stateFromPipeline(p: DeclaredPipeline & { version: number }, options: { readonly: boolean; canTest: boolean; canWrite: boolean }): BuilderState {
  const mapping = (p.adapter.mapping ?? {}) as Record<string, unknown>;
  return {
    mode: "update",
    protocol: String(p.adapter.protocol ?? ""),
    id: p.id,
    name: p.name ?? "",
    enabled: p.enabled,
    version: p.version,
    adapter: p.adapter,
    rows: rowsFromRegisters(mapping.registers),
    errors: [],
    raw: new Map(),
    ...options,
  };
}

export interface ParsedBuilder {
  state: BuilderState;
  body: DeclaredPipeline;
}

/** The form as a pipeline body (what POST /api/v1/pipelines takes), plus the state to re-render it. */
export function parseBuilderForm(form: FormData, stored: Record<string, unknown> | undefined, flags: { canTest: boolean; canWrite: boolean }): ParsedBuilder {
  const text = (name: string) => String(form.get(name) ?? "").trim();
  const mode = text("_mode") === "update" ? "update" : "create";
  const protocol = text("_protocol");
  const definition = adapterDefinition(protocol);
  const rows = rowsFromForm(form);
  const errors: FieldError[] = [];
  const raw = new Map<string, string>();
  const addressing: AddressingMode = text("adapter.mapping.addressing") === "explicit" ? "explicit" : "modicon";
  const adapter = definition
    ? (readObject(definition.configSchema as JsonSchema, "adapter", form, stored ?? {}, {
        hidden: HIDDEN_PATHS,
        raw,
        errors,
        special: { [REGISTERS_PATH]: () => registersFromRows(rows, addressing).registers },
      }) ?? {})
    : { protocol };
  if (!definition) errors.push({ path: "adapter.protocol", message: `unknown adapter type ${JSON.stringify(protocol)}` });
  const id = mode === "update" ? text("_id") : text("id");
  const name = text("name");
  const version = Number(text("_version"));
  const body: DeclaredPipeline = { id, ...(name ? { name } : {}), enabled: form.has("enabled"), runtime: "process", adapter };
  return {
    body,
    state: {
      mode,
      protocol,
      id,
      name,
      enabled: body.enabled,
      ...(Number.isInteger(version) && version > 0 ? { version } : {}),
      adapter,
      rows,
      errors,
      raw,
      readonly: false,
      ...flags,
    },
  };
}

/** Derived from the pipeline ID by the appliance: their errors are the ID's errors. */
const DERIVED_FROM_ID = new Set(["adapter.pipeline_id", "adapter.adapter_id"]);

/** Validator messages as a form shows them: one per input, "required" for an empty required field. */
export function formErrors(errors: FieldError[]): FieldError[] {
  const seen = new Set<string>();
  const out: FieldError[] = [];
  for (const e of errors) {
    const path = DERIVED_FROM_ID.has(e.path) ? "id" : e.path;
    const key = `${path}\n${e.message}`;
    if (seen.has(path) && DERIVED_FROM_ID.has(e.path)) continue;
    if (seen.has(key)) continue;
    seen.add(path);
    seen.add(key);
    const message = /^expected required property|^expected string length greater or equal to 1, got ""$/.test(e.message) ? "required" : e.message;
    out.push({ path, message });
  }
  return out;
}

function errorSummary(state: BuilderState, keyRows: Map<string, number[]>): Html {
  if (state.errors.length === 0) return html``;
  const target = (path: string): string => {
    if (path.startsWith(`${REGISTERS_PATH}[`)) {
      const placed = rowErrors([{ path, message: "" }], keyRows);
      const [row, cells] = [...placed.byRow][0] ?? [];
      if (row !== undefined) {
        const column = [...cells!.keys()][0]!;
        return `#reg-${row}-${column === "row" ? "address" : column}`;
      }
      return "#register-editor";
    }
    if (path.startsWith(REGISTERS_PATH)) return "#register-editor";
    return `#${inputId(path)}`;
  };
  const label = (path: string) => path.replace(/^adapter\./, "");
  return html`<div class="error-summary" role="alert" tabindex="-1" data-focus>
  <h2>${state.errors.length === 1 ? "1 problem" : `${state.errors.length} problems`}; nothing was saved</h2>
  <ul>${state.errors.map((e) => html`<li><a href="${target(e.path)}"><code>${label(e.path)}</code></a>: ${e.message}</li>`)}</ul>
</div>`;
}

function testPanel(test: TestOutcome): Html {
  const seconds = (test.durationMs / 1000).toFixed(2);
  return html`<section class="card test-result" id="test-result" aria-labelledby="test-result-title" tabindex="-1" data-focus>
  <div class="card-head">
    <h2 id="test-result-title">Connection test</h2>
    ${test.ok ? badge("connected", "ok") : badge("failed", "bad")}
    <span class="muted small">${test.device ? `${test.device} · ` : ""}${test.readings.length} reading(s) in ${seconds} s · nothing was saved or published</span>
  </div>
  ${test.error ? html`<p class="notice notice-bad">${test.error}</p>` : ""}
  ${
    test.readings.length
      ? html`<table class="data compact">
    <thead><tr><th scope="col">Parameter</th><th scope="col" class="num">Value</th><th scope="col">Unit</th><th scope="col">Quality</th><th scope="col">Detail</th></tr></thead>
    <tbody>${test.readings.map(
      (r) => html`<tr><th scope="row">${r.parameter}</th><td class="num value">${formatValue(r.value)}</td><td>${r.unit ?? ""}</td><td>${badge(r.quality, toneOf(r.quality))}</td><td class="small">${r.error ?? r.status_text ?? ""}</td></tr>`,
    )}</tbody>
  </table>`
      : ""
  }
  ${test.previews.length ? html`<p class="hint">Multi-register values show all four byte orders under their row in the register map; choose the one that reads right.</p>` : ""}
  ${test.previewError ? html`<p class="notice notice-warn small">Byte-order preview unavailable: ${test.previewError}</p>` : ""}
</section>`;
}

export function builderForm(state: BuilderState): Html {
  const definition = adapterDefinition(state.protocol);
  const addressing = addressingOf(state.adapter);
  const { keyRows } = registersFromRows(state.rows, addressing);
  const errors = errorMap(state.errors);
  const placedRows = rowErrors(state.errors, keyRows);
  const previews = new Map<number, OrderPreview>();
  for (const p of state.test?.previews ?? []) {
    const row = keyRows.get(p.key)?.[p.index];
    if (row !== undefined) previews.set(row, p);
  }
  const test: TestView | undefined = state.test ? { readings: state.test.readings, previews } : undefined;
  const formState = {
    errors,
    raw: state.raw,
    readonly: state.readonly,
    hidden: HIDDEN_PATHS,
    special: {
      [REGISTERS_PATH]: () =>
        registerEditor({ rows: state.rows, addressing, readonly: state.readonly, errors: placedRows, ...(test ? { test } : {}), ...(state.csvStatus ? { csvStatus: state.csvStatus } : {}) }),
    },
  };
  const topError = (path: string) => (errors.has(path) ? html`<p class="field-error" id="${inputId(path)}-error">${errors.get(path)!.join("; ")}</p>` : "");
  const invalid = (path: string) => html`${attr("aria-invalid", errors.has(path) ? "true" : undefined)}${attr("aria-describedby", errors.has(path) ? `${inputId(path)}-error` : undefined)}`;
  const submit = state.readonly ? html`` : html` hx-post="/pipelines/save" hx-target="#builder" hx-swap="outerHTML"`;
  return html`<form id="builder" class="builder"${submit} novalidate data-errors>
  <input type="hidden" name="_mode" value="${state.mode}">
  <input type="hidden" name="_protocol" value="${state.protocol}">
  ${state.mode === "update" ? html`<input type="hidden" name="_id" value="${state.id}"><input type="hidden" name="_version" value="${state.version ?? ""}">` : ""}
  ${state.notice ? html`<p class="notice notice-ok" role="status">${state.notice}</p>` : ""}
  ${state.readonly ? html`<p class="notice notice-info">Read-only: your role cannot change pipelines.</p>` : ""}
  ${errorSummary(state, keyRows)}
  <fieldset class="section">
    <legend>Pipeline</legend>
    <div class="fields">
      <div class="field${errors.has("id") ? " has-error" : ""}">
        <label for="${inputId("id")}">Pipeline ID${state.mode === "create" ? html` <span class="req" aria-hidden="true">*</span>` : ""}</label>
        <input type="text" id="${inputId("id")}" name="id" value="${state.id}" spellcheck="false" autocomplete="off" pattern="[A-Za-z0-9._\\-]+" maxlength="128"
          ${state.mode === "update" ? "readonly" : "required"}${attr("disabled", state.readonly)}${attr("aria-invalid", errors.has("id") ? "true" : undefined)} aria-describedby="${inputId("id")}-hint${errors.has("id") ? ` ${inputId("id")}-error` : ""}">
        <p class="hint" id="${inputId("id")}-hint">${state.mode === "update" ? "Fixed once created" : "Letters, digits, . _ -; also the pipeline_id in every reading"}</p>
        ${topError("id")}
      </div>
      <div class="field${errors.has("name") ? " has-error" : ""}">
        <label for="${inputId("name")}">Name</label>
        <input type="text" id="${inputId("name")}" name="name" value="${state.name}"${attr("disabled", state.readonly)}${invalid("name")} placeholder="e.g. Well 12 wellhead RTU">
        ${topError("name")}
      </div>
      <div class="field field-check">
        <input type="checkbox" id="${inputId("enabled")}" name="enabled"${attr("checked", state.enabled)}${attr("disabled", state.readonly)} aria-describedby="${inputId("enabled")}-hint">
        <label for="${inputId("enabled")}">Enabled</label>
        <p class="hint" id="${inputId("enabled")}-hint">The supervisor runs enabled pipelines</p>
      </div>
      <div class="field">
        <span class="label">Adapter</span>
        <p class="static">${definition ? html`<strong>${definition.protocol}</strong> ${definition.version} ${badge(definition.stability, definition.stability === "stable" ? "ok" : "warn")}<br><span class="hint">${definition.description}</span>` : state.protocol}</p>
      </div>
    </div>
  </fieldset>
  ${definition ? renderObject(definition.configSchema as JsonSchema, "adapter", state.adapter, formState) : html`<p class="notice notice-bad">Unknown adapter type ${state.protocol}.</p>`}
  ${
    state.readonly
      ? ""
      : html`<div class="actions">
    ${state.canTest ? html`<button type="button" class="btn" hx-post="/pipelines/test" hx-target="#builder" hx-swap="outerHTML" hx-disabled-elt="this" hx-indicator="#busy">Test connection</button>` : ""}
    <button type="submit" class="btn btn-primary" hx-disabled-elt="this" hx-indicator="#busy">${state.mode === "create" ? "Create pipeline" : "Save changes"}</button>
    <a class="btn btn-quiet" href="/pipelines">Cancel</a>
    <span id="busy" class="busy" aria-hidden="true">Working…</span>
    <p class="request-error" role="alert"></p>
    ${
      state.mode === "update" && state.canWrite
        ? html`<button type="button" class="btn btn-danger push-right" hx-post="/pipelines/${encodeURIComponent(state.id)}/delete"
        hx-confirm="Delete pipeline ${state.id}? Its adapter stops; its history stays in the audit log.">Delete pipeline</button>`
        : ""
    }
  </div>`
  }
  ${state.test ? testPanel(state.test) : ""}
</form>`;
}
