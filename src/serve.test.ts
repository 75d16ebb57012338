import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { KAFKA_BOOTSTRAP, kafkaUp } from "../test/support/services.ts";
import { loadApplianceConfig } from "./config/load.ts";
import { serve, type RunningAppliance } from "./serve.ts";

function capturingLogger() {
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
  return { log: pino({ level: "info" }, sink), lines };
}

function config(overrides: Record<string, unknown>) {
  return loadApplianceConfig({
    env: {},
    overrides: { data_dir: mkdtempSync(join(tmpdir(), "gw-serve-")), http: { port: 0 }, kafka: { bootstrap_servers: [KAFKA_BOOTSTRAP] }, ...overrides },
  });
}

describe.skipIf(!kafkaUp)("gateway serve", () => {
  let running: RunningAppliance | undefined;
  afterEach(async () => {
    await running?.stop();
    running = undefined;
  });

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
});
