/**
 * The register-map editor: one table row per field (address, param, unit, type, byte order,
 * scale, offset, bit, length), both address notations beside each address, and the validator's
 * errors in the cell they concern.
 */
import { formatAddress, parseAddress, type AddressingMode } from "../../adapters/modbus/address.ts";
import { BYTE_ORDERS, MODBUS_DATA_TYPES } from "../../adapters/modbus/codec.ts";
import type { RegisterConfig } from "../../adapters/modbus/mapping.ts";
import type { FieldError } from "../../src/config/schema-errors.ts";
import type { Sample } from "../../src/registry.ts";
import { formatValue, toneOf } from "../format.ts";
import { attr, html, type Html } from "../html.ts";
import type { OrderPreview } from "./byte-order.ts";

export const REGISTER_COLUMNS = ["address", "param", "unit", "type", "byte_order", "scale", "offset", "bit", "length"] as const;
export type RegisterColumn = (typeof REGISTER_COLUMNS)[number];
export type RegisterRow = Record<RegisterColumn, string>;

export const REGISTERS_PATH = "adapter.mapping.registers";
const FIELD_PREFIX = "reg.";

const TABLES: Record<number, string> = { 1: "coil", 2: "discrete input", 3: "holding register", 4: "input register" };

export const emptyRow = (): RegisterRow => Object.fromEntries(REGISTER_COLUMNS.map((c) => [c, ""])) as RegisterRow;

export type AddressInfo = { modicon: string; explicit: string; table: string } | { error: string };

/** Reads either notation, whatever the pipeline's addressing mode. */
export function describeAddress(address: string, addressing: AddressingMode): AddressInfo {
  const text = address.trim();
  if (!text) return { error: "enter an address" };
  const other: AddressingMode = addressing === "modicon" ? "explicit" : "modicon";
  for (const mode of [addressing, other]) {
    try {
      const { functionCode, address: pdu } = parseAddress(text, mode);
      return { ...formatAddress(functionCode, pdu), table: TABLES[functionCode]! };
    } catch {
      // try the other notation
    }
  }
  return { error: addressing === "modicon" ? 'not an address: use "40001" or "3:0"' : 'not an address: use "3:0" or "40001"' };
}

/** The config key for an address typed in either notation; unparseable input stays as typed, for the validator to name. */
export function normalizeAddress(address: string, addressing: AddressingMode): string {
  const info = describeAddress(address, addressing);
  return "error" in info ? address.trim() : info[addressing];
}

const str = (v: unknown) => (v === undefined || v === null ? "" : String(v));

/** Coils, discrete inputs, input registers, holding registers, each by address; unreadable keys last. */
function addressOrder(key: string): number {
  const info = describeAddress(key, "modicon");
  if ("error" in info) return Number.MAX_SAFE_INTEGER;
  const [fc, address] = info.explicit.split(":").map(Number) as [number, number];
  const table = { 1: 0, 2: 1, 4: 2, 3: 3 }[fc] ?? 4;
  return table * 100_000 + address;
}

/** Rows of a stored register map, in address order (stored maps carry no order of their own). */
export function rowsFromRegisters(registers: unknown): RegisterRow[] {
  if (!registers || typeof registers !== "object") return [];
  const rows: RegisterRow[] = [];
  const entries = Object.entries(registers as Record<string, RegisterConfig | RegisterConfig[]>).sort(([a], [b]) => addressOrder(a) - addressOrder(b) || a.localeCompare(b));
  for (const [key, entry] of entries) {
    for (const r of Array.isArray(entry) ? entry : [entry]) {
      rows.push({
        address: key,
        param: str(r.param),
        unit: str(r.unit),
        type: str(r.type),
        byte_order: str(r.byte_order),
        scale: str(r.scale),
        offset: str(r.offset),
        bit: r.bits ? `${r.bits[0]}-${r.bits[1]}` : str(r.bit),
        length: str(r.length),
      });
    }
  }
  return rows;
}

