import { ModbusConfigError, type ModbusFunctionCode } from "./address.ts";
import { MODBUS_MAX_READ_REGISTERS } from "./limits.ts";

export const MODBUS_DATA_TYPES = [
  "bool", "int16", "uint16", "int32", "uint32", "float32", "int64", "uint64", "float64", "string",
] as const;
export type ModbusDataType = (typeof MODBUS_DATA_TYPES)[number];

/**
 * How the bytes of a value travel in registers. A..H name the value's bytes,
 * most significant first; registers are listed in address order.
 *   ABCD  big-endian, high word first (Modbus default)   64-bit: AB CD EF GH
 *   CDAB  word swap: registers in reverse order          64-bit: GH EF CD AB
 *   BADC  byte swap inside each register                 64-bit: BA DC FE HG
 *   DCBA  little-endian: both of the above               64-bit: HG FE DC BA
 * For 1-register values CDAB equals ABCD and DCBA equals BADC.
 */
export const BYTE_ORDERS = ["ABCD", "CDAB", "BADC", "DCBA"] as const;
export type ByteOrder = (typeof BYTE_ORDERS)[number];

/** Which byte(s) of each register carry a character: some devices use only one. */
export type StringByteMode = "both" | "high" | "low";

export interface FieldSpec {
  type: ModbusDataType;
  byteOrder: ByteOrder;
  /** Engineering value = raw * scale + offset, for numeric results only. */
  scale: number;
  offset: number;
  /** Registers of a string field (2 characters each in "both" mode). */
  length?: number;
  /** Single bit of a 16-bit register, 0 = least significant; decodes to a bool. */
  bit?: number;
  /** Inclusive bit range [from, to] of a 16-bit register; unsigned, or bool when 1 bit wide. */
  bits?: readonly [number, number];
  stringByteMode?: StringByteMode;
}

export type FieldValue = number | boolean | string;
/** Register values as received (number[] from modbus-serial, or a Uint16Array). */
export type RegisterWords = ArrayLike<number>;
/** Coil / discrete input values as received. */
export type BitValues = readonly boolean[];

type NumericType = Exclude<ModbusDataType, "bool" | "string">;
type IntegerType = Exclude<NumericType, "float32" | "float64">;

const REGISTERS_PER_TYPE: Readonly<Record<Exclude<ModbusDataType, "string">, number>> = {
  bool: 1, int16: 1, uint16: 1, int32: 2, uint32: 2, float32: 2, int64: 4, uint64: 4, float64: 4,
};

// Values are read from big-endian (ABCD...) bytes once the byte order has been undone.
const READ_RAW: Readonly<Record<NumericType, (view: DataView) => number>> = {
  int16: (v) => v.getInt16(0),
  uint16: (v) => v.getUint16(0),
  int32: (v) => v.getInt32(0),
  uint32: (v) => v.getUint32(0),
  float32: (v) => shortestFloat32(v.getFloat32(0)),
  // JSON has no 64-bit integers: beyond 2^53 the value is rounded to the nearest double.
  int64: (v) => Number(v.getBigInt64(0)),
  uint64: (v) => Number(v.getBigUint64(0)),
  float64: (v) => v.getFloat64(0),
};

const INTEGER_RANGES: Readonly<Record<IntegerType, readonly [bigint, bigint]>> = {
  int16: [-(2n ** 15n), 2n ** 15n - 1n],
  uint16: [0n, 2n ** 16n - 1n],
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
};

const REGISTER_BITS = 16;

export function registerCount(spec: FieldSpec): number {
  if (spec.type !== "string") return REGISTERS_PER_TYPE[spec.type];
  const length = spec.length;
  if (length === undefined || !Number.isInteger(length) || length < 1) {
    throw new ModbusConfigError(`string field needs a positive integer length, got ${length}`);
  }
  return length;
}

