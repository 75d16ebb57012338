// Plant files: simulated Modbus devices whose registers follow waveforms of time.
// Every value is a pure function of t (seconds), so tests can predict what a
// poll returns: no Math.random, no hidden state except values written by clients.
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { readYamlFile } from "../../src/config/load.ts";
import { ConfigError, schemaErrors, type FieldError } from "../../src/config/schema-errors.ts";
import { ModbusConfigError, parseAddress, type AddressingMode, type ModbusFunctionCode } from "./address.ts";
import {
  BYTE_ORDERS, encodeField, MODBUS_DATA_TYPES, registerCount, validateFieldSpec,
  type FieldSpec, type FieldValue, type ModbusDataType,
} from "./codec.ts";
import { MODBUS_ADDRESS_SPACE, MODBUS_MAX_READ_REGISTERS } from "./limits.ts";
import type { RegisterBank } from "./pdu.ts";

// ---- Waveforms ----

/** `phase_s` shifts a waveform earlier in time: its value at t is the unshifted value at t + phase_s. */
interface Phase { phase_s?: number }
export type Waveform = Phase & (
  | { kind: "constant"; value: number | string | boolean }
  /** min..max, starting at the midpoint and rising. */
  | { kind: "sine"; min: number; max: number; period_s: number }
  /** Sawtooth: min rising linearly to max, then back to min. */
  | { kind: "ramp"; min: number; max: number; period_s: number }
  /** `high` for the first `duty` fraction (default 0.5) of each period, then `low`. */
  | { kind: "square"; low: number; high: number; period_s: number; duty?: number }
  /** start + step * (whole every_s intervals since t = 0); integer registers wrap like PLC counters. */
  | { kind: "counter"; start?: number; step?: number; every_s?: number }
  /** Uniform in min..max, redrawn every `every_s` (default 1) from a hash of seed and time bucket. */
  | { kind: "noise"; min: number; max: number; every_s?: number; seed?: number }
  /** Sum of numeric components, e.g. a sine plus a periodic spike. */
  | { kind: "sum"; components: Waveform[] }
);
export type WaveformKind = Waveform["kind"];

export const WAVEFORM_KINDS = ["constant", "sine", "ramp", "square", "counter", "noise", "sum"] as const satisfies readonly WaveformKind[];

const TAU = 2 * Math.PI;
/**
 * Position in the current cycle, in [0, 1). The remainder (% is exact in floating point)
 * is taken before dividing, so whole-second edges land exactly: 369 s into 180 s cycles
 * is 9/180 == 0.05, whereas 369 / 180 - 2 is 0.04999999999999982.
 */
function cyclePosition(t: number, period: number): number {
  const remainder = t % period;
  return (remainder < 0 ? remainder + period : remainder) / period;
}

export function waveformValue(w: Waveform, tSeconds: number): number | string | boolean {
  const t = tSeconds + (w.phase_s ?? 0);
  switch (w.kind) {
    case "constant":
      return w.value;
    case "sine":
      return w.min + ((w.max - w.min) * (1 + Math.sin((TAU * t) / w.period_s))) / 2;
    case "ramp":
      return w.min + (w.max - w.min) * cyclePosition(t, w.period_s);
    case "square":
      return cyclePosition(t, w.period_s) < (w.duty ?? 0.5) ? w.high : w.low;
    case "counter":
      return (w.start ?? 0) + (w.step ?? 1) * Math.floor(t / (w.every_s ?? 1));
    case "noise":
      return w.min + (w.max - w.min) * hashToUnit(w.seed ?? 0, Math.floor(t / (w.every_s ?? 1)));
    case "sum": {
      let total = 0;
      for (const component of w.components) total += Number(waveformValue(component, t));
      return total;
    }
  }
}

/** murmur3's 32-bit finaliser: cheap, and every input bit affects every output bit. */
function mix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const GOLDEN_RATIO_32 = 0x9e3779b9;

/** Deterministic pseudo-random number in [0, 1) for (seed, bucket); buckets may exceed 32 bits. */
function hashToUnit(seed: number, bucket: number): number {
  const high = Math.floor(bucket / 2 ** 32);
  // The golden-ratio constant keeps seed 0, bucket 0 away from mix32's fixed point at 0.
  return mix32(mix32(mix32((seed + GOLDEN_RATIO_32) | 0) ^ (bucket | 0)) ^ (high | 0)) / 2 ** 32;
}

