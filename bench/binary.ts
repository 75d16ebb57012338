#!/usr/bin/env bun
/**
 * Single-binary benchmark: size of dist/gateway, `gateway version` wall time, and cold/warm start
 * of `gateway serve` to the first 200 from /api/v1/health.
 *
 *   bun bench/binary.ts [--runs 5] [--no-build] [--json FILE]
 *
 * The binary is built with `bun scripts/build.ts dist/gateway`, then copied into an empty temp
 * folder (no node_modules, no sources) and run from there with PATH as its only environment (plus
 * the Kafka bootstrap). Cold start = a fresh --data-dir (PGlite initdb + migrations); warm start
 * = the same data dir again. Kafka must be up (health is 503 without it). Median of --runs each.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { freePort, gitInfo, log, machineInfo, machineJiffies, median, processRssMb, round } from "./lib.ts";

const repo = join(import.meta.dir, "..");

const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    "no-build": { type: "boolean", default: false },
    binary: { type: "string", default: "dist/gateway" },
    bootstrap: { type: "string", default: "127.0.0.1:9092" },
    json: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (args.help) {
  console.log("usage: bun bench/binary.ts [--runs 5] [--no-build] [--binary dist/gateway] [--json FILE]");
  process.exit(0);
}
const RUNS = Number(args.runs);
const STARTUP_TIMEOUT_MS = 60_000;

function dirBytes(path: string): number {
  let total = 0;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, entry.name);
    total += entry.isDirectory() ? dirBytes(p) : statSync(p).size;
  }
  return total;
}

interface StartRun {
  /** spawn -> first HTTP answer of any status from /api/v1/health */
  first_response_ms: number;
  /** spawn -> first 200 */
  healthy_ms: number;
  first_status: number;
  rss_mb_at_healthy: number | undefined;
  stop_ms: number;
  exit_code: number | null;
}

async function startOnce(binary: string, cwd: string, dataDir: string): Promise<StartRun> {
  const port = freePort();
  const url = `http://127.0.0.1:${port}/api/v1/health`;
  const started = performance.now();
  const child = Bun.spawn([binary, "serve", "--port", String(port), "--data-dir", dataDir], {
    cwd,
    env: { PATH: "/usr/bin:/bin", GATEWAY_KAFKA__BOOTSTRAP_SERVERS: args.bootstrap },
    stdout: "ignore",
    stderr: "pipe",
  });
  const stderr = new Response(child.stderr).text();
  let firstResponse: number | undefined;
  let firstStatus = 0;
  let healthy: number | undefined;
  try {
    while (healthy === undefined) {
      if (child.exitCode !== null) throw new Error(`gateway serve exited ${child.exitCode}: ${await stderr}`);
      if (performance.now() - started > STARTUP_TIMEOUT_MS) throw new Error(`no 200 from ${url} within ${STARTUP_TIMEOUT_MS} ms`);
      const status = await fetch(url, { signal: AbortSignal.timeout(5000) }).then((r) => r.status, () => 0);
      const now = performance.now();
      if (status !== 0 && firstResponse === undefined) [firstResponse, firstStatus] = [now - started, status];
      if (status === 200) healthy = now - started;
      else await Bun.sleep(10);
    }
    const rss = processRssMb(child.pid);
    const stopAt = performance.now();
    child.kill("SIGTERM");
    const exit = await child.exited;
    return {
      first_response_ms: round(firstResponse!),
      healthy_ms: round(healthy),
      first_status: firstStatus,
      rss_mb_at_healthy: rss === undefined ? undefined : round(rss, 1),
      stop_ms: round(performance.now() - stopAt),
      exit_code: exit,
    };
  } finally {
    if (child.exitCode === null) {
      child.kill("SIGKILL");
      await child.exited;
    }
  }
}

function timeVersion(binary: string, cwd: string): { ms: number; output: string } {
  const started = performance.now();
  const run = Bun.spawnSync([binary, "version"], { cwd, env: { PATH: "/usr/bin:/bin" } });
  const ms = performance.now() - started;
  if (run.exitCode !== 0) throw new Error(`gateway version exited ${run.exitCode}: ${run.stderr.toString()}`);
  return { ms, output: run.stdout.toString().trim() };
}