export function rowsFromForm(form: FormData): RegisterRow[] {
  const columns = Object.fromEntries(REGISTER_COLUMNS.map((c) => [c, form.getAll(FIELD_PREFIX + c).map(String)])) as Record<RegisterColumn, string[]>;
  const count = Math.max(...REGISTER_COLUMNS.map((c) => columns[c].length));
  const rows: RegisterRow[] = [];
  for (let i = 0; i < count; i++) {
    const row = Object.fromEntries(REGISTER_COLUMNS.map((c) => [c, (columns[c][i] ?? "").trim()])) as RegisterRow;
    if (REGISTER_COLUMNS.some((c) => row[c] !== "")) rows.push(row);
  }
  return rows;
}

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;
const num = (text: string): number | string => (NUMBER.test(text) ? Number(text) : text);

export interface BuiltRegisters {
  registers: Record<string, unknown>;
  /** Config key → the rows behind it, in list order (a key with several rows becomes a list). */
  keyRows: Map<string, number[]>;
}

export function registersFromRows(rows: RegisterRow[], addressing: AddressingMode): BuiltRegisters {
  const entries = new Map<string, Record<string, unknown>[]>();
  const keyRows = new Map<string, number[]>();
  rows.forEach((row, index) => {
    const key = normalizeAddress(row.address, addressing);
    const entry: Record<string, unknown> = { param: row.param };
    if (row.unit) entry.unit = row.unit;
    if (row.type) entry.type = row.type;
    if (row.byte_order) entry.byte_order = row.byte_order;
    if (row.scale) entry.scale = num(row.scale);
    if (row.offset) entry.offset = num(row.offset);
    const range = /^(\d+)\s*(?:-|\.\.)\s*(\d+)$/.exec(row.bit);
    if (range) entry.bits = [Number(range[1]), Number(range[2])];
    else if (row.bit) entry.bit = num(row.bit);
    if (row.length) entry.length = num(row.length);
    entries.set(key, [...(entries.get(key) ?? []), entry]);
    keyRows.set(key, [...(keyRows.get(key) ?? []), index]);
  });
  const registers = Object.fromEntries([...entries].map(([key, list]) => [key, list.length === 1 ? list[0] : list]));
  return { registers, keyRows };
}

export interface RowErrors {
  /** Row index → column (or "row") → messages. */
  byRow: Map<number, Map<RegisterColumn | "row", string[]>>;
  /** Errors about the map as a whole (no rows, read limits). */
  general: string[];
}

const PATH = /^\[("(?:[^"\\]|\\.)*")\](?:\[(\d+)\])?(?:\.([a-z_]+))?/;

/** Places `adapter.mapping.registers["40001"][1].type` on the row and cell it came from. */
export function rowErrors(errors: FieldError[], keyRows: Map<string, number[]>, prefix = REGISTERS_PATH): RowErrors {
  const byRow: RowErrors["byRow"] = new Map();
  const general: string[] = [];
  for (const error of errors) {
    if (!error.path.startsWith(prefix)) continue;
    const rest = error.path.slice(prefix.length);
    const match = PATH.exec(rest);
    const key = match ? (JSON.parse(match[1]!) as string) : undefined;
    const row = key === undefined ? undefined : keyRows.get(key)?.[Number(match![2] ?? 0)];
    if (row === undefined) {
      general.push(rest ? `${rest}: ${error.message}` : error.message);
      continue;
    }
    const field = match![3];
    const column: RegisterColumn | "row" = field === "bits" ? "bit" : (REGISTER_COLUMNS as readonly string[]).includes(field ?? "") ? (field as RegisterColumn) : "row";
    const cells = byRow.get(row) ?? new Map();
    cells.set(column, [...(cells.get(column) ?? []), error.message]);
    byRow.set(row, cells);
  }
  return { byRow, general };
}

export function notationHtml(address: string, addressing: AddressingMode): Html {
  if (!address.trim()) return html`<span class="notation muted">—</span>`;
  const info = describeAddress(address, addressing);
  if ("error" in info) return html`<span class="notation text-bad">${info.error}</span>`;
  return html`<span class="notation" title="${info.table}, function code ${info.explicit.split(":")[0]}, 0-based address ${info.explicit.split(":")[1]}">${info.modicon} = ${info.explicit} · ${info.table}</span>`;
}

export interface TestView {
  readings: Sample[];
  previews: Map<number, OrderPreview>;
}

export interface RowOptions {
  addressing: AddressingMode;
  readonly: boolean;
  errors?: Map<RegisterColumn | "row", string[]>;
  test?: TestView;
  /** Position in the table, for labels ("row 3") and error ids; absent for rows added in the browser. */
  index?: number;
}