/** Config-time checks, so that decoding later cannot fail on a bad spec. */
export function validateFieldSpec(spec: FieldSpec, functionCode: ModbusFunctionCode, fieldName: string): void {
  const fail = (problem: string): never => {
    throw new ModbusConfigError(`field ${JSON.stringify(fieldName)}: ${problem}`);
  };
  if (!MODBUS_DATA_TYPES.includes(spec.type)) fail(`type must be one of ${MODBUS_DATA_TYPES.join(", ")}, got ${JSON.stringify(spec.type)}`);
  if (!BYTE_ORDERS.includes(spec.byteOrder)) fail(`byte order must be one of ${BYTE_ORDERS.join(", ")}, got ${JSON.stringify(spec.byteOrder)}`);
  // scale 0 would make every reading equal the offset and the encoder divide by zero.
  if (!Number.isFinite(spec.scale) || spec.scale === 0) fail(`scale must be a finite non-zero number, got ${spec.scale}`);
  if (!Number.isFinite(spec.offset)) fail(`offset must be a finite number, got ${spec.offset}`);
  const isBitTable = functionCode === 1 || functionCode === 2;
  if (isBitTable && spec.type !== "bool") fail(`coils and discrete inputs (function code ${functionCode}) hold single bits: type must be bool`);
  if (spec.type === "string") {
    const length = spec.length;
    if (length === undefined || !Number.isInteger(length) || length < 1 || length > MODBUS_MAX_READ_REGISTERS) {
      fail(`string length must be 1-${MODBUS_MAX_READ_REGISTERS} registers, got ${length}`);
    }
  }
  const range = bitRange(spec);
  if (!range) return;
  if (isBitTable) fail("bit/bits select bits of a register; coils and discrete inputs are already single bits");
  if (spec.bit !== undefined && spec.bits !== undefined) fail("use either bit or bits, not both");
  if (spec.type !== "bool" && spec.type !== "int16" && spec.type !== "uint16") fail(`bit/bits apply to 16-bit registers (bool, int16, uint16), not ${spec.type}`);
  const [from, to] = range;
  const isBitIndex = (n: number) => Number.isInteger(n) && n >= 0 && n < REGISTER_BITS;
  if (!isBitIndex(from) || !isBitIndex(to) || from > to) fail(`bits must be 0-15 with from <= to, got ${JSON.stringify(spec.bits ?? spec.bit)}`);
  if (spec.type === "bool" && from !== to) fail("a bool covers one bit; use uint16 for a multi-bit field");
}

/** false for NaN and ±Infinity, so the caller can mark the reading's quality BAD. */
export function isFiniteReading(value: FieldValue): boolean {
  return typeof value !== "number" || Number.isFinite(value);
}

const reversesWords = (order: ByteOrder) => order === "CDAB" || order === "DCBA";
const swapsBytes = (order: ByteOrder) => order === "BADC" || order === "DCBA";

function wordAt(words: RegisterWords, index: number): number {
  const word = words[index];
  if (word === undefined || !Number.isInteger(word) || word < 0 || word > 0xffff) {
    throw new RangeError(`register ${index} is not a 16-bit value: ${word}`);
  }
  return word;
}

/** Registers in wire order -> the value's bytes most significant first (ABCD...). */
function toBigEndian(words: RegisterWords, count: number, order: ByteOrder): DataView {
  const view = new DataView(new ArrayBuffer(count * 2));
  for (let i = 0; i < count; i++) {
    const word = wordAt(words, reversesWords(order) ? count - 1 - i : i);
    view.setUint16(i * 2, word, swapsBytes(order));
  }
  return view;
}

/** Inverse of toBigEndian: each permutation (word reversal, byte swap) undoes itself. */
function fromBigEndian(view: DataView, order: ByteOrder): number[] {
  const count = view.byteLength / 2;
  const words = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    words[reversesWords(order) ? count - 1 - i : i] = view.getUint16(i * 2, swapsBytes(order));
  }
  return words;
}

// Identity scaling is skipped so raw values stay bit-exact (e.g. -0 stays -0).
/**
 * The shortest decimal that is the same float32: 185.4 rather than 185.39999389648438, which is
 * what the device meant and what an operator expects to see.
 */
const FLOAT32_MAX_SIGNIFICANT_DIGITS = 9;

export function shortestFloat32(value: number): number {
  if (!Number.isFinite(value) || value === 0) return value;
  for (let digits = 1; digits <= FLOAT32_MAX_SIGNIFICANT_DIGITS; digits++) {
    const candidate = Number(value.toPrecision(digits));
    if (Math.fround(candidate) === value) return candidate;
  }
  return value;
}

/** Scaling in binary floating point leaves noise (1853 × 0.1 = 185.30000000000001); 12 significant digits remove it. */
const SCALED_PRECISION = 12;
const toEngineering = (raw: number, { scale, offset }: FieldSpec) =>
  scale === 1 && offset === 0 ? raw : Number((raw * scale + offset).toPrecision(SCALED_PRECISION));
const toRaw = (value: number, { scale, offset }: FieldSpec) =>
  scale === 1 && offset === 0 ? value : (value - offset) / scale;

function bitRange(spec: FieldSpec): [from: number, to: number] | undefined {
  if (spec.bits) return [spec.bits[0], spec.bits[1]];
  return spec.bit === undefined ? undefined : [spec.bit, spec.bit];
}

const isBitValues = (data: RegisterWords | BitValues): data is BitValues => typeof data[0] === "boolean";

/**
 * Decodes one field from the slice of a response that belongs to it
 * (see splitResponse). Bits come from coils/discrete inputs, words from registers.
 */