/** Smallest and largest value a numeric waveform takes; undefined when unbounded (counters). */
function waveformBounds(w: Waveform): [number, number] | undefined {
  switch (w.kind) {
    case "constant":
      return typeof w.value === "string" ? undefined : [Number(w.value), Number(w.value)];
    case "sine":
    case "ramp":
    case "noise":
      return [w.min, w.max];
    case "square":
      return [Math.min(w.low, w.high), Math.max(w.low, w.high)];
    case "counter":
      return undefined;
    case "sum": {
      let [lo, hi] = [0, 0];
      for (const c of w.components) {
        const b = waveformBounds(c);
        if (!b) return undefined;
        [lo, hi] = [lo + b[0], hi + b[1]];
      }
      return [lo, hi];
    }
  }
}

// ---- Plant file schema (YAML shape, snake_case) ----

const literals = <T extends string>(values: readonly T[], options: object = {}) =>
  Type.Union(values.map((v) => Type.Literal(v)), options);
const strict = { additionalProperties: false };
const Period = Type.Number({ exclusiveMinimum: 0 });
const PhaseProp = { phase_s: Type.Optional(Type.Number()) };
const KindOnly = Type.Object({ kind: literals(WAVEFORM_KINDS) }, { additionalProperties: true });

const WAVEFORM_SCHEMAS: Readonly<Record<WaveformKind, TSchema>> = {
  constant: Type.Object({ kind: Type.Literal("constant"), value: Type.Union([Type.Number(), Type.String(), Type.Boolean()]), ...PhaseProp }, strict),
  sine: Type.Object({ kind: Type.Literal("sine"), min: Type.Number(), max: Type.Number(), period_s: Period, ...PhaseProp }, strict),
  ramp: Type.Object({ kind: Type.Literal("ramp"), min: Type.Number(), max: Type.Number(), period_s: Period, ...PhaseProp }, strict),
  square: Type.Object({
    kind: Type.Literal("square"), low: Type.Number(), high: Type.Number(), period_s: Period,
    duty: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })), ...PhaseProp,
  }, strict),
  counter: Type.Object({
    kind: Type.Literal("counter"), start: Type.Optional(Type.Number()), step: Type.Optional(Type.Number()),
    every_s: Type.Optional(Period), ...PhaseProp,
  }, strict),
  noise: Type.Object({
    kind: Type.Literal("noise"), min: Type.Number(), max: Type.Number(), every_s: Type.Optional(Period),
    seed: Type.Optional(Type.Integer()), ...PhaseProp,
  }, strict),
  // Components are checked one by one (recursively) so errors name their own path.
  sum: Type.Object({ kind: Type.Literal("sum"), components: Type.Array(KindOnly, { minItems: 1 }), ...PhaseProp }, strict),
};

const RegisterSchema = Type.Object({
  type: literals(MODBUS_DATA_TYPES),
  byte_order: literals(BYTE_ORDERS, { default: "ABCD" }),
  /** string only: registers (2 characters each). */
  length: Type.Optional(Type.Integer({ minimum: 1, maximum: MODBUS_MAX_READ_REGISTERS })),
  /** Like the gateway's field config: engineering value = raw * scale + offset. The waveform is in engineering units. */
  scale: Type.Number({ default: 1 }),
  offset: Type.Number({ default: 0 }),
  unit: Type.Optional(Type.String()),
  description: Type.Optional(Type.String()),
  waveform: Type.Unknown(), // checked by checkWaveform, per kind
}, strict);

const DeviceSchema = Type.Object({
  name: Type.String({ minLength: 1 }),
  asset: Type.Optional(Type.String({ minLength: 1 })),
  description: Type.Optional(Type.String()),
  /** The device listens on the simulator's base port + port_offset. */
  port_offset: Type.Integer({ minimum: 0, maximum: MODBUS_ADDRESS_SPACE - 1, default: 0 }),
  unit_id: Type.Integer({ minimum: 0, maximum: 255, default: 1 }),
  addressing: literals(["modicon", "explicit"] as const, { default: "modicon" }),
  /** zero: unlisted addresses read as 0 (a PLC register file); exception: they answer 02 illegal data address. */
  unmapped_reads: literals(["zero", "exception"] as const, { default: "zero" }),
  // Entries are validated one by one so that paths read registers["40001"], not registers[40001].
  registers: Type.Record(Type.String(), Type.Unknown(), { default: {} }),
}, strict);

const PlantSchema = Type.Object({
  name: Type.String({ minLength: 1 }),
  description: Type.Optional(Type.String()),
  devices: Type.Array(Type.Unknown(), { minItems: 1 }), // checked one by one, so one bad device hides no other errors
}, strict);

