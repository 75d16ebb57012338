#!/usr/bin/env bun
/**
 * Modbus TCP adapter throughput benchmark (issue target: >= 10,000 tags/s sustained, adapter
 * < 50 % of one core and < 200 MB RSS).
 *
 *   bun bench/modbus.ts [--devices 100] [--registers 100] [--seconds 60]
 *
 * Per variant, a simulator (`gateway simulate modbus`, its own process) serves `devices` devices
 * on consecutive ports; ONE adapter process polls all of them (one connection each) at
 * --poll-ms and writes to a fresh topic. Variants:
 *   uint16  (primary) every device maps `registers` uint16 fields: 100 x 100 = 10,000 tags/s
 *   mixed   generateBenchPlant's layout: float32/uint16/uint16 repeating, 75 fields per 100
 *           registers: 10,000 registers/s = 7,500 tags/s
 * Runners: `bun` (bun src/main.ts adapter) and `binary` (dist/gateway adapter, built if missing).
 *
 * After --warmup seconds, a --seconds window measures records reaching Kafka (end offsets
 * and the adapter's /metrics), the adapter's CPU (/proc/<pid>/stat utime+stime over wall time,
 * 100 % = one core) and RSS (VmRSS, sampled every second). Then SIGTERM: sent_total must equal
 * readings_total and the topic must hold exactly sent_total records.
 *
 * Reference: Kafka's own ProducerPerformance (Java client, acks=all, idempotent) on the same
 * broker with records of our average size: unthrottled (the ceiling) and at our rate (CPU).
 *
 * Output: progress on stderr, a Markdown summary on stdout, all numbers as JSON with --json FILE.
 */
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { encodeConfigJson } from "../src/adapter-runtime/config.ts";
import { KafkaAdmin } from "../src/kafka/admin.ts";
import { connectionFromBootstrap } from "../src/kafka/connection.ts";
import { readTopic } from "../src/kafka/reader.ts";
import { generateBenchPlant, parsePlant, type Plant } from "../adapters/modbus/plant.ts";
import {
  collectLines, findPid, freePortRange, gitInfo, log, machineInfo, machineJiffies, mean, ProcessSampler, round, tryJson, waitFor,
  type ProcessStats,
  nonNegativeInt,
} from "./lib.ts";

const repo = join(import.meta.dir, "..");
const KAFKA_LIBS = join(repo, ".cache/kafka-4.1.1/libs/*");
const TOOLS_LOG4J = join(repo, "scripts/kafka/tools-log4j2.properties");

