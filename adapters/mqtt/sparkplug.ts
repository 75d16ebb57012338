import protobuf from "protobufjs";
import type { Quality } from "../../src/envelope/reading.ts";
import type { Sample } from "../../src/registry.ts";
import type { Template } from "./topic.ts";

/**
 * Sparkplug B (Eclipse Sparkplug 3.0) as a host application sees it: the protobuf payload, the
 * topic namespace `spBv1.0/<group_id>/<message_type>/<edge_node_id>[/<device_id>]`, births that
 * bind metric names to aliases, and the per-edge-node sequence number (0..255, wrapping) that
 * every message after NBIRTH carries.
 *
 * The schema below is the subset of the specification's `sparkplug_b.proto` (proto2, package
 * org.eclipse.tahu.protobuf) that carries metric values; field numbers and types are the spec's,
 * so payloads of any conforming edge node decode (unknown fields — datasets, templates, metadata —
 * are skipped by protobuf). Tests encode with this same schema.
 */
export const SPARKPLUG_B_PROTO = `
syntax = "proto2";
package org.eclipse.tahu.protobuf;

message Payload {
  message PropertyValue {
    optional uint32 type = 1;
    optional bool is_null = 2;
    oneof value {
      uint32 int_value = 3;
      uint64 long_value = 4;
      float float_value = 5;
      double double_value = 6;
      bool boolean_value = 7;
      string string_value = 8;
      PropertySet propertyset_value = 9;
      PropertySetList propertysets_value = 10;
    }
  }
  message PropertySet {
    repeated string keys = 1;
    repeated PropertyValue values = 2;
  }
  message PropertySetList {
    repeated PropertySet propertyset = 1;
  }
  message Metric {
    optional string name = 1;
    optional uint64 alias = 2;
    optional uint64 timestamp = 3;
    optional uint32 datatype = 4;
    optional bool is_historical = 5;
    optional bool is_transient = 6;
    optional bool is_null = 7;
    optional PropertySet properties = 9;
    oneof value {
      uint32 int_value = 10;
      uint64 long_value = 11;
      float float_value = 12;
      double double_value = 13;
      bool boolean_value = 14;
      string string_value = 15;
      bytes bytes_value = 16;
    }
  }
  optional uint64 timestamp = 1;
  repeated Metric metrics = 2;
  optional uint64 seq = 3;
  optional string uuid = 4;
  optional bytes body = 5;
}
`;

const root = protobuf.parse(SPARKPLUG_B_PROTO, { keepCase: true }).root;
export const PayloadType = root.lookupType("org.eclipse.tahu.protobuf.Payload");

/** Sparkplug B data types (spec 6.4.16). */
export const DataType = {
  Int8: 1,
  Int16: 2,
  Int32: 3,
  Int64: 4,
  UInt8: 5,
  UInt16: 6,
  UInt32: 7,
  UInt64: 8,
  Float: 9,
  Double: 10,
  Boolean: 11,
  String: 12,
  DateTime: 13,
  Text: 14,
  UUID: 15,
  DataSet: 16,
  Bytes: 17,
  File: 18,
  Template: 19,
} as const;

/** What protobufjs decodes 64-bit fields to (the `long` package); only the methods used here. */
interface Long {
  low: number;
  high: number;
  unsigned: boolean;
  toNumber(): number;
  toString(): string;
  toSigned(): Long;
  toUnsigned(): Long;
  isSafeInteger(): boolean;
}
/** Decoded: number or Long. When encoding, a decimal string is accepted too (values past 2^53). */
type Int64 = number | string | Long;

export interface SpPropertyValue {
  type?: number;
  is_null?: boolean;
  int_value?: number;
  long_value?: Int64;
  float_value?: number;
  double_value?: number;
  boolean_value?: boolean;
  string_value?: string;
}

export interface SpMetric {
  name?: string;
  alias?: Int64;
  timestamp?: Int64;
  datatype?: number;
  is_historical?: boolean;
  is_transient?: boolean;
  is_null?: boolean;
  properties?: { keys?: string[]; values?: SpPropertyValue[] };
  int_value?: number;
  long_value?: Int64;
  float_value?: number;
  double_value?: number;
  boolean_value?: boolean;
  string_value?: string;
  bytes_value?: Uint8Array;
}