// ---- Parsed plant ----

export interface PlantRegister {
  /** The key as written in the plant file, e.g. "40001" or "3:0". */
  key: string;
  functionCode: ModbusFunctionCode;
  /** 0-based PDU address of the first register (or bit). */
  address: number;
  /** Registers (FC3/FC4) or bits (FC1/FC2) occupied. */
  count: number;
  field: FieldSpec;
  waveform: Waveform;
  unit?: string;
  description?: string;
}

export interface PlantDevice {
  name: string;
  asset?: string;
  description?: string;
  portOffset: number;
  unitId: number;
  addressing: AddressingMode;
  unmappedReads: "zero" | "exception";
  registers: PlantRegister[];
}

export interface Plant {
  name: string;
  description?: string;
  devices: PlantDevice[];
}

const registerPath = (root: string, key: string) => `${root}.registers[${JSON.stringify(key)}]`;

/** Validates a plant object (parsed YAML); throws ConfigError listing every problem by path. */
export function parsePlant(obj: unknown, sourceName: string): Plant {
  const input = Value.Default(PlantSchema, Value.Clone(obj ?? {}));
  const errors: FieldError[] = schemaErrors(PlantSchema, input);
  if (errors.length > 0) throw new ConfigError(sourceName, errors);
  const raw = input as { name: string; description?: string; devices: unknown[] };

  const devices: PlantDevice[] = [];
  const names = new Set<string>();
  const endpoints = new Map<string, string>();
  raw.devices.forEach((entry, i) => {
    const path = `devices[${i}]`;
    const d = Value.Default(DeviceSchema, Value.Clone(entry ?? {}));
    const problems = schemaErrors(DeviceSchema, d, path);
    errors.push(...problems);
    if (problems.length > 0) return;
    const device = parseDevice(d as RawDevice, path, errors);
    devices.push(device);
    if (names.has(device.name)) errors.push({ path: `${path}.name`, message: `duplicate device name ${JSON.stringify(device.name)}` });
    names.add(device.name);
    const endpoint = `${device.portOffset}/${device.unitId}`;
    const other = endpoints.get(endpoint);
    if (other !== undefined) {
      errors.push({ path: `${path}.unit_id`, message: `unit ${device.unitId} on port_offset ${device.portOffset} is already device ${JSON.stringify(other)}` });
    } else endpoints.set(endpoint, device.name);
  });
  if (errors.length > 0) throw new ConfigError(sourceName, errors);
  return { name: raw.name, ...(raw.description !== undefined && { description: raw.description }), devices };
}

type RawDevice = Static<typeof DeviceSchema>;

function parseDevice(d: RawDevice, path: string, errors: FieldError[]): PlantDevice {
  const device: PlantDevice = {
    name: d.name,
    ...(d.asset !== undefined && { asset: d.asset }),
    ...(d.description !== undefined && { description: d.description }),
    portOffset: d.port_offset,
    unitId: d.unit_id,
    addressing: d.addressing,
    unmappedReads: d.unmapped_reads,
    registers: [],
  };
  // Which register key occupies each address, per function code table, to catch overlaps.
  const occupied = new Map<string, string>();
  for (const [key, entry] of Object.entries(d.registers)) {
    const register = parseRegister(key, entry, device.addressing, registerPath(path, key), errors);
    if (!register) continue;
    for (let a = register.address; a < register.address + register.count; a++) {
      const other = occupied.get(`${register.functionCode}:${a}`);
      if (other !== undefined) {
        errors.push({ path: registerPath(path, key), message: `overlaps register ${JSON.stringify(other)}: both use 0-based address ${a}` });
        break;
      }
      occupied.set(`${register.functionCode}:${a}`, key);
    }
    device.registers.push(register);
  }
  return device;
}

