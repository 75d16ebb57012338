import { Type, type Static } from "@sinclair/typebox";
import { adapterConfigSchema } from "../../src/adapter-runtime/config.ts";
import { MappingSchema, RegisterMapSchema } from "../modbus/mapping.ts";

/** A 64-bit source address or its prefix, e.g. "0013A200" (Digi's OUI: every XBee) or a full "0013A20040522BAA". */
const nodeId = (description: string) => Type.String({ pattern: "^[0-9A-Fa-f]{1,16}$", description });

const NodeSchema = Type.Object(
  {
    node_id: nodeId("64-bit source address (16 hex digits) or a prefix of it"),
    asset_id: Type.Optional(Type.String({ minLength: 1, description: "Defaults to output.asset_id" })),
    registers: Type.Optional(RegisterMapSchema),
  },
  { additionalProperties: false },
);

export const XBEE_BAUD_RATES = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400] as const;

export const XBeeSourceSchema = Type.Object(
  {
    xbee_port: Type.String({ minLength: 1, description: "Serial device of the local (coordinator) XBee, e.g. /dev/ttyUSB0" }),
    baud_rate: Type.Union(XBEE_BAUD_RATES.map((b) => Type.Literal(b)), { default: 9600, description: "The XBee's BD setting (default 9600)" }),
    parity: Type.Union([Type.Literal("none"), Type.Literal("even"), Type.Literal("odd")], { default: "none", description: "The XBee's NB setting" }),
    stop_bits: Type.Union([Type.Literal(1), Type.Literal(2)], { default: 1, description: "The XBee's SB setting" }),
    api_mode: Type.Union([Type.Literal(1), Type.Literal(2)], {
      default: 1,
      description: "The XBee's AP setting: 1 API, 2 API with escaped characters (recommended on noisy links)",
    }),
    node_id: Type.Optional(nodeId("Only frames from senders whose 64-bit address starts with this (a prefix or all 16 hex digits); all senders when absent")),
    nodes: Type.Optional(Type.Array(NodeSchema, { minItems: 1, description: "Several senders, each its own asset and registers; the longest matching node_id wins" })),
    frame_timeout_ms: Type.Integer({
      minimum: 10,
      maximum: 10_000,
      default: 100,
      description: "Silence after which a partly received frame is dropped as truncated",
    }),
  },
  { additionalProperties: false },
);

export const XBeeConfigSchema = adapterConfigSchema("xbee_modbus", XBeeSourceSchema, MappingSchema);
export type XBeeConfig = Static<typeof XBeeConfigSchema>;