export interface SpPayload {
  timestamp?: Int64;
  metrics?: SpMetric[];
  seq?: Int64;
  uuid?: string;
}

/** Plain object in, protobuf bytes out (edge-node side: tests, the rebirth command). */
export function encodePayload(payload: SpPayload): Uint8Array {
  return PayloadType.encode(PayloadType.fromObject(payload as Record<string, unknown>)).finish();
}

/**
 * Throws on bytes that are not a Payload. Only fields present on the wire are own properties;
 * absent ones read as protobuf defaults (0, "") through the prototype, so test presence with `has`.
 */
export function decodePayload(bytes: Uint8Array): SpPayload {
  return PayloadType.decode(bytes) as unknown as SpPayload;
}

const has = (o: object, key: string) => Object.hasOwn(o, key);
const isLong = (v: unknown): v is Long => typeof v === "object" && v !== null && (v as { __isLong__?: boolean }).__isLong__ === true;
const toNumber = (v: Int64): number => (isLong(v) ? v.toNumber() : Number(v));
const aliasKey = (v: Int64): string => (isLong(v) ? v.toUnsigned().toString() : String(v));

/** An int64 as a number when exact, else as a decimal string (JSON numbers are doubles). */
function int64(v: Int64, signed: boolean): number | string {
  if (!isLong(v)) return v;
  const l = signed ? v.toSigned() : v.toUnsigned();
  return l.isSafeInteger() ? l.toNumber() : l.toString();
}

export const MESSAGE_TYPES = ["NBIRTH", "NDEATH", "DBIRTH", "DDEATH", "NDATA", "DDATA", "NCMD", "DCMD", "STATE"] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

export interface SparkplugTopic {
  group_id: string;
  type: MessageType;
  edge_node_id: string;
  device_id?: string;
}

export const SPARKPLUG_NAMESPACE = "spBv1.0";

export function parseSparkplugTopic(topic: string): SparkplugTopic | { error: string } {
  const parts = topic.split("/");
  if (parts[0] !== SPARKPLUG_NAMESPACE) return { error: `not a Sparkplug B topic (expected ${SPARKPLUG_NAMESPACE}/...)` };
  // Sparkplug 3.0 host state: spBv1.0/STATE/<host_id>.
  if (parts[1] === "STATE") return { group_id: "", type: "STATE", edge_node_id: parts[2] ?? "" };
  const [, group, type, node, device, ...rest] = parts;
  if (!group || !node || !type || rest.length > 0) return { error: "expected spBv1.0/<group_id>/<message_type>/<edge_node_id>[/<device_id>]" };
  if (!(MESSAGE_TYPES as readonly string[]).includes(type)) return { error: `unknown Sparkplug message type ${JSON.stringify(type)}` };
  const deviceLevel = type.startsWith("D");
  if (deviceLevel !== Boolean(device)) return { error: `${type} ${deviceLevel ? "needs" : "takes no"} device_id` };
  return { group_id: group, type: type as MessageType, edge_node_id: node, ...(device ? { device_id: device } : {}) };
}

export function rebirthCommand(group: string, node: string, now = Date.now()): { topic: string; payload: Uint8Array } {
  return {
    topic: `${SPARKPLUG_NAMESPACE}/${group}/NCMD/${node}`,
    payload: encodePayload({ timestamp: now, metrics: [{ name: "Node Control/Rebirth", timestamp: now, datatype: DataType.Boolean, boolean_value: true }] }),
  };
}

interface MetricDef {
  name: string;
  datatype?: number;
  unit?: string;
  device?: string;
}

interface NodeState {
  bdSeq?: string;
  /** The seq the next message must carry; undefined until a birth was seen. */
  nextSeq?: number;
  /** Aliases are unique per edge node, across its devices too. */
  aliases: Map<string, MetricDef>;
  /** Known metrics by device ("" = the node itself) and name, for births, deaths and named DATA. */
  metrics: Map<string, Map<string, MetricDef>>;
  born: boolean;
}

