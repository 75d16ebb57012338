/**
 * OPC UA plant files: the simulator's variables, each following a waveform of time (the
 * Modbus simulator's waveforms, adapters/modbus/plant.ts), sampled and held every update_ms.
 *
 *   name: offshore-well-opcua
 *   epoch: "2024-01-01T00:00:00Z"   # t = 0 of every waveform
 *   update_ms: 1000                 # default for nodes
 *   namespaces: ["urn:gateway:plant:offshore-well"]   # ns=2, ns=3, ... (ns=1 is the server's own)
 *   nodes:
 *     "ns=2;s=Wellhead.Pressure":
 *       type: Double
 *       unit: bar
 *       folder: Wellhead
 *       waveform: { kind: sine, min: 180, max: 220, period_s: 120 }
 *
 * A node's value at a tick is waveform((tick - epoch) / 1000) and its source timestamp is the
 * tick, both pure functions of the clock: a restarted simulator serves the same (value,
 * timestamp) a client saw before the restart, as a real device's held value would be.
 */
import { Type, type TSchema } from "@sinclair/typebox";
import { readYamlFile } from "../../src/config/load.ts";
import { ConfigError, schemaErrors, type FieldError } from "../../src/config/schema-errors.ts";
import { WAVEFORM_KINDS, waveformValue, type Waveform, type WaveformKind } from "../modbus/plant.ts";
import { parseNodeId } from "./nodes.ts";

export const PLANT_DATA_TYPES = ["Boolean", "SByte", "Byte", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64", "Float", "Double", "String"] as const;
export type PlantDataType = (typeof PLANT_DATA_TYPES)[number];

const INTEGER_BITS: Partial<Record<PlantDataType, [bits: number, signed: boolean]>> = {
  SByte: [8, true], Byte: [8, false], Int16: [16, true], UInt16: [16, false], Int32: [32, true], UInt32: [32, false], Int64: [64, true], UInt64: [64, false],
};

export interface PlantNode {
  nodeId: string;
  namespace: number;
  /** The identifier after "s=" / "i=" (string ids only for folders' browse names). */
  identifier: string | number;
  browseName: string;
  type: PlantDataType;
  waveform: Waveform;
  updateMs: number;
  unit?: string;
  description?: string;
  folder?: string;
  /** A StatusCode name served with every value, e.g. UncertainLastUsableValue. */
  status?: string;
  writable: boolean;
}

export interface OpcuaPlant {
  name: string;
  description?: string;
  epochMs: number;
  namespaces: string[];
  nodes: PlantNode[];
}

const strict = { additionalProperties: false };
const literals = <T extends string>(values: readonly T[], options: Record<string, unknown> = {}) => Type.Union(values.map((v) => Type.Literal(v)), options);
const Period = Type.Number({ exclusiveMinimum: 0 });
const PhaseProp = { phase_s: Type.Optional(Type.Number()) };
const KindOnly = Type.Object({ kind: literals(WAVEFORM_KINDS) }, { additionalProperties: true });
const WAVEFORMS: Readonly<Record<WaveformKind, TSchema>> = {
  constant: Type.Object({ kind: Type.Literal("constant"), value: Type.Union([Type.Number(), Type.String(), Type.Boolean()]), ...PhaseProp }, strict),
  sine: Type.Object({ kind: Type.Literal("sine"), min: Type.Number(), max: Type.Number(), period_s: Period, ...PhaseProp }, strict),
  ramp: Type.Object({ kind: Type.Literal("ramp"), min: Type.Number(), max: Type.Number(), period_s: Period, ...PhaseProp }, strict),
  square: Type.Object({ kind: Type.Literal("square"), low: Type.Number(), high: Type.Number(), period_s: Period, duty: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })), ...PhaseProp }, strict),
  counter: Type.Object({ kind: Type.Literal("counter"), start: Type.Optional(Type.Number()), step: Type.Optional(Type.Number()), every_s: Type.Optional(Period), ...PhaseProp }, strict),
  noise: Type.Object({ kind: Type.Literal("noise"), min: Type.Number(), max: Type.Number(), every_s: Type.Optional(Period), seed: Type.Optional(Type.Integer()), ...PhaseProp }, strict),
  sum: Type.Object({ kind: Type.Literal("sum"), components: Type.Array(KindOnly, { minItems: 1 }), ...PhaseProp }, strict),
};

