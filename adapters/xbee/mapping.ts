// XBee frames as virtual Modbus registers, decoded by the same codec as Modbus (decodeField):
//   4xxxx (FC3)  RX packet (0x90) payload: bytes i, i+1 → register 40001 + i/2, big-endian
//   3xxxx (FC4)  IO sample (0x92) analog channels: AD n → register 30001 + n (bit 7 = supply voltage)
//   1xxxx (FC2)  IO sample (0x92) digital lines: DIO n → discrete input 10001 + n
// A frame fills only its own table: an RX packet yields the 4xxxx fields, an IO sample the 3xxxx
// and 1xxxx fields. Pure: no I/O.
import type { FieldError } from "../../src/config/schema-errors.ts";
import type { Sample } from "../../src/registry.ts";
import { decodeField, isFiniteReading, registerCount } from "../modbus/codec.ts";
import { compileUnits, type CompiledField, type CompiledUnit, type RegisterConfig, type Workarounds } from "../modbus/mapping.ts";
import { MODBUS_MAX_READ_BITS, MODBUS_MAX_READ_REGISTERS } from "../modbus/limits.ts";
import type { IoSample, RxPacket } from "./codec.ts";
import type { XBeeConfig } from "./schema.ts";

export const ANALOG_CHANNELS = 8;
export const DIGITAL_LINES = 16;

export interface XBeeNode {
  /** Upper-case prefix of the 64-bit source address; "" matches every sender. */
  prefix: string;
  assetId: string;
  unit: CompiledUnit;
}

const DEFAULT_WORKAROUNDS: Workarounds = {
  pause_after_connect_ms: 0,
  pause_between_requests_ms: 0,
  close_connection_after_poll: false,
  one_request_per_field: false,
  string_byte_mode: "both",
};

/** Virtual registers are never read over a wire, so there is no read size to respect. */
const LIMITS = { max_read_registers: MODBUS_MAX_READ_REGISTERS, max_read_bits: MODBUS_MAX_READ_BITS, max_gap: MODBUS_MAX_READ_REGISTERS };

export function compileNodes(config: XBeeConfig): { nodes: XBeeNode[]; errors: FieldError[] } {
  const { source, mapping } = config;
  const errors: FieldError[] = [];
  if (source.node_id !== undefined && source.nodes) errors.push({ path: "source.node_id", message: "use either source.node_id or source.nodes, not both" });
  const entries: NonNullable<typeof source.nodes> = source.nodes ?? [{ node_id: source.node_id ?? "" }];
  const seen = new Map<string, number>();
  const inputs = entries.map((entry, n) => {
    const prefix = entry.node_id.toUpperCase();
    const other = seen.get(prefix);
    if (other !== undefined) errors.push({ path: `source.nodes[${n}].node_id`, message: `node_id ${prefix} is already source.nodes[${other}]` });
    seen.set(prefix, n);
    const registers: Record<string, RegisterConfig | RegisterConfig[]> = entry.registers ?? mapping.registers;
    const path = entry.registers ? `source.nodes[${n}].registers` : "mapping.registers";
    return { unitId: n, assetId: entry.asset_id ?? config.output.asset_id, registers, path, prefix };
  });
  const compiled = compileUnits(inputs, mapping.addressing, DEFAULT_WORKAROUNDS, LIMITS, "mapping.registers");
  errors.push(...compiled.errors);
  for (const [n, unit] of compiled.units.entries()) {
    const path = inputs[n]!.path;
    for (const field of unit.fields.values()) {
      const at = `${path}[${JSON.stringify(field.key)}]`;
      if (field.functionCode === 1) {
        errors.push({ path: at, message: "coils (0xxxx) are not carried by XBee frames: use 4xxxx for RX payload bytes, 3xxxx for analog samples, 1xxxx for digital samples" });
      } else if (field.functionCode === 4 && field.address + registerCount(field.spec) > ANALOG_CHANNELS) {
        errors.push({ path: at, message: `XBee analog samples are channels AD0-AD${ANALOG_CHANNELS - 1} (30001-3000${ANALOG_CHANNELS}; 30008 is the supply voltage)` });
      } else if (field.functionCode === 2 && field.address >= DIGITAL_LINES) {
        errors.push({ path: at, message: `XBee digital samples are lines DIO0-DIO${DIGITAL_LINES - 1} (10001-100${DIGITAL_LINES})` });
      }
    }
  }
  if (errors.length === 0 && compiled.units.every((u) => u.fields.size === 0)) errors.push({ path: "mapping.registers", message: "expected at least one register" });
  const nodes = compiled.units.map((unit, n) => ({ prefix: inputs[n]!.prefix, assetId: unit.assetId, unit }));
  const unique = [...new Map(errors.map((e) => [`${e.path}\n${e.message}`, e])).values()];
  return { nodes, errors: unique };
}

