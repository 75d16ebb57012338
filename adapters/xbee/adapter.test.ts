/**
 * The xbee_modbus adapter process (`gateway adapter`) reading our XBee simulator over a pty pair,
 * with line noise injected between frames (garbage bytes, start delimiters included; frames with a
 * bad checksum; truncated frames), into Kafka. Every well-formed frame's values must arrive, once:
 * frames carry a sequence number, so a lost or duplicated frame shows.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Reading } from "../../src/envelope/reading.ts";
import { KafkaAdmin } from "../../src/kafka/admin.ts";
import { readAll, spawnAdapter, type AdapterProcess } from "../../test/peers/adapter-process.ts";
import { socatAvailable, startPtyPair, type PtyPair } from "../../test/peers/socat.ts";
import { KAFKA_BOOTSTRAP, kafkaConnection, kafkaUp, uniqueName } from "../../test/support/services.ts";
import { shortestFloat32 } from "../modbus/codec.ts";
import { waveformValue, type Waveform } from "../modbus/plant.ts";
import { loadXBeePlantFile, parseXBeePlant } from "./plant.ts";
import { startXBeeSimulator } from "./simulator.ts";

const repo = join(import.meta.dir, "../..");

async function waitForLog(adapter: AdapterProcess, msg: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!adapter.lines.some((l) => l.msg === msg)) {
    if (Date.now() > deadline) throw new Error(`adapter never logged "${msg}": ${JSON.stringify(adapter.lines.slice(-5))}`);
    await Bun.sleep(20);
  }
}

const inOrder = (readings: Reading[], asset: string, parameter: string) => readings.filter((r) => r.asset_id === asset && r.parameter === parameter);

describe.skipIf(!kafkaUp || !socatAvailable)("xbee_modbus adapter process against the XBee simulator with line noise, into Kafka", () => {
  const admin = new KafkaAdmin(kafkaConnection("xbee-test-admin"));
  const topics: string[] = [];
  const pairs: PtyPair[] = [];

  async function topic(): Promise<string> {
    const name = uniqueName("test.xbee");
    await admin.createTopic(name, 3);
    topics.push(name);
    return name;
  }
  beforeAll(async () => {
    pairs.push(await startPtyPair(), await startPtyPair());
  });
  afterAll(async () => {
    await Promise.all(pairs.map((p) => p.stop()));
    await admin.deleteTopics(topics).catch(() => undefined);
    await admin.close();
  });

  test("API mode 2, noise after 30 % of frames: RX packets and IO samples of two nodes, every frame's values exactly once", async () => {
    const [pair] = pairs;
    const out = await topic();
    const pressure: Waveform = { kind: "sine", min: 180, max: 190, period_s: 60 };
    const plant = parseXBeePlant({
      name: "noisy", api_mode: 2, noise_seed: 7,
      nodes: [
        {
          name: "wellhead", address64: "0013A20040522BAA", address16: "7D84",
          registers: {
            "40001": { type: "uint32", waveform: { kind: "counter", start: 0, step: 1, every_s: 1 } },
            "40003": { type: "float32", unit: "psi", waveform: pressure },
            "40005": { type: "float32", scale: 0.1, waveform: { kind: "constant", value: 64.5 } },
          },
        },
        {
          name: "annulus", address64: "0013A20040522BAB", address16: "7D85",
          registers: {
            "30001": { type: "uint16", waveform: { kind: "counter", start: 0, step: 1, every_s: 1 } },
            "30008": { type: "uint16", waveform: { kind: "constant", value: 3300 } },
            "10005": { type: "bool", waveform: { kind: "square", low: 0, high: 1, period_s: 2 } },
          },
        },
      ],
    }, "noisy plant");
    const pipelineId = uniqueName("xbee-mode2");
    const adapter = spawnAdapter({
      pipeline_id: pipelineId,
      adapter_id: `adapter-${pipelineId}`,
      protocol: "xbee_modbus",
      source: {
        xbee_port: pair!.a,
        baud_rate: 115200,
        api_mode: 2,
        nodes: [
          { node_id: "0013A20040522BAA", asset_id: "wellhead", registers: { "40001": { param: "seq", type: "uint32" }, "40003": { param: "pressure", type: "float32", unit: "psi" }, "40005": { param: "temperature", type: "float32", scale: 0.1 } } },
          { node_id: "0013A20040522BAB", asset_id: "annulus", registers: { "30001": { param: "seq" }, "30008": { param: "supply", unit: "mV" }, "10005": { param: "door", type: "bool" } } },
        ],
      },
      mapping: { registers: {} },
      output: { kafka_bootstrap: KAFKA_BOOTSTRAP, topic: out, asset_id: "unused" },
      poll_interval_ms: 1000,
    });
    await waitForLog(adapter, "XBee port open");
    let t = 0;
    const simulator = await startXBeeSimulator({ device: pair!.b, plant, autoSend: false, clock: () => t, noise: 0.3, line: { baudRate: 115200 } });
    const TICKS = 200;
    for (t = 0; t < TICKS; t++) await simulator.tick();
    await simulator.stop();
    const expected = simulator.stats.framesSent * 3;
    expect(simulator.stats.framesSent).toBe(2 * TICKS);
    const noiseEvents = simulator.stats.noise.garbage + simulator.stats.noise.badChecksum + simulator.stats.noise.truncated;
    expect(noiseEvents).toBeGreaterThan(TICKS * 2 * 0.2);

    expect(await adapter.waitForMetric("adapter_readings_total", expected)).toBe(expected);
    await Bun.sleep(300); // a bogus extra frame would show up here
    const protocolErrors = await adapter.metric("adapter_errors_total", 'type="protocol"');
    const { exitCode, stderr, summary } = await adapter.stop();
    expect({ exitCode, stderr }).toEqual({ exitCode: 0, stderr: "" });
    expect(summary!.readings_total).toBe(expected);
    // Every injected fault was counted as a protocol error and skipped.
    expect(protocolErrors).toBeGreaterThanOrEqual(noiseEvents);

    const { readings, topicCount } = await readAll(admin, out);
    expect(topicCount).toBe(expected);
    expect(readings.every((r) => r.quality === "GOOD")).toBe(true);
    // Sequence numbers: each frame exactly once, in order, for both nodes.
    const range = Array.from({ length: TICKS }, (_, i) => i);
    expect(inOrder(readings, "wellhead", "seq").map((r) => r.value)).toEqual(range);
    expect(inOrder(readings, "annulus", "seq").map((r) => r.value)).toEqual(range);
    // The values of each frame are the plant's at that frame's time.
    expect(inOrder(readings, "wellhead", "pressure").map((r) => r.value)).toEqual(range.map((i) => shortestFloat32(Math.fround(waveformValue(pressure, i) as number))));
    expect(new Set(inOrder(readings, "wellhead", "temperature").map((r) => r.value))).toEqual(new Set([64.5]));
    expect(new Set(inOrder(readings, "annulus", "supply").map((r) => r.value))).toEqual(new Set([3300]));
    expect(inOrder(readings, "annulus", "door").map((r) => r.value)).toEqual(range.map((i) => i % 2 === 0));
    expect(inOrder(readings, "wellhead", "pressure")[0]!.unit).toBe("psi");
  }, 45_000);

  test("API mode 1, the seed's config against plants/offshore-well-xbee.yaml with noise: every wellhead frame's pressure and temperature arrive", async () => {
    const [, pair] = pairs;
    const out = await topic();
    const plant = loadXBeePlantFile(join(repo, "plants/offshore-well-xbee.yaml"));
    const pipelineId = uniqueName("xbee-seed");
    // The seed's example, with only the port and the output changed.
    const adapter = spawnAdapter({
      pipeline_id: pipelineId,
      adapter_id: `adapter-${pipelineId}`,
      protocol: "xbee_modbus",
      source: { xbee_port: pair!.a, baud_rate: 9600, node_id: "0013A200" },
      mapping: {
        registers: {
          "40001": { param: "pressure", unit: "psi", type: "float32", scale: 1.0 },
          "40003": { param: "temperature", unit: "celsius", type: "float32", scale: 0.1 },
        },
      },
      output: { kafka_bootstrap: KAFKA_BOOTSTRAP, topic: out, asset_id: "offshore_well_12" },
    });
    await waitForLog(adapter, "XBee port open");
    let t = 0;
    const simulator = await startXBeeSimulator({ device: pair!.b, plant, autoSend: false, clock: () => t, noise: 0.2 });
    const TICKS = 150;
    for (t = 0; t < TICKS; t++) await simulator.tick();
    await simulator.stop();
    // The annulus node's IO samples match node_id 0013A200 too, but carry no 4xxxx register: no readings.
    const wellheadFrames = simulator.stats.byNode["well-12-wellhead"]!;
    expect(wellheadFrames).toBe(TICKS);
    expect(await adapter.waitForMetric("adapter_readings_total", 2 * wellheadFrames)).toBe(2 * wellheadFrames);
    await Bun.sleep(300);
    const { exitCode, summary } = await adapter.stop();
    expect(exitCode).toBe(0);
    expect(summary!.readings_total).toBe(2 * wellheadFrames);

    const { readings, topicCount } = await readAll(admin, out);
    expect(topicCount).toBe(2 * TICKS);
    const pressure = inOrder(readings, "offshore_well_12", "pressure");
    const temperature = inOrder(readings, "offshore_well_12", "temperature");
    expect([pressure.length, temperature.length]).toEqual([TICKS, TICKS]);
    // The plant: 180-190 psi plus a 25 psi surge from t = 60 s for 9 s; 62-66 °C ± 0.2.
    const wellhead = plant.nodes[0]!.device.registers;
    const pressureWave = wellhead.find((r) => r.key === "40001")!.waveform;
    expect(pressure.map((r) => r.value)).toEqual(Array.from({ length: TICKS }, (_, i) => shortestFloat32(Math.fround(waveformValue(pressureWave, i) as number))));
    expect(pressure.slice(60, 69).every((r) => (r.value as number) > 200)).toBe(true);
    expect(temperature.every((r) => (r.value as number) >= 61.8 && (r.value as number) <= 66.2)).toBe(true);
    expect(readings.every((r) => r.quality === "GOOD" && r.metadata.time_source === "gateway" && r.unit !== undefined)).toBe(true);
  }, 45_000);
});