function parseRegister(key: string, entry: unknown, addressing: AddressingMode, path: string, errors: FieldError[]): PlantRegister | undefined {
  const fail = (message: string, at = path) => void errors.push({ path: at, message });
  let address: ReturnType<typeof parseAddress>;
  try {
    address = parseAddress(key, addressing);
  } catch (error) {
    if (!(error instanceof ModbusConfigError)) throw error;
    // YAML reads an unquoted 00001 as the number 1.
    const hint = addressing === "modicon" && /^\d{1,4}$/.test(key) ? ' (quote Modicon keys in YAML: "00001", not 00001)' : "";
    return fail(error.message + hint);
  }
  const r = Value.Default(RegisterSchema, Value.Clone(entry ?? {})) as Record<string, unknown>;
  const schemaProblems = schemaErrors(RegisterSchema, r, path);
  errors.push(...schemaProblems);
  const waveformOk = r.waveform !== undefined && checkWaveform(r.waveform, `${path}.waveform`, errors);
  if (schemaProblems.length > 0 || !waveformOk) return undefined;

  const type = r.type as ModbusDataType;
  const field: FieldSpec = {
    type,
    byteOrder: r.byte_order as FieldSpec["byteOrder"],
    scale: r.scale as number,
    offset: r.offset as number,
    ...(r.length !== undefined && { length: r.length as number }),
  };
  try {
    validateFieldSpec(field, address.functionCode, key);
  } catch (error) {
    if (!(error instanceof ModbusConfigError)) throw error;
    return fail(error.message.replace(/^field "[^"]*": /, "")); // the path already names the register
  }
  const count = registerCount(field);
  if (address.address + count > MODBUS_ADDRESS_SPACE) return fail(`${type} spans ${count} registers, past the last address`);

  const waveform = r.waveform as Waveform;
  const produces = waveformOutput(waveform);
  if ((type === "string") !== (produces === "string")) {
    return fail(type === "string" ? "a string register needs a constant string waveform" : `a ${type} register needs a numeric or boolean waveform`, `${path}.waveform`);
  }
  // Bounded waveforms must fit the type; counters wrap instead (see encodeRegister).
  const bounds = type === "string" ? undefined : waveformBounds(waveform);
  try {
    if (type === "string") encodeField(field, waveformValue(waveform, 0));
    else if (bounds && type !== "bool") for (const v of bounds) encodeField(field, v);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    return fail(bounds ? `waveform range ${bounds[0]}..${bounds[1]} does not fit ${type}: ${error.message}` : error.message, `${path}.waveform`);
  }
  return {
    key, ...address, count, field, waveform,
    ...(r.unit !== undefined && { unit: r.unit as string }),
    ...(r.description !== undefined && { description: r.description as string }),
  };
}

/** Validates a waveform against its kind's schema, components included; true when valid. */
function checkWaveform(w: unknown, path: string, errors: FieldError[]): boolean {
  const kindErrors = schemaErrors(KindOnly, w, path);
  const problems = kindErrors.length > 0 ? kindErrors : schemaErrors(WAVEFORM_SCHEMAS[(w as Waveform).kind], w, path);
  errors.push(...problems);
  if (problems.length > 0) return false;
  const waveform = w as Waveform;
  if ("min" in waveform && waveform.min > waveform.max) {
    errors.push({ path: `${path}.max`, message: `must be >= min (${waveform.min}), got ${waveform.max}` });
    return false;
  }
  if (waveform.kind !== "sum") return true;
  let ok = true;
  waveform.components.forEach((c, i) => {
    const at = `${path}.components[${i}]`;
    if (!checkWaveform(c, at, errors)) ok = false;
    else if (waveformOutput(c) === "string") {
      errors.push({ path: at, message: "sum components must be numeric" });
      ok = false;
    }
  });
  return ok;
}

function waveformOutput(w: Waveform): "string" | "number" {
  return w.kind === "constant" && typeof w.value === "string" ? "string" : "number";
}

/** Reads and validates a YAML plant file; errors name the file and the path inside it. */
export function loadPlantFile(path: string): Plant {
  return parsePlant(readYamlFile(path), path);
}

// ---- Register bank backed by waveforms ----

type IntegerType = "int16" | "uint16" | "int32" | "uint32" | "int64" | "uint64";
const SIGNED: Readonly<Record<IntegerType, boolean>> = {
  int16: true, uint16: false, int32: true, uint32: false, int64: true, uint64: false,
};
const isIntegerType = (type: ModbusDataType): type is IntegerType => type in SIGNED;

/** Register words (wire order) of a register's value at time t. */
function encodeRegister(register: PlantRegister, t: number): number[] {
  const { field } = register;
  const value = waveformValue(register.waveform, t);
  if (field.type === "string") return encodeField(field, String(value));
  if (field.type === "bool") return encodeField(field, toBool(value));
  if (!isIntegerType(field.type)) return encodeField(field, Number(value));
  // Integers wrap to the type's width, as a PLC counter rolls over, instead of failing the read.
  const raw = BigInt(Math.round((Number(value) - field.offset) / field.scale));
  const bits = register.count * 16;
  const wrapped = SIGNED[field.type] ? BigInt.asIntN(bits, raw) : BigInt.asUintN(bits, raw);
  return encodeField({ ...field, scale: 1, offset: 0 }, wrapped);
}

const toBool = (value: FieldValue): boolean => (typeof value === "number" ? value !== 0 : Boolean(value));

/** Where an address lands: which register, and which of its words (0 for bits). */
interface Slot { register: PlantRegister; word: number }

/**
 * A RegisterBank whose values are computed from the waveforms at request time:
 * `clock()` returns t in seconds. Client writes to holding registers and coils
 * override the waveform at that address until the bank is discarded.
 */
export function plantBank(device: PlantDevice, clock: () => number): RegisterBank {
  const slots: Record<ModbusFunctionCode, Map<number, Slot>> = { 1: new Map(), 2: new Map(), 3: new Map(), 4: new Map() };
  for (const register of device.registers) {
    for (let word = 0; word < register.count; word++) slots[register.functionCode].set(register.address + word, { register, word });
  }
  const writtenRegisters = new Map<number, number>();
  const writtenCoils = new Map<number, boolean>();
  const strict = device.unmappedReads === "exception";
  const allMapped = (table: Map<number, Slot>, address: number, count: number) => {
    for (let a = address; a < address + count; a++) if (!table.has(a)) return false;
    return true;
  };

  return {
    readRegisters(fc, address, count) {
      const table = slots[fc];
      if (strict && !allMapped(table, address, count)) return undefined;
      const t = clock();
      const out = new Array<number>(count);
      // Registers are contiguous, so remembering the last one encodes each field once per request.
      let last: PlantRegister | undefined;
      let words: number[] = [];
      for (let i = 0; i < count; i++) {
        const written = fc === 3 ? writtenRegisters.get(address + i) : undefined;
        const slot = table.get(address + i);
        if (written !== undefined || !slot) {
          out[i] = written ?? 0;
          continue;
        }
        if (slot.register !== last) [last, words] = [slot.register, encodeRegister(slot.register, t)];
        out[i] = words[slot.word]!;
      }
      return out;
    },
    readBits(fc, address, count) {
      const table = slots[fc];
      if (strict && !allMapped(table, address, count)) return undefined;
      const t = clock();
      const out = new Array<boolean>(count);
      for (let i = 0; i < count; i++) {
        const written = fc === 1 ? writtenCoils.get(address + i) : undefined;
        const slot = table.get(address + i);
        out[i] = written ?? (slot ? toBool(waveformValue(slot.register.waveform, t)) : false);
      }
      return out;
    },
    writeRegisters(address, values) {
      if (strict && !allMapped(slots[3], address, values.length)) return false;
      values.forEach((v, i) => writtenRegisters.set(address + i, v));
      return true;
    },
    writeBits(address, values) {
      if (strict && !allMapped(slots[1], address, values.length)) return false;
      values.forEach((v, i) => writtenCoils.set(address + i, v));
      return true;
    },
  };
}

// ---- Benchmark plant ----

/**
 * A plant for load tests: `devices` devices, each on its own port_offset (0, 1, ...)
 * with unit id 1, and `registersPerDevice` consecutive holding registers from 40001
 * (count of 16-bit registers, so one FC3 read covers a device when <= 125).
 * Fields repeat float32 (sine), uint16 (counter), uint16 (square); a leftover
 * register becomes a uint16. Phases differ per device so devices are not in lockstep.
 */
export function generateBenchPlant({ devices = 100, registersPerDevice = 100 }: { devices?: number; registersPerDevice?: number } = {}): Plant {
  const FIELD_PATTERN = ["float32", "uint16", "uint16"] as const;
  return parsePlant({
    name: `bench-${devices}x${registersPerDevice}`,
    devices: Array.from({ length: devices }, (_, d) => {
      const registers: Record<string, unknown> = {};
      for (let offset = 0, n = 0; offset < registersPerDevice; n++) {
        const patterned = FIELD_PATTERN[n % FIELD_PATTERN.length]!;
        const type = patterned === "float32" && offset + 2 > registersPerDevice ? "uint16" : patterned;
        const phase_s = (d * 7 + n) % 60;
        registers[String(40001 + offset)] = {
          type,
          waveform:
            type === "float32" ? { kind: "sine", min: 0, max: 100 + n, period_s: 60, phase_s }
            : n % 3 === 1 ? { kind: "counter", step: 1, every_s: 1, phase_s }
            : { kind: "square", low: 0, high: 1000 + n, period_s: 10, phase_s },
        };
        offset += type === "float32" ? 2 : 1;
      }
      return { name: `bench-device-${String(d).padStart(3, "0")}`, port_offset: d, unit_id: 1, registers };
    }),
  }, "generateBenchPlant");
}
