import { describe, expect, test } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import { FrameType, type IoSample, type RxPacket } from "./codec.ts";
import { compileNodes, ioReadings, matchNode, payloadRegisters, rxReadings } from "./mapping.ts";
import { XBeeConfigSchema, type XBeeConfig } from "./schema.ts";

/** The seed's example config, as given. */
const SEED = {
  pipeline_id: "offshore-well-12-wireless",
  adapter_id: "xbee-1",
  protocol: "xbee_modbus",
  source: { xbee_port: "/dev/ttyUSB0", baud_rate: 9600, node_id: "0013A200" },
  mapping: {
    registers: {
      "40001": { param: "pressure", unit: "psi", type: "float32", scale: 1.0 },
      "40003": { param: "temperature", unit: "celsius", type: "float32", scale: 0.1 },
    },
  },
  output: { kafka_bootstrap: "127.0.0.1:9092", topic: "telemetry.raw", asset_id: "offshore_well_12" },
};

function config(overrides: Record<string, unknown> = {}): XBeeConfig {
  const raw = Value.Default(XBeeConfigSchema, structuredClone({ ...SEED, ...overrides }));
  const errors = [...Value.Errors(XBeeConfigSchema, raw)].map((e) => `${e.path}: ${e.message}`);
  if (errors.length > 0) throw new Error(errors.join("\n"));
  return raw as XBeeConfig;
}

const rx = (source64: string, payload: number[]): RxPacket => ({ type: FrameType.RX_PACKET, source64, source16: 0x7d84, options: 1, data: Uint8Array.from(payload) });
const at = new Date("2026-01-01T00:00:00Z");

describe("the seed's config", () => {
  test("validates, with the defaults filled in (9600 8N1, API mode 1)", () => {
    const c = config();
    expect(compileNodes(c).errors).toEqual([]);
    expect(c.source).toMatchObject({ baud_rate: 9600, parity: "none", stop_bits: 1, api_mode: 1, frame_timeout_ms: 100 });
  });

  test("RX payload bytes 0-3 → 40001 pressure, bytes 4-7 → 40003 temperature (× 0.1), decoded as float32 big-endian", () => {
    const { nodes } = compileNodes(config());
    const node = matchNode(nodes, "0013A20040522BAA")!;
    // 185.4 = 0x43396666 (1.448… × 2^7: exponent 134 = 0x86); 645.0 = 0x44214000 (1.259… × 2^9), × 0.1 = 64.5.
    const { samples, problems } = rxReadings(node, rx("0013A20040522BAA", [0x43, 0x39, 0x66, 0x66, 0x44, 0x21, 0x40, 0x00]), at);
    expect(problems).toEqual([]);
    expect(samples).toEqual([
      { asset_id: "offshore_well_12", parameter: "pressure", unit: "psi", value: 185.4, quality: "GOOD", device_time: at, time_source: "gateway" },
      { asset_id: "offshore_well_12", parameter: "temperature", unit: "celsius", value: 64.5, quality: "GOOD", device_time: at, time_source: "gateway" },
    ]);
  });

  test("node_id filters by 64-bit source address prefix: another vendor's radio matches nothing", () => {
    const { nodes } = compileNodes(config());
    expect(matchNode(nodes, "0013A20040522BAA")).toBeDefined();
    expect(matchNode(nodes, "0013A2004105FFFF")).toBeDefined();
    expect(matchNode(nodes, "00124B0001020304")).toBeUndefined();
  });

  test("a payload too short for a register: that field BAD with the byte range it needed, the others GOOD", () => {
    const { nodes } = compileNodes(config());
    const { samples, problems } = rxReadings(nodes[0]!, rx("0013A20040522BAA", [0x43, 0x39, 0x66, 0x66, 0x44, 0x21]), at);
    expect(samples.map((s) => [s.parameter, s.quality, s.value])).toEqual([["pressure", "GOOD", 185.4], ["temperature", "BAD", null]]);
    expect(problems).toEqual(["payload from 0013A20040522BAA has 6 bytes; register 40003 needs bytes 4-7"]);
  });

  test("NaN in a float register is BAD, not an error", () => {
    const { nodes } = compileNodes(config());
    const { samples } = rxReadings(nodes[0]!, rx("0013A20040522BAA", [0x7f, 0xc0, 0, 0, 0x44, 0x21, 0x40, 0x00]), at);
    expect(samples[0]).toMatchObject({ quality: "BAD", value: null, error: "register 40001 holds NaN" });
  });
});

