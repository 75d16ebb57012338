/**
 * Records of the data topics turned into flat rows, shared by the table and file sinks. Mapping is
 * strict about what a row needs (identity, times, finite numbers) and lenient about the rest: a
 * record that can't be mapped throws PoisonRecord, which sends that record alone to the DLQ.
 */
import type { ConsumedRecord } from "../kafka/processor.ts";

export const SINK_KINDS = ["telemetry", "aggregate", "event", "alarm"] as const;
export type SinkKind = (typeof SINK_KINDS)[number];

/**
 * telemetry.raw/clean → telemetry, telemetry.<resolution> → aggregate, events.* → event, alarms.* → alarm,
 * also behind a prefix (`site1.telemetry.clean`). undefined: the topic needs an entry in `topic_kinds`.
 */
export function kindForTopic(topic: string, overrides: Record<string, SinkKind> = {}): SinkKind | undefined {
  const override = overrides[topic];
  if (override) return override;
  if (/(^|\.)telemetry\.(raw|clean)$/.test(topic)) return "telemetry";
  if (/(^|\.)telemetry\.(1s|10s|1min|1hour)$/.test(topic)) return "aggregate";
  if (/(^|\.)events\.[^.]+$/.test(topic)) return "event";
  if (/(^|\.)alarms\.[^.]+$/.test(topic)) return "alarm";
  return undefined;
}

export class PoisonRecord extends Error {
  constructor(
    readonly reason: "malformed_json" | "unmappable",
    message: string,
  ) {
    super(message);
    this.name = "PoisonRecord";
  }
}

export interface TelemetryRow {
  /** device_time (gateway_time when the device gave none), epoch ms. */
  time: number;
  asset_id: string;
  parameter: string;
  value: number | null;
  /** Booleans ("true"/"false") and strings; numbers go to `value`. */
  value_text: string | null;
  unit: string | null;
  quality: string;
  gateway_time: number | null;
  /** The Kafka record timestamp. */
  kafka_time: number;
  clock_skew_ms: number | null;
  /** `time` / `gateway_time` as the input's own ISO text when it is canonical (saves formatting it again); null otherwise. */
  time_text: string | null;
  gateway_time_text: string | null;
}

export interface AggregateRow {
  window_start: number;
  window_end: number;
  resolution: string;
  asset_id: string;
  parameter: string;
  unit: string | null;
  avg: number | null;
  min: number | null;
  max: number | null;
  stddev: number | null;
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  good_samples: number;
  suspect_samples: number;
  uncertain_samples: number;
  bad_samples: number;
  pct_good: number | null;
  revision: number;
  kafka_time: number;
}

interface SourceColumns {
  kafka_topic: string;
  kafka_partition: number;
  kafka_offset: bigint;
  kafka_time: number;
}

export interface EventRow extends SourceColumns {
  time: number;
  asset_id: string;
  parameter: string | null;
  event_type: string;
  severity: string | null;
  message: string | null;
  source: string | null;
  /** The whole record value, as JSON text. */
  payload: string;
}

export interface AlarmRow extends SourceColumns {
  /** The time of this transition: raised_at / acked_at / cleared_at by state, else the Kafka timestamp. */
  time: number;
  alarm_id: string;
  asset_id: string;
  type: string;
  severity: string;
  state: string;
  message: string | null;
  value: number | null;
  value_text: string | null;
  threshold: number | null;
  unit: string | null;
  raised_at: number | null;
  acked_at: number | null;
  acked_by: string | null;
  cleared_at: number | null;
  payload: string;
}

export type SinkRow =
  | { kind: "telemetry"; row: TelemetryRow }
  | { kind: "aggregate"; row: AggregateRow }
  | { kind: "event"; row: EventRow }
  | { kind: "alarm"; row: AlarmRow };

type Obj = Record<string, unknown>;

const MAX_NAME = 256;

function fail(message: string): never {
  throw new PoisonRecord("unmappable", message);
}

