import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { encodeConfigJson } from "../../src/adapter-runtime/config.ts";
import { runAdapter } from "../../src/adapter-runtime/run.ts";
import { ADAPTERS } from "../../src/adapters.ts";
import type { Reading } from "../../src/envelope/reading.ts";
import { KafkaAdmin } from "../../src/kafka/admin.ts";
import { readTopic } from "../../src/kafka/reader.ts";
import { KAFKA_BOOTSTRAP, kafkaConnection, kafkaUp, uniqueName } from "../../test/support/services.ts";
import { parsePlant } from "../modbus/plant.ts";
import { startModbusTcpSimulator, type ModbusTcpSimulator } from "./simulator.ts";

const repo = join(import.meta.dir, "../..");
const POLL_MS = 250;

function wellDevice(name: string, portOffset: number, registers = 4) {
  return {
    name,
    port_offset: portOffset,
    unit_id: 1,
    registers: Object.fromEntries(
      Array.from({ length: registers }, (_, i) => [String(40001 + i), { type: "uint16", waveform: { kind: "counter", start: i, step: 1, every_s: 1 } }]),
    ),
  };
}

function adapterConfig(pipelineId: string, topic: string, simulator: ModbusTcpSimulator, devices: string[], registers = 4) {
  return {
    pipeline_id: pipelineId,
    adapter_id: `modbus-${pipelineId}`,
    protocol: "modbus_tcp",
    source: {
      connections: devices.map((d) => ({ host: "127.0.0.1", port: simulator.portOf(d), units: [{ unit_id: 1, asset_id: d }] })),
      timeout_ms: 200,
    },
    mapping: {
      registers: Object.fromEntries(Array.from({ length: registers }, (_, i) => [String(40001 + i), { param: `r${i}`, type: "uint16" }])),
    },
    output: { kafka_bootstrap: KAFKA_BOOTSTRAP, topic, asset_id: "unused" },
    poll_interval_ms: POLL_MS,
    retry_policy: { max_retries: 0, backoff_ms: 100 },
  };
}

const parse = (records: { value: string | undefined }[]) => records.map((r) => JSON.parse(r.value!) as Reading);

describe.skipIf(!kafkaUp)("modbus_tcp adapter against the simulator, into Kafka", () => {
  const admin = new KafkaAdmin(kafkaConnection());
  const topics: string[] = [];
  let simulator: ModbusTcpSimulator;

  beforeAll(async () => {
    const plant = parsePlant({ name: "test", devices: [wellDevice("well-a", 0), wellDevice("well-b", 1), wellDevice("big", 2, 100)] }, "test plant");
    simulator = await startModbusTcpSimulator({ basePort: 0, plant });
  });
  afterAll(async () => {
    await simulator.stop();
    await admin.deleteTopics(topics).catch(() => undefined);
    await admin.close();
  });

  async function topic(): Promise<string> {
    const name = uniqueName("test.modbus");
    await admin.createTopic(name, 3);
    topics.push(name);
    return name;
  }

  test("a dead device reports BAD once, never stalls the other, and resumes within 2 poll intervals", async () => {
    const out = await topic();
    const abort = new AbortController();
    const done = runAdapter({
      env: { CONFIG_JSON: encodeConfigJson(adapterConfig("dead-device", out, simulator, ["well-a", "well-b"])) },
      definitions: ADAPTERS,
      signal: abort.signal,
    });
    await Bun.sleep(4 * POLL_MS);
    const killedAt = Date.now();
    simulator.setOnline("well-a", false);
    await Bun.sleep(8 * POLL_MS);
    const revivedAt = Date.now();
    simulator.setOnline("well-a", true);
    await Bun.sleep(6 * POLL_MS);
    abort.abort();
    expect(await done).toBe(0);

    const readings = parse(await readTopic(kafkaConnection(), out, { idleMs: 1500 }));
    const at = (r: Reading) => Date.parse(r.timestamps.device_time!);
    const a = readings.filter((r) => r.asset_id === "well-a");
    const b = readings.filter((r) => r.asset_id === "well-b");

    const bad = a.filter((r) => r.quality === "BAD");
    expect(bad).toHaveLength(4); // one per tag, once per outage
    expect(bad.every((r) => r.value === null && typeof r.metadata.error === "string")).toBe(true);

    const bDuringOutage = b.filter((r) => at(r) > killedAt + POLL_MS && at(r) < revivedAt && r.quality === "GOOD");
    expect(bDuringOutage.length).toBeGreaterThanOrEqual(4 * 5);

    const firstBack = Math.min(...a.filter((r) => r.quality === "GOOD" && at(r) > revivedAt).map(at));
    // Poll timers fire a few ms late on a busy machine (CI saw 501 ms): that is not a missed poll.
    const timerSlackMs = 50;
    expect(firstBack - revivedAt).toBeLessThanOrEqual(2 * POLL_MS + timerSlackMs);
  }, 30_000);

  test("SIGTERM mid-stream: every reading the adapter read is in Kafka", async () => {
    const out = await topic();
    const child = Bun.spawn([process.execPath, "src/main.ts", "adapter"], {
      cwd: repo,
      env: { ...process.env, CONFIG_JSON: encodeConfigJson({ ...adapterConfig("sigterm", out, simulator, ["big"], 100), poll_interval_ms: 50 }) },
      stdout: "pipe",
      stderr: "inherit",
    });
    // Timed from the first poll, not from the spawn: starting a process is slow on a busy machine.
    const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let output = "";
    while (!output.includes('"msg":"connected"')) {
      const chunk = await stdout.read();
      if (chunk.done) break;
      output += chunk.value;
    }
    await Bun.sleep(1500);
    child.kill("SIGTERM");
    const started = Date.now();
    for (let chunk = await stdout.read(); !chunk.done; chunk = await stdout.read()) output += chunk.value;
    expect(await child.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    const lines = output.trim().split("\n").map((l) => JSON.parse(l));
    const summary = lines.find((l) => l.msg === "adapter stopped");
    expect(summary.readings_total).toBeGreaterThan(1000);
    expect(summary.sent_total).toBe(summary.readings_total);
    const records = await readTopic(kafkaConnection(), out, { until: summary.readings_total + 1, idleMs: 2000 });
    expect(records).toHaveLength(summary.readings_total);
    expect(records.every((r) => r.key === `big/${JSON.parse(r.value!).parameter}`)).toBe(true);
  }, 30_000);
});
