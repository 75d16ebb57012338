/**
 * The sink's tables: one per row kind, their DDL (plain PostgreSQL or TimescaleDB hypertables),
 * and the COPY text encoding of their rows.
 */
import type { AggregateRow, AlarmRow, EventRow, SinkKind, TelemetryRow } from "../rows.ts";

export interface Column<R> {
  name: string;
  /** SQL type, also the cast from the text staging table. */
  type: string;
  /** COPY text format: escaped text, or `\N` for null. */
  text(row: R): string;
  notNull: boolean;
}

export interface TableNames {
  telemetry: string;
  aggregates: string;
  events: string;
  alarms: string;
}

export const TABLE_FOR_KIND: Record<SinkKind, keyof TableNames> = {
  telemetry: "telemetry",
  aggregate: "aggregates",
  event: "events",
  alarm: "alarms",
};

const NULL = "\\N";
const SPECIAL = /[\\\t\n\r]/;

/** COPY text escaping: backslash, tab, newline and carriage return. */
export function copyText(value: string | null): string {
  if (value === null) return NULL;
  if (!SPECIAL.test(value)) return value;
  return value.replace(/[\\\t\n\r]/g, (c) => (c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r"));
}

const num = (v: number | null): string => (v === null ? NULL : String(v));
let lastMs = Number.NaN;
let lastIso = "";
/** ISO text of an epoch-ms time; consecutive rows often share one (the Kafka timestamp of a produce batch), so the last is kept. */
const ts = (v: number | null): string => {
  if (v === null) return NULL;
  if (v !== lastMs) {
    lastMs = v;
    lastIso = new Date(v).toISOString();
  }
  return lastIso;
};

/** A nullable column; `req` makes one `not null`. */
function col<R>(name: string, type: string, text: (row: R) => string): Column<R> {
  return { name, type, text, notNull: false };
}

function req<R>(name: string, type: string, text: (row: R) => string): Column<R> {
  return { name, type, text, notNull: true };
}

export const TELEMETRY_COLUMNS: Column<TelemetryRow>[] = [
  req("time", "timestamptz", (r) => r.time_text ?? ts(r.time)),
  req("asset_id", "text", (r) => copyText(r.asset_id)),
  req("parameter", "text", (r) => copyText(r.parameter)),
  col("value", "double precision", (r) => num(r.value)),
  col("value_text", "text", (r) => copyText(r.value_text)),
  col("unit", "text", (r) => copyText(r.unit)),
  req("quality", "text", (r) => r.quality),
  col("gateway_time", "timestamptz", (r) => r.gateway_time_text ?? ts(r.gateway_time)),
  req("kafka_time", "timestamptz", (r) => ts(r.kafka_time)),
  col("clock_skew_ms", "double precision", (r) => num(r.clock_skew_ms)),
];

/** The hot path, written out: the same columns as TELEMETRY_COLUMNS, in order. */
export function telemetryLine(r: TelemetryRow): string {
  return `${r.time_text ?? ts(r.time)}\t${copyText(r.asset_id)}\t${copyText(r.parameter)}\t${num(r.value)}\t${copyText(r.value_text)}\t${copyText(r.unit)}\t${r.quality}\t${r.gateway_time_text ?? ts(r.gateway_time)}\t${ts(r.kafka_time)}\t${num(r.clock_skew_ms)}\n`;
}

export const AGGREGATE_COLUMNS: Column<AggregateRow>[] = [
  req("window_start", "timestamptz", (r) => ts(r.window_start)),
  req("window_end", "timestamptz", (r) => ts(r.window_end)),
  req("resolution", "text", (r) => copyText(r.resolution)),
  req("asset_id", "text", (r) => copyText(r.asset_id)),
  req("parameter", "text", (r) => copyText(r.parameter)),
  col("unit", "text", (r) => copyText(r.unit)),
  col("avg", "double precision", (r) => num(r.avg)),
  col("min", "double precision", (r) => num(r.min)),
  col("max", "double precision", (r) => num(r.max)),
  col("stddev", "double precision", (r) => num(r.stddev)),
  req("count", "bigint", (r) => num(r.count)),
  col("p50", "double precision", (r) => num(r.p50)),
  col("p95", "double precision", (r) => num(r.p95)),
  col("p99", "double precision", (r) => num(r.p99)),
  req("good_samples", "bigint", (r) => num(r.good_samples)),
  req("suspect_samples", "bigint", (r) => num(r.suspect_samples)),
  req("uncertain_samples", "bigint", (r) => num(r.uncertain_samples)),
  req("bad_samples", "bigint", (r) => num(r.bad_samples)),
  col("pct_good", "double precision", (r) => num(r.pct_good)),
  req("revision", "integer", (r) => num(r.revision)),
  req("kafka_time", "timestamptz", (r) => ts(r.kafka_time)),
];

const SOURCE_COLUMNS = <R extends { kafka_topic: string; kafka_partition: number; kafka_offset: bigint; kafka_time: number }>(): Column<R>[] => [
  req("kafka_topic", "text", (r) => copyText(r.kafka_topic)),
  req("kafka_partition", "integer", (r) => String(r.kafka_partition)),
  req("kafka_offset", "bigint", (r) => String(r.kafka_offset)),
  req("kafka_time", "timestamptz", (r) => ts(r.kafka_time)),
];

export const EVENT_COLUMNS: Column<EventRow>[] = [
  req("time", "timestamptz", (r) => ts(r.time)),
  req("asset_id", "text", (r) => copyText(r.asset_id)),
  col("parameter", "text", (r) => copyText(r.parameter)),
  req("event_type", "text", (r) => copyText(r.event_type)),
  col("severity", "text", (r) => copyText(r.severity)),
  col("message", "text", (r) => copyText(r.message)),
  col("source", "text", (r) => copyText(r.source)),
  req("payload", "jsonb", (r) => copyText(r.payload)),
  ...SOURCE_COLUMNS<EventRow>(),
];

export const ALARM_COLUMNS: Column<AlarmRow>[] = [
  req("time", "timestamptz", (r) => ts(r.time)),
  req("alarm_id", "text", (r) => copyText(r.alarm_id)),
  req("asset_id", "text", (r) => copyText(r.asset_id)),
  req("type", "text", (r) => copyText(r.type)),
  req("severity", "text", (r) => copyText(r.severity)),
  req("state", "text", (r) => copyText(r.state)),
  col("message", "text", (r) => copyText(r.message)),
  col("value", "double precision", (r) => num(r.value)),
  col("value_text", "text", (r) => copyText(r.value_text)),
  col("threshold", "double precision", (r) => num(r.threshold)),
  col("unit", "text", (r) => copyText(r.unit)),
  col("raised_at", "timestamptz", (r) => ts(r.raised_at)),
  col("acked_at", "timestamptz", (r) => ts(r.acked_at)),
  col("acked_by", "text", (r) => copyText(r.acked_by)),
  col("cleared_at", "timestamptz", (r) => ts(r.cleared_at)),
  req("payload", "jsonb", (r) => copyText(r.payload)),
  ...SOURCE_COLUMNS<AlarmRow>(),
];

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const COLUMNS: Record<SinkKind, Column<any>[]> = {
  telemetry: TELEMETRY_COLUMNS,
  aggregate: AGGREGATE_COLUMNS,
  event: EVENT_COLUMNS,
  alarm: ALARM_COLUMNS,
};

/** The idempotency key of each kind: a re-delivered row conflicts on it. */
export const CONFLICT_KEY: Record<SinkKind, string[]> = {
  telemetry: ["asset_id", "parameter", "time"],
  aggregate: ["asset_id", "parameter", "resolution", "window_start"],
  event: ["kafka_topic", "kafka_partition", "kafka_offset", "time"],
  alarm: ["kafka_topic", "kafka_partition", "kafka_offset", "time"],
};

/** The time column each table is partitioned (hypertable) and range-scanned on. */
export const TIME_COLUMN: Record<SinkKind, string> = {
  telemetry: "time",
  aggregate: "window_start",
  event: "time",
  alarm: "time",
};

export const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

export interface DdlOptions {
  schema: string;
  tables: TableNames;
  hypertables: boolean;
  chunkIntervalHours: number;
}

/** Idempotent DDL for every table: `create ... if not exists` throughout. */
export function tableDdl(kind: SinkKind, o: DdlOptions): string[] {
  const table = o.tables[TABLE_FOR_KIND[kind]];
  const q = `${ident(o.schema)}.${ident(table)}`;
  const columns = COLUMNS[kind].map((c) => `${ident(c.name)} ${c.type}${c.notNull ? " not null" : ""}`).join(",\n  ");
  const timeCol = TIME_COLUMN[kind];
  const statements = [`create table if not exists ${q} (\n  ${columns}\n)`];
  statements.push(`create unique index if not exists ${ident(`${table}_key`)} on ${q} (${CONFLICT_KEY[kind].map(ident).join(", ")})`);
  if (kind === "aggregate") statements.push(`create index if not exists ${ident(`${table}_resolution_time`)} on ${q} (resolution, window_start)`);
  if (kind === "event") statements.push(`create index if not exists ${ident(`${table}_asset_time`)} on ${q} (asset_id, time)`);
  if (kind === "alarm") {
    statements.push(`create index if not exists ${ident(`${table}_alarm_time`)} on ${q} (alarm_id, time)`);
    statements.push(`create index if not exists ${ident(`${table}_asset_time`)} on ${q} (asset_id, time)`);
  }
  if (o.hypertables) {
    statements.push(
      `select create_hypertable('${q.replace(/'/g, "''")}'::regclass, '${timeCol}', chunk_time_interval => interval '${o.chunkIntervalHours} hours', if_not_exists => true, migrate_data => true)`,
    );
  } else if (kind !== "aggregate") {
    // Plain tables: BRIN keeps time-range scans cheap on append-mostly data at a tiny fraction of a btree's size.
    statements.push(`create index if not exists ${ident(`${table}_time_brin`)} on ${q} using brin (${ident(timeCol)})`);
  }
  return statements;
}