export interface SparkplugOptions {
  nodeAsset: Template;
  deviceAsset: Template;
  includeControlMetrics: boolean;
}

export interface SparkplugResult {
  samples: Sample[];
  /** The whole message is unusable: dead-letter it. */
  dead?: { reason: string; message: string };
  /** Counted and logged, the message is still used. */
  errors: Array<{ type: "protocol" | "decode"; message: string }>;
  /** Ask this edge node to publish its births again (NCMD Node Control/Rebirth). */
  rebirth?: { group_id: string; edge_node_id: string; reason: string };
}

const UNIT_KEYS = ["engUnit", "engUnits", "EngUnit", "unit", "units"];

function unitOf(metric: SpMetric): string | undefined {
  const props = metric.properties;
  if (!has(metric, "properties") || !props?.keys || !props.values) return undefined;
  for (const key of UNIT_KEYS) {
    const i = props.keys.indexOf(key);
    const v = i >= 0 ? props.values[i] : undefined;
    if (v && typeof v.string_value === "string" && v.string_value.length > 0) return v.string_value;
  }
  return undefined;
}

type Converted = { value: number | boolean | string | null } | { unsupported: string };

function convert(metric: SpMetric, datatype: number | undefined): Converted {
  if (metric.is_null) return { value: null };
  switch (datatype) {
    case DataType.Int8:
      return has(metric, "int_value") ? { value: (metric.int_value! << 24) >> 24 } : { unsupported: "Int8 without int_value" };
    case DataType.Int16:
      return has(metric, "int_value") ? { value: (metric.int_value! << 16) >> 16 } : { unsupported: "Int16 without int_value" };
    case DataType.Int32:
      return has(metric, "int_value") ? { value: metric.int_value! | 0 } : { unsupported: "Int32 without int_value" };
    case DataType.UInt8:
    case DataType.UInt16:
    case DataType.UInt32:
      if (has(metric, "int_value")) return { value: metric.int_value! >>> 0 };
      // Some edge nodes put UInt32 in long_value.
      return has(metric, "long_value") ? { value: int64(metric.long_value!, false) } : { unsupported: "UInt without int_value" };
    case DataType.Int64:
      return has(metric, "long_value") ? { value: int64(metric.long_value!, true) } : { unsupported: "Int64 without long_value" };
    case DataType.UInt64:
      return has(metric, "long_value") ? { value: int64(metric.long_value!, false) } : { unsupported: "UInt64 without long_value" };
    case DataType.DateTime:
      return has(metric, "long_value") ? { value: new Date(toNumber(metric.long_value!)).toISOString() } : { unsupported: "DateTime without long_value" };
    case DataType.Float:
      return has(metric, "float_value") ? { value: metric.float_value! } : { unsupported: "Float without float_value" };
    case DataType.Double:
      return has(metric, "double_value") ? { value: metric.double_value! } : { unsupported: "Double without double_value" };
    case DataType.Boolean:
      return has(metric, "boolean_value") ? { value: metric.boolean_value! } : { unsupported: "Boolean without boolean_value" };
    case DataType.String:
    case DataType.Text:
    case DataType.UUID:
      return has(metric, "string_value") ? { value: metric.string_value! } : { unsupported: "String without string_value" };
    case undefined:
    case 0: {
      // No datatype from the birth or the metric: take whichever value field is set.
      if (has(metric, "double_value")) return { value: metric.double_value! };
      if (has(metric, "float_value")) return { value: metric.float_value! };
      if (has(metric, "boolean_value")) return { value: metric.boolean_value! };
      if (has(metric, "string_value")) return { value: metric.string_value! };
      if (has(metric, "int_value")) return { value: metric.int_value! };
      if (has(metric, "long_value")) return { value: int64(metric.long_value!, false) };
      return { unsupported: "no datatype and no scalar value" };
    }
    default:
      return { unsupported: `datatype ${datatype} (DataSet, Bytes, File, Template) is not a scalar reading` };
  }
}

