#!/usr/bin/env bun
/**
 * OPC UA adapter benchmark (issue target: 10,000 monitored items at a 1 s publishing interval,
 * all 10,000 notifications/s reaching Kafka, adapter < 50 % of one core and < 250 MB RSS).
 *
 *   bun bench/opcua.ts [--nodes 10000] [--seconds 30] [--warmup 10] [--publish-ms 1000] [--json FILE]
 *
 * The simulator (`gateway simulate opcua`, its own process) serves --nodes Double variables that
 * all change every second (adapters/opcua/plant.ts opcuaBenchPlantInput). ONE adapter process
 * (runAdapter, as `gateway adapter`; CONFIG_JSON read from a file, see below) subscribes to all of them (monitored items created 100 per call,
 * the default batch_size; sampling interval = publishing interval, the default) and writes to
 * a fresh topic. After --warmup seconds (items created, first publishes through), a --seconds
 * window measures records reaching Kafka (topic end offsets), the adapter's CPU
 * (/proc/<pid>/stat utime+stime over wall time, 100 % = one core) and RSS (VmRSS each second).
 * Then SIGTERM: sent_total must equal readings_total and the topic must hold every record.
 *
 * Output: progress on stderr, a Markdown summary on stdout, all numbers as JSON with --json FILE.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import YAML from "yaml";
import { encodeConfigJson } from "../src/adapter-runtime/config.ts";
import { KafkaAdmin } from "../src/kafka/admin.ts";
import { connectionFromBootstrap } from "../src/kafka/connection.ts";
import { opcuaBenchPlantInput } from "../adapters/opcua/plant.ts";
import { collectLines, freePort, gitInfo, log, machineInfo, machineJiffies, ProcessSampler, round, tryJson, waitFor } from "./lib.ts";

const repo = join(import.meta.dir, "..");

const { values: args } = parseArgs({
  options: {
    nodes: { type: "string", default: "10000" },
    seconds: { type: "string", default: "30" },
    warmup: { type: "string", default: "10" },
    "publish-ms": { type: "string", default: "1000" },
    "batch-size": { type: "string", default: "100" },
    /** Server-side sampling; 0: the server reports every change (the simulator changes every node once a second). */
    "sampling-ms": { type: "string", default: "0" },
    /** Default: the adapter's (source.subscription.max_notifications_per_publish). */
    "max-per-publish": { type: "string" },
    partitions: { type: "string", default: "6" },
    bootstrap: { type: "string", default: "127.0.0.1:9092" },
    json: { type: "string" },
    "keep-topic": { type: "boolean", default: false },
    /** Runs the adapter with `bun --smol` (JSC collects garbage more often). */
    smol: { type: "boolean", default: false },
    /** Experiment: a full synchronous GC in the adapter process every N ms. */
    "gc-ms": { type: "string" },
  },
});
const NODES = Number(args.nodes);
const SECONDS = Number(args.seconds);
const WARMUP = Number(args.warmup);
const PUBLISH_MS = Number(args["publish-ms"]);

async function endOffsetsTotal(admin: KafkaAdmin, topic: string): Promise<number> {
  const offsets = await admin.endOffsets(topic);
  return Number([...offsets.values()].reduce((sum, o) => sum + o, 0n));
}

/** Children to kill if the benchmark fails half-way. */
const children: Array<{ kill(signal?: string | number): void }> = [];

function spawnLogged(command: string[], env: Record<string, string>, onLine: (line: Record<string, unknown>) => void) {
  const child = Bun.spawn(command, { cwd: repo, env: { ...process.env, ...env }, stdin: "ignore", stdout: "pipe", stderr: "inherit" });
  children.push(child);
  const lines = collectLines(child.stdout, (text) => {
    const line = tryJson(text);
    if (line) onLine(line);
  });
  return { child, lines };
}

