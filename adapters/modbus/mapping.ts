import { Type, type Static } from "@sinclair/typebox";
import type { FieldError } from "../../src/config/schema-errors.ts";
import { ModbusConfigError, parseAddress, type AddressingMode, type ModbusFunctionCode } from "./address.ts";
import { BYTE_ORDERS, MODBUS_DATA_TYPES, registerCount, validateFieldSpec, type FieldSpec } from "./codec.ts";
import { MODBUS_MAX_READ_BITS, MODBUS_MAX_READ_REGISTERS } from "./limits.ts";
import { DEFAULT_MAX_GAP, planReads, type PlanOptions, type ReadRequest } from "./plan.ts";

/** Config shared by every Modbus transport (TCP, RTU, and XBee's virtual registers). */
export const RegisterSchema = Type.Object(
  {
    param: Type.String({ minLength: 1, description: "Parameter name in the envelope, e.g. pressure" }),
    unit: Type.Optional(Type.String({ description: "Engineering unit, e.g. psi" })),
    type: Type.Optional(Type.Union(MODBUS_DATA_TYPES.map((t) => Type.Literal(t)), { description: "default uint16" })),
    // Optional rather than defaulted: TypeBox does not apply defaults inside the list form's union.
    byte_order: Type.Optional(Type.Union(BYTE_ORDERS.map((o) => Type.Literal(o)), { description: "Byte/word order of multi-register values (default ABCD)" })),
    scale: Type.Optional(Type.Number({ description: "value = raw * scale + offset (default 1)" })),
    offset: Type.Optional(Type.Number({ description: "default 0" })),
    length: Type.Optional(Type.Integer({ minimum: 1, maximum: MODBUS_MAX_READ_REGISTERS, description: "Registers of a string" })),
    bit: Type.Optional(Type.Integer({ minimum: 0, maximum: 15, description: "One bit of a status word, 0 = LSB" })),
    bits: Type.Optional(Type.Tuple([Type.Integer({ minimum: 0, maximum: 15 }), Type.Integer({ minimum: 0, maximum: 15 })], { description: "Inclusive bit range [from, to] of a status word" })),
  },
  { additionalProperties: false },
);
export type RegisterConfig = Static<typeof RegisterSchema>;

export const RegisterMapSchema = Type.Record(Type.String(), Type.Union([RegisterSchema, Type.Array(RegisterSchema, { minItems: 1 })]), {
  description:
    'Keys are addresses: "40001" (modicon) or "3:0" (explicit: function code and 0-based address). A list maps several fields onto one address, e.g. the bits of a status word.',
});

export const MappingSchema = Type.Object(
  {
    addressing: Type.Union([Type.Literal("modicon"), Type.Literal("explicit")], {
      default: "modicon",
      description: 'modicon: 1-based "40001" keys as in the seed; explicit: "<fc>:<address>" 0-based keys',
    }),
    registers: RegisterMapSchema,
  },
  { additionalProperties: false },
);

export const WorkaroundsSchema = Type.Object(
  {
    pause_after_connect_ms: Type.Integer({ minimum: 0, maximum: 60_000, default: 0, description: "Devices that drop the first request after connecting" }),
    pause_between_requests_ms: Type.Integer({ minimum: 0, maximum: 60_000, default: 0, description: "Slow devices that need a gap between requests" }),
    close_connection_after_poll: Type.Boolean({ default: false, description: "Devices with few connection slots" }),
    one_request_per_field: Type.Boolean({ default: false, description: "Devices that reject reads spanning several fields" }),
    string_byte_mode: Type.Union([Type.Literal("both"), Type.Literal("high"), Type.Literal("low")], {
      default: "both",
      description: "Devices that put one character per register, in the upper or lower byte",
    }),
  },
  { additionalProperties: false, default: {} },
);
export type Workarounds = Static<typeof WorkaroundsSchema>;