const { values: args } = parseArgs({
  options: {
    devices: { type: "string", default: "100" },
    registers: { type: "string", default: "100" },
    seconds: { type: "string", default: "60" },
    warmup: { type: "string", default: "5" },
    "poll-ms": { type: "string", default: "1000" },
    partitions: { type: "string", default: "6" },
    variants: { type: "string", default: "uint16,mixed" },
    runners: { type: "string", default: "bun,binary" },
    binary: { type: "string", default: "dist/gateway" },
    bootstrap: { type: "string", default: "127.0.0.1:9092" },
    "kafka-ref": { type: "boolean", default: true },
    "no-kafka-ref": { type: "boolean", default: false },
    "ref-ceiling-records": { type: "string", default: "1000000" },
    "keep-topics": { type: "boolean", default: false },
    "cpu-prof": { type: "string" },
    "bun-options": { type: "string", default: "" },
    json: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
  allowPositionals: false,
});
if (args.help) {
  console.log(
    "usage: bun bench/modbus.ts [--devices 100] [--registers 100] [--seconds 60] [--warmup 5] [--poll-ms 1000]\n" +
      "       [--partitions 6] [--variants uint16,mixed] [--runners bun,binary] [--binary dist/gateway]\n" +
      "       [--no-kafka-ref] [--ref-ceiling-records 1000000] [--cpu-prof DIR] [--bun-options '--smol'] [--json FILE] [--keep-topics]",
  );
  process.exit(0);
}

const int = (name: keyof typeof args & string) => nonNegativeInt(name, args[name]);
const DEVICES = int("devices");
const REGISTERS = int("registers");
const SECONDS = int("seconds");
const WARMUP = int("warmup");
const POLL_MS = int("poll-ms");
const PARTITIONS = int("partitions");
const VARIANTS = String(args.variants).split(",").filter(Boolean) as Variant[];
const RUNNERS = String(args.runners).split(",").filter(Boolean) as Runner[];
const KAFKA_REF = args["kafka-ref"] && !args["no-kafka-ref"];
if (REGISTERS < 1 || REGISTERS > 125) throw new Error("--registers must be 1-125 (one FC3 read per device)");
for (const v of VARIANTS) if (!["uint16", "mixed"].includes(v)) throw new Error(`unknown variant ${v}`);
for (const r of RUNNERS) if (!["bun", "binary"].includes(r)) throw new Error(`unknown runner ${r}`);

type Variant = "uint16" | "mixed";
type Runner = "bun" | "binary";

// ---- Plants and adapter configs ----

/** Plant-file shape (snake_case) of a parsed plant, so `gateway simulate` can load it. */
function rawPlant(plant: Plant) {
  return {
    name: plant.name,
    devices: plant.devices.map((d) => ({
      name: d.name,
      port_offset: d.portOffset,
      unit_id: d.unitId,
      registers: Object.fromEntries(d.registers.map((r) => [r.key, { type: r.field.type, waveform: r.waveform }])),
    })),
  };
}

/** All-uint16 plant: `registers` uint16 fields per device, counters and square waves alternating. */
function uint16Plant(devices: number, registers: number): Plant {
  return parsePlant({
    name: `bench-uint16-${devices}x${registers}`,
    devices: Array.from({ length: devices }, (_, d) => ({
      name: `bench-device-${String(d).padStart(3, "0")}`,
      port_offset: d,
      unit_id: 1,
      registers: Object.fromEntries(
        Array.from({ length: registers }, (_, n) => {
          const phase_s = (d * 7 + n) % 60;
          return [
            String(40001 + n),
            {
              type: "uint16",
              waveform: n % 2 === 0
                ? { kind: "counter", step: 1, every_s: 1, phase_s }
                : { kind: "square", low: 0, high: 1000 + n, period_s: 10, phase_s },
            },
          ];
        }),
      ),
    })),
  }, "bench uint16 plant");
}

function plantFor(variant: Variant): Plant {
  return variant === "uint16" ? uint16Plant(DEVICES, REGISTERS) : generateBenchPlant({ devices: DEVICES, registersPerDevice: REGISTERS });
}

/** The adapter's register map: every plant register of device 0 (all devices share the layout). */
function registerMap(plant: Plant): Record<string, { param: string; type: string }> {
  return Object.fromEntries(
    plant.devices[0]!.registers.map((r, i) => [r.key, { param: `tag_${String(i).padStart(3, "0")}`, type: r.field.type }]),
  );
}

function adapterConfig(plant: Plant, basePort: number, topic: string, id: string) {
  return {
    pipeline_id: `bench-${id}`,
    adapter_id: `modbus-bench-${id}`,
    protocol: "modbus_tcp",
    source: {
      connections: plant.devices.map((d) => ({ host: "127.0.0.1", port: basePort + d.portOffset, units: [{ unit_id: d.unitId, asset_id: d.name }] })),
      timeout_ms: 1000,
    },
    mapping: { registers: registerMap(plant) },
    output: { kafka_bootstrap: args.bootstrap, topic, asset_id: "bench" },
    poll_interval_ms: POLL_MS,
  };
}

// ---- Processes ----

interface Child {
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  lines: Record<string, unknown>[];
  stdout: Promise<string[]>;
  stderr: Promise<string>;
}

function spawn(cmd: string[], options: { cwd: string; env: Record<string, string | undefined> }): Child {
  const proc = Bun.spawn(cmd, { cwd: options.cwd, env: options.env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const lines: Record<string, unknown>[] = [];
  const stdout = collectLines(proc.stdout, (line) => {
    const json = tryJson(line);
    if (json) lines.push(json);
  });
  return { proc, lines, stdout, stderr: new Response(proc.stderr).text() };
}

async function stopChild(child: Child, timeoutMs = 15_000): Promise<number | null> {
  child.proc.kill("SIGTERM");
  const exited = await Promise.race([child.proc.exited, Bun.sleep(timeoutMs).then(() => undefined)]);
  if (exited === undefined) {
    child.proc.kill("SIGKILL");
    await child.proc.exited;
    return null;
  }
  await child.stdout;
  return exited;
}

async function startSimulator(plant: Plant, dir: string): Promise<{ child: Child; basePort: number }> {
  const plantFile = join(dir, `${plant.name}.yaml`);
  writeFileSync(plantFile, JSON.stringify(rawPlant(plant))); // YAML is a superset of JSON
  for (let attempt = 0; ; attempt++) {
    const basePort = freePortRange(plant.devices.length);
    const child = spawn([process.execPath, "src/main.ts", "simulate", "modbus", "--port", String(basePort), "--plant", plantFile], {
      cwd: repo,
      env: process.env,
    });
    const ready = await Promise.race([
      waitFor("simulator", () => (child.lines.some((l) => l.msg === "Modbus TCP simulator listening") ? true : undefined), 20_000),
      child.proc.exited.then((code) => code),
    ]);
    if (ready === true) return { child, basePort };
    if (attempt >= 3) throw new Error(`simulator failed to start: ${await child.stderr}`);
    log(`simulator exited (${ready}); retrying on other ports`);
  }
}

// ---- Metrics ----

type Metrics = Map<string, number>;

async function scrape(port: number): Promise<Metrics> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out: Metrics = new Map();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    const name = m[1]!;
    const type = /type="([^"]+)"/.exec(m[2] ?? "")?.[1];
    out.set(name, (out.get(name) ?? 0) + value);
    if (name === "adapter_errors_total" && type) out.set(`${name}:${type}`, (out.get(`${name}:${type}`) ?? 0) + value);
  }
  return out;
}