const NodeEntrySchema = Type.Object({
  type: literals(PLANT_DATA_TYPES),
  waveform: Type.Unknown(),
  update_ms: Type.Optional(Type.Integer({ minimum: 10, maximum: 86_400_000 })),
  unit: Type.Optional(Type.String()),
  description: Type.Optional(Type.String()),
  folder: Type.Optional(Type.String({ minLength: 1, pattern: "^[^/]+(/[^/]+)*$" })),
  status: Type.Optional(Type.String({ pattern: "^(Good|Uncertain|Bad)[A-Za-z]*$" })),
  writable: Type.Boolean({ default: false }),
}, strict);

const PlantSchema = Type.Object({
  name: Type.String({ minLength: 1 }),
  description: Type.Optional(Type.String()),
  epoch: Type.String({ default: "2024-01-01T00:00:00Z", description: "ISO 8601 time of t = 0" }),
  update_ms: Type.Integer({ minimum: 10, maximum: 86_400_000, default: 1000 }),
  namespaces: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
  nodes: Type.Record(Type.String(), Type.Unknown()),
}, strict);

function checkWaveform(w: unknown, path: string, errors: FieldError[]): boolean {
  const kindErrors = schemaErrors(KindOnly, w, path);
  const problems = kindErrors.length > 0 ? kindErrors : schemaErrors(WAVEFORMS[(w as Waveform).kind], w, path);
  errors.push(...problems);
  if (problems.length > 0) return false;
  const waveform = w as Waveform;
  if ("min" in waveform && waveform.min > waveform.max) {
    errors.push({ path: `${path}.max`, message: `must be >= min (${waveform.min}), got ${waveform.max}` });
    return false;
  }
  if (waveform.kind !== "sum") return true;
  return waveform.components.every((c, i) => checkWaveform(c, `${path}.components[${i}]`, errors));
}

/** Validates a plant object (from YAML or built in code); errors name the source and path. */
export function parseOpcuaPlant(input: unknown, sourceName: string): OpcuaPlant {
  const errors: FieldError[] = [];
  const raw = input as Record<string, unknown>;
  const withDefaults = { epoch: "2024-01-01T00:00:00Z", update_ms: 1000, namespaces: [], ...raw };
  errors.push(...schemaErrors(PlantSchema, withDefaults));
  if (errors.length > 0) throw new ConfigError(sourceName, errors);
  const plant = withDefaults as unknown as { name: string; description?: string; epoch: string; update_ms: number; namespaces: string[]; nodes: Record<string, unknown> };
  const epochMs = Date.parse(plant.epoch);
  if (Number.isNaN(epochMs)) errors.push({ path: "epoch", message: `not a date: ${plant.epoch}` });
  const nodes: PlantNode[] = [];
  for (const [key, entry] of Object.entries(plant.nodes)) {
    const path = `nodes[${JSON.stringify(key)}]`;
    const parsed = parseNodeId(key);
    if (parsed instanceof Error) {
      errors.push({ path, message: parsed.message });
      continue;
    }
    if (parsed.namespaceUri !== undefined) {
      errors.push({ path, message: "use ns=<index> in plant files (ns=1 is the simulator's own namespace, ns=2.. the plant's namespaces)" });
      continue;
    }
    const namespace = parsed.nodeId.namespace;
    if (namespace < 1 || namespace > plant.namespaces.length + 1) {
      errors.push({ path, message: `namespace index ${namespace} is not served: ns=1 is the simulator's own, ns=2..${plant.namespaces.length + 1} the plant's "namespaces"` });
      continue;
    }
    const e: Record<string, unknown> = { writable: false, ...(entry as Record<string, unknown>) };
    const problems = schemaErrors(NodeEntrySchema, e, path);
    errors.push(...problems);
    if (problems.length > 0 || !checkWaveform(e.waveform, `${path}.waveform`, errors)) continue;
    const type = e.type as PlantDataType;
    const waveform = e.waveform as Waveform;
    const stringWave = waveform.kind === "constant" && typeof waveform.value === "string";
    if ((type === "String") !== stringWave) {
      errors.push({ path: `${path}.waveform`, message: type === "String" ? "a String node needs a constant string waveform" : `a ${type} node needs a numeric or boolean waveform` });
      continue;
    }
    const identifier = parsed.nodeId.value as string | number;
    const name = typeof identifier === "string" ? identifier.split(/[./]/).at(-1)! : `Node${identifier}`;
    nodes.push({
      nodeId: parsed.nodeId.toString(),
      namespace,
      identifier,
      browseName: name,
      type,
      waveform,
      updateMs: (e.update_ms as number | undefined) ?? plant.update_ms,
      writable: e.writable as boolean,
      ...(e.unit !== undefined && { unit: e.unit as string }),
      ...(e.description !== undefined && { description: e.description as string }),
      ...(e.folder !== undefined && { folder: e.folder as string }),
      ...(e.status !== undefined && { status: e.status as string }),
    });
  }
  if (errors.length === 0 && nodes.length === 0) errors.push({ path: "nodes", message: "expected at least one node" });
  if (errors.length > 0) throw new ConfigError(sourceName, errors);
  return { name: plant.name, ...(plant.description !== undefined && { description: plant.description }), epochMs, namespaces: plant.namespaces, nodes };
}

