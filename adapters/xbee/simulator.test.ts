import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import { ConfigError } from "../../src/config/schema-errors.ts";
import { createLogger } from "../../src/log/logger.ts";
import { socatAvailable, startPtyPair, type PtyPair } from "../../test/peers/socat.ts";
import { SerialPort } from "../serial/port.ts";
import {
  encodeFrame, encodeFrameData, FrameDecoder, FrameType, parseFrameData, parseNodeDiscovery,
  type AtCommandResponse, type DecodeEvent, type IoSample, type RemoteAtResponse, type RxPacket,
} from "./codec.ts";
import xbeeAdapter from "./index.ts";
import { loadXBeePlantFile, parseXBeePlant, type XBeePlant } from "./plant.ts";
import { XBeeConfigSchema, type XBeeConfig } from "./schema.ts";
import { startXBeeSimulator, type XBeeSimulator } from "./simulator.ts";

function testPlant(apiMode: 1 | 2): XBeePlant {
  return parseXBeePlant({
    name: "xbee-test",
    api_mode: apiMode,
    nodes: [
      {
        name: "wellhead",
        address64: "0013A20040522BAA",
        address16: "7D84",
        node_identifier: "WH",
        registers: {
          "40001": { type: "uint32", waveform: { kind: "counter", start: 0, step: 1, every_s: 1 } },
          "40003": { type: "float32", waveform: { kind: "constant", value: 185.4 } },
        },
      },
      {
        name: "annulus",
        address64: "0013A20040522BAB",
        address16: 0x7d85,
        node_identifier: "AN",
        registers: {
          "30001": { type: "uint16", waveform: { kind: "constant", value: 0x225 } },
          "10003": { type: "bool", waveform: { kind: "constant", value: true } },
          "10005": { type: "bool", waveform: { kind: "constant", value: false } },
        },
      },
    ],
  }, "xbee test plant");
}

/** Frames (and decode errors) read at the other end of the line. */
async function listen(path: string, mode: 1 | 2) {
  const port = await SerialPort.open({ path });
  const decoder = new FrameDecoder(mode);
  const events: DecodeEvent[] = [];
  port.onData((chunk) => events.push(...decoder.push(chunk)));
  return {
    port,
    decoder,
    frames: () => events.filter((e) => e.kind === "frame").map((e) => parseFrameData((e as { data: Uint8Array }).data)),
    async waitForFrames(count: number, timeoutMs = 3000) {
      const deadline = Date.now() + timeoutMs;
      while (this.frames().length < count && Date.now() < deadline) await Bun.sleep(5);
      return this.frames();
    },
  };
}

describe("XBee plant files", () => {
  test("plants/offshore-well-xbee.yaml: an RX node (two float32 registers, 8 payload bytes) and an IO node (AD0, supply voltage, DIO4)", () => {
    const plant = loadXBeePlantFile(new URL("../../plants/offshore-well-xbee.yaml", import.meta.url).pathname);
    expect(plant.apiMode).toBe(1);
    const [wellhead, annulus] = plant.nodes;
    expect(wellhead).toMatchObject({ address64: "0013A20040522BAA", address16: 0x7d84, payloadBytes: 8, analogMask: 0, digitalMask: 0 });
    expect(annulus).toMatchObject({ address64: "0013A20040522BAB", payloadBytes: 0, analogMask: 0x81, digitalMask: 0x10 });
  });

  const plantErrors = (nodes: unknown[]) => {
    try {
      parseXBeePlant({ name: "bad", nodes }, "bad.yaml");
    } catch (e) {
      if (e instanceof ConfigError) return e.fieldErrors;
      throw e;
    }
    return [];
  };

  test("register errors name the node: a bad type (checked as a Modbus plant register), a coil", () => {
    expect(plantErrors([
      { name: "a", address64: "0013A20040522BAA" },
      { name: "b", address64: "0013A20040522BAB", registers: { "40001": { type: "float33", waveform: { kind: "constant", value: 1 } } } },
    ]).map((e) => e.path)).toContain('nodes[1].registers["40001"].type');
    const [coil] = plantErrors([{ name: "a", address64: "0013A20040522BAA", registers: { "00001": { type: "bool", waveform: { kind: "constant", value: true } } } }]);
    expect(coil).toMatchObject({ path: 'nodes[0].registers["00001"]', message: expect.stringContaining("coils (0xxxx) are not carried") });
  });

  test("duplicate 64-bit addresses are refused", () => {
    expect(plantErrors([{ name: "a", address64: "0013A20040522BAA" }, { name: "b", address64: "0013a20040522baa" }])).toEqual([
      { path: "nodes[1].address64", message: '0013A20040522BAA is already node "a"' },
    ]);
  });
});