function parseObject(record: ConsumedRecord): Obj {
  if (record.value === undefined || record.value === null) throw new PoisonRecord("malformed_json", "record has no value (tombstone)");
  let parsed: unknown;
  try {
    parsed = JSON.parse(record.value);
  } catch (error) {
    throw new PoisonRecord("malformed_json", `not JSON: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new PoisonRecord("malformed_json", "not a JSON object");
  return parsed as Obj;
}

function cleanJson(record: ConsumedRecord): string {
  const text = clean(record.value!, "(value)");
  // jsonb can't hold \u0000 either, even escaped.
  if (text.includes("\\u0000")) fail("(value): contains an escaped NUL character (\\u0000)");
  return text;
}

/** PostgreSQL text can't hold NUL; Parquet could, but one rule for every sink keeps them interchangeable. */
function clean(text: string, path: string): string {
  if (text.includes("\u0000")) fail(`${path}: contains a NUL character`);
  return text;
}

function name(obj: Obj, key: string, path = key): string {
  const v = obj[key];
  if (typeof v !== "string" || v.length === 0) fail(`${path}: expected a non-empty string, got ${JSON.stringify(v) ?? "nothing"}`);
  if (v.length > MAX_NAME) fail(`${path}: longer than ${MAX_NAME} characters`);
  return clean(v, path);
}

function optText(obj: Obj, key: string, path = key, max = 65_536): string | null {
  const v = obj[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== "string") fail(`${path}: expected a string, got ${JSON.stringify(v)}`);
  if (v.length > max) fail(`${path}: longer than ${max} characters`);
  return clean(v, path);
}

/** Dates between years 1900 and 9999 only: what every target stores without surprises. */
const MIN_TIME = Date.UTC(1900, 0, 1);
const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

function time(v: unknown, path: string): number {
  if (typeof v !== "string") fail(`${path}: expected an ISO 8601 time, got ${JSON.stringify(v) ?? "nothing"}`);
  const fast = canonicalMs(v);
  if (!Number.isNaN(fast)) return fast;
  const ms = Date.parse(v);
  if (!Number.isFinite(ms) || ms < MIN_TIME || ms > MAX_TIME) fail(`${path}: not a valid time: ${JSON.stringify(v)}`);
  return ms;
}

const digits = (v: string, at: number, n: number): number => {
  let value = 0;
  for (let i = at; i < at + n; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return Number.NaN;
    value = value * 10 + d;
  }
  return value;
};

/**
 * Epoch ms of `YYYY-MM-DDTHH:mm:ss.sssZ` with a day and hour no calendar overflows (years 1900-9999):
 * exactly what toISOString prints, and what the gateway's envelopes carry. NaN for anything else,
 * which Date.parse then reads. Date.parse and a regular expression for this form, then Date.UTC,
 * were a tenth of a sink's CPU per reading; this is integer arithmetic.
 */
export function canonicalMs(v: string): number {
  if (v.length !== 24 || v[4] !== "-" || v[7] !== "-" || v[10] !== "T" || v[13] !== ":" || v[16] !== ":" || v[19] !== "." || v[23] !== "Z") return Number.NaN;
  const year = digits(v, 0, 4);
  const month = digits(v, 5, 2);
  const day = digits(v, 8, 2);
  const hour = digits(v, 11, 2);
  const minute = digits(v, 14, 2);
  const second = digits(v, 17, 2);
  const ms = digits(v, 20, 3);
  // NaN fails every comparison.
  if (!(year >= 1900 && month >= 1 && month <= 12 && day >= 1 && day <= 28 && hour <= 23 && minute <= 59 && second <= 59 && ms >= 0)) return Number.NaN;
  return daysFromCivil(year, month, day) * 86_400_000 + hour * 3_600_000 + minute * 60_000 + second * 1000 + ms;
}

/** Days since 1970-01-01 of a proleptic Gregorian date, for years from 1900 (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/** `text` when canonicalMs read it (`fast` is a number), for the targets to take as is. */
function canonicalText(text: unknown, fast: number): string | null {
  return Number.isNaN(fast) ? null : (text as string);
}

function optTime(v: unknown, path: string): number | null {
  return v === undefined || v === null ? null : time(v, path);
}

function optNumber(obj: Obj, key: string, path = key): number | null {
  const v = obj[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== "number" || !Number.isFinite(v)) fail(`${path}: expected a number, got ${JSON.stringify(v)}`);
  return v;
}

function count(obj: Obj, key: string, path: string): number {
  const v = obj[key] ?? 0;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) fail(`${path}: expected a non-negative integer, got ${JSON.stringify(v)}`);
  return v;
}

function valueColumns(v: unknown, path: string): { value: number | null; value_text: string | null } {
  if (v === undefined || v === null) return { value: null, value_text: null };
  if (typeof v === "number") {
    if (!Number.isFinite(v)) fail(`${path}: not a finite number`);
    return { value: v, value_text: null };
  }
  if (typeof v === "boolean") return { value: null, value_text: String(v) };
  if (typeof v === "string") return { value: null, value_text: clean(v, path) };
  return fail(`${path}: expected a number, boolean, string or null, got ${JSON.stringify(v)}`);
}

function kafkaTime(record: ConsumedRecord): number {
  return Number(record.timestamp);
}

const QUALITIES = new Set(["GOOD", "SUSPECT", "BAD", "UNCERTAIN"]);

export function telemetryRow(record: ConsumedRecord): TelemetryRow {
  const r = parseObject(record);
  const ts = r.timestamps;
  if (ts === null || typeof ts !== "object" || Array.isArray(ts)) fail("timestamps: expected an object");
  const t = ts as Obj;
  // Canonical texts (nearly all) are read once here, and kept for the COPY line.
  const gatewayFast = typeof t.gateway_time === "string" ? canonicalMs(t.gateway_time) : Number.NaN;
  const deviceFast = typeof t.device_time === "string" ? canonicalMs(t.device_time) : Number.NaN;
  const gateway = Number.isNaN(gatewayFast) ? optTime(t.gateway_time, "timestamps.gateway_time") : gatewayFast;
  const device = Number.isNaN(deviceFast) ? optTime(t.device_time, "timestamps.device_time") : deviceFast;
  const at = device ?? gateway;
  if (at === null) fail("timestamps: neither device_time nor gateway_time is set");
  const quality = r.quality;
  if (typeof quality !== "string" || !QUALITIES.has(quality)) {
    fail(`quality: expected one of GOOD, SUSPECT, BAD, UNCERTAIN, got ${JSON.stringify(quality) ?? "nothing"}`);
  }
  // Numbers, the common case, without the intermediate object of valueColumns (a row per record).
  let value: number | null = null;
  let value_text: string | null = null;
  if (typeof r.value === "number" && Number.isFinite(r.value)) value = r.value;
  else ({ value, value_text } = valueColumns(r.value, "value"));
  return {
    time: at,
    asset_id: name(r, "asset_id"),
    parameter: name(r, "parameter"),
    value,
    value_text,
    unit: optText(r, "unit", "unit", 64),
    quality,
    gateway_time: gateway,
    kafka_time: kafkaTime(record),
    clock_skew_ms: optNumber(r, "clock_skew_ms"),
    time_text: device !== null ? canonicalText(t.device_time, deviceFast) : canonicalText(t.gateway_time, gatewayFast),
    gateway_time_text: canonicalText(t.gateway_time, gatewayFast),
  };
}

export function aggregateRow(record: ConsumedRecord): AggregateRow {
  const r = parseObject(record);
  const a = r.aggregates;
  const q = r.quality_summary;
  if (a === null || typeof a !== "object" || Array.isArray(a)) fail("aggregates: expected an object");
  if (q === null || typeof q !== "object" || Array.isArray(q)) fail("quality_summary: expected an object");
  const agg = a as Obj;
  const qs = q as Obj;
  const revision = r.revision ?? 0;
  if (typeof revision !== "number" || !Number.isInteger(revision) || revision < 0) fail(`revision: expected a non-negative integer, got ${JSON.stringify(revision)}`);
  const start = time(r.window_start, "window_start");
  const end = time(r.window_end, "window_end");
  if (end <= start) fail("window_end: not after window_start");
  return {
    window_start: start,
    window_end: end,
    resolution: name(r, "resolution"),
    asset_id: name(r, "asset_id"),
    parameter: name(r, "parameter"),
    unit: optText(r, "unit", "unit", 64),
    avg: optNumber(agg, "avg", "aggregates.avg"),
    min: optNumber(agg, "min", "aggregates.min"),
    max: optNumber(agg, "max", "aggregates.max"),
    stddev: optNumber(agg, "stddev", "aggregates.stddev"),
    count: count(agg, "count", "aggregates.count"),
    p50: optNumber(agg, "p50", "aggregates.p50"),
    p95: optNumber(agg, "p95", "aggregates.p95"),
    p99: optNumber(agg, "p99", "aggregates.p99"),
    good_samples: count(qs, "good_samples", "quality_summary.good_samples"),
    suspect_samples: count(qs, "suspect_samples", "quality_summary.suspect_samples"),
    uncertain_samples: count(qs, "uncertain_samples", "quality_summary.uncertain_samples"),
    bad_samples: count(qs, "bad_samples", "quality_summary.bad_samples"),
    pct_good: optNumber(qs, "pct_good", "quality_summary.pct_good"),
    revision,
    kafka_time: kafkaTime(record),
  };
}

function source(record: ConsumedRecord): SourceColumns {
  return { kafka_topic: record.topic, kafka_partition: record.partition, kafka_offset: record.offset, kafka_time: kafkaTime(record) };
}

export function eventRow(record: ConsumedRecord): EventRow {
  const r = parseObject(record);
  return {
    time: time(r.time, "time"),
    asset_id: name(r, "asset_id"),
    parameter: r.parameter === undefined || r.parameter === null ? null : name(r, "parameter"),
    event_type: name(r, "event_type"),
    severity: optText(r, "severity", "severity", 32),
    message: optText(r, "message"),
    source: optText(r, "source", "source", MAX_NAME),
    payload: cleanJson(record),
    ...source(record),
  };
}

export function alarmRow(record: ConsumedRecord): AlarmRow {
  const r = parseObject(record);
  const raised = optTime(r.raised_at, "raised_at");
  const acked = optTime(r.acked_at, "acked_at");
  const cleared = optTime(r.cleared_at, "cleared_at");
  const state = name(r, "state");
  const own = state === "CLEARED" ? cleared : state === "ACKNOWLEDGED" ? acked : state === "ACTIVE" ? raised : null;
  return {
    time: own ?? kafkaTime(record),
    alarm_id: name(r, "alarm_id"),
    asset_id: name(r, "asset_id"),
    type: name(r, "type"),
    severity: name(r, "severity"),
    state,
    message: optText(r, "message"),
    ...valueColumns(r.value, "value"),
    threshold: optNumber(r, "threshold"),
    unit: optText(r, "unit", "unit", 64),
    raised_at: raised,
    acked_at: acked,
    acked_by: optText(r, "acked_by", "acked_by", MAX_NAME),
    cleared_at: cleared,
    payload: cleanJson(record),
    ...source(record),
  };
}

export function mapRecord(record: ConsumedRecord, kind: SinkKind): SinkRow {
  switch (kind) {
    case "telemetry":
      return { kind, row: telemetryRow(record) };
    case "aggregate":
      return { kind, row: aggregateRow(record) };
    case "event":
      return { kind, row: eventRow(record) };
    case "alarm":
      return { kind, row: alarmRow(record) };
  }
}
