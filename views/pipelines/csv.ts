/**
 * CSV import of a device's register list, as vendors and spreadsheets export it: a header row
 * naming the columns (address, param, unit, type, byte_order, scale, offset; also bit, length),
 * comma, semicolon or tab separated, quotes as in RFC 4180. Pure.
 */
import { MODBUS_DATA_TYPES } from "../../adapters/modbus/codec.ts";
import { REGISTER_COLUMNS, type RegisterColumn, type RegisterRow } from "./registers.ts";

export const CSV_DEFAULT_COLUMNS: readonly RegisterColumn[] = ["address", "param", "unit", "type", "byte_order", "scale", "offset"];
export const CSV_MAX_ROWS = 5000;

const ALIASES: Record<string, RegisterColumn> = {
  address: "address", addr: "address", register: "address", reg: "address", modbus_address: "address",
  param: "param", parameter: "param", name: "param", tag: "param",
  unit: "unit", units: "unit", eng_unit: "unit", engineering_unit: "unit",
  type: "type", data_type: "type", datatype: "type",
  byte_order: "byte_order", byteorder: "byte_order", order: "byte_order", endianness: "byte_order", word_order: "byte_order",
  scale: "scale", gain: "scale", multiplier: "scale", factor: "scale",
  offset: "offset",
  bit: "bit", bits: "bit",
  length: "length", len: "length",
};

/** PLC and vendor spellings of the data types. */
const TYPE_SYNONYMS: Record<string, string> = {
  bit: "bool", boolean: "bool", coil: "bool",
  int: "int16", short: "int16", word: "uint16", uint: "uint16", ushort: "uint16",
  dint: "int32", long: "int32", udint: "uint32", dword: "uint32", ulong: "uint32",
  real: "float32", float: "float32", single: "float32",
  lreal: "float64", double: "float64",
  lint: "int64", ulint: "uint64", lword: "uint64",
  str: "string", text: "string", ascii: "string",
};

export function normalizeType(type: string): string {
  const t = type.trim().toLowerCase();
  if (t === "") return "";
  if ((MODBUS_DATA_TYPES as readonly string[]).includes(t)) return t;
  return TYPE_SYNONYMS[t] ?? type.trim();
}

function detectDelimiter(firstLine: string): string {
  const counts = [",", ";", "\t"].map((d) => [d, firstLine.split(d).length] as const);
  return counts.sort((a, b) => b[1] - a[1])[0]![0];
}

/** Rows of cells; quoted cells may hold the delimiter, quotes ("") and newlines. */
export function parseCsv(text: string): string[][] {
  const source = text.replace(/^\uFEFF/, "");
  const delimiter = detectDelimiter(source.split(/\r?\n/, 1)[0] ?? "");
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (quoted) {
      if (c === '"' && source[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"' && cell.trim() === "") {
      quoted = true;
      cell = "";
    } else if (c === delimiter) {
      row.push(cell.trim());
      cell = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && source[i + 1] === "\n") i++;
      row.push(cell.trim());
      rows.push(row);
      row = [];
      cell = "";
    } else cell += c;
  }
  if (cell !== "" || row.length > 0) {
    row.push(cell.trim());
    rows.push(row);
  }
  return rows.filter((r) => r.some((c) => c !== "") && !r[0]!.startsWith("#"));
}

const headerKey = (cell: string) => cell.trim().toLowerCase().replace(/[\s-]+/g, "_");

export interface CsvImport {
  rows: RegisterRow[];
  errors: string[];
}

export function registerRowsFromCsv(text: string): CsvImport {
  const table = parseCsv(text);
  const errors: string[] = [];
  if (table.length === 0) return { rows: [], errors: ["the CSV is empty"] };
  const first = table[0]!.map(headerKey);
  const hasHeader = first.some((c) => ALIASES[c] === "address") && first.some((c) => ALIASES[c] === "param");
  const columns: Array<RegisterColumn | undefined> = hasHeader ? first.map((c) => ALIASES[c]) : [...CSV_DEFAULT_COLUMNS];
  if (hasHeader) {
    const unknown = table[0]!.filter((_, i) => columns[i] === undefined);
    if (unknown.length > 0) errors.push(`ignored column(s): ${unknown.join(", ")}`);
  }
  const body = hasHeader ? table.slice(1) : table;
  if (body.length > CSV_MAX_ROWS) errors.push(`only the first ${CSV_MAX_ROWS} of ${body.length} rows were imported`);
  const rows: RegisterRow[] = [];
  body.slice(0, CSV_MAX_ROWS).forEach((cells, i) => {
    const line = i + (hasHeader ? 2 : 1);
    const row = Object.fromEntries(REGISTER_COLUMNS.map((c) => [c, ""])) as RegisterRow;
    cells.forEach((cell, c) => {
      const column = columns[c];
      if (column) row[column] = cell;
    });
    row.type = normalizeType(row.type);
    row.byte_order = row.byte_order.toUpperCase();
    if (!row.address || !row.param) errors.push(`line ${line}: needs at least an address and a param; skipped`);
    else rows.push(row);
  });
  return { rows, errors };
}