const COLUMN_LABEL: Record<RegisterColumn, string> = {
  address: "Address",
  param: "Parameter",
  unit: "Unit",
  type: "Type",
  byte_order: "Byte order",
  scale: "Scale",
  offset: "Offset",
  bit: "Bit(s)",
  length: "Length",
};

/**
 * A blank option stands for "not set" (the default applies), so a stored config round-trips
 * unchanged: an explicit "uint16" stays explicit, an absent type stays absent.
 */
function choiceSelect(common: Html, choices: readonly string[], fallback: string, value: string): Html {
  const known = choices.includes(value);
  return html`<select ${common}><option value="">(${fallback})</option>${choices.map((c) => html`<option${attr("selected", c === value)}>${c}</option>`)}${value && !known ? html`<option selected>${value}</option>` : ""}</select>`;
}

function cell(row: RegisterRow, column: RegisterColumn, options: RowOptions, extra: Html | string = ""): Html {
  const value = row[column];
  const messages = options.errors?.get(column) ?? (column === "address" ? options.errors?.get("row") : undefined);
  if (options.readonly) return html`<td class="col-${column}">${value || html`<span class="muted">—</span>`}${extra}</td>`;
  const label = `${COLUMN_LABEL[column]}${options.index === undefined ? " (new row)" : `, row ${options.index + 1}`}`;
  const errorId = options.index === undefined ? undefined : `reg-${options.index}-${column}-error`;
  const common = html`name="${FIELD_PREFIX}${column}"${attr("id", options.index === undefined ? undefined : `reg-${options.index}-${column}`)} aria-label="${label}"${attr("aria-invalid", messages ? "true" : undefined)}${attr("aria-describedby", messages ? errorId : undefined)}`;
  let input: Html;
  if (column === "type") {
    input = choiceSelect(common, MODBUS_DATA_TYPES, "uint16", value);
  } else if (column === "byte_order") {
    input = choiceSelect(common, BYTE_ORDERS, "ABCD", value);
  } else {
    const placeholder = { scale: "1", offset: "0", bit: "—", length: "—", unit: "", param: "", address: "40001" }[column];
    const extraAttrs =
      column === "address"
        ? html` hx-get="/pipelines/builder/address" hx-trigger="change" hx-target="next .notation" hx-swap="outerHTML" hx-include="[name='adapter.mapping.addressing']" autocomplete="off"`
        : html``;
    input = html`<input type="text" ${common} value="${value}" placeholder="${placeholder}" spellcheck="false"${extraAttrs}>`;
  }
  return html`<td class="col-${column}">${input}${extra}${messages ? html`<span class="cell-error"${attr("id", errorId)}>${messages.join("; ")}</span>` : ""}</td>`;
}

function testCell(row: RegisterRow, test: TestView | undefined): Html {
  if (!test) return html``;
  const reading = test.readings.find((r) => r.parameter === row.param);
  if (!reading) return html`<td class="col-test muted">—</td>`;
  return html`<td class="col-test"><span class="value">${formatValue(reading.value)}</span>${reading.unit ? html` <span class="muted">${reading.unit}</span>` : ""} <span class="badge badge-${toneOf(reading.quality)}">${reading.quality}</span>${reading.error ? html`<span class="cell-error">${reading.error}</span>` : ""}</td>`;
}

function previewRow(preview: OrderPreview, columns: number): Html {
  return html`<tr class="reg-preview">
  <td colspan="${columns}">
    <div class="orders" role="group" aria-label="Byte orders for ${preview.key}">
      <span class="words" title="Registers as read, in address order">raw <code>${preview.words.map((w) => `0x${w.toString(16).padStart(4, "0").toUpperCase()}`).join(" ")}</code></span>
      ${preview.orders.map(
        (o) => html`<button type="button" class="order${o.order === preview.configured ? " is-configured" : ""}" data-use-order="${o.order}"
          aria-pressed="${o.order === preview.configured ? "true" : "false"}" title="Use ${o.order} for this register">
          <span class="order-name">${o.order}</span> <span class="order-value">${o.value}</span></button>`,
      )}
    </div>
  </td>
</tr>`;
}