export function decodeField(spec: FieldSpec, data: RegisterWords | BitValues): FieldValue {
  if (isBitValues(data)) {
    if (spec.type !== "bool" || data[0] === undefined) throw new ModbusConfigError(`coils and discrete inputs decode as bool, not ${spec.type}`);
    return data[0];
  }
  const words = data;
  const count = registerCount(spec);
  if (words.length < count) throw new RangeError(`${spec.type} needs ${count} registers, got ${words.length}`);
  if (spec.type === "string") return decodeString(spec, words, count);

  const view = toBigEndian(words, count, spec.byteOrder);
  const range = bitRange(spec);
  if (range) {
    const [from, to] = range;
    const width = to - from + 1;
    const value = (view.getUint16(0) >>> from) & ((1 << width) - 1);
    return width === 1 ? value === 1 : toEngineering(value, spec);
  }
  if (spec.type === "bool") return view.getUint16(0) !== 0;
  return toEngineering(READ_RAW[spec.type](view), spec);
}

function decodeString(spec: FieldSpec, words: RegisterWords, count: number): string {
  const mode = spec.stringByteMode ?? "both";
  const codes: number[] = [];
  for (let i = 0; i < count; i++) {
    const word = wordAt(words, i);
    const [high, low] = [word >>> 8, word & 0xff];
    if (mode === "high") codes.push(high);
    else if (mode === "low") codes.push(low);
    else if (swapsBytes(spec.byteOrder)) codes.push(low, high);
    else codes.push(high, low);
  }
  // Devices pad fixed-size string registers with NULs or spaces.
  return String.fromCharCode(...codes).replace(/[\0 ]+$/, "");
}

/**
 * Registers (wire order) that decode to `value`; used by the simulator.
 * bool on a coil encodes as [0] or [1]. A bit field sets only its own bits,
 * so OR the registers of fields that share a register.
 */
export function encodeField(spec: FieldSpec, value: FieldValue | bigint): number[] {
  const count = registerCount(spec);
  if (spec.type === "string") {
    if (typeof value !== "string") throw new TypeError(`string field needs a string, got ${typeof value}`);
    return encodeString(spec, value, count);
  }
  const view = new DataView(new ArrayBuffer(count * 2));
  const range = bitRange(spec);
  if (range) {
    const [from, to] = range;
    const width = to - from + 1;
    const raw = width === 1 ? Number(expectBoolean(value)) : Math.round(toRaw(expectNumber(value), spec));
    if (!(raw >= 0 && raw < 2 ** width)) throw new RangeError(`${value} does not fit bits ${from}-${to}`);
    view.setUint16(0, raw << from);
  } else if (spec.type === "bool") {
    view.setUint16(0, expectBoolean(value) ? 1 : 0);
  } else if (spec.type === "float32" || spec.type === "float64") {
    const raw = toRaw(expectNumber(value), spec);
    if (spec.type === "float32") view.setFloat32(0, raw);
    else view.setFloat64(0, raw);
  } else {
    writeInteger(view, spec.type, typeof value === "bigint" ? value : BigInt(Math.round(toRaw(expectNumber(value), spec))));
  }
  return fromBigEndian(view, spec.byteOrder);
}

function writeInteger(view: DataView, type: IntegerType, raw: bigint): void {
  const [min, max] = INTEGER_RANGES[type];
  if (raw < min || raw > max) throw new RangeError(`${raw} is out of range for ${type}`);
  // Two's complement of the value in the type's width, written big-endian.
  let unsigned = BigInt.asUintN(REGISTERS_PER_TYPE[type] * REGISTER_BITS, raw);
  for (let byte = view.byteLength - 1; byte >= 0; byte--) {
    view.setUint8(byte, Number(unsigned & 0xffn));
    unsigned >>= 8n;
  }
}

function encodeString(spec: FieldSpec, text: string, count: number): number[] {
  const mode = spec.stringByteMode ?? "both";
  const capacity = mode === "both" ? count * 2 : count;
  if (text.length > capacity) throw new RangeError(`"${text}" exceeds ${capacity} characters`);
  const code = (k: number) => {
    const c = k < text.length ? text.charCodeAt(k) : 0;
    if (c > 0xff) throw new RangeError(`"${text}" has a character outside one byte`);
    return c;
  };
  return Array.from({ length: count }, (_, i) => {
    if (mode === "high") return code(i) << 8;
    if (mode === "low") return code(i);
    const [first, second] = [code(2 * i), code(2 * i + 1)];
    return swapsBytes(spec.byteOrder) ? (second << 8) | first : (first << 8) | second;
  });
}

function expectNumber(value: FieldValue | bigint): number {
  if (typeof value !== "number") throw new TypeError(`expected a number, got ${typeof value}`);
  return value;
}

function expectBoolean(value: FieldValue | bigint): boolean {
  if (typeof value !== "boolean") throw new TypeError(`expected a boolean, got ${typeof value}`);
  return value;
}
