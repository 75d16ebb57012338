import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { encodeConfigJson } from "../../src/adapter-runtime/config.ts";
import { KafkaAdmin } from "../../src/kafka/admin.ts";
import { kafkaConnection, kafkaUp, uniqueName } from "../../test/support/services.ts";
import { parsePlant } from "../modbus/plant.ts";
import { startModbusTcpSimulator, type ModbusTcpSimulator } from "./simulator.ts";

const repo = join(import.meta.dir, "../..");

/** The adapter contract's HTTP side and its behaviour while Kafka is unreachable. */
describe.skipIf(!kafkaUp)("adapter contract: /health, /metrics, buffering without Kafka", () => {
  let simulator: ModbusTcpSimulator;
  const admin = new KafkaAdmin(kafkaConnection());
  const topic = uniqueName("test.contract");
  beforeAll(async () => {
    await admin.createTopic(topic, 1);
    const registers = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [String(40001 + i), { type: "uint16", waveform: { kind: "constant", value: i } }]));
    simulator = await startModbusTcpSimulator({ basePort: 0, plant: parsePlant({ name: "t", devices: [{ name: "d", unit_id: 1, registers }] }, "t") });
  });
  afterAll(async () => {
    await simulator.stop();
    await admin.deleteTopics([topic]).catch(() => undefined);
    await admin.close();
  });

  function start(kafkaBootstrap: string, maxRecords: number) {
    const config = {
      pipeline_id: "contract",
      adapter_id: "modbus-contract",
      protocol: "modbus_tcp",
      source: { host: "127.0.0.1", port: simulator.portOf("d") },
      mapping: { registers: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [String(40001 + i), { param: `r${i}` }])) },
      output: { kafka_bootstrap: kafkaBootstrap, asset_id: "a", topic },
      poll_interval_ms: 50,
      buffer: { max_records: maxRecords },
    };
    const child = Bun.spawn([process.execPath, "src/main.ts", "adapter"], { cwd: repo, env: { ...process.env, CONFIG_JSON: encodeConfigJson(config) }, stdout: "pipe", stderr: "pipe" });
    const lines: Array<Record<string, unknown>> = [];
    let reportPort: (port: number) => void = () => {};
    const port = new Promise<number>((resolve) => (reportPort = resolve));
    void (async () => {
      const decoder = new TextDecoder();
      let buffered = "";
      for await (const chunk of child.stdout) {
        buffered += decoder.decode(chunk, { stream: true });
        const parts = buffered.split("\n");
        buffered = parts.pop()!;
        for (const part of parts.filter(Boolean)) {
          const line = JSON.parse(part) as Record<string, unknown>;
          lines.push(line);
          if (typeof line.health_port === "number") reportPort(line.health_port);
        }
      }
    })();
    return { child, port, lines };
  }

  test("with Kafka unreachable: degraded, buffering to the bound, then dropping with a metric and a log line", async () => {
    const { child, port, lines } = start("127.0.0.1:1", 500);
    const health = `http://127.0.0.1:${await port}`;
    await Bun.sleep(2500);
    const body = await (await fetch(`${health}/health`)).json();
    expect(body).toMatchObject({ status: "degraded", kafka_connection: "down" });
    expect(body.buffered_records).toBeLessThanOrEqual(500);
    expect(body.dropped_total).toBeGreaterThan(0);
    for (const key of ["last_reading_at", "readings_per_sec", "errors_last_minute"]) expect(body).toHaveProperty(key);
    const metrics = await (await fetch(`${health}/metrics`)).text();
    expect(metrics).toMatch(/adapter_dropped_total\{pipeline_id="contract"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/adapter_errors_total\{pipeline_id="contract",type="kafka"[^}]*\} [1-9]/);
    expect(metrics).toContain("adapter_read_latency_seconds_bucket");
    expect(metrics).toMatch(/adapter_readings_total\{pipeline_id="contract"[^}]*\} [1-9]/);
    expect(lines.some((l) => l.msg === "readings dropped" && typeof l.dropped_total === "number")).toBe(true);
    child.kill("SIGTERM");
    // Kafka never came back: the adapter says so and exits non-zero instead of pretending it flushed.
    expect(await child.exited).toBe(1);
    expect(lines.find((l) => l.msg === "adapter stopped with readings not acknowledged by Kafka")).toBeDefined();
  }, 30_000);

  test("healthy with Kafka: the seed's /health fields", async () => {
    const { child, port } = start(process.env.TEST_KAFKA_BOOTSTRAP ?? "127.0.0.1:9092", 10_000);
    const health = `http://127.0.0.1:${await port}`;
    await Bun.sleep(1500);
    const body = await (await fetch(`${health}/health`)).json();
    expect(body).toMatchObject({ status: "healthy", kafka_connection: "ok", errors_last_minute: 0 });
    expect(body.readings_per_sec).toBeGreaterThan(0);
    expect(Date.now() - Date.parse(body.last_reading_at)).toBeLessThan(1000);
    child.kill("SIGTERM");
    expect(await child.exited).toBe(0);
  }, 30_000);
});
