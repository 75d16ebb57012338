import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { KAFKA_BOOTSTRAP, kafkaUp } from "../test/support/services.ts";
import { loadApplianceConfig } from "./config/load.ts";
import { serve, workerStages, type RunningAppliance } from "./serve.ts";
import { parsePlant } from "../adapters/modbus/plant.ts";
import { startModbusTcpSimulator } from "../adapters/modbus-tcp/simulator.ts";
import { KafkaAdmin } from "./kafka/admin.ts";
import { readTopic } from "./kafka/reader.ts";
import { kafkaConnection, uniqueName } from "../test/support/services.ts";

function capturingLogger() {
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
  return { log: pino({ level: "info" }, sink), lines };
}

function config(overrides: Record<string, unknown>) {
  return loadApplianceConfig({
    env: {},
    overrides: {
      data_dir: mkdtempSync(join(tmpdir(), "gw-serve-")),
      http: { port: 0 },
      kafka: { bootstrap_servers: [KAFKA_BOOTSTRAP] },
      // The stream workers have tests of their own; here they would only slow every stop down.
      streams: { enabled: false },
      ...overrides,
    },
  });
}

describe.skipIf(!kafkaUp)("gateway serve", () => {
  let running: RunningAppliance | undefined;
  afterEach(async () => {
    await running?.stop();
    running = undefined;
  }, 20_000);

  test("healthy with Kafka and the embedded DB", async () => {
    const { log } = capturingLogger();
    running = await serve(config({}), log);
    let response: Response | undefined;
    for (let i = 0; i < 50; i++) {
      response = await fetch(`${running.url}/api/v1/health`);
      if (response.status === 200) break;
      await Bun.sleep(200);
    }
    expect(response!.status).toBe(200);
    const body = await response!.json();
    expect(body.components.kafka.status).toBe("ok");
    expect(body.components.control_db.status).toBe("ok");
    const metrics = await fetch(`${running.url}/metrics`).then((r) => r.text());
    expect(metrics).toContain("process_cpu_user_seconds_total");
  });

  test("PostgreSQL down: 503 naming the DB, a clear log line, and no crash", async () => {
    const { log, lines } = capturingLogger();
    running = await serve(config({ database: { url: "postgres://gateway:gateway@127.0.0.1:1/gateway" } }), log);
    await Bun.sleep(300);
    const response = await fetch(`${running.url}/api/v1/health`);
    expect(response.status).toBe(503);
    const body = await response.json();
    expect(body.status).toBe("unhealthy");
    expect(body.components.control_db.status).toBe("down");
    expect(body.components.control_db.detail).toContain("127.0.0.1:1");
    expect(body.components.kafka.status).toBe("ok");
    expect(lines.some((l) => l.includes("control DB unavailable") && l.includes("127.0.0.1:1"))).toBe(true);
  });

  test("a declared pipeline runs under the supervisor; a killed adapter is restarted and readings resume", async () => {
    const simulator = await startModbusTcpSimulator({
      basePort: 0,
      plant: parsePlant({ name: "t", devices: [{ name: "d", unit_id: 1, registers: { "40001": { type: "uint16", waveform: { kind: "counter", every_s: 1 } } } }] }, "t"),
    });
    const admin = new KafkaAdmin(kafkaConnection());
    const topic = uniqueName("test.serve");
    await admin.createTopic(topic, 1);
    try {
      const { log } = capturingLogger();
      running = await serve(
        config({
          supervisor: { health_interval_ms: 200, reconcile_interval_ms: 200 },
          pipelines: [
            {
              id: "well",
              adapter: {
                protocol: "modbus_tcp",
                source: { host: "127.0.0.1", port: simulator.portOf("d") },
                mapping: { registers: { "40001": { param: "counter" } } },
                output: { asset_id: "well", topic },
                poll_interval_ms: 100,
              },
            },
          ],
        }),
        log,
      );
      const status = () => running!.supervisor.status().find((p) => p.pipeline_id === "well");
      const until = async (check: () => boolean | undefined, ms: number) => {
        const deadline = Date.now() + ms;
        while (!check()) {
          if (Date.now() > deadline) throw new Error(`timed out; status ${JSON.stringify(status())}`);
          await Bun.sleep(50);
        }
      };
      await until(() => status()?.state === "running", 20_000);
      const firstPid = status()!.pid!;
      process.kill(firstPid, "SIGKILL");
      await until(() => status()?.restarts === 1 && status()?.state === "running", 20_000);
      expect(status()!.pid).not.toBe(firstPid);
      const restartedAt = Date.now();
      await Bun.sleep(1000);
      const readings = (await readTopic(kafkaConnection(), topic, { idleMs: 1000, timeoutMs: 4000 })).map((r) => JSON.parse(r.value!));
      expect(readings.some((r) => Date.parse(r.timestamps.device_time) > restartedAt)).toBe(true);
      const health = await (await fetch(`${running.url}/api/v1/health`)).json();
      expect(health.components.adapters.pipelines[0]).toMatchObject({ pipeline_id: "well", restarts: 1 });
      const metrics = await (await fetch(`${running.url}/metrics`)).text();
      expect(metrics).toMatch(/gateway_adapter_restarts_total\{[^}]*pipeline_id="well"[^}]*\} 1/);
    } finally {
      await running?.stop();
      running = undefined;
      await simulator.stop();
      await admin.deleteTopics([topic]).catch(() => undefined);
      await admin.close();
    }
  }, 60_000);
});

describe("stream worker stages (topology and the consumer_lag health probe)", () => {
  test("every consumer group a worker runs is listed, the alert router's sender too", () => {
    const withRouter = workerStages(config({ streams: { enabled: true, alert_rules_file: "/etc/gateway/alert-routing.yaml" } }));
    const groups = Object.fromEntries(withRouter.map((s) => [s.id, s.consumers?.map((c) => `${c.group} <- ${c.topics.join(",")}`)]));
    expect(groups).toEqual({
      "worker:quality": ["gateway-quality <- telemetry.raw,events.raw,alarms.raw"],
      "worker:aggregate": ["gateway-aggregate <- telemetry.clean"],
      "worker:alarms": ["gateway-alarms <- telemetry.clean,alarms.commands"],
      "worker:alert-router": ["gateway-alert-router <- alarms.clean", "gateway-alert-sender <- _gateway.alerts.deliveries"],
    });
    expect(workerStages(config({ streams: { enabled: true } })).map((s) => s.id)).not.toContain("worker:alert-router");
  });
});
