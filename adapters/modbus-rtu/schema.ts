import { Type, type Static } from "@sinclair/typebox";
import { adapterConfigSchema } from "../../src/adapter-runtime/config.ts";
import { MappingSchema, ReadLimitsSchema, RegisterMapSchema, WorkaroundsSchema } from "../modbus/mapping.ts";
import { RTU_MAX_UNIT_ID, RTU_MIN_UNIT_ID } from "./frame.ts";

const unitId = (description: string) => Type.Integer({ minimum: RTU_MIN_UNIT_ID, maximum: RTU_MAX_UNIT_ID, description });
const timeout = (options: { description: string; default?: number }) => Type.Integer({ minimum: 10, maximum: 60_000, ...options });

const UnitSchema = Type.Object(
  {
    unit_id: unitId("Slave address on the serial line (1-247)"),
    asset_id: Type.Optional(Type.String({ minLength: 1, description: "Defaults to output.asset_id" })),
    registers: Type.Optional(RegisterMapSchema),
    timeout_ms: Type.Optional(timeout({ description: "This slave's response timeout, overriding source.timeout_ms" })),
  },
  { additionalProperties: false },
);

export const BAUD_RATES = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] as const;

export const ModbusRtuSourceSchema = Type.Object(
  {
    device: Type.String({ minLength: 1, description: "Serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/..." }),
    baud_rate: Type.Union(BAUD_RATES.map((b) => Type.Literal(b)), { default: 19200, description: "The spec's default is 19200" }),
    parity: Type.Union([Type.Literal("none"), Type.Literal("even"), Type.Literal("odd")], { default: "even", description: "The spec's default is even" }),
    data_bits: Type.Literal(8, { default: 8, description: "RTU frames are 8-bit binary (7 data bits is Modbus ASCII)" }),
    stop_bits: Type.Union([Type.Literal(1), Type.Literal(2)], { default: 1, description: "The spec asks for 2 when parity is none" }),
    unit_id: Type.Optional(unitId("Single-slave shorthand for units: [{unit_id}]")),
    units: Type.Optional(Type.Array(UnitSchema, { minItems: 1, description: "Slaves polled on this bus, in order" })),
    timeout_ms: timeout({ default: 1000, description: "Response timeout per request, counted from the end of the request" }),
    inter_frame_delay_ms: Type.Optional(Type.Number({ minimum: 0, maximum: 1000, description: "Silence before each request; default t3.5 from the baud rate (1.75 ms above 19200 baud)" })),
    ...ReadLimitsSchema,
    workarounds: WorkaroundsSchema,
  },
  { additionalProperties: false },
);

export const ModbusRtuConfigSchema = adapterConfigSchema("modbus_rtu", ModbusRtuSourceSchema, MappingSchema);
export type ModbusRtuConfig = Static<typeof ModbusRtuConfigSchema>;
