/**
 * The modbus_rtu adapter process (`gateway adapter`) against our RTU simulator over a pty pair,
 * into Kafka: values of several types, a dead slave that never stalls the others on the bus, a
 * slave that goes away and comes back, and SIGTERM with every reading in the topic.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Reading } from "../../src/envelope/reading.ts";
import { KafkaAdmin } from "../../src/kafka/admin.ts";
import { readAll, spawnAdapter } from "../../test/peers/adapter-process.ts";
import { socatAvailable, startPtyPair, type PtyPair } from "../../test/peers/socat.ts";
import { KAFKA_BOOTSTRAP, kafkaConnection, kafkaUp, uniqueName } from "../../test/support/services.ts";
import { parsePlant } from "../modbus/plant.ts";
import { startModbusRtuSimulator, type ModbusRtuSimulator } from "./simulator.ts";

const POLL_MS = 200;
const TIMEOUT_MS = 200;
/** Slave 2's own response timeout; the dead-slave backoff is capped at 10 × the slowest timeout. */
const UNIT2_TIMEOUT_MS = 250;

const plant = parsePlant({
  name: "rtu-adapter-test",
  devices: [
    {
      name: "wellhead",
      unit_id: 1,
      registers: {
        "40001": { type: "float32", waveform: { kind: "constant", value: 185.4 } },
        "40003": { type: "int16", waveform: { kind: "constant", value: -40 } },
        "40004": { type: "uint32", byte_order: "CDAB", waveform: { kind: "constant", value: 3000000000 } },
        "40006": { type: "uint16", scale: 0.1, waveform: { kind: "constant", value: 42.5 } },
        "40007": { type: "string", length: 3, waveform: { kind: "constant", value: "W-12" } },
        "40010": { type: "uint16", waveform: { kind: "constant", value: 0b101 } },
        "30001": { type: "float64", waveform: { kind: "constant", value: -1234.5678 } },
        "00001": { type: "bool", waveform: { kind: "constant", value: true } },
        "10002": { type: "bool", waveform: { kind: "constant", value: false } },
      },
    },
    {
      name: "separator",
      unit_id: 2,
      registers: { "40001": { type: "uint16", waveform: { kind: "counter", start: 0, step: 1, every_s: 0.1 } } },
    },
  ],
}, "rtu adapter test plant");

/** [param, expected value] for unit 1, worked out from the plant above. */
const UNIT1: Array<[string, number | boolean | string]> = [
  ["pressure", 185.4], ["temperature", -40], ["totaliser", 3000000000], ["choke", 42.5], ["tag", "W-12"],
  ["pump_running", true], ["alarm", false], ["energy", -1234.5678], ["coil_1", true], ["di_2", false],
];