/** The most specific node whose prefix the address starts with. */
export function matchNode(nodes: readonly XBeeNode[], source64: string): XBeeNode | undefined {
  let best: XBeeNode | undefined;
  for (const node of nodes) {
    if (source64.startsWith(node.prefix) && (!best || node.prefix.length > best.prefix.length)) best = node;
  }
  return best;
}

export interface FrameReadings {
  samples: Sample[];
  /** Fields the frame should carry but does not (short payload, unsampled channel), for recordError("decode"). */
  problems: string[];
}

/** Payload bytes → 16-bit registers, big-endian; an odd last byte is left out (half a register). */
export function payloadRegisters(payload: Uint8Array): number[] {
  return Array.from({ length: payload.length >> 1 }, (_, i) => (payload[2 * i]! << 8) | payload[2 * i + 1]!);
}

function readings(node: XBeeNode, at: Date, fc: 2 | 3 | 4, slice: (field: CompiledField, count: number) => number[] | boolean[] | string): FrameReadings {
  const samples: Sample[] = [];
  const problems: string[] = [];
  for (const field of node.unit.fields.values()) {
    if (field.functionCode !== fc) continue;
    const base = { asset_id: node.assetId, parameter: field.param, ...(field.unit === undefined ? {} : { unit: field.unit }), device_time: at, time_source: "gateway" as const };
    const count = fc === 2 ? 1 : registerCount(field.spec);
    const data = slice(field, count);
    if (typeof data === "string") {
      problems.push(data);
      samples.push({ ...base, value: null, quality: "BAD", error: data });
      continue;
    }
    try {
      const value = decodeField(field.spec, data);
      samples.push(isFiniteReading(value) ? { ...base, value, quality: "GOOD" } : { ...base, value: null, quality: "BAD", error: `register ${field.key} holds ${value}` });
    } catch (error) {
      const message = `decode ${field.key}: ${(error as Error).message}`;
      problems.push(message);
      samples.push({ ...base, value: null, quality: "BAD", error: message });
    }
  }
  return { samples, problems };
}

/** An RX packet's payload as 4xxxx registers. */
export function rxReadings(node: XBeeNode, frame: RxPacket, at: Date): FrameReadings {
  const words = payloadRegisters(frame.data);
  return readings(node, at, 3, (field, count) => field.address + count <= words.length
    ? words.slice(field.address, field.address + count)
    : `payload from ${frame.source64} has ${frame.data.length} bytes; register ${field.key} needs bytes ${field.address * 2}-${(field.address + count) * 2 - 1}`);
}

/** An IO sample's analog channels as 3xxxx registers and digital lines as 1xxxx inputs. */
export function ioReadings(node: XBeeNode, frame: IoSample, at: Date): FrameReadings {
  const analog = readings(node, at, 4, (field, count) => {
    const words: number[] = [];
    for (let channel = field.address; channel < field.address + count; channel++) {
      const value = frame.analog.get(channel);
      if (value === undefined) return `IO sample from ${frame.source64} does not include AD${channel} (register ${field.key})`;
      words.push(value);
    }
    return words;
  });
  const digital = readings(node, at, 2, (field) => {
    const high = frame.digital.get(field.address);
    return high === undefined ? `IO sample from ${frame.source64} does not include DIO${field.address} (input ${field.key})` : [high];
  });
  return { samples: [...analog.samples, ...digital.samples], problems: [...analog.problems, ...digital.problems] };
}

/** BAD for every field of every node, once, e.g. when the serial port is lost. */
export function badReadings(nodes: readonly XBeeNode[], reason: string, at: Date): Sample[] {
  return nodes.flatMap((node) => [...node.unit.fields.values()].map((field) => ({
    asset_id: node.assetId,
    parameter: field.param,
    ...(field.unit === undefined ? {} : { unit: field.unit }),
    value: null,
    quality: "BAD" as const,
    device_time: at,
    time_source: "gateway" as const,
    error: reason,
  })));
}
