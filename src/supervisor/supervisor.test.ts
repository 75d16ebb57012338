import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Registry } from "prom-client";
import { createLogger } from "../log/logger.ts";
import type { PipelineRun } from "./plan.ts";
import { Supervisor } from "./supervisor.ts";

const fixture = join(import.meta.dir, "../../test/fixtures/scripted-adapter.ts");
const self = [process.execPath, fixture];
const log = createLogger("test", "silent");
const timing = { healthIntervalMs: 100, unhealthyChecks: 2, restartBaseMs: 50, restartMaxMs: 400, stableAfterMs: 60_000, stopGraceMs: 2000, startGraceMs: 10_000 };

const run = (id: string, config: Record<string, unknown> = {}, extra: Partial<PipelineRun> = {}): PipelineRun => ({
  pipeline_id: id,
  runtime: "process",
  config: { pipeline_id: id, ...config },
  ...extra,
});

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await Bun.sleep(25);
  }
}

describe("supervisor", () => {
  let supervisor: Supervisor | undefined;
  afterEach(async () => {
    await supervisor?.stop();
  }, 30_000);

  const state = (id: string) => supervisor!.status().find((s) => s.pipeline_id === id);

  test("starts one child per pipeline and reports it running", async () => {
    supervisor = new Supervisor({ log, timing, self });
    await supervisor.apply([run("a"), run("b")]);
    await until(() => state("a")?.state === "running" && state("b")?.state === "running");
    expect(state("a")!.pid).toBeGreaterThan(0);
    expect(state("a")!.health_port).toBeGreaterThan(0);
  });

  test("applies a config diff: stop, restart, start", async () => {
    supervisor = new Supervisor({ log, timing, self });
    await supervisor.apply([run("a"), run("b"), run("c")]);
    await until(() => ["a", "b", "c"].every((id) => state(id)?.state === "running"));
    const pidA = state("a")!.pid;
    const pidB = state("b")!.pid;
    const plan = await supervisor.apply([run("a"), run("b", { poll_interval_ms: 5 }), run("d")]);
    expect(plan.stop).toEqual(["c"]);
    expect(plan.restart.map((r) => r.pipeline_id)).toEqual(["b"]);
    expect(plan.start.map((r) => r.pipeline_id)).toEqual(["d"]);
    await until(() => state("b")?.state === "running" && state("d")?.state === "running");
    expect(state("a")!.pid).toBe(pidA);
    expect(state("b")!.pid).not.toBe(pidB);
    expect(state("c")).toBeUndefined();
  });

  test("restarts a crashing child with growing, capped backoff", async () => {
    const metrics = new Registry();
    supervisor = new Supervisor({ log, timing, self, metrics });
    await supervisor.apply([run("crashy", { behaviour: "crash", crash_after_ms: 50 })]);
    await until(() => state("crashy")!.restarts >= 4);
    expect(state("crashy")!.last_exit_code).toBe(1);
    const text = await metrics.metrics();
    expect(text).toMatch(/gateway_adapter_restarts_total\{pipeline_id="crashy"\} [4-9]/);
  });

  test("restarts a child that reports unhealthy", async () => {
    supervisor = new Supervisor({ log, timing, self });
    await supervisor.apply([run("sick", { behaviour: "unhealthy" })]);
    await until(() => state("sick")!.restarts >= 1);
  });

  test("a rejected config is not restarted in a loop", async () => {
    supervisor = new Supervisor({ log, timing, self });
    await supervisor.apply([run("bad", { behaviour: "bad-config" })]);
    await until(() => state("bad")!.state === "failed");
    await Bun.sleep(300);
    expect(state("bad")!.restarts).toBe(0);
    expect(state("bad")!.last_exit_code).toBe(2);
  });

  test("runtime docker runs `docker run <image>` with CONFIG_JSON", async () => {
    const bin = mkdtempSync(join(tmpdir(), "fake-docker-"));
    const argsFile = join(bin, "args");
    // Stand-in for the docker CLI (no engine here): records its arguments, then runs the image's
    // entrypoint, which is our scripted adapter, with the CONFIG_JSON it was given by name.
    writeFileSync(join(bin, "docker"), `#!/bin/sh\necho "$@" > ${argsFile}\nexec ${process.execPath} ${fixture}\n`);
    chmodSync(join(bin, "docker"), 0o755);
    const originalPath = process.env.PATH;
    process.env.PATH = `${bin}:${originalPath}`;
    try {
      supervisor = new Supervisor({ log, timing, self });
      await supervisor.apply([run("third-party", {}, { runtime: "docker", image: "vendor/adapter-custom:1.0.0" })]);
      await until(() => state("third-party")?.state === "running");
      const args = await Bun.file(argsFile).text();
      expect(args.trim()).toBe("run --rm --name gateway-third-party --network host -e CONFIG_JSON vendor/adapter-custom:1.0.0");
    } finally {
      process.env.PATH = originalPath;
    }
  });
});