export function registerRow(row: RegisterRow, options: RowOptions): Html {
  const test = options.test;
  const columns = REGISTER_COLUMNS.length + (test ? 1 : 0) + (options.readonly ? 0 : 1);
  const preview = options.index === undefined ? undefined : test?.previews.get(options.index);
  return html`<tr class="reg-row">
  ${cell(row, "address", options, notationHtml(row.address, options.addressing))}
  ${REGISTER_COLUMNS.filter((c) => c !== "address").map((c) => cell(row, c, options))}
  ${testCell(row, test)}
  ${options.readonly ? "" : html`<td class="col-remove"><button type="button" class="btn-icon" data-remove-row aria-label="Remove ${options.index === undefined ? "this new row" : `row ${options.index + 1}`}" title="Remove row">✕</button></td>`}
</tr>${preview ? previewRow(preview, columns) : ""}`;
}

export interface EditorOptions {
  rows: RegisterRow[];
  addressing: AddressingMode;
  readonly: boolean;
  errors?: RowErrors;
  test?: TestView;
  csvStatus?: { imported: number; messages: string[] };
}

export function registerEditor(options: EditorOptions): Html {
  const { rows, readonly, test } = options;
  const general = options.errors?.general ?? [];
  return html`<fieldset class="section" id="register-editor">
  <legend>Register map</legend>
  <p class="hint">One row per value. Type an address in either notation; it is stored in the pipeline's addressing mode. Several rows on one address read the bits of a status word. A type or byte order in parentheses is the default.</p>
  ${general.length ? html`<p class="field-error" id="${"f-adapter_mapping_registers"}">${general.join("; ")}</p>` : ""}
  <div class="table-scroll">
  <table class="data registers">
    <thead><tr>
      ${REGISTER_COLUMNS.map((c) => html`<th scope="col" class="col-${c}">${COLUMN_LABEL[c]}</th>`)}
      ${test ? html`<th scope="col" class="col-test">Test value</th>` : ""}
      ${readonly ? "" : html`<th scope="col" class="col-remove"><span class="visually-hidden">Remove</span></th>`}
    </tr></thead>
    <tbody id="register-rows">
      ${rows.map((row, index) => registerRow(row, { addressing: options.addressing, readonly, index, ...(options.errors?.byRow.get(index) ? { errors: options.errors.byRow.get(index)! } : {}), ...(test ? { test } : {}) }))}
    </tbody>
  </table>
  </div>
  ${rows.length === 0 && readonly ? html`<p class="muted">No registers.</p>` : ""}
  ${
    readonly
      ? ""
      : html`<div class="row-actions">
    <button type="button" class="btn" hx-get="/pipelines/builder/row" hx-target="#register-rows" hx-swap="beforeend" hx-include="[name='adapter.mapping.addressing']">Add register</button>
  </div>
  <details class="csv-import"${attr("open", Boolean(options.csvStatus))}>
    <summary>Import a register list (CSV)</summary>
    <p class="hint">Columns: <code>address,param,unit,type,byte_order,scale,offset</code> (optional <code>bit</code>, <code>length</code>), with a header row; comma, semicolon or tab separated. PLC type names (REAL, DINT, WORD…) are understood.</p>
    <div class="fields">
      <div class="field field-wide"><label for="csv-text">Paste CSV</label><textarea id="csv-text" name="csv" rows="5" class="mono" spellcheck="false" placeholder="address,param,unit,type,byte_order,scale,offset&#10;40001,pressure,psi,float32,ABCD,1,0"></textarea></div>
      <div class="field"><label for="csv-file">…or choose a file</label><input id="csv-file" type="file" name="csv_file" accept=".csv,.txt,text/csv"></div>
      <fieldset class="field radios"><legend>Imported rows</legend>
        <label><input type="radio" name="csv_mode" value="append" checked> add to the table</label>
        <label><input type="radio" name="csv_mode" value="replace"> replace the table</label>
      </fieldset>
    </div>
    <button type="button" class="btn" hx-post="/pipelines/builder/csv" hx-encoding="multipart/form-data" hx-target="#register-editor" hx-swap="outerHTML">Import</button>
    ${
      options.csvStatus
        ? html`<div class="notice ${options.csvStatus.messages.length ? "notice-warn" : "notice-ok"}" role="status" data-focus>
      <p>Imported ${options.csvStatus.imported} row(s).</p>${options.csvStatus.messages.length ? html`<ul>${options.csvStatus.messages.map((m) => html`<li>${m}</li>`)}</ul>` : ""}</div>`
        : ""
    }
  </details>`
  }
</fieldset>`;
}