const isControl = (name: string) => name === "bdSeq" || name.startsWith("Node Control/") || name.startsWith("Device Control/");

/** Host-application state over all edge nodes: births, aliases, sequence numbers. */
export class SparkplugHost {
  readonly #nodes = new Map<string, NodeState>();
  /** Metric names whose values could not be converted, reported once each. */
  readonly #unsupported = new Set<string>();

  constructor(private readonly options: SparkplugOptions) {}

  handle(topic: SparkplugTopic, payload: SpPayload, arrival: Date): SparkplugResult {
    const result: SparkplugResult = { samples: [], errors: [] };
    if (topic.type === "NCMD" || topic.type === "DCMD" || topic.type === "STATE") return result;
    const nodeKey = `${topic.group_id}/${topic.edge_node_id}`;
    const metrics = payload.metrics ?? [];
    const asset = (device?: string) =>
      device === undefined
        ? this.options.nodeAsset.render({ group_id: topic.group_id, edge_node_id: topic.edge_node_id })
        : this.options.deviceAsset.render({ group_id: topic.group_id, edge_node_id: topic.edge_node_id, device_id: device });
    const rebirth = (reason: string) => (result.rebirth = { group_id: topic.group_id, edge_node_id: topic.edge_node_id, reason });

    if (topic.type === "NBIRTH") {
      const state: NodeState = { aliases: new Map(), metrics: new Map([["", new Map()]]), born: true };
      const bdSeq = metrics.find((m) => m.name === "bdSeq");
      if (bdSeq && has(bdSeq, "long_value")) state.bdSeq = aliasKey(bdSeq.long_value!);
      if (has(payload, "seq")) state.nextSeq = (toNumber(payload.seq!) + 1) % 256;
      this.#nodes.set(nodeKey, state);
      this.#register(state, metrics, undefined, result);
      this.#emit(state, metrics, undefined, asset(undefined), payload, arrival, result, topic);
      return result;
    }

    const state = this.#nodes.get(nodeKey);
    if (topic.type === "NDEATH") {
      if (!state) return result;
      const bdSeq = metrics.find((m) => m.name === "bdSeq");
      // A will message from an older session (bdSeq differs) must not kill the current one.
      if (state.bdSeq !== undefined && bdSeq && has(bdSeq, "long_value") && aliasKey(bdSeq.long_value!) !== state.bdSeq) return result;
      for (const [device, defs] of state.metrics) this.#dead(defs, asset(device === "" ? undefined : device), "edge node offline (NDEATH)", arrival, result);
      this.#nodes.delete(nodeKey);
      return result;
    }

    // Every other node or device message carries the node's next sequence number.
    if (!state?.born) {
      rebirth("message before the edge node's NBIRTH");
    } else if (has(payload, "seq")) {
      const seq = toNumber(payload.seq!);
      if (state.nextSeq !== undefined && seq !== state.nextSeq) {
        result.errors.push({ type: "protocol", message: `sequence gap from ${nodeKey}: expected seq ${state.nextSeq}, got ${seq} (${topic.type})` });
        rebirth(`sequence gap: expected ${state.nextSeq}, got ${seq}`);
      }
      state.nextSeq = (seq + 1) % 256;
    } else {
      result.errors.push({ type: "protocol", message: `${topic.type} from ${nodeKey} without a sequence number` });
    }
    const node = state ?? { aliases: new Map(), metrics: new Map([["", new Map()]]), born: false };
    if (!state) this.#nodes.set(nodeKey, node);
    const device = topic.device_id;

    if (topic.type === "DBIRTH") {
      node.metrics.set(device!, new Map());
      this.#register(node, metrics, device, result);
      this.#emit(node, metrics, device, asset(device), payload, arrival, result, topic);
      return result;
    }
    if (topic.type === "DDEATH") {
      const defs = node.metrics.get(device!);
      if (defs) this.#dead(defs, asset(device), "device offline (DDEATH)", arrival, result);
      node.metrics.delete(device!);
      return result;
    }
    // NDATA / DDATA: every metric must resolve (by name, or by an alias from a birth).
    const unknown = metrics.filter((m) => this.#resolve(node, m, device) === undefined);
    if (unknown.length > 0) {
      const what = unknown.map((m) => (m.name ? `name ${JSON.stringify(m.name)}` : `alias ${has(m, "alias") ? aliasKey(m.alias!) : "(none)"}`));
      result.dead = {
        reason: "sparkplug_unknown_alias",
        message: `${topic.type} from ${nodeKey}${device ? `/${device}` : ""}: ${what.join(", ")} not in a birth certificate`,
      };
      rebirth("metric alias not known from a birth");
      return result;
    }
    this.#emit(node, metrics, device, asset(device), payload, arrival, result, topic);
    return result;
  }

  #register(state: NodeState, metrics: SpMetric[], device: string | undefined, result: SparkplugResult): void {
    const byName = state.metrics.get(device ?? "")!;
    for (const m of metrics) {
      if (!m.name) {
        result.errors.push({ type: "protocol", message: `birth metric without a name (alias ${has(m, "alias") ? aliasKey(m.alias!) : "none"})` });
        continue;
      }
      const unit = unitOf(m);
      const def: MetricDef = { name: m.name, ...(has(m, "datatype") ? { datatype: m.datatype! } : {}), ...(unit ? { unit } : {}), ...(device ? { device } : {}) };
      byName.set(m.name, def);
      if (has(m, "alias")) state.aliases.set(aliasKey(m.alias!), def);
    }
  }

