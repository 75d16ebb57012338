import { isFunctionCode, isValidAddress, ModbusConfigError, type ModbusFunctionCode } from "./address.ts";
import { MODBUS_ADDRESS_SPACE, MODBUS_MAX_READ_BITS, MODBUS_MAX_READ_REGISTERS } from "./limits.ts";

/** A value to poll: `count` registers (FC3/FC4) or bits (FC1/FC2) from `address` (0-based). */
export interface PlanField {
  id: string;
  unitId: number;
  functionCode: ModbusFunctionCode;
  address: number;
  count: number;
}

export interface PlanOptions {
  /** Unused registers (or bits) a read may span between two fields. */
  maxGap?: number;
  /** Per-device cap for FC3/FC4 quantities; some devices accept less than the spec's 125. */
  maxReadRegisters?: number;
  /** Per-device cap for FC1/FC2 quantities. */
  maxReadBits?: number;
  /** Workaround for devices that reject any read crossing a field boundary. */
  oneRequestPerField?: boolean;
}

/** Where a field sits in its request's response: response[offset .. offset + count). */
export interface FieldSlice {
  id: string;
  offset: number;
  count: number;
}

export interface ReadRequest {
  unitId: number;
  functionCode: ModbusFunctionCode;
  address: number;
  quantity: number;
  fields: FieldSlice[];
}

/**
 * Reading a few unused registers is cheaper than another round trip. Devices
 * that answer "Illegal Data Address" for unmapped holes need maxGap: 0.
 */
export const DEFAULT_MAX_GAP = 10;

/** Highest Modbus unit id (serial addresses 1-247; TCP gateways also use 0 and 255). */
const MAX_UNIT_ID = 255;

/**
 * Groups fields into as few reads as the limits allow. Fields of one unit and
 * function code share a read when the hole between them is at most maxGap and
 * the read stays within the cap; overlapping fields share the same words.
 * Output is ordered by unit id, function code, then address.
 */
export function planReads(fields: readonly PlanField[], options: PlanOptions = {}): ReadRequest[] {
  const maxGap = checkOption("maxGap", options.maxGap ?? DEFAULT_MAX_GAP, 0, Infinity);
  const caps = {
    registers: checkOption("maxReadRegisters", options.maxReadRegisters ?? MODBUS_MAX_READ_REGISTERS, 1, MODBUS_MAX_READ_REGISTERS),
    bits: checkOption("maxReadBits", options.maxReadBits ?? MODBUS_MAX_READ_BITS, 1, MODBUS_MAX_READ_BITS),
  };
  const capOf = (fc: ModbusFunctionCode) => (fc === 1 || fc === 2 ? caps.bits : caps.registers);

  const seenIds = new Set<string>();
  for (const field of fields) {
    checkField(field, capOf(field.functionCode));
    if (seenIds.has(field.id)) throw new ModbusConfigError(`field ${JSON.stringify(field.id)}: duplicate field id`);
    seenIds.add(field.id);
  }

  // Sorting by id last keeps the plan identical whatever order the config lists fields in.
  const sorted = [...fields].sort(
    (a, b) => a.unitId - b.unitId || a.functionCode - b.functionCode || a.address - b.address
      || b.count - a.count || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );

  const requests: ReadRequest[] = [];
  let current: ReadRequest | undefined;
  for (const field of sorted) {
    const end = field.address + field.count;
    const fits = current !== undefined && !options.oneRequestPerField
      && current.unitId === field.unitId && current.functionCode === field.functionCode
      && field.address - (current.address + current.quantity) <= maxGap
      && Math.max(end, current.address + current.quantity) - current.address <= capOf(field.functionCode);
    if (!current || !fits) {
      current = { unitId: field.unitId, functionCode: field.functionCode, address: field.address, quantity: 0, fields: [] };
      requests.push(current);
    }
    current.quantity = Math.max(current.quantity, end - current.address);
    current.fields.push({ id: field.id, offset: field.address - current.address, count: field.count });
  }
  return requests;
}

function checkOption(name: string, value: number, min: number, max: number): number {
  if (!(value >= min && value <= max) || (Number.isFinite(value) && !Number.isInteger(value))) {
    throw new ModbusConfigError(`${name} must be an integer ${min}-${max}, got ${value}`);
  }
  return value;
}

function checkField(field: PlanField, cap: number): void {
  const configError = (problem: string) => new ModbusConfigError(`field ${JSON.stringify(field.id)}: ${problem}`);
  if (!field.id) throw new ModbusConfigError("field id must be a non-empty string");
  if (!Number.isInteger(field.unitId) || field.unitId < 0 || field.unitId > MAX_UNIT_ID) throw configError(`unit id must be 0-${MAX_UNIT_ID}, got ${field.unitId}`);
  if (!isFunctionCode(field.functionCode)) throw configError(`function code must be 1-4, got ${field.functionCode}`);
  if (!isValidAddress(field.address)) throw configError(`address must be 0-${MODBUS_ADDRESS_SPACE - 1}, got ${field.address}`);
  const unit = field.functionCode === 1 || field.functionCode === 2 ? "bits" : "registers";
  if (!Number.isInteger(field.count) || field.count < 1) throw configError(`count must be a positive integer, got ${field.count}`);
  if (field.count > cap) throw configError(`${field.count} ${unit} exceed the ${cap}-${unit} limit of one read`);
  if (field.address + field.count > MODBUS_ADDRESS_SPACE) throw configError(`${field.count} ${unit} from address ${field.address} run past ${MODBUS_ADDRESS_SPACE - 1}`);
}

/** Slices a response (words for FC3/FC4, bits for FC1/FC2) into each field's part, keyed by field id. */
export function splitResponse<T>(request: ReadRequest, response: ArrayLike<T>): Map<string, T[]> {
  // FC1/FC2 responses are padded to whole bytes, so more values than requested is normal.
  if (response.length < request.quantity) {
    throw new RangeError(`response has ${response.length} values, request asked for ${request.quantity}`);
  }
  const values = Array.from(response);
  return new Map(request.fields.map((f) => [f.id, values.slice(f.offset, f.offset + f.count)]));
}