const metric = (m: Metrics, name: string) => m.get(name) ?? 0;

async function topicTotal(admin: KafkaAdmin, topic: string): Promise<number> {
  let total = 0n;
  for (const offset of (await admin.endOffsets(topic)).values()) total += offset;
  return Number(total);
}

// ---- One adapter run ----

interface AdapterRun {
  variant: Variant;
  runner: Runner;
  command: string;
  devices: number;
  fields_per_device: number;
  registers_per_device: number;
  poll_interval_ms: number;
  expected_tags_per_s: number;
  window_s: number;
  tags_per_s_kafka: number;
  tags_per_s_metrics: number;
  readings_per_s: number;
  registers_per_s: number;
  device_reads_per_s: number;
  avg_read_latency_ms: number;
  adapter: ProcessStats;
  simulator: ProcessStats;
  broker?: ProcessStats;
  machine_busy_pct: number;
  errors_in_window: number;
  summary: { readings_total: number; sent_total: number; dropped_total: number; unsent: number } | undefined;
  topic_records: number;
  exit_code: number | null;
  shutdown_ms: number;
  no_loss: boolean;
  message: { avg_key_bytes: number; avg_value_bytes: number; avg_header_bytes: number; avg_record_bytes: number; sample: unknown };
}

async function runAdapter(variant: Variant, runner: Runner, plant: Plant, basePort: number, simulatorPid: number, admin: KafkaAdmin, binary: string, scratch: string): Promise<AdapterRun> {
  const topic = `bench.modbus.${variant}.${runner}-${Date.now().toString(36)}`;
  await admin.createTopic(topic, PARTITIONS);
  const config = adapterConfig(plant, basePort, topic, `${variant}-${runner}`);
  const fields = Object.keys(config.mapping.registers).length;
  const profDir = args["cpu-prof"];
  const cmd = runner === "bun"
    ? [process.execPath, ...(profDir ? ["--cpu-prof", "--cpu-prof-md", `--cpu-prof-dir=${profDir}`] : []), "src/main.ts", "adapter"]
    : [binary, "adapter"];
  const env: Record<string, string | undefined> = runner === "bun"
    ? { ...process.env, CONFIG_JSON: encodeConfigJson(config) }
    : { PATH: "/usr/bin:/bin", HOME: process.env.HOME, CONFIG_JSON: encodeConfigJson(config) };
  // BUN_OPTIONS reaches compiled binaries too (e.g. --smol: a smaller heap, collected more often).
  if (args["bun-options"]) env.BUN_OPTIONS = args["bun-options"];
  log(`${variant}/${runner}: starting adapter (${DEVICES} devices x ${fields} fields every ${POLL_MS} ms) -> ${topic}`);
  const child = spawn(cmd, { cwd: runner === "bun" ? repo : scratch, env });
  const brokerPid = findPid("kafka.Kafka ");
  try {
    const healthPort = await waitFor("adapter health_port", () => child.lines.find((l) => l.msg === "adapter starting")?.health_port as number | undefined, 20_000);
    await waitFor("all devices connected", () => (child.lines.filter((l) => l.msg === "connected").length >= DEVICES ? true : undefined), 30_000);
    await waitFor("first records in Kafka", async () => (metric(await scrape(healthPort), "adapter_kafka_records_total") > 0 ? true : undefined), 30_000);
    log(`${variant}/${runner}: all ${DEVICES} devices connected, records flowing; warming up ${WARMUP} s`);
    await Bun.sleep(WARMUP * 1000);

    const adapterSampler = new ProcessSampler(child.proc.pid);
    const simSampler = new ProcessSampler(simulatorPid);
    const brokerSampler = brokerPid ? new ProcessSampler(brokerPid) : undefined;
    const m0 = await scrape(healthPort);
    const o0 = await topicTotal(admin, topic);
    const j0 = machineJiffies();
    const t0 = performance.now();
    adapterSampler.start();
    simSampler.start();
    brokerSampler?.start();
    log(`${variant}/${runner}: measuring ${SECONDS} s`);
    await Bun.sleep(SECONDS * 1000);
    const adapter = adapterSampler.stop();
    const simulator = simSampler.stop();
    const broker = brokerSampler?.stop();
    const t1 = performance.now();
    const m1 = await scrape(healthPort);
    const o1 = await topicTotal(admin, topic);
    const j1 = machineJiffies();
    const wall = (t1 - t0) / 1000;
    const reads = metric(m1, "adapter_read_latency_seconds_count") - metric(m0, "adapter_read_latency_seconds_count");
    const readSeconds = metric(m1, "adapter_read_latency_seconds_sum") - metric(m0, "adapter_read_latency_seconds_sum");

    log(`${variant}/${runner}: SIGTERM`);
    const stopAt = performance.now();
    const exitCode = await stopChild(child);
    const shutdownMs = performance.now() - stopAt;
    const summaryLine = child.lines.find((l) => String(l.msg).startsWith("adapter stopped"));
    const summary = summaryLine
      ? { readings_total: Number(summaryLine.readings_total), sent_total: Number(summaryLine.sent_total), dropped_total: Number(summaryLine.dropped_total), unsent: Number(summaryLine.unsent) }
      : undefined;
    if (exitCode !== 0) log(`${variant}/${runner}: adapter exit ${exitCode}; stderr: ${(await child.stderr).slice(-2000)}`);
    const topicRecords = await topicTotal(admin, topic);
    const message = await sampleMessages(topic);
    const noLoss = !!summary && summary.sent_total === summary.readings_total && summary.dropped_total === 0 && summary.unsent === 0 && topicRecords === summary.sent_total;

    const run: AdapterRun = {
      variant,
      runner,
      command: (args["bun-options"] ? `BUN_OPTIONS='${args["bun-options"]}' ` : "") + (runner === "bun" ? "bun src/main.ts adapter" : `${args.binary} adapter`),
      devices: DEVICES,
      fields_per_device: fields,
      registers_per_device: REGISTERS,
      poll_interval_ms: POLL_MS,
      expected_tags_per_s: (DEVICES * fields * 1000) / POLL_MS,
      window_s: round(wall, 2),
      tags_per_s_kafka: round((o1 - o0) / wall),
      tags_per_s_metrics: round((metric(m1, "adapter_kafka_records_total") - metric(m0, "adapter_kafka_records_total")) / wall),
      readings_per_s: round((metric(m1, "adapter_readings_total") - metric(m0, "adapter_readings_total")) / wall),
      registers_per_s: round((reads * REGISTERS) / wall),
      device_reads_per_s: round(reads / wall, 1),
      avg_read_latency_ms: round((1000 * readSeconds) / Math.max(reads, 1), 2),
      adapter,
      simulator,
      ...(broker ? { broker } : {}),
      machine_busy_pct: round((100 * (j1.busy - j0.busy)) / (j1.total - j0.total), 1),
      errors_in_window: metric(m1, "adapter_errors_total") - metric(m0, "adapter_errors_total"),
      summary,
      topic_records: topicRecords,
      exit_code: exitCode,
      shutdown_ms: round(shutdownMs),
      no_loss: noLoss,
      message,
    };
    log(
      `${variant}/${runner}: ${run.tags_per_s_kafka} tags/s to Kafka (${run.registers_per_s} registers/s), adapter CPU ${adapter.cpu_pct} %, ` +
        `RSS avg ${adapter.rss_mb_avg} / max ${adapter.rss_mb_max} MB; no loss: ${noLoss} (${JSON.stringify(summary)}, topic ${topicRecords})`,
    );
    return run;
  } finally {
    if (child.proc.exitCode === null) {
      child.proc.kill("SIGKILL");
      await child.proc.exited;
    }
    if (!args["keep-topics"]) await admin.deleteTopics([topic]).catch(() => undefined);
  }
}

