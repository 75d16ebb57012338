// XBee plant files: remote XBee nodes whose frames carry register values that follow the Modbus
// plant waveforms (adapters/modbus/plant.ts), encoded by the same codec (encodeField via plantBank).
//   4xxxx registers → the node's RX packet (0x90) payload, from 40001 (byte 0) up
//   3xxxx registers → analog channels of its IO sample (0x92): 30001 = AD0 ... 30008 = supply voltage
//   1xxxx registers → digital lines of its IO sample: 10001 = DIO0 ... 10016 = DIO15
import { Type, type Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { readYamlFile } from "../../src/config/load.ts";
import { ConfigError, schemaErrors, type FieldError } from "../../src/config/schema-errors.ts";
import { parsePlant, plantBank, type PlantDevice } from "../modbus/plant.ts";
import type { RegisterBank } from "../modbus/pdu.ts";
import { normalizeAddress64, type Address64, type ApiMode } from "./codec.ts";
import { ANALOG_CHANNELS, DIGITAL_LINES } from "./mapping.ts";

/** The largest RF payload of common Zigbee XBees (NP) is well under this; past it a frame is suspect. */
export const MAX_RX_PAYLOAD_BYTES = 255;

const Hex16 = Type.Union([Type.String({ pattern: "^[0-9A-Fa-f]{1,4}$" }), Type.Integer({ minimum: 0, maximum: 0xffff })]);

const NodeSchema = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    asset: Type.Optional(Type.String({ minLength: 1 })),
    description: Type.Optional(Type.String()),
    address64: Type.String({ pattern: "^[0-9A-Fa-f]{16}$", description: "SH + SL, 16 hex digits" }),
    address16: { ...Hex16, default: "FFFE", description: "MY network address (FFFE: unknown)" },
    node_identifier: Type.String({ maxLength: 20, default: "" }),
    interval_ms: Type.Integer({ minimum: 10, maximum: 86_400_000, default: 1000, description: "How often the node sends its frames" }),
    phase_ms: Type.Integer({ minimum: 0, default: 0, description: "Delay of the first frame, so nodes do not send in lockstep" }),
    addressing: Type.Union([Type.Literal("modicon"), Type.Literal("explicit")], { default: "modicon" }),
    registers: Type.Record(Type.String(), Type.Unknown(), { default: {} }),
  },
  { additionalProperties: false },
);

const PlantSchema = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    description: Type.Optional(Type.String()),
    api_mode: Type.Union([Type.Literal(1), Type.Literal(2)], { default: 1, description: "AP of the simulated local XBee" }),
    noise_seed: Type.Integer({ default: 1, description: "Seed of --noise, so a noisy run replays exactly" }),
    coordinator: Type.Object(
      {
        address64: Type.String({ pattern: "^[0-9A-Fa-f]{16}$", default: "0013A20040000001" }),
        node_identifier: Type.String({ maxLength: 20, default: "GATEWAY" }),
      },
      { additionalProperties: false, default: {} },
    ),
    nodes: Type.Array(Type.Unknown(), { minItems: 1 }),
  },
  { additionalProperties: false },
);

export interface XBeePlantNode {
  name: string;
  asset?: string;
  address64: Address64;
  address16: number;
  nodeIdentifier: string;
  intervalMs: number;
  phaseMs: number;
  /** The registers, as a Modbus plant device (waveforms, types, byte orders). */
  device: PlantDevice;
  /** RX payload length in bytes (0: the node sends no RX packets). */
  payloadBytes: number;
  /** Sampled analog channels and digital lines (empty masks: no IO samples). */
  analogMask: number;
  digitalMask: number;
}

export interface XBeePlant {
  name: string;
  description?: string;
  apiMode: ApiMode;
  noiseSeed: number;
  coordinator: { address64: Address64; nodeIdentifier: string };
  nodes: XBeePlantNode[];
}

