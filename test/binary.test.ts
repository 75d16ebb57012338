import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KAFKA_BOOTSTRAP, kafkaUp } from "./support/services.ts";

const repo = join(import.meta.dir, "..");

/** The single binary must run from an empty folder: no node_modules, no sources, no migrations/. */
describe("dist/gateway", () => {
  const dir = mkdtempSync(join(tmpdir(), "gw-binary-"));
  const binary = join(dir, "gateway");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("builds", () => {
    const build = Bun.spawnSync([process.execPath, "scripts/build.ts", binary], { cwd: repo, stdout: "pipe", stderr: "pipe" });
    expect(build.stderr.toString()).not.toContain("error:");
    expect(build.exitCode).toBe(0);
  }, 120_000);

  test("prints its version", () => {
    const run = Bun.spawnSync([binary, "version"], { cwd: dir, env: { PATH: "/usr/bin:/bin" } });
    expect(run.stdout.toString()).toMatch(/^gateway \d+\.\d+\.\d+/);
  });

  test("rejects an unknown flag with one line and exit 2", () => {
    const run = Bun.spawnSync([binary, "serve", "--bogus"], { cwd: dir, env: { PATH: "/usr/bin:/bin" } });
    expect(run.exitCode).toBe(2);
    expect(run.stderr.toString().trim().split("\n")).toHaveLength(1);
  });

  test.skipIf(!kafkaUp)("serves /api/v1/health with 200 from an empty folder", async () => {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    const child = Bun.spawn([binary, "serve", "--port", String(port), "--data-dir", join(dir, "data")], {
      cwd: dir,
      env: { PATH: "/usr/bin:/bin", GATEWAY_KAFKA__BOOTSTRAP_SERVERS: KAFKA_BOOTSTRAP },
      stdout: "ignore",
      stderr: "inherit",
    });
    try {
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++) {
        await Bun.sleep(200);
        status = await fetch(`http://127.0.0.1:${port}/api/v1/health`).then((r) => r.status, () => 0);
      }
      expect(status).toBe(200);
    } finally {
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
    }
  }, 60_000);
});