async function sampleMessages(topic: string) {
  const records = await readTopic(connectionFromBootstrap(args.bootstrap!, "bench-reader"), topic, { until: 2000, idleMs: 2000, timeoutMs: 20_000 });
  const bytes = (s: string | undefined) => (s === undefined ? 0 : Buffer.byteLength(s));
  const headerBytes = (h: Map<string, string>) => [...h].reduce((sum, [k, v]) => sum + bytes(k) + bytes(v), 0);
  const key = mean(records.map((r) => bytes(r.key)));
  const value = mean(records.map((r) => bytes(r.value)));
  const headers = mean(records.map((r) => headerBytes(r.headers)));
  return {
    avg_key_bytes: round(key, 1),
    avg_value_bytes: round(value, 1),
    avg_header_bytes: round(headers, 1),
    avg_record_bytes: round(key + value + headers, 1),
    sample: records[0]?.value ? JSON.parse(records[0].value) : undefined,
  };
}

// ---- Kafka's own producer as the reference ----

interface ProducerPerfRun {
  mode: "ceiling" | "rate";
  command: string;
  records: number;
  record_size: number;
  records_per_s: number;
  mb_per_s: number;
  avg_latency_ms: number;
  max_latency_ms: number;
  p99_latency_ms?: number;
  java: ProcessStats;
  broker?: ProcessStats;
  machine_busy_pct: number;
  output_tail: string;
}