/** Validates an XBee plant (parsed YAML); throws ConfigError listing every problem by path. */
export function parseXBeePlant(obj: unknown, sourceName: string): XBeePlant {
  const input = Value.Default(PlantSchema, Value.Clone(obj ?? {}));
  const errors: FieldError[] = schemaErrors(PlantSchema, input);
  if (errors.length > 0) throw new ConfigError(sourceName, errors);
  const raw = input as Static<typeof PlantSchema>;

  const rawNodes: Array<Static<typeof NodeSchema>> = [];
  raw.nodes.forEach((entry, i) => {
    const node = Value.Default(NodeSchema, Value.Clone(entry ?? {}));
    const problems = schemaErrors(NodeSchema, node, `nodes[${i}]`);
    errors.push(...problems);
    rawNodes.push(node as Static<typeof NodeSchema>);
  });
  if (errors.length > 0) throw new ConfigError(sourceName, errors);

  // The registers are a Modbus plant's: validated by parsePlant, one device per node.
  let devices: PlantDevice[];
  try {
    devices = parsePlant({
      name: raw.name,
      devices: rawNodes.map((n, i) => ({ name: n.name, port_offset: i, unit_id: 1, addressing: n.addressing, registers: n.registers })),
    }, sourceName).devices;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError(sourceName, error.fieldErrors.map((e) => ({ ...e, path: e.path.replace(/^devices\[/, "nodes[") })));
  }

  const addresses = new Map<string, string>();
  const nodes = rawNodes.map((n, i): XBeePlantNode => {
    const device = devices[i]!;
    const address64 = normalizeAddress64(n.address64);
    const other = addresses.get(address64);
    if (other) errors.push({ path: `nodes[${i}].address64`, message: `${address64} is already node ${JSON.stringify(other)}` });
    addresses.set(address64, n.name);
    let payloadBytes = 0;
    let analogMask = 0;
    let digitalMask = 0;
    for (const register of device.registers) {
      const at = `nodes[${i}].registers[${JSON.stringify(register.key)}]`;
      if (register.functionCode === 3) payloadBytes = Math.max(payloadBytes, (register.address + register.count) * 2);
      else if (register.functionCode === 4) {
        if (register.address + register.count > ANALOG_CHANNELS) errors.push({ path: at, message: `analog samples are AD0-AD${ANALOG_CHANNELS - 1} (30001-3000${ANALOG_CHANNELS})` });
        else for (let c = register.address; c < register.address + register.count; c++) analogMask |= 1 << c;
      } else if (register.functionCode === 2) {
        if (register.address >= DIGITAL_LINES) errors.push({ path: at, message: `digital samples are DIO0-DIO${DIGITAL_LINES - 1} (10001-100${DIGITAL_LINES})` });
        else digitalMask |= 1 << register.address;
      } else {
        errors.push({ path: at, message: "coils (0xxxx) are not carried by XBee frames: use 4xxxx (RX payload), 3xxxx (analog) or 1xxxx (digital)" });
      }
    }
    if (payloadBytes > MAX_RX_PAYLOAD_BYTES) errors.push({ path: `nodes[${i}].registers`, message: `the RX payload would be ${payloadBytes} bytes, above ${MAX_RX_PAYLOAD_BYTES}` });
    return {
      name: n.name,
      ...(n.asset === undefined ? {} : { asset: n.asset }),
      address64,
      address16: typeof n.address16 === "number" ? n.address16 : Number.parseInt(n.address16, 16),
      nodeIdentifier: n.node_identifier,
      intervalMs: n.interval_ms,
      phaseMs: n.phase_ms,
      device,
      payloadBytes,
      analogMask,
      digitalMask,
    };
  });
  if (errors.length > 0) throw new ConfigError(sourceName, errors);
  return {
    name: raw.name,
    ...(raw.description === undefined ? {} : { description: raw.description }),
    apiMode: raw.api_mode,
    noiseSeed: raw.noise_seed,
    coordinator: { address64: normalizeAddress64(raw.coordinator.address64), nodeIdentifier: raw.coordinator.node_identifier },
    nodes,
  };
}

export function loadXBeePlantFile(path: string): XBeePlant {
  return parseXBeePlant(readYamlFile(path), path);
}

export interface NodeFrames {
  /** RX packet payload, when the node has 4xxxx registers. */
  payload?: Uint8Array;
  /** IO sample values, when it has 3xxxx or 1xxxx registers. */
  analog?: Map<number, number>;
  digital?: Map<number, boolean>;
}

/** The values a node sends at plant time t (seconds), from its register bank. */
export function nodeBank(node: XBeePlantNode, clock: () => number): () => NodeFrames {
  const bank: RegisterBank = plantBank(node.device, clock);
  return () => {
    const out: NodeFrames = {};
    if (node.payloadBytes > 0) {
      const words = bank.readRegisters(3, 0, node.payloadBytes / 2)!;
      const payload = new Uint8Array(node.payloadBytes);
      for (let i = 0; i < words.length; i++) {
        payload[2 * i] = words[i]! >>> 8;
        payload[2 * i + 1] = words[i]! & 0xff;
      }
      out.payload = payload;
    }
    if (node.analogMask) {
      const words = bank.readRegisters(4, 0, ANALOG_CHANNELS)!;
      out.analog = new Map();
      // Sent as the waveform says: real modules report 10-bit AD0-AD3 and the supply voltage in their own units.
      for (let c = 0; c < ANALOG_CHANNELS; c++) if (node.analogMask & (1 << c)) out.analog.set(c, words[c]!);
    }
    if (node.digitalMask) {
      const bits = bank.readBits(2, 0, DIGITAL_LINES)!;
      out.digital = new Map();
      for (let line = 0; line < DIGITAL_LINES; line++) if (node.digitalMask & (1 << line)) out.digital.set(line, bits[line]!);
    }
    return out;
  };
}
