/**
 * From OPC UA DataValues to the gateway's Sample: quality from the StatusCode's severity bits,
 * JSON-safe values from Variants, and the duplicate check that keeps a reconnect from sending
 * the same device sample twice.
 */
import type { DataValue } from "node-opcua-data-value";
import type { StatusCode } from "node-opcua-status-code";
import { DataType, VariantArrayType, type Variant } from "node-opcua-variant";
import type { Quality } from "../../src/envelope/reading.ts";
import type { Sample } from "../../src/registry.ts";

/** OPC UA Part 4 7.39: bits 30-31 are the severity: 00 Good, 01 Uncertain, 10 Bad (11 reserved, read as Bad). */
export function qualityOf(code: number): Quality {
  const severity = code >>> 30;
  return severity === 0 ? "GOOD" : severity === 1 ? "UNCERTAIN" : "BAD";
}

/** "BadNodeIdUnknown (0x80340000)"; undefined for plain Good (0), so healthy readings carry no text. */
export function statusText(status: StatusCode): string | undefined {
  return status.value === 0 ? undefined : `${status.name} (0x${(status.value >>> 0).toString(16).padStart(8, "0")})`;
}

const TWO_32 = 2 ** 32;

/** node-opcua holds 64-bit integers as [high, low] words; exact up to 2^53, a decimal string beyond. */
function int64Value(words: unknown, signed: boolean): number | string {
  if (!Array.isArray(words) || words.length !== 2) return Number(words);
  const [high, low] = words as [number, number];
  const big = (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0);
  const value = signed ? BigInt.asIntN(64, big) : big;
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
}

function scalar(dataType: DataType, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (dataType) {
    case DataType.Boolean:
      return Boolean(value);
    case DataType.SByte:
    case DataType.Byte:
    case DataType.Int16:
    case DataType.UInt16:
    case DataType.Int32:
    case DataType.UInt32:
    case DataType.Float:
    case DataType.Double:
      return value as number;
    case DataType.Int64:
      return int64Value(value, true);
    case DataType.UInt64:
      return int64Value(value, false);
    case DataType.String:
    case DataType.XmlElement:
      return String(value);
    case DataType.DateTime:
      return value instanceof Date ? value.toISOString() : String(value);
    case DataType.ByteString:
      return Buffer.isBuffer(value) ? value.toString("base64") : String(value);
    case DataType.LocalizedText:
      return (value as { text?: string | null }).text ?? null;
    case DataType.QualifiedName:
      return (value as { name?: string | null }).name ?? null;
    case DataType.StatusCode:
      return (value as StatusCode).name;
    case DataType.Guid:
    case DataType.NodeId:
    case DataType.ExpandedNodeId:
      return String(value);
    default: {
      // Structures: their JSON form, as text.
      const json = (value as { toJSON?: () => unknown }).toJSON?.() ?? value;
      return json;
    }
  }
}

/**
 * A Variant as an envelope value: numbers, booleans and strings as they are; 64-bit integers
 * exactly (a decimal string past 2^53); arrays, matrices and structures as JSON text;
 * non-finite floats as null (JSON cannot carry them; the caller marks the sample BAD).
 */
export function variantValue(variant: Variant | null | undefined): Sample["value"] {
  if (!variant || variant.dataType === DataType.Null) return null;
  if (variant.arrayType !== VariantArrayType.Scalar) {
    const items = Array.from(variant.value as ArrayLike<unknown>, (v) => scalar(variant.dataType, v));
    return JSON.stringify(items, (_, v) => (typeof v === "bigint" ? v.toString() : v));
  }
  const value = scalar(variant.dataType, variant.value);
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  return JSON.stringify(value);
}

export interface NodeTarget {
  assetId: string;
  param: string;
  unit?: string;
}

/**
 * One DataValue as a Sample. device_time is the source timestamp (time_source "device"); a
 * server that sends none gets the gateway's clock (time_source "gateway"). The server
 * timestamp goes to metadata.server_time.
 */
export function sampleOf(target: NodeTarget, dataValue: DataValue, now: Date): Sample {
  const status = dataValue.statusCode;
  let quality = qualityOf(status.value);
  const value = quality === "BAD" ? null : variantValue(dataValue.value);
  let error: string | undefined;
  const raw = dataValue.value?.value;
  if (value === null && typeof raw === "number" && !Number.isFinite(raw) && quality !== "BAD") {
    quality = "BAD";
    error = `value is ${raw}`;
  }
  const source = dataValue.sourceTimestamp;
  const hasSource = source instanceof Date && source.getTime() > 0;
  const server = dataValue.serverTimestamp;
  const text = statusText(status);
  return {
    asset_id: target.assetId,
    parameter: target.param,
    value,
    ...(target.unit === undefined ? {} : { unit: target.unit }),
    quality,
    device_time: hasSource ? source : now,
    time_source: hasSource ? "device" : "gateway",
    ...(text === undefined ? {} : { status_text: text }),
    ...(error === undefined ? {} : { error }),
    ...(server instanceof Date && server.getTime() > 0 ? { metadata: { server_time: server.toISOString() } } : {}),
  };
}

/** What identifies one device sample of a node: source timestamp, status and value. */
export function sampleIdentity(sample: Sample): string {
  if (sample.time_source !== "device") return ""; // no device clock: every read is a new sample
  return `${sample.device_time.getTime()}|${sample.status_text ?? ""}|${typeof sample.value}|${String(sample.value)}`;
}

/**
 * Remembers the last sample delivered per node. After a reconnect (or a restarted server) the
 * server sends each node's current value again with its original source timestamp; that
 * sample was delivered already and is dropped. Synthetic samples (BAD for an outage, made by
 * the gateway) do not count as delivered, so they never hide a real one.
 */
export class DuplicateFilter {
  readonly #last: string[];
  dropped = 0;

  constructor(size: number) {
    this.#last = new Array<string>(size).fill("");
  }

  /** True when the sample is new (and now remembered); false for a repeat of the last one. */
  admit(index: number, sample: Sample): boolean {
    const identity = sampleIdentity(sample);
    if (identity === "") return true;
    if (this.#last[index] === identity) {
      this.dropped++;
      return false;
    }
    this.#last[index] = identity;
    return true;
  }
}
