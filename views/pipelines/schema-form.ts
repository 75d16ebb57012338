/**
 * A form generated from an adapter's config JSON Schema (TypeBox): text/number/select/checkbox
 * inputs from types, enums, defaults and limits, descriptions as help text. Each input's name is
 * its config path ("adapter.source.port"), which is also the path the validator reports, so an
 * error lands next to the input it belongs to.
 */
import type { FieldError } from "../../src/config/schema-errors.ts";
import { humanize } from "../format.ts";
import { attr, html, type Html } from "../html.ts";

export interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  anyOf?: JsonSchema[];
  const?: unknown;
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  items?: JsonSchema | JsonSchema[];
}

export type FieldKind = "object" | "text" | "integer" | "number" | "boolean" | "select" | "const" | "json";

export function kindOf(schema: JsonSchema): FieldKind {
  if (schema.const !== undefined) return "const";
  if (schema.anyOf?.length && schema.anyOf.every((s) => s.const !== undefined)) return "select";
  if (schema.type === "object" && schema.properties) return "object";
  if (schema.type === "string") return "text";
  if (schema.type === "integer") return "integer";
  if (schema.type === "number") return "number";
  if (schema.type === "boolean") return "boolean";
  return "json";
}

/** Input ids from config paths: stable, unique, and valid in a CSS selector. */
export const inputId = (path: string) => `f-${path.replace(/[^A-Za-z0-9_-]/g, "_")}`;

export type Special = (path: string, schema: JsonSchema, value: unknown) => Html;

export interface FormState {
  /** Errors by path; a parent path's errors show on its fieldset. */
  errors: Map<string, string[]>;
  /** What the user typed where it did not convert (bad JSON), shown back unchanged. */
  raw: Map<string, string>;
  readonly: boolean;
  /** Paths the appliance fills in (ids, its own Kafka); not rendered, kept from the stored config. */
  hidden: ReadonlySet<string>;
  /** Paths with their own editor (the register map). */
  special: Record<string, Special>;
}

export function errorMap(errors: FieldError[]): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const e of errors) map.set(e.path, [...(map.get(e.path) ?? []), e.message]);
  return map;
}

const at = (value: unknown, key: string): unknown =>
  value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>)[key] : undefined;

function hint(schema: JsonSchema): string {
  const parts: string[] = [];
  if (schema.description) parts.push(schema.description.replace(/\.$/, ""));
  if (schema.default !== undefined && typeof schema.default !== "object") parts.push(`default ${String(schema.default)}`);
  if (schema.minimum !== undefined && schema.maximum !== undefined) parts.push(`${schema.minimum}–${schema.maximum}`);
  else if (schema.minimum !== undefined) parts.push(`≥ ${schema.minimum}`);
  else if (schema.maximum !== undefined) parts.push(`≤ ${schema.maximum}`);
  return parts.join(" · ");
}

function errorsFor(state: FormState, path: string, id: string): Html {
  const messages = state.errors.get(path);
  if (!messages) return html``;
  return html`<p class="field-error" id="${id}-error">${messages.join("; ")}</p>`;
}

function field(path: string, name: string, schema: JsonSchema, value: unknown, required: boolean, state: FormState): Html {
  const id = inputId(path);
  const kind = kindOf(schema);
  const invalid = state.errors.has(path);
  const help = hint(schema);
  const describedBy = [help ? `${id}-hint` : "", invalid ? `${id}-error` : ""].filter(Boolean).join(" ");
  const common = html`id="${id}" name="${path}"${attr("aria-describedby", describedBy || undefined)}${attr("aria-invalid", invalid ? "true" : undefined)}${attr("disabled", state.readonly)}`;
  const label = html`<label for="${id}">${humanize(name)}${required && schema.default === undefined ? html` <span class="req" aria-hidden="true">*</span>` : ""} <code class="key">${name}</code></label>`;
  const helpText = help ? html`<p class="hint" id="${id}-hint">${help}</p>` : "";
  const text = state.raw.get(path) ?? (value === undefined || value === null ? "" : typeof value === "object" ? JSON.stringify(value, null, 2) : String(value));
  let input: Html;
  switch (kind) {
    case "boolean": {
      const checked = value === undefined ? schema.default === true : value === true;
      return html`<div class="field field-check${invalid ? " has-error" : ""}">
  <input type="checkbox" ${common}${attr("checked", checked)}>
  ${label}${helpText}${errorsFor(state, path, id)}
</div>`;
    }
    case "select": {
      const options = schema.anyOf!.map((o) => String(o.const));
      const current = value === undefined ? "" : String(value);
      input = html`<select ${common}>
    ${schema.default === undefined && required ? html`<option value="">Choose…</option>` : html`<option value="">${schema.default === undefined ? "—" : `default (${String(schema.default)})`}</option>`}
    ${options.map((o) => html`<option${attr("selected", o === current)}>${o}</option>`)}
  </select>`;
      break;
    }
    case "integer":
    case "number":
      input = html`<input type="number" step="${kind === "integer" ? "1" : "any"}" ${common}
    value="${text}"${attr("placeholder", schema.default === undefined ? undefined : String(schema.default))}${attr("required", required && schema.default === undefined)}${attr("min", schema.minimum)}${attr("max", schema.maximum)} class="input-num">`;
      break;
    case "json":
      input = html`<textarea ${common} rows="3" spellcheck="false" class="mono" placeholder="JSON">${text}</textarea>`;
      break;
    default:
      input = html`<input type="text" ${common} value="${text}"${attr("placeholder", typeof schema.default === "string" ? schema.default : undefined)}${attr("required", required && schema.default === undefined)} spellcheck="false">`;
  }
  return html`<div class="field${invalid ? " has-error" : ""}">${label}${input}${helpText}${errorsFor(state, path, id)}</div>`;
}