describe.skipIf(!socatAvailable)("XBee simulator over a pty pair", () => {
  let pair: PtyPair;
  let simulator: XBeeSimulator | undefined;
  const ports: SerialPort[] = [];
  beforeEach(async () => {
    pair = await startPtyPair();
  });
  afterEach(async () => {
    await simulator?.stop();
    simulator = undefined;
    await Promise.all(ports.splice(0).map((p) => p.close()));
    await pair.stop();
  });

  for (const mode of [1, 2] as const) {
    test(`API mode ${mode}: an RX packet per RX node and an IO sample per IO node, values from the waveforms at plant time`, async () => {
      let t = 0;
      simulator = await startXBeeSimulator({ device: pair.b, plant: testPlant(mode), autoSend: false, clock: () => t });
      const line = await listen(pair.a, mode);
      ports.push(line.port);
      for (t = 0; t < 3; t++) await simulator.tick();
      const frames = await line.waitForFrames(6);
      expect(frames).toHaveLength(6);
      const rx = frames.filter((f) => f.type === FrameType.RX_PACKET) as RxPacket[];
      // uint32 counter t, then 185.4 = 0x43396666.
      expect(rx.map((f) => [...f.data])).toEqual([0, 1, 2].map((n) => [0, 0, 0, n, 0x43, 0x39, 0x66, 0x66]));
      expect(rx.every((f) => f.source64 === "0013A20040522BAA" && f.source16 === 0x7d84)).toBe(true);
      const io = frames.filter((f) => f.type === FrameType.IO_SAMPLE) as IoSample[];
      expect(io.map((f) => [f.source64, f.analogMask, f.digitalMask, [...f.analog], [...f.digital]])).toEqual(
        Array(3).fill(["0013A20040522BAB", 0x01, 0x14, [[0, 0x225]], [[2, true], [4, false]]]),
      );
      expect(simulator.stats).toMatchObject({ framesSent: 6, rxPackets: 3, ioSamples: 3, byNode: { wellhead: 3, annulus: 3 } });
      expect(line.decoder.stats.frames).toBe(6);
    });
  }

  test("noise is reproducible: the same seed gives the same byte stream; every good frame still decodes", async () => {
    const streams: number[][] = [];
    for (const run of [0, 1]) {
      const t = 7;
      const sim = await startXBeeSimulator({ device: pair.b, plant: testPlant(2), autoSend: false, clock: () => t, noise: 0.5, seed: 42 });
      const port = await SerialPort.open({ path: pair.a });
      const bytes: number[] = [];
      port.onData((chunk) => bytes.push(...chunk));
      for (let i = 0; i < 40; i++) await sim.tick();
      await Bun.sleep(200);
      await sim.stop();
      await port.close();
      streams.push(bytes);
      if (run === 1) {
        const decoder = new FrameDecoder(2);
        const events = [...decoder.push(bytes), ...decoder.expire()];
        expect(events.filter((e) => e.kind === "frame")).toHaveLength(80);
        const noise = sim.stats.noise;
        expect(noise.garbage + noise.badChecksum + noise.truncated).toBeGreaterThan(20);
      }
    }
    expect(streams[0]!.length).toBeGreaterThan(0);
    expect(streams[1]).toEqual(streams[0]!);
  });

  test("the coordinator answers AT AP, ND (one frame per node, then an empty one) and remote NI", async () => {
    simulator = await startXBeeSimulator({ device: pair.b, plant: testPlant(2), autoSend: false });
    const line = await listen(pair.a, 2);
    ports.push(line.port);
    const send = (frame: Parameters<typeof encodeFrameData>[0]) => line.port.write(encodeFrame(encodeFrameData(frame), 2));
    await send({ type: FrameType.AT_COMMAND, frameId: 1, command: "AP", parameter: new Uint8Array() });
    await send({ type: FrameType.AT_COMMAND, frameId: 2, command: "ND", parameter: new Uint8Array() });
    await send({ type: FrameType.REMOTE_AT_COMMAND, frameId: 3, destination64: "0013A20040522BAB", destination16: 0xfffe, options: 0, command: "NI", parameter: new Uint8Array() });
    await send({ type: FrameType.REMOTE_AT_COMMAND, frameId: 4, destination64: "0013A200FFFFFFFF", destination16: 0xfffe, options: 0, command: "NI", parameter: new Uint8Array() });
    const frames = await line.waitForFrames(6);
    const [ap, nd1, nd2, ndEnd, ni, missing] = frames as [AtCommandResponse, AtCommandResponse, AtCommandResponse, AtCommandResponse, RemoteAtResponse, RemoteAtResponse];
    expect(ap).toMatchObject({ type: 0x88, frameId: 1, command: "AP", status: 0 });
    expect([...ap.data]).toEqual([2]);
    expect([parseNodeDiscovery(nd1.data), parseNodeDiscovery(nd2.data)].map((n) => [n.address64, n.address16, n.nodeIdentifier])).toEqual([
      ["0013A20040522BAA", 0x7d84, "WH"],
      ["0013A20040522BAB", 0x7d85, "AN"],
    ]);
    expect(ndEnd).toMatchObject({ frameId: 2, command: "ND", status: 0, data: new Uint8Array() });
    expect(ni).toMatchObject({ type: 0x97, frameId: 3, source64: "0013A20040522BAB", command: "NI", status: 0 });
    expect(new TextDecoder().decode(ni.data)).toBe("AN");
    expect(missing).toMatchObject({ frameId: 4, status: 4 }); // remote command transmission failed
  });

  test("the adapter's connection test: AT AP answered, then the configured nodes' readings", async () => {
    simulator = await startXBeeSimulator({ device: pair.b, plant: testPlant(1), clock: () => 3 });
    const config = Value.Default(XBeeConfigSchema, {
      pipeline_id: "p", adapter_id: "a", protocol: "xbee_modbus",
      source: { xbee_port: pair.a, node_id: "0013A20040522BAA" },
      mapping: { registers: { "40001": { param: "sequence", type: "uint32" }, "40003": { param: "pressure", type: "float32", unit: "psi" } } },
      output: { asset_id: "well" },
    }) as XBeeConfig;
    const samples = await xbeeAdapter.connectionTest!(config, createLogger("test", "silent"));
    expect(samples.length).toBeGreaterThanOrEqual(2);
    expect(samples.find((s) => s.parameter === "pressure")).toMatchObject({ asset_id: "well", value: 185.4, unit: "psi", quality: "GOOD" });
    expect(samples.find((s) => s.parameter === "sequence")).toMatchObject({ value: 3 });
  }, 10_000);

  test("the connection test names the mismatch when the XBee runs another API mode", async () => {
    simulator = await startXBeeSimulator({ device: pair.b, plant: testPlant(1), autoSend: false });
    const config = Value.Default(XBeeConfigSchema, {
      pipeline_id: "p", adapter_id: "a", protocol: "xbee_modbus",
      source: { xbee_port: pair.a, api_mode: 2 },
      mapping: { registers: { "40001": { param: "x" } } },
      output: { asset_id: "well" },
    }) as XBeeConfig;
    await expect(xbeeAdapter.connectionTest!(config, createLogger("test", "silent"))).rejects.toThrow("the XBee runs API mode 1 (AP=1) but api_mode is 2");
  });
});