async function main() {
  const machine = machineInfo();
  const j0 = machineJiffies();
  const source = join(repo, args.binary!);
  let build: { seconds: number; command: string } | undefined;
  if (!args["no-build"]) {
    log(`building ${args.binary}`);
    const started = performance.now();
    const result = Bun.spawnSync([process.execPath, "scripts/build.ts", args.binary!], { cwd: repo, stdout: "pipe", stderr: "pipe" });
    if (result.exitCode !== 0) throw new Error(`build failed:\n${result.stderr.toString()}`);
    build = { seconds: round((performance.now() - started) / 1000, 1), command: `bun scripts/build.ts ${args.binary}` };
  }
  const sizeBytes = statSync(source).size;

  const dir = mkdtempSync(join(tmpdir(), "bench-binary-"));
  const binary = join(dir, "gateway");
  copyFileSync(source, binary);
  Bun.spawnSync(["chmod", "+x", binary]);
  try {
    log(`gateway version x ${RUNS}`);
    const versions = Array.from({ length: RUNS }, () => timeVersion(binary, dir));

    const cold: StartRun[] = [];
    let dataSize = 0;
    for (let i = 0; i < RUNS; i++) {
      const dataDir = join(dir, `data-cold-${i}`); // does not exist yet: initdb + migrations
      const run = await startOnce(binary, dir, dataDir);
      dataSize = dirBytes(dataDir);
      log(`cold start ${i + 1}/${RUNS}: first response ${run.first_response_ms} ms (${run.first_status}), 200 after ${run.healthy_ms} ms`);
      cold.push(run);
      rmSync(dataDir, { recursive: true, force: true });
    }

    const warmDir = join(dir, "data-warm");
    mkdirSync(warmDir);
    await startOnce(binary, dir, warmDir); // initialise it once
    const warm: StartRun[] = [];
    for (let i = 0; i < RUNS; i++) {
      const run = await startOnce(binary, dir, warmDir);
      log(`warm start ${i + 1}/${RUNS}: first response ${run.first_response_ms} ms (${run.first_status}), 200 after ${run.healthy_ms} ms`);
      warm.push(run);
    }

    const summarise = (runs: StartRun[]) => ({
      healthy_ms_median: round(median(runs.map((r) => r.healthy_ms))),
      healthy_ms_min: Math.min(...runs.map((r) => r.healthy_ms)),
      healthy_ms_max: Math.max(...runs.map((r) => r.healthy_ms)),
      first_response_ms_median: round(median(runs.map((r) => r.first_response_ms))),
      rss_mb_at_healthy_median: round(median(runs.map((r) => r.rss_mb_at_healthy ?? NaN)), 1),
      stop_ms_median: round(median(runs.map((r) => r.stop_ms))),
      clean_exits: runs.filter((r) => r.exit_code === 0).length,
      runs,
    });
    const j1 = machineJiffies();
    const result = {
      benchmark: "binary",
      /** Whole-machine CPU busy % over the run: others' work on the box inflates start times. */
      machine_busy_pct: round((100 * (j1.busy - j0.busy)) / (j1.total - j0.total), 1),
      command: `bun bench/binary.ts ${process.argv.slice(2).join(" ")}`.trim(),
      machine,
      git: gitInfo(repo),
      build,
      binary: { path: args.binary, size_bytes: sizeBytes, size_mb: round(sizeBytes / 1024 / 1024, 1) },
      version: {
        output: versions[0]!.output,
        ms_median: round(median(versions.map((v) => v.ms)), 1),
        ms_min: round(Math.min(...versions.map((v) => v.ms)), 1),
        ms_max: round(Math.max(...versions.map((v) => v.ms)), 1),
        runs_ms: versions.map((v) => round(v.ms, 1)),
      },
      cold_start: { ...summarise(cold), data_dir_mb: round(dataSize / 1024 / 1024, 1) },
      warm_start: summarise(warm),
    };
    if (args.json) await Bun.write(args.json, JSON.stringify(result, null, 2) + "\n");
    console.log(
      [
        "| measure | median | min | max |",
        "|---|---|---|---|",
        `| binary size | ${result.binary.size_mb} MiB (${sizeBytes} bytes) | | |`,
        `| \`gateway version\` wall time | ${result.version.ms_median} ms | ${result.version.ms_min} ms | ${result.version.ms_max} ms |`,
        `| cold start (fresh data dir) to first 200 /api/v1/health | ${result.cold_start.healthy_ms_median} ms | ${result.cold_start.healthy_ms_min} ms | ${result.cold_start.healthy_ms_max} ms |`,
        `| warm start (existing data dir) to first 200 | ${result.warm_start.healthy_ms_median} ms | ${result.warm_start.healthy_ms_min} ms | ${result.warm_start.healthy_ms_max} ms |`,
        `| RSS when healthy (cold / warm) | ${result.cold_start.rss_mb_at_healthy_median} / ${result.warm_start.rss_mb_at_healthy_median} MiB | | |`,
        `| fresh data dir size | ${result.cold_start.data_dir_mb} MiB | | |`,
        `| SIGTERM to exit (cold / warm) | ${result.cold_start.stop_ms_median} / ${result.warm_start.stop_ms_median} ms | | |`,
        "",
        `machine busy during the run: ${result.machine_busy_pct} % (of ${machine.nproc} cores)`,
      ].join("\n"),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