/** Does this subtree hold a value or an error? Then its <details> starts open. */
function hasContent(path: string, value: unknown, state: FormState): boolean {
  if ([...state.errors.keys()].some((p) => p === path || p.startsWith(`${path}.`) || p.startsWith(`${path}[`))) return true;
  return value !== undefined && value !== null && !(typeof value === "object" && Object.keys(value).length === 0);
}

/** A JSON-valued field (lists of objects, maps) folds away like an optional group: it is rarely needed. */
function jsonGroup(path: string, name: string, schema: JsonSchema, value: unknown, required: boolean, state: FormState): Html {
  return html`<details class="group"${attr("open", hasContent(path, value, state))}>
  <summary>${humanize(name)} <code class="key">${name}</code>${schema.description ? html` <span class="hint">${schema.description}</span>` : ""}</summary>
  ${field(path, name, { ...schema, description: "JSON" }, value, required, state)}
</details>`;
}

export function renderObject(schema: JsonSchema, path: string, value: unknown, state: FormState, depth = 0): Html {
  const required = new Set(schema.required ?? []);
  const parts: Html[] = [];
  let scalars: Html[] = [];
  let folded: Html[] = [];
  const flush = () => {
    if (scalars.length === 0) return;
    const grid = html`<div class="fields">${scalars}</div>`;
    // At the top, loose settings (poll interval) get a section of their own, like their siblings.
    parts.push(depth === 0 ? html`<fieldset class="section"><legend>General</legend>${grid}</fieldset>` : grid);
    scalars = [];
  };
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    const childPath = `${path}.${name}`;
    if (state.hidden.has(childPath)) continue;
    const childValue = at(value, name);
    const special = state.special[childPath];
    const kind = kindOf(child);
    if (kind === "const") continue;
    if (special) {
      flush();
      parts.push(special(childPath, child, childValue));
    } else if (kind === "object") {
      const body = renderObject(child, childPath, childValue, state, depth + 1);
      const errors = errorsFor(state, childPath, inputId(childPath));
      // Whole optional groups (retry policy, workarounds) stay folded unless they hold something.
      if (child.default !== undefined || depth > 0) {
        folded.push(html`<details class="group"${attr("open", hasContent(childPath, childValue, state))}>
  <summary>${humanize(name)} <code class="key">${name}</code>${child.description ? html` <span class="hint">${child.description}</span>` : ""}</summary>
  ${errors}${body}
</details>`);
      } else {
        flush();
        parts.push(html`<fieldset class="section" id="${inputId(childPath)}">
  <legend>${humanize(name)}</legend>
  ${errors}${body}
</fieldset>`);
      }
    } else if (kind === "json") folded.push(jsonGroup(childPath, name, child, childValue, required.has(name), state));
    else scalars.push(field(childPath, name, child, childValue, required.has(name), state));
  }
  flush();
  if (folded.length) parts.push(depth === 0 ? html`<fieldset class="section"><legend>Advanced</legend>${folded}</fieldset>` : html`${folded}`);
  folded = [];
  return html`${parts}`;
}

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/** The inverse of renderObject: the config object the form describes; empty inputs fall back to defaults. */
export function readObject(
  schema: JsonSchema,
  path: string,
  form: FormData,
  stored: unknown,
  state: Pick<FormState, "hidden" | "raw"> & { errors: FieldError[]; special: Record<string, (path: string, form: FormData) => unknown> },
  required = true,
): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  const requiredKeys = new Set(schema.required ?? []);
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    const childPath = `${path}.${name}`;
    const kind = kindOf(child);
    let value: unknown;
    if (state.hidden.has(childPath)) value = at(stored, name);
    else if (state.special[childPath]) value = state.special[childPath]!(childPath, form);
    else if (kind === "const") value = child.const;
    else if (kind === "object") value = readObject(child, childPath, form, at(stored, name), state, requiredKeys.has(name) && child.default === undefined);
    else if (kind === "boolean") {
      const checked = form.has(childPath);
      // Left out when it equals the default, unless the stored config spelled it out.
      value = child.default !== undefined && checked === child.default && at(stored, name) === undefined ? undefined : checked;
    } else {
      const text = String(form.get(childPath) ?? "").trim();
      if (text === "") value = undefined;
      else if (kind === "integer" || kind === "number") value = NUMBER.test(text) ? Number(text) : text;
      else if (kind === "json") {
        try {
          value = JSON.parse(text);
        } catch (error) {
          state.raw.set(childPath, text);
          state.errors.push({ path: childPath, message: `not valid JSON: ${(error as Error).message}` });
          value = undefined;
        }
      } else value = text;
    }
    if (value !== undefined) out[name] = value;
  }
  return Object.keys(out).length === 0 && !required ? undefined : out;
}