describe("several nodes, IO samples", () => {
  const twoNodes = config({
    source: {
      xbee_port: "/dev/ttyUSB0",
      nodes: [
        { node_id: "0013A200", asset_id: "any-digi" },
        { node_id: "0013a20040522bab", asset_id: "annulus", registers: { "30001": { param: "ad0" }, "30008": { param: "supply", unit: "mV" }, "10005": { param: "door_closed", type: "bool" } } },
      ],
    },
  });

  test("the longest matching node_id wins, case-insensitively", () => {
    const { nodes, errors } = compileNodes(twoNodes);
    expect(errors).toEqual([]);
    expect(matchNode(nodes, "0013A20040522BAB")!.assetId).toBe("annulus");
    expect(matchNode(nodes, "0013A20040522BAA")!.assetId).toBe("any-digi");
  });

  test("IO sample: AD0 → 30001, supply voltage (AD7) → 30008, DIO4 → 10005", () => {
    const node = matchNode(compileNodes(twoNodes).nodes, "0013A20040522BAB")!;
    const frame: IoSample = {
      type: FrameType.IO_SAMPLE, source64: "0013A20040522BAB", source16: 1, options: 1,
      digitalMask: 0x0010, analogMask: 0x81, digital: new Map([[4, true]]), analog: new Map([[0, 0x225], [7, 3300]]),
    };
    const { samples, problems } = ioReadings(node, frame, at);
    expect(problems).toEqual([]);
    expect(samples.map((s) => [s.parameter, s.value, s.quality])).toEqual([["ad0", 0x225, "GOOD"], ["supply", 3300, "GOOD"], ["door_closed", true, "GOOD"]]);
    // An RX packet from the same node carries none of its (3xxxx/1xxxx) fields.
    expect(rxReadings(node, rx("0013A20040522BAB", [1, 2, 3, 4]), at).samples).toEqual([]);
  });

  test("an IO sample without a mapped channel: BAD naming the channel", () => {
    const node = matchNode(compileNodes(twoNodes).nodes, "0013A20040522BAB")!;
    const frame: IoSample = {
      type: FrameType.IO_SAMPLE, source64: "0013A20040522BAB", source16: 1, options: 1,
      digitalMask: 0, analogMask: 0x01, digital: new Map(), analog: new Map([[0, 7]]),
    };
    const { samples, problems } = ioReadings(node, frame, at);
    expect(samples.filter((s) => s.quality === "BAD").map((s) => s.parameter)).toEqual(["supply", "door_closed"]);
    expect(problems).toEqual([
      "IO sample from 0013A20040522BAB does not include AD7 (register 30008)",
      "IO sample from 0013A20040522BAB does not include DIO4 (input 10005)",
    ]);
  });
});

describe("config errors name their path", () => {
  test("coils, analog channels past AD7, digital lines past DIO15", () => {
    const { errors } = compileNodes(config({
      mapping: { registers: { "00001": { param: "c", type: "bool" }, "30009": { param: "a" }, "10017": { param: "d", type: "bool" } } },
    }));
    expect(errors.map((e) => e.path).sort()).toEqual(['mapping.registers["00001"]', 'mapping.registers["10017"]', 'mapping.registers["30009"]']);
    expect(errors.find((e) => e.path.includes("00001"))!.message).toContain("coils (0xxxx) are not carried by XBee frames");
  });

  test("node_id together with nodes; a node listed twice; a bad register key", () => {
    const { errors } = compileNodes(config({
      source: { xbee_port: "/dev/ttyUSB0", node_id: "0013A200", nodes: [{ node_id: "AB" }, { node_id: "ab", registers: { "4x001": { param: "p" } } }] },
    }));
    expect(errors.map((e) => e.path)).toEqual(["source.node_id", "source.nodes[1].node_id", 'source.nodes[1].registers["4x001"]']);
  });

  test("payload bytes to registers: big-endian pairs, an odd last byte left out", () => {
    expect(payloadRegisters(Uint8Array.of(0x12, 0x34, 0x56))).toEqual([0x1234]);
  });
});