describe.skipIf(!kafkaUp || !socatAvailable)("modbus_rtu adapter process against the RTU simulator over a pty, into Kafka", () => {
  const admin = new KafkaAdmin(kafkaConnection("rtu-test-admin"));
  const topics: string[] = [];
  let pair: PtyPair;
  let simulator: ModbusRtuSimulator;

  beforeAll(async () => {
    pair = await startPtyPair();
    simulator = await startModbusRtuSimulator({ device: pair.b, plant, line: { baudRate: 38400, parity: "even" } });
  });
  afterAll(async () => {
    await simulator?.stop();
    await pair?.stop();
    await admin.deleteTopics(topics).catch(() => undefined);
    await admin.close();
  });

  test("several types decode; dead slave 9 reports BAD once and never stalls 1 and 2; slave 2 drops out and comes back; SIGTERM loses nothing", async () => {
    const topic = uniqueName("test.modbus-rtu");
    await admin.createTopic(topic, 3);
    topics.push(topic);
    const pipelineId = uniqueName("rtu");
    const adapter = spawnAdapter({
      pipeline_id: pipelineId,
      adapter_id: `adapter-${pipelineId}`,
      protocol: "modbus_rtu",
      source: {
        device: pair.a,
        baud_rate: 38400,
        parity: "even", // a pty refuses parity: the port falls back to 8N1 and logs a warning
        timeout_ms: TIMEOUT_MS,
        units: [
          { unit_id: 1, asset_id: "wellhead" },
          { unit_id: 9, asset_id: "dead-meter", registers: { "40001": { param: "level" }, "40002": { param: "flow" } } },
          { unit_id: 2, asset_id: "separator", registers: { "40001": { param: "count" } }, timeout_ms: UNIT2_TIMEOUT_MS },
        ],
      },
      mapping: {
        registers: {
          "40001": { param: "pressure", type: "float32", unit: "psi" },
          "40003": { param: "temperature", type: "int16", unit: "celsius" },
          "40004": { param: "totaliser", type: "uint32", byte_order: "CDAB" },
          "40006": { param: "choke", type: "uint16", scale: 0.1, unit: "percent" },
          "40007": { param: "tag", type: "string", length: 3 },
          "40010": [{ param: "pump_running", type: "bool", bit: 0 }, { param: "alarm", type: "bool", bit: 1 }],
          "30001": { param: "energy", type: "float64" },
          "00001": { param: "coil_1", type: "bool" },
          "10002": { param: "di_2", type: "bool" },
        },
      },
      output: { kafka_bootstrap: KAFKA_BOOTSTRAP, topic, asset_id: "unused" },
      poll_interval_ms: POLL_MS,
      retry_policy: { max_retries: 1, backoff_ms: 100 },
    });

    // Started polling: a few good cycles of unit 1.
    expect(await adapter.waitForMetric("adapter_readings_total", 4 * UNIT1.length)).toBeGreaterThanOrEqual(4 * UNIT1.length);
    await Bun.sleep(4 * POLL_MS);
    const offlineAt = Date.now();
    simulator.setOnline("separator", false);
    await Bun.sleep(8 * POLL_MS);
    const backAt = Date.now();
    simulator.setOnline("separator", true);
    await Bun.sleep(10 * UNIT2_TIMEOUT_MS + 1000); // the dead-slave backoff is capped at 10 of the slowest timeouts
    const { exitCode, stderr, summary } = await adapter.stop();
    expect({ exitCode, stderr }).toEqual({ exitCode: 0, stderr: "" });

    const { readings, records, topicCount } = await readAll(admin, topic);
    expect(summary).toBeDefined();
    expect(summary!.sent_total).toBe(summary!.readings_total);
    expect(topicCount).toBe(summary!.readings_total as number);
    expect(records).toHaveLength(topicCount);

    // Values of several types, every cycle, all GOOD.
    const wellhead = readings.filter((r) => r.asset_id === "wellhead");
    for (const [param, value] of UNIT1) {
      const mine = wellhead.filter((r) => r.parameter === param);
      expect(mine.length).toBeGreaterThan(5);
      expect(mine.filter((r) => r.quality !== "GOOD" || !Object.is(r.value, value)).map((r) => `${param}=${r.value} ${r.quality}`)).toEqual([]);
    }
    expect(wellhead.find((r) => r.parameter === "pressure")!.unit).toBe("psi");

    // The dead slave: one BAD per tag for the whole run, no GOOD.
    const dead = readings.filter((r) => r.asset_id === "dead-meter");
    expect(dead.map((r) => [r.parameter, r.quality, r.value]).sort()).toEqual([["flow", "BAD", null], ["level", "BAD", null]]);
    expect(String(dead[0]!.metadata.error)).toContain("unit 9");

    // ...and it never held up unit 1: the longest gap between unit 1's cycles stays near one poll
    // interval plus a probe of each silent slave (a cycle that overruns skips to the next tick).
    const times = [...new Set(wellhead.filter((r) => r.parameter === "pressure").map((r) => Date.parse(r.timestamps.device_time!)))].sort((a, b) => a - b);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(Math.max(...gaps)).toBeLessThan(POLL_MS + 2 * (TIMEOUT_MS + UNIT2_TIMEOUT_MS) + 150);
    const wellheadDuringOutage = times.filter((t) => t > offlineAt && t < backAt).length;
    expect(wellheadDuringOutage).toBeGreaterThanOrEqual(Math.floor((backAt - offlineAt) / (2 * POLL_MS)) - 1);

    // Slave 2 went silent: BAD once, then GOOD again after it came back.
    const separator = readings.filter((r) => r.asset_id === "separator").sort((a, b) => Date.parse(a.timestamps.device_time!) - Date.parse(b.timestamps.device_time!));
    const bad = separator.filter((r) => r.quality === "BAD");
    expect(bad).toHaveLength(1);
    const badAt = Date.parse(bad[0]!.timestamps.device_time!);
    expect(badAt).toBeGreaterThanOrEqual(offlineAt);
    expect(badAt).toBeLessThan(backAt);
    expect(separator.some((r) => r.quality === "GOOD" && Date.parse(r.timestamps.device_time!) > backAt)).toBe(true);
    const counts = separator.filter((r) => r.quality === "GOOD").map((r) => r.value as number);
    expect(counts.every((c, i) => i === 0 || c >= counts[i - 1]!)).toBe(true); // the counter only moves forward

    // Envelope and logs.
    expect(readings.every((r: Reading) => r.metadata.pipeline_id === pipelineId && r.metadata.time_source === "gateway")).toBe(true);
    expect(records.every((r) => r.key === `${JSON.parse(r.value!).asset_id}/${JSON.parse(r.value!).parameter}`)).toBe(true);
    const warnings = adapter.lines.filter((l) => l.level === "warn").map((l) => String(l.msg));
    expect(warnings.some((m) => m.includes("pseudo-terminal"))).toBe(true);
    expect(adapter.lines.some((l) => l.msg === "Modbus RTU bus" && String(l.bus).includes("t3.5 = 1.75 ms"))).toBe(true);
  }, 45_000);
});

describe("modbus_rtu adapter process: config errors", () => {
  test("exit 2, stderr names each field: 7 data bits, unit id 0, unit_id with units, a unit twice", async () => {
    const config = {
      pipeline_id: "bad", adapter_id: "bad", protocol: "modbus_rtu",
      source: { device: "/dev/ttyUSB0", data_bits: 7, unit_id: 0 },
      mapping: { registers: { "40001": { param: "p" } } },
      output: { asset_id: "a", topic: "never.written" },
    };
    const run = async (c: unknown) => {
      const child = Bun.spawn([process.execPath, "src/main.ts", "adapter"], {
        cwd: join(import.meta.dir, "../.."), env: { ...process.env, CONFIG_JSON: JSON.stringify(c) }, stdin: "ignore", stdout: "ignore", stderr: "pipe",
      });
      return { stderr: await new Response(child.stderr).text(), exitCode: await child.exited };
    };
    const schema = await run(config);
    expect(schema.exitCode).toBe(2);
    expect(schema.stderr).toContain("source.data_bits: expected 8, got 7");
    expect(schema.stderr).toContain("source.unit_id: expected integer to be greater or equal to 1");
    const semantic = await run({ ...config, source: { device: "/dev/ttyUSB0", unit_id: 3, units: [{ unit_id: 1 }, { unit_id: 1 }] } });
    expect(semantic.exitCode).toBe(2);
    expect(semantic.stderr).toContain("source.unit_id: use either source.unit_id or source.units, not both");
    expect(semantic.stderr).toContain("source.units[1].unit_id: unit 1 is listed twice");
  });
});
