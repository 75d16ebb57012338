/**
 * Parquet files for the sink's rows, one typed schema per row kind (hyparquet-writer, pure JS:
 * nothing to embed in the compiled binary). Times are INT64 TIMESTAMP(MILLIS, UTC), numbers
 * DOUBLE, names UTF8 strings; every file also carries its Kafka coordinates per row.
 */
import type { CompressionCodec, SchemaElement } from "hyparquet";
import { parquetWriteBuffer } from "hyparquet-writer";
import type { SinkBatchItem } from "../define.ts";
import type { SinkKind, SinkRow } from "../rows.ts";

type Physical = "timestamp" | "double" | "string" | "int32" | "int64" | "json";

interface FileColumn {
  name: string;
  type: Physical;
  required: boolean;
  /** Value for one row; null for a missing optional value. */
  get(item: SinkBatchItem<SinkRow>): number | bigint | string | null;
}

// The row is typed by kind; reading it through `any` here keeps the column lists short.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const r = (item: SinkBatchItem<SinkRow>): any => item.row.row;
const c = (name: string, type: Physical, required: boolean, get: FileColumn["get"]): FileColumn => ({ name, type, required, get });
const field = (name: string, type: Physical, required = false) => c(name, type, required, (item) => r(item)[name] ?? null);

const KAFKA_COLUMNS: FileColumn[] = [
  c("kafka_time", "timestamp", true, (item) => Number(item.record.timestamp)),
  c("kafka_partition", "int32", true, (item) => item.record.partition),
  c("kafka_offset", "int64", true, (item) => item.record.offset),
];

export const FILE_COLUMNS: Record<SinkKind, FileColumn[]> = {
  telemetry: [
    c("device_time", "timestamp", true, (item) => r(item).time),
    field("gateway_time", "timestamp"),
    field("asset_id", "string", true),
    field("parameter", "string", true),
    field("value", "double"),
    field("value_text", "string"),
    field("unit", "string"),
    field("quality", "string", true),
    field("clock_skew_ms", "double"),
    ...KAFKA_COLUMNS,
  ],
  aggregate: [
    field("window_start", "timestamp", true),
    field("window_end", "timestamp", true),
    field("resolution", "string", true),
    field("asset_id", "string", true),
    field("parameter", "string", true),
    field("unit", "string"),
    field("avg", "double"),
    field("min", "double"),
    field("max", "double"),
    field("stddev", "double"),
    field("count", "int64", true),
    field("p50", "double"),
    field("p95", "double"),
    field("p99", "double"),
    field("good_samples", "int64", true),
    field("suspect_samples", "int64", true),
    field("uncertain_samples", "int64", true),
    field("bad_samples", "int64", true),
    field("pct_good", "double"),
    field("revision", "int32", true),
    ...KAFKA_COLUMNS,
  ],
  event: [
    field("time", "timestamp", true),
    field("asset_id", "string", true),
    field("parameter", "string"),
    field("event_type", "string", true),
    field("severity", "string"),
    field("message", "string"),
    field("source", "string"),
    field("payload", "json", true),
    ...KAFKA_COLUMNS,
  ],
  alarm: [
    field("time", "timestamp", true),
    field("alarm_id", "string", true),
    field("asset_id", "string", true),
    field("type", "string", true),
    field("severity", "string", true),
    field("state", "string", true),
    field("message", "string"),
    field("value", "double"),
    field("value_text", "string"),
    field("threshold", "double"),
    field("unit", "string"),
    field("raised_at", "timestamp"),
    field("acked_at", "timestamp"),
    field("acked_by", "string"),
    field("cleared_at", "timestamp"),
    field("payload", "json", true),
    ...KAFKA_COLUMNS,
  ],
};

function schemaElement(column: FileColumn): SchemaElement {
  const repetition_type = column.required ? "REQUIRED" : "OPTIONAL";
  switch (column.type) {
    case "timestamp":
      return {
        name: column.name,
        type: "INT64",
        converted_type: "TIMESTAMP_MILLIS",
        logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MILLIS" },
        repetition_type,
      };
    case "double":
      return { name: column.name, type: "DOUBLE", repetition_type };
    case "int32":
      return { name: column.name, type: "INT32", repetition_type };
    case "int64":
      return { name: column.name, type: "INT64", repetition_type };
    case "string":
      return { name: column.name, type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type };
    case "json":
      // Stored as the record's JSON text: UTF8 with the JSON logical type for readers that know it.
      return { name: column.name, type: "BYTE_ARRAY", converted_type: "UTF8", logical_type: { type: "JSON" }, repetition_type };
  }
}

export interface ParquetOptions {
  codec: CompressionCodec;
  rowGroupRows: number;
}

/** One file for rows of one kind. */
export function encodeParquet(kind: SinkKind, items: SinkBatchItem<SinkRow>[], options: ParquetOptions): Uint8Array {
  const columns = FILE_COLUMNS[kind];
  const columnData = columns.map((column) => {
    const data: (number | bigint | string | null)[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      const v = column.get(items[i]!);
      data[i] = column.type === "int64" && typeof v === "number" ? BigInt(v) : v;
    }
    return { name: column.name, data, nullable: !column.required };
  });
  const buffer = parquetWriteBuffer({
    columnData,
    schema: [{ name: "root", num_children: columns.length }, ...columns.map(schemaElement)],
    codec: options.codec,
    rowGroupSize: options.rowGroupRows,
    kvMetadata: [{ key: "gateway.kind", value: kind }],
    createdBy: "industrial-data-gateway sink-s3-parquet",
  });
  return new Uint8Array(buffer);
}