async function producerPerformance(admin: KafkaAdmin, mode: "ceiling" | "rate", recordSize: number, rate: number): Promise<ProducerPerfRun> {
  const topic = `bench.kafka-ref.${mode}-${Date.now().toString(36)}`;
  await admin.createTopic(topic, PARTITIONS);
  const records = mode === "ceiling" ? int("ref-ceiling-records") : rate * (WARMUP + SECONDS + 2);
  const toolArgs = [
    "org.apache.kafka.tools.ProducerPerformance", "--topic", topic, "--num-records", String(records),
    "--throughput", mode === "ceiling" ? "-1" : String(rate), "--record-size", String(recordSize),
    "--producer-props", `bootstrap.servers=${args.bootstrap}`, "acks=all", "enable.idempotence=true",
  ];
  const cmd = ["java", `-Dlog4j2.configurationFile=${TOOLS_LOG4J}`, "-cp", KAFKA_LIBS, ...toolArgs];
  log(`Kafka reference (${mode}): ProducerPerformance ${records} records of ${recordSize} B at ${mode === "ceiling" ? "max" : rate} msgs/s`);
  const child = spawn(cmd, { cwd: repo, env: process.env });
  const brokerPid = findPid("kafka.Kafka ");
  const javaSampler = new ProcessSampler(child.proc.pid);
  const brokerSampler = brokerPid ? new ProcessSampler(brokerPid) : undefined;
  let j0 = machineJiffies();
  try {
    if (mode === "ceiling") {
      // Whole run, JVM start included: the throughput it reports is over the whole run too.
      javaSampler.start(250);
      brokerSampler?.start(250);
      await child.proc.exited;
    } else {
      await Bun.sleep(WARMUP * 1000);
      j0 = machineJiffies();
      javaSampler.start();
      brokerSampler?.start();
      await Bun.sleep(SECONDS * 1000);
    }
    const java = javaSampler.stop();
    const broker = brokerSampler?.stop();
    const j1 = machineJiffies();
    const exit = await child.proc.exited;
    const out = (await child.stdout).join("\n");
    if (exit !== 0) throw new Error(`ProducerPerformance exited ${exit}: ${await child.stderr}`);
    // "1000000 records sent, 98765.4 records/sec (45.12 MB/sec), 250.31 ms avg latency, 900.00 ms max latency, 200 ms 50th, 600 ms 95th, 800 ms 99th, ..."
    const final = [...out.matchAll(/(\d+) records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency(?:, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th)?/g)].at(-1);
    if (!final) throw new Error(`cannot parse ProducerPerformance output:\n${out}`);
    return {
      mode,
      command: ["java", "-cp", '"libs/*"', ...toolArgs].join(" ").replace(topic, "<fresh 6-partition topic>"),
      records: Number(final[1]),
      record_size: recordSize,
      records_per_s: round(Number(final[2])),
      mb_per_s: Number(final[3]),
      avg_latency_ms: Number(final[4]),
      max_latency_ms: Number(final[5]),
      ...(final[8] ? { p99_latency_ms: Number(final[8]) } : {}),
      java,
      ...(broker ? { broker } : {}),
      machine_busy_pct: round((100 * (j1.busy - j0.busy)) / (j1.total - j0.total), 1),
      output_tail: out.split("\n").slice(-2).join("\n"),
    };
  } finally {
    if (child.proc.exitCode === null) {
      child.proc.kill("SIGKILL");
      await child.proc.exited;
    }
    if (!args["keep-topics"]) await admin.deleteTopics([topic]).catch(() => undefined);
  }
}

