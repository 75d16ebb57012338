import { Type, type Static } from "@sinclair/typebox";
import { adapterConfigSchema } from "../../src/adapter-runtime/config.ts";
import { MappingSchema, ReadLimitsSchema, RegisterMapSchema, WorkaroundsSchema } from "../modbus/mapping.ts";

export const MODBUS_TCP_DEFAULT_PORT = 502;

const UnitId = Type.Integer({ minimum: 0, maximum: 255, description: "Modbus unit id (slave address)" });

const UnitSchema = Type.Object(
  {
    unit_id: UnitId,
    asset_id: Type.Optional(Type.String({ minLength: 1, description: "Defaults to output.asset_id" })),
    registers: Type.Optional(RegisterMapSchema),
  },
  { additionalProperties: false },
);

const ConnectionSchema = Type.Object(
  {
    host: Type.String({ minLength: 1 }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: MODBUS_TCP_DEFAULT_PORT }),
    units: Type.Array(UnitSchema, { minItems: 1, description: "Unit ids polled over this one connection" }),
  },
  { additionalProperties: false },
);

export const ModbusTcpSourceSchema = Type.Object(
  {
    host: Type.Optional(Type.String({ minLength: 1, description: "Single-device shorthand for connections[0].host" })),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: MODBUS_TCP_DEFAULT_PORT }),
    unit_id: Type.Integer({ minimum: 0, maximum: 255, default: 1 }),
    connections: Type.Optional(Type.Array(ConnectionSchema, { minItems: 1, description: "Several devices, each polled on its own" })),
    timeout_ms: Type.Integer({ minimum: 10, maximum: 60_000, default: 1000, description: "Per request" }),
    ...ReadLimitsSchema,
    workarounds: WorkaroundsSchema,
  },
  { additionalProperties: false },
);

export const ModbusTcpConfigSchema = adapterConfigSchema("modbus_tcp", ModbusTcpSourceSchema, MappingSchema);
export type ModbusTcpConfig = Static<typeof ModbusTcpConfigSchema>;