async function main(): Promise<void> {
  const machine = machineInfo();
  const git = gitInfo(repo);
  const work = mkdtempSync(join(tmpdir(), "bench-opcua-"));
  const plantFile = join(work, "plant.yaml");
  writeFileSync(plantFile, YAML.stringify(opcuaBenchPlantInput(NODES, 1000)));
  const port = freePort();
  const admin = new KafkaAdmin(connectionFromBootstrap(args.bootstrap!, "bench-opcua"));
  const topic = `bench.opcua-${Date.now().toString(36)}`;
  await admin.createTopic(topic, Number(args.partitions));

  log(`simulator: ${NODES} variables on port ${port}`);
  let simReady = false;
  const sim = spawnLogged([process.execPath, "src/main.ts", "simulate", "opcua", "--port", String(port), "--plant", plantFile], { LOG_LEVEL: "info" }, (line) => {
    if (line.msg === "OPC UA simulator listening") simReady = true;
  });
  await waitFor("simulator", () => (simReady ? true : undefined), 120_000);

  const config = {
    pipeline_id: "bench-opcua",
    adapter_id: "bench-opcua",
    protocol: "opcua",
    source: {
      endpoint: `opc.tcp://127.0.0.1:${port}`,
      pki_dir: join(work, "pki"),
      subscription: { publishing_interval_ms: PUBLISH_MS, batch_size: Number(args["batch-size"]), ...(args["max-per-publish"] !== undefined && { max_notifications_per_publish: Number(args["max-per-publish"]) }) },
    },
    mapping: { nodes: Array.from({ length: NODES }, (_, i) => ({ node_id: `ns=2;s=Bench.${i}`, param: `tag_${i}`, sampling_interval_ms: Number(args["sampling-ms"]) })) },
    output: { kafka_bootstrap: args.bootstrap, topic, asset_id: "bench" },
  };
  const adapterStarted = performance.now();
  let established: number | undefined;
  let healthPort: number | undefined;
  let summary: Record<string, unknown> | undefined;
  // A 10,000-node CONFIG_JSON (~700 KB of base64) is past Linux's 128 KB limit for one environment
  // variable (E2BIG at spawn), so the adapter runtime is started with it read from a file: the same
  // runAdapter() as `gateway adapter`, in its own process.
  const configFile = join(work, "config.b64");
  writeFileSync(configFile, encodeConfigJson(config));
  const runner = `${args["gc-ms"] ? `setInterval(() => Bun.gc(process.env.GC_SYNC === "1"), ${Number(args["gc-ms"])});` : ""}const { readFileSync } = require("node:fs");
    const { runAdapter } = await import("./src/adapter-runtime/run.ts");
    const { ADAPTERS } = await import("./src/adapters.ts");
    process.exit(await runAdapter({ env: { ...process.env, CONFIG_JSON: readFileSync(${JSON.stringify(configFile)}, "utf8") }, definitions: ADAPTERS }));`;
  const adapter = spawnLogged([process.execPath, ...(args.smol ? ["--smol"] : []), "-e", runner], { LOG_LEVEL: "info" }, (line) => {
    if (typeof line.health_port === "number") healthPort = line.health_port;
    if (line.msg === "OPC UA session established") established = performance.now();
    if (line.msg === "adapter stopped" || line.msg === "adapter stopped with readings not acknowledged by Kafka") summary = line;
    if (line.level === "warn" || line.level === "error") log(`adapter ${line.level}: ${line.msg} ${line.reason ?? line.err ?? ""}`);
  });
  await waitFor("session and monitored items", () => established, 120_000);
  log(`adapter: ${NODES} monitored items created in ${round((established! - adapterStarted) / 1000, 1)} s after start; warming up ${WARMUP} s`);
  await Bun.sleep(WARMUP * 1000);

  const simSampler = new ProcessSampler(sim.child.pid);
  const sampler = new ProcessSampler(adapter.child.pid);
  const machineStart = machineJiffies();
  const startOffsets = await endOffsetsTotal(admin, topic);
  sampler.start();
  simSampler.start();
  const started = performance.now();
  log(`measuring ${SECONDS} s`);
  await Bun.sleep(SECONDS * 1000);
  const endOffsets = await endOffsetsTotal(admin, topic);
  const wall = (performance.now() - started) / 1000;
  const stats = sampler.stop();
  const simStats = simSampler.stop();
  const machineEnd = machineJiffies();
  const metrics = healthPort ? await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text() : "";

  adapter.child.kill("SIGTERM");
  const exitCode = await adapter.child.exited;
  await adapter.lines;
  sim.child.kill("SIGTERM");
  await sim.child.exited;
  const finalOffsets = await endOffsetsTotal(admin, topic);
  if (!args["keep-topic"]) await admin.deleteTopics([topic]).catch(() => undefined);
  await admin.close();
  rmSync(work, { recursive: true, force: true });

  const perSecond = (endOffsets - startOffsets) / wall;
  const result = {
    machine,
    git,
    command: `bun bench/opcua.ts --nodes ${NODES} --seconds ${SECONDS} --warmup ${WARMUP} --publish-ms ${PUBLISH_MS} --sampling-ms ${args["sampling-ms"]}${args["max-per-publish"] !== undefined ? ` --max-per-publish ${args["max-per-publish"]}` : ""}${args.smol ? " --smol" : ""}`,
    nodes: NODES,
    publishing_interval_ms: PUBLISH_MS,
    items_created_s: round((established! - adapterStarted) / 1000, 1),
    window_s: round(wall, 1),
    kafka_records_per_s: round(perSecond),
    expected_per_s: round((NODES * 1000) / PUBLISH_MS),
    adapter: stats,
    simulator: { cpu_pct: simStats.cpu_pct, rss_mb_max: simStats.rss_mb_max },
    machine_busy_pct: round((100 * (machineEnd.busy - machineStart.busy)) / (machineEnd.total - machineStart.total), 1),
    exit_code: exitCode,
    summary,
    topic_records: finalOffsets,
    adapter_errors: [...metrics.matchAll(/^adapter_errors_total\{[^}]*type="(\w+)"[^}]*\} (\d+)/gm)].filter((m) => m[2] !== "0").map((m) => `${m[1]}=${m[2]}`),
  };
  const ok =
    exitCode === 0 && summary?.sent_total === summary?.readings_total && finalOffsets === summary?.sent_total &&
    perSecond >= 0.99 * result.expected_per_s && stats.cpu_pct < 50 && stats.rss_mb_max < 250;
  console.log(`## OPC UA adapter: ${NODES} monitored items, ${PUBLISH_MS} ms publishing interval

${machine.date_utc}, ${machine.cpu_model} (${machine.nproc} cores, ${machine.memory_gb} GB), Bun ${machine.bun}, commit ${git.commit}${git.dirty_files ? ` (+${git.dirty_files} changed files)` : ""}
Command: \`${result.command}\`

| | value |
|---|---|
| notifications reaching Kafka | ${result.kafka_records_per_s}/s (expected ${result.expected_per_s}/s) |
| adapter CPU | ${stats.cpu_pct} % of one core (busiest second ${stats.cpu_pct_max_1s} %) |
| adapter RSS | ${stats.rss_mb_avg} MB average, ${stats.rss_mb_max} MB max |
| monitored items created | ${result.items_created_s} s after adapter start (batches of ${args["batch-size"]}; sampling ${args["sampling-ms"]} ms, at most ${args["max-per-publish"] ?? "2000 (default)"} notifications per publish) |
| simulator (own process) | ${simStats.cpu_pct} % CPU, ${simStats.rss_mb_max} MB RSS |
| whole machine busy | ${result.machine_busy_pct} % (Kafka broker, simulator, adapter) |
| after SIGTERM | exit ${exitCode}, readings ${summary?.readings_total}, sent ${summary?.sent_total}, topic ${finalOffsets} |
| verdict | ${ok ? "PASS" : "FAIL"} (delivered ${perSecond >= 0.99 * result.expected_per_s ? "all" : "NOT all"} ${result.expected_per_s}/s; targets: < 50 % CPU ${stats.cpu_pct < 50 ? "met" : "missed"}, < 250 MB RSS ${stats.rss_mb_max < 250 ? "met" : "missed"}) |
`);
  if (args.json) writeFileSync(args.json, JSON.stringify(result, null, 2));
  process.exit(ok ? 0 : 1);
}

await main().catch((error) => {
  for (const child of children) child.kill("SIGKILL");
  console.error(error);
  process.exit(2);
});