// ---- Main ----

async function ensureBinary(): Promise<string> {
  const binary = join(repo, args.binary!);
  if (!existsSync(binary)) {
    log(`building ${args.binary} (bun scripts/build.ts ${args.binary})`);
    const build = Bun.spawnSync([process.execPath, "scripts/build.ts", args.binary!], { cwd: repo, stdout: "inherit", stderr: "inherit" });
    if (build.exitCode !== 0) throw new Error("build failed");
  }
  return binary;
}

async function main() {
  const machine = machineInfo();
  const admin = new KafkaAdmin(connectionFromBootstrap(args.bootstrap!, "bench"));
  await admin.ping(5000);
  const scratch = mkdtempSync(join(tmpdir(), "bench-modbus-"));
  const binary = RUNNERS.includes("binary") ? await ensureBinary() : "";
  const binaryInfo = binary ? { path: args.binary, size_mb: round(statSync(binary).size / 1024 / 1024, 1), mtime: statSync(binary).mtime.toISOString() } : undefined;
  const runs: AdapterRun[] = [];
  const refs: ProducerPerfRun[] = [];
  try {
    for (const variant of VARIANTS) {
      const plant = plantFor(variant);
      const { child: sim, basePort } = await startSimulator(plant, scratch);
      log(`simulator (${variant}) on ports ${basePort}-${basePort + DEVICES - 1}, pid ${sim.proc.pid}`);
      try {
        for (const runner of RUNNERS) runs.push(await runAdapter(variant, runner, plant, basePort, sim.proc.pid, admin, binary, scratch));
      } finally {
        await stopChild(sim);
      }
    }
    if (KAFKA_REF && runs.length > 0) {
      const primary = runs[0]!;
      const recordSize = Math.round(primary.message.avg_record_bytes);
      refs.push(await producerPerformance(admin, "ceiling", recordSize, 0));
      refs.push(await producerPerformance(admin, "rate", recordSize, Math.round(primary.expected_tags_per_s)));
    }
  } finally {
    await admin.close();
    rmSync(scratch, { recursive: true, force: true });
  }

  const result = {
    benchmark: "modbus",
    command: `bun bench/modbus.ts ${process.argv.slice(2).join(" ")}`.trim(),
    machine,
    git: gitInfo(repo),
    binary: binaryInfo,
    config: { devices: DEVICES, registers: REGISTERS, seconds: SECONDS, warmup: WARMUP, poll_ms: POLL_MS, partitions: PARTITIONS },
    runs,
    kafka_reference: refs,
  };
  if (args.json) writeFileSync(args.json, JSON.stringify(result, null, 2) + "\n");
  console.log(markdown(result));
  const ok = runs.every((r) => r.no_loss);
  process.exit(ok ? 0 : 1);
}