export const ReadLimitsSchema = {
  max_read_registers: Type.Integer({ minimum: 1, maximum: MODBUS_MAX_READ_REGISTERS, default: MODBUS_MAX_READ_REGISTERS, description: "Largest register read this device accepts" }),
  max_read_bits: Type.Integer({ minimum: 1, maximum: MODBUS_MAX_READ_BITS, default: MODBUS_MAX_READ_BITS }),
  max_gap: Type.Integer({ minimum: 0, maximum: MODBUS_MAX_READ_REGISTERS, default: DEFAULT_MAX_GAP, description: "Unused registers a merged read may span" }),
};

export interface CompiledField {
  id: string;
  key: string;
  param: string;
  unit?: string;
  functionCode: ModbusFunctionCode;
  address: number;
  spec: FieldSpec;
}

export interface CompiledUnit {
  unitId: number;
  assetId: string;
  fields: Map<string, CompiledField>;
  requests: ReadRequest[];
}

export function fieldSpec(register: RegisterConfig, workarounds: Workarounds): FieldSpec {
  return {
    type: register.type ?? "uint16",
    byteOrder: register.byte_order ?? "ABCD",
    scale: register.scale ?? 1,
    offset: register.offset ?? 0,
    ...(register.length === undefined ? {} : { length: register.length }),
    ...(register.bit === undefined ? {} : { bit: register.bit }),
    ...(register.bits === undefined ? {} : { bits: register.bits }),
    stringByteMode: workarounds.string_byte_mode,
  };
}

export interface UnitInput {
  unitId: number;
  assetId: string;
  registers: Record<string, RegisterConfig | RegisterConfig[]>;
  /** Where these registers sit in CONFIG_JSON, for error messages. */
  path: string;
}

/**
 * Turns register maps into read requests once, at start-up. Every problem is collected with its
 * config path, so a user sees all mistakes in one go rather than one per restart.
 */
export function compileUnits(
  units: UnitInput[],
  addressing: AddressingMode,
  workarounds: Workarounds,
  limits: { max_read_registers: number; max_read_bits: number; max_gap: number },
  limitsPath: string,
): { units: CompiledUnit[]; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const compiled: CompiledUnit[] = [];
  for (const unit of units) {
    const fields = new Map<string, CompiledField>();
    for (const [key, entry] of Object.entries(unit.registers)) {
      const list = Array.isArray(entry) ? entry : [entry];
      for (const [index, register] of list.entries()) {
        const path = `${unit.path}[${JSON.stringify(key)}]${Array.isArray(entry) ? `[${index}]` : ""}`;
        try {
          const { functionCode, address } = parseAddress(key, addressing);
          const spec = fieldSpec(register, workarounds);
          validateFieldSpec(spec, functionCode, key);
          const id = `${unit.unitId}:${key}#${index}`;
          fields.set(id, { id, key, param: register.param, ...(register.unit === undefined ? {} : { unit: register.unit }), functionCode, address, spec });
        } catch (error) {
          if (!(error instanceof ModbusConfigError)) throw error;
          errors.push({ path, message: error.message.replace(/^(field|register key) "[^"]*": /, "") });
        }
      }
    }
    const planOptions: PlanOptions = {
      maxGap: limits.max_gap,
      maxReadRegisters: limits.max_read_registers,
      maxReadBits: limits.max_read_bits,
      oneRequestPerField: workarounds.one_request_per_field,
    };
    try {
      const requests = planReads(
        [...fields.values()].map((f) => ({
          id: f.id,
          unitId: unit.unitId,
          functionCode: f.functionCode,
          address: f.address,
          count: f.functionCode <= 2 ? 1 : registerCount(f.spec),
        })),
        planOptions,
      );
      compiled.push({ unitId: unit.unitId, assetId: unit.assetId, fields, requests });
    } catch (error) {
      if (!(error instanceof ModbusConfigError)) throw error;
      errors.push({ path: limitsPath, message: error.message });
    }
  }
  return { units: compiled, errors };
}