  #resolve(state: NodeState, metric: SpMetric, device: string | undefined): MetricDef | undefined {
    if (metric.name) return state.metrics.get(device ?? "")?.get(metric.name) ?? { name: metric.name };
    if (!has(metric, "alias")) return undefined;
    const def = state.aliases.get(aliasKey(metric.alias!));
    return def && (def.device ?? "") === (device ?? "") ? def : undefined;
  }

  #emit(
    state: NodeState,
    metrics: SpMetric[],
    device: string | undefined,
    assetId: string,
    payload: SpPayload,
    arrival: Date,
    result: SparkplugResult,
    topic: SparkplugTopic,
  ): void {
    const payloadTime = has(payload, "timestamp") ? toNumber(payload.timestamp!) : undefined;
    for (const m of metrics) {
      const def = this.#resolve(state, m, device);
      if (!def) continue;
      if (!this.options.includeControlMetrics && isControl(def.name)) continue;
      const converted = convert(m, has(m, "datatype") ? m.datatype : def.datatype);
      if ("unsupported" in converted) {
        const key = `${assetId}\n${def.name}`;
        if (!this.#unsupported.has(key)) {
          this.#unsupported.add(key);
          result.errors.push({ type: "decode", message: `${topic.type} ${assetId} metric ${JSON.stringify(def.name)} skipped: ${converted.unsupported}` });
        }
        continue;
      }
      const ms = has(m, "timestamp") ? toNumber(m.timestamp!) : payloadTime;
      const quality: Quality = converted.value === null ? "BAD" : "GOOD";
      const sample: Sample = {
        asset_id: assetId,
        parameter: def.name,
        value: converted.value,
        quality,
        device_time: ms === undefined ? arrival : new Date(ms),
        time_source: ms === undefined ? "gateway" : "device",
        ...(def.unit ? { unit: def.unit } : {}),
        ...(m.is_historical ? { status_text: "historical" } : {}),
        ...(converted.value === null ? { error: "metric is null (Sparkplug is_null)" } : {}),
      };
      result.samples.push(sample);
    }
  }

  #dead(defs: Map<string, MetricDef>, assetId: string, why: string, arrival: Date, result: SparkplugResult): void {
    for (const def of defs.values()) {
      if (!this.options.includeControlMetrics && isControl(def.name)) continue;
      result.samples.push({
        asset_id: assetId,
        parameter: def.name,
        value: null,
        quality: "BAD",
        device_time: arrival,
        time_source: "gateway",
        error: why,
        ...(def.unit ? { unit: def.unit } : {}),
      });
    }
  }
}