function markdown(result: { runs: AdapterRun[]; kafka_reference: ProducerPerfRun[] }): string {
  const lines = [
    "| variant | runner | tags/s to Kafka (expected) | registers/s | adapter CPU % (max 1 s) | RSS avg / max MB | simulator CPU % | broker CPU % | no loss (read = sent = in topic) |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of result.runs) {
    lines.push(
      `| ${r.variant} (${r.fields_per_device} tags/device) | ${r.runner}${args["bun-options"] ? ` (BUN_OPTIONS=${args["bun-options"]})` : ""} | ${r.tags_per_s_kafka} (${r.expected_tags_per_s}) | ${r.registers_per_s} | ` +
        `${r.adapter.cpu_pct} (${r.adapter.cpu_pct_max_1s}) | ${r.adapter.rss_mb_avg} / ${r.adapter.rss_mb_max} | ${r.simulator.cpu_pct} | ${r.broker?.cpu_pct ?? "-"} | ` +
        `${r.no_loss ? "yes" : "NO"} (${r.summary?.readings_total} = ${r.summary?.sent_total} = ${r.topic_records}) |`,
    );
  }
  if (result.kafka_reference.length > 0) {
    lines.push("", "| Kafka ProducerPerformance | records/s | MB/s | avg / max latency ms | java CPU % | java RSS max MB | broker CPU % |", "|---|---|---|---|---|---|---|");
    for (const k of result.kafka_reference) {
      lines.push(`| ${k.mode} (${k.record_size} B) | ${k.records_per_s} | ${k.mb_per_s} | ${k.avg_latency_ms} / ${k.max_latency_ms} | ${k.java.cpu_pct} | ${k.java.rss_mb_max} | ${k.broker?.cpu_pct ?? "-"} |`);
    }
    const ceiling = result.kafka_reference.find((k) => k.mode === "ceiling");
    const rate = result.kafka_reference.find((k) => k.mode === "rate");
    for (const r of result.runs) {
      const parts = [`${r.variant}/${r.runner}:`];
      if (ceiling) parts.push(`${r.tags_per_s_kafka} msgs/s = ${round((100 * r.tags_per_s_kafka) / ceiling.records_per_s, 1)} % of the Java producer ceiling;`);
      const ours = (r.adapter.cpu_pct * 10_000) / r.tags_per_s_kafka;
      parts.push(`CPU per 10k msgs/s ${round(ours, 1)} %`);
      if (rate) {
        const theirs = (rate.java.cpu_pct * 10_000) / rate.records_per_s;
        parts.push(`vs Java client ${round(theirs, 1)} % (x${round(ours / theirs, 2)})`);
      }
      lines.push("", parts.join(" "));
    }
  }
  return lines.join("\n");
}

await main();