export function loadOpcuaPlantFile(path: string): OpcuaPlant {
  return parseOpcuaPlant(readYamlFile(path), path);
}

/** The node's value at a tick (epoch ms): the waveform, cast to the node's type (integers wrap like PLC counters). */
export function plantValue(node: PlantNode, tickMs: number, epochMs: number): number | boolean | string | bigint {
  const raw = waveformValue(node.waveform, (tickMs - epochMs) / 1000);
  if (node.type === "String") return String(raw);
  if (node.type === "Boolean") return typeof raw === "number" ? raw !== 0 : Boolean(raw);
  const n = Number(raw);
  if (node.type === "Float") return Math.fround(n);
  if (node.type === "Double") return n;
  const [bits, signed] = INTEGER_BITS[node.type]!;
  const big = BigInt(Math.round(n));
  const wrapped = signed ? BigInt.asIntN(bits, big) : BigInt.asUintN(bits, big);
  return bits === 64 ? wrapped : Number(wrapped);
}

/** The tick a node shows at time `nowMs`: sample and hold every updateMs. */
export const tickOf = (node: PlantNode, nowMs: number) => Math.floor(nowMs / node.updateMs) * node.updateMs;

/**
 * A plant for load tests: `count` Double variables ns=2;s=Bench.N (in folders of 1000), each a
 * ramp with its own phase, updated every `updateMs` so each changes at every tick. The plain
 * object, as a plant file holds it.
 */
export function opcuaBenchPlantInput(count = 10_000, updateMs = 1000): Record<string, unknown> {
  const nodes: Record<string, unknown> = {};
  for (let i = 0; i < count; i++) {
    nodes[`ns=2;s=Bench.${i}`] = { type: "Double", folder: `Bench/Group${Math.floor(i / 1000)}`, waveform: { kind: "ramp", min: 0, max: 1000, period_s: 600, phase_s: i % 600 } };
  }
  return { name: `bench-${count}`, update_ms: updateMs, namespaces: ["urn:gateway:bench"], nodes };
}

export function generateOpcuaBenchPlant(count = 10_000, updateMs = 1000): OpcuaPlant {
  return parseOpcuaPlant(opcuaBenchPlantInput(count, updateMs), "generateOpcuaBenchPlant");
}
