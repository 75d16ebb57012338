#!/usr/bin/env bun
/**
 * Stream worker benchmark (targets: >= 50,000 msgs/s per worker on one core; raw -> clean p99 < 50 ms
 * at a steady 10,000 msgs/s).
 *
 *   bun bench/streams.ts [--readings 1000000] [--tags 10000] [--runs 3]
 *
 * Each run works on its own set of topics, `bench<ts>.` + every catalogue topic (catalogue partitions
 * and configs), and deletes them (and the workers' consumer groups) at the end:
 *
 *  1. load       `--readings` readings over `--tags` tags (1 Hz each, interleaved per second, 0.1 % out
 *                of range) into <prefix>telemetry.raw with ReliableProducer (acks=all, idempotent), in
 *                batches of --batch, --load-inflight batches in flight. Measured: msgs/s, MB/s.
 *  2. quality    ONE `bun src/main.ts worker quality` process pinned with `taskset -c <--core>`, started
 *                on the loaded topic. Done when the group's committed offsets (OffsetFetch with
 *                require_stable, i.e. only committed transactions) reach the raw end offsets: the outputs
 *                are committed in the same transactions, so they are complete then. Measured: msgs/s
 *                from the first commit to done (and from spawn), worker CPU % and RSS, broker CPU.
 *                Then every output topic is counted (read_committed): clean + DLQ must equal the input.
 *  3. aggregate  the same for `worker aggregate` on the clean topic phase 2 produced.
 *  4. reference  Kafka's own tools on the same broker: ConsumerPerformance reading the raw topic
 *                (--readings records) and ProducerPerformance writing --readings records of the same
 *                size (key + value + headers) to a scratch 6-partition topic, acks=all, idempotent;
 *                each pinned to the worker's core and unpinned.
 *  5. latency    a quality worker (pinned) on the same topics; this process produces --rate msgs/s
 *                (each of --tags tags at rate/tags Hz) for --latency-warmup + --latency-seconds s, every
 *                record stamped with its *scheduled* send time (metadata.bench_send_ms, so a producer
 *                that falls behind shows up as latency rather than hiding it). A separate consumer
 *                process (read_committed) on telemetry.raw and telemetry.clean records receive time -
 *                scheduled send time; exact percentiles over the window (warm-up dropped). raw is the
 *                Kafka-only baseline (produce + fetch), clean adds the worker.
 *
 * CPU % = (utime + stime) delta / wall time from /proc/<pid>/stat (100 % = one core); RSS = VmRSS.
 * The machine is shared: every phase records the 1-minute load average at its start and the
 * whole-machine busy % during it. Progress on stderr, Markdown on stdout, everything with --json FILE.
 */
import { Admin, Consumer, FetchIsolationLevels, MessagesStreamModes } from "@platformatic/kafka";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { readingHeaders, readingKey } from "../src/envelope/reading.ts";
import { KafkaAdmin } from "../src/kafka/admin.ts";
import { TOPIC_CATALOGUE } from "../src/kafka/catalogue.ts";
import { connectionFromBootstrap } from "../src/kafka/connection.ts";
import { ReliableProducer, type OutgoingRecord } from "../src/kafka/producer.ts";
import { collectLines, findPid, gitInfo, log, machineInfo, machineJiffies, median, ProcessSampler, processRssMb, round, tryJson, type ProcessStats } from "./lib.ts";

const repo = join(import.meta.dir, "..");
const KAFKA_LIBS = join(repo, ".cache/kafka-4.1.1/libs/*");
const TOOLS_LOG4J = join(repo, "scripts/kafka/tools-log4j2.properties");

const { values: args } = parseArgs({
  options: {
    readings: { type: "string", default: "1000000" },
    tags: { type: "string", default: "10000" },
    runs: { type: "string", default: "3" },
    phases: { type: "string", default: "load,quality,aggregate,reference,latency" },
    batch: { type: "string", default: "5000" },
    "load-inflight": { type: "string", default: "4" },
    core: { type: "string", default: "1" },
    rate: { type: "string", default: "10000" },
    "latency-seconds": { type: "string", default: "30" },
    "latency-warmup": { type: "string", default: "5" },
    "no-raw-baseline": { type: "boolean", default: false },
    "ref-unpinned": { type: "boolean", default: true },
    "no-ref-unpinned": { type: "boolean", default: false },
    "phase-timeout": { type: "string", default: "900" },
    bootstrap: { type: "string", default: "127.0.0.1:9092" },
    "cpu-prof": { type: "string" },
    "keep-topics": { type: "boolean", default: false },
    json: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
    // Internal: the latency consumer, run as its own process.
    "latency-consumer": { type: "string" },
  },
  allowPositionals: false,
});
if (args.help) {
  console.log(
    "usage: bun bench/streams.ts [--readings 1000000] [--tags 10000] [--runs 3]\n" +
      "       [--phases load,quality,aggregate,reference,latency] [--batch 5000] [--load-inflight 4] [--core 1]\n" +
      "       [--rate 10000] [--latency-seconds 30] [--latency-warmup 5] [--no-raw-baseline] [--no-ref-unpinned]\n" +
      "       [--phase-timeout 900] [--bootstrap 127.0.0.1:9092] [--cpu-prof DIR] [--keep-topics] [--json FILE]",
  );
  process.exit(0);
}

const int = (name: keyof typeof args) => {
  const n = Number(args[name]);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${args[name]}`);
  return n;
};

const epochMs = () => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------------------------------------------
// Latency consumer (child process): `--latency-consumer topicA,topicB`.
// Prints {"ready":true} once assigned, then reads one stdin line {"from","to","expected"} and prints the
// latency summary per topic once `expected` window records arrived on each topic (or after 15 s).
// ---------------------------------------------------------------------------------------------------

const STAMP = Buffer.from('"bench_send_ms":');

function stampOf(value: Buffer | undefined): number {
  if (!value) return NaN;
  const at = value.indexOf(STAMP);
  if (at < 0) return NaN;
  let end = at + STAMP.length;
  while (end < value.length && value[end] !== 0x2c && value[end] !== 0x7d) end++; // ',' or '}'
  return Number(value.toString("latin1", at + STAMP.length, end));
}

function percentiles(sorted: Float64Array) {
  const at = (q: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!);
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    min: round(sorted[0] ?? NaN, 2),
    p50: round(at(0.5), 2),
    p90: round(at(0.9), 2),
    p95: round(at(0.95), 2),
    p99: round(at(0.99), 2),
    p999: round(at(0.999), 2),
    max: round(sorted[sorted.length - 1] ?? NaN, 2),
    mean: round(sum / Math.max(1, sorted.length), 2),
  };
}

async function latencyConsumer(topics: string[]): Promise<void> {
  const consumer = new Consumer({
    clientId: "bench-latency",
    bootstrapBrokers: String(args.bootstrap).split(","),
    groupId: `bench-latency-${crypto.randomUUID()}`,
    isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    autocommit: false,
  });
  // Per topic: [stamp, latency] pairs, growable.
  const samples = new Map(topics.map((t) => [t, { stamp: new Float64Array(1 << 20), lat: new Float64Array(1 << 20), n: 0 }]));
  const stream = await consumer.consume({ topics, mode: MessagesStreamModes.LATEST, autocommit: false, maxWaitTime: 100 });
  stream.on("data", (m) => {
    const now = epochMs();
    const s = samples.get(m.topic);
    if (!s) return;
    const stamp = stampOf(m.value as Buffer | undefined);
    if (Number.isNaN(stamp)) return;
    if (s.n === s.stamp.length) {
      const grow = (a: Float64Array) => {
        const b = new Float64Array(a.length * 2);
        b.set(a);
        return b;
      };
      s.stamp = grow(s.stamp);
      s.lat = grow(s.lat);
    }
    s.stamp[s.n] = stamp;
    s.lat[s.n] = now - stamp;
    s.n++;
  });
  // consume() resolves once the group is joined; wait for the assignment to cover every topic.
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && !topics.every((t) => consumer.assignments?.some((a) => a.topic === t && a.partitions.length > 0))) await Bun.sleep(50);
  await Bun.sleep(500);
  console.log(JSON.stringify({ ready: true }));
  let window: { from: number; to: number; expected: number } | undefined;
  for await (const line of console) {
    window = JSON.parse(line);
    break;
  }
  const inWindow = (topic: string) => {
    const s = samples.get(topic)!;
    let c = 0;
    for (let i = 0; i < s.n; i++) if (s.stamp[i]! >= window!.from && s.stamp[i]! < window!.to) c++;
    return c;
  };
  const drainDeadline = Date.now() + 15_000;
  while (Date.now() < drainDeadline && !topics.every((t) => inWindow(t) >= window!.expected)) await Bun.sleep(100);
  const result: Record<string, unknown> = {};
  for (const topic of topics) {
    const s = samples.get(topic)!;
    const lat: number[] = [];
    for (let i = 0; i < s.n; i++) if (s.stamp[i]! >= window!.from && s.stamp[i]! < window!.to) lat.push(s.lat[i]!);
    const sorted = Float64Array.from(lat).sort();
    result[topic] = { ...percentiles(sorted), expected: window!.expected, missing: window!.expected - sorted.length };
  }
  console.log(JSON.stringify({ result }));
  await stream.close().catch(() => undefined);
  await consumer.close(true).catch(() => undefined);
}

if (args["latency-consumer"]) {
  await latencyConsumer(String(args["latency-consumer"]).split(","));
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------------
// Main bench
// ---------------------------------------------------------------------------------------------------

const READINGS = int("readings");
const TAGS = int("tags");
const RUNS = Math.max(1, int("runs"));
const BATCH = Math.max(1, int("batch"));
const LOAD_INFLIGHT = Math.max(1, int("load-inflight"));
const CORE = String(args.core);
const RATE = int("rate");
const LAT_SECONDS = int("latency-seconds");
const LAT_WARMUP = int("latency-warmup");
const PHASE_TIMEOUT_MS = int("phase-timeout") * 1000;
const PHASES = new Set(String(args.phases).split(",").filter(Boolean));
const REF_UNPINNED = args["ref-unpinned"] && !args["no-ref-unpinned"];
const BOOTSTRAP = String(args.bootstrap);
for (const p of PHASES) if (!["load", "quality", "aggregate", "reference", "latency"].includes(p)) throw new Error(`unknown phase ${p}`);
if (TAGS < 1 || READINGS < TAGS) throw new Error("--readings must be at least --tags");
if (PHASES.has("aggregate") && !PHASES.has("quality")) throw new Error("phase aggregate needs phase quality (its input is the clean topic)");
if ((PHASES.has("quality") || PHASES.has("reference")) && !PHASES.has("load")) throw new Error("phases quality and reference need phase load");

const connection = connectionFromBootstrap(BOOTSTRAP, "bench-streams");
const PER_DEVICE = 100;
const QUALITY_GROUP = "gateway-quality";
const AGGREGATE_GROUP = "gateway-aggregate";
/** The quality rules of the bench: 1 s expected interval (gap detection + completeness), a range check that 0.1 % of readings fail. */
const RULES = {
  expected_interval_ms: 1000,
  rules: [{ unit: "degC", min: -50, max: 150, action_on_violation: "mark_bad", max_change_per_s: 1000 }],
};

const pad = (n: number, width: number) => String(n).padStart(width, "0");
const iso = (ms: number) => new Date(Math.round(ms)).toISOString();

/** One adapter-shaped reading (as `toReading` builds it) of tag `tag` at device time `deviceMs`. */
function benchRecord(topic: string, tag: number, seq: number, deviceMs: number, gatewayMs: number, outOfRange: boolean, sendStamp?: number): OutgoingRecord {
  const value = outOfRange ? 500 : Math.round((20 + 10 * Math.sin((seq + tag) / 10) + (tag % 7) * 0.1) * 1000) / 1000;
  const reading = {
    asset_id: `bench-device-${pad(Math.floor(tag / PER_DEVICE), 4)}`,
    parameter: `tag_${pad(tag % PER_DEVICE, 3)}`,
    value,
    unit: "degC",
    quality: "GOOD",
    classification: "TELEMETRY",
    timestamps: { device_time: iso(deviceMs), gateway_time: iso(gatewayMs), kafka_time: null },
    clock_skew_ms: Math.round(gatewayMs) - Math.round(deviceMs),
    metadata: {
      adapter_id: "modbus-bench",
      adapter_version: "0.1.0",
      pipeline_id: "bench-streams",
      hostname: "bench-host",
      time_source: "device",
      ...(sendStamp === undefined ? {} : { bench_send_ms: sendStamp }),
    },
  };
  return { topic, key: readingKey(reading), value: JSON.stringify(reading), headers: readingHeaders() };
}

const recordBytes = (r: OutgoingRecord) =>
  Buffer.byteLength(r.key ?? "") + Buffer.byteLength(r.value) + Object.entries(r.headers ?? {}).reduce((s, [k, v]) => s + Buffer.byteLength(k) + Buffer.byteLength(v), 0);

// ---- Processes ----

interface Child {
  proc: Bun.Subprocess<"pipe" | "ignore", "pipe", "pipe">;
  lines: Record<string, unknown>[];
  stdout: Promise<string[]>;
  stderr: Promise<string>;
}

function spawn(cmd: string[], env: Record<string, string | undefined> = process.env, stdin: "pipe" | "ignore" = "ignore"): Child {
  const proc = Bun.spawn(cmd, { cwd: repo, env, stdin, stdout: "pipe", stderr: "pipe" }) as Child["proc"];
  const lines: Record<string, unknown>[] = [];
  const stdout = collectLines(proc.stdout, (line) => {
    const json = tryJson(line);
    if (json) lines.push(json);
  });
  return { proc, lines, stdout, stderr: new Response(proc.stderr).text() };
}

async function stopChild(child: Child, timeoutMs = 20_000): Promise<number | null> {
  if (child.proc.exitCode !== null) return child.proc.exitCode;
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

let rulesFile = "";
let profDir: string | undefined;

function workerCommand(kind: "quality" | "aggregate", prefix: string, instance: string, profile: boolean): string[] {
  return [
    "taskset", "-c", CORE, process.execPath,
    ...(profile && profDir ? ["--cpu-prof", "--cpu-prof-md", `--cpu-prof-dir=${profDir}`, `--cpu-prof-name=${kind}-${instance}-${Date.now()}.cpuprofile`] : []),
    "src/main.ts", "worker", kind, "--topic-prefix", prefix, "--instance", instance,
    ...(kind === "quality" ? ["--rules", rulesFile] : []),
  ];
}

function spawnWorker(kind: "quality" | "aggregate", prefix: string, instance: string, profile = false): Child {
  return spawn(workerCommand(kind, prefix, instance, profile), { ...process.env, GATEWAY_KAFKA__BOOTSTRAP_SERVERS: BOOTSTRAP, LOG_LEVEL: "info" });
}

const restarts = (child: Child) => child.lines.filter((l) => String(l.msg).includes("restarting")).length;

// ---- Kafka helpers ----

let rawAdmin: Admin;
let admin: KafkaAdmin;

async function committedOffsets(groupId: string, topic: string, partitions: number): Promise<Map<number, bigint>> {
  const groups = await rawAdmin.listConsumerGroupOffsets({
    groups: [{ groupId, topics: [{ name: topic, partitionIndexes: Array.from({ length: partitions }, (_, i) => i) }] }],
    requireStable: true,
  });
  const out = new Map<number, bigint>();
  for (const t of groups[0]?.topics ?? []) for (const p of t.partitions) out.set(p.partitionIndex, p.committedOffset);
  return out;
}

interface TopicCount {
  records: number;
  bytes: number;
  /** Next offset after the last data record, per partition (what a consumer commits once it is done). */
  next: Map<number, bigint>;
  stopped_by: "offsets" | "idle";
}

/**
 * Counts the committed records of each topic (read_committed, a throwaway group). A partition is done
 * when a record at end-1 (plain producer) or end-2 (transactional: the last offset is the commit marker)
 * has been read; an aborted last transaction leaves it to the idle timeout.
 */
async function countRecords(topics: string[], transactional: boolean, idleMs = 3000): Promise<Map<string, TopicCount>> {
  const ends = new Map<string, Map<number, bigint>>();
  for (const t of topics) ends.set(t, await admin.endOffsets(t));
  const counts = new Map<string, TopicCount>(topics.map((t) => [t, { records: 0, bytes: 0, next: new Map(), stopped_by: "offsets" as const }]));
  const pending = new Set<string>();
  for (const [t, m] of ends) for (const [p, end] of m) if (end > 0n) pending.add(`${t}#${p}`);
  if (pending.size === 0) return counts;
  const consumer = new Consumer({
    clientId: "bench-count",
    bootstrapBrokers: BOOTSTRAP.split(","),
    groupId: `bench-count-${crypto.randomUUID()}`,
    isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    autocommit: false,
  });
  try {
    const stream = await consumer.consume({ topics, mode: MessagesStreamModes.EARLIEST, autocommit: false, maxWaitTime: 200, isolationLevel: FetchIsolationLevels.READ_COMMITTED });
    let last = Date.now();
    stream.on("data", (m) => {
      last = Date.now();
      const c = counts.get(m.topic)!;
      c.records++;
      c.bytes += (m.key as Buffer | undefined)?.length ?? 0;
      c.bytes += (m.value as Buffer | undefined)?.length ?? 0;
      c.next.set(m.partition, m.offset + 1n);
      const end = ends.get(m.topic)!.get(m.partition)!;
      if (m.offset >= end - (transactional ? 2n : 1n)) pending.delete(`${m.topic}#${m.partition}`);
    });
    while (pending.size > 0 && Date.now() - last < idleMs) await Bun.sleep(50);
    if (pending.size > 0) {
      for (const key of pending) counts.get(key.slice(0, key.lastIndexOf("#")))!.stopped_by = "idle";
    }
    await stream.close();
  } finally {
    await consumer.close(true);
  }
  return counts;
}

// ---- Phase results ----

interface Load {
  loadavg_1m: number;
  machine_busy_pct: number;
}

interface LoadPhase extends Load {
  records: number;
  wall_s: number;
  msgs_per_s: number;
  mb_per_s: number;
  avg_record_bytes: number;
  avg_value_bytes: number;
  bench_cpu_pct: number;
  broker?: ProcessStats;
}

interface WorkerPhase extends Load {
  worker: "quality" | "aggregate";
  command: string;
  input_records: number;
  startup_s: number;
  processing_s: number;
  total_s: number;
  msgs_per_s: number;
  msgs_per_s_incl_startup: number;
  msgs_per_s_10_90: number;
  cpu: ProcessStats;
  broker?: ProcessStats;
  restarts: number;
  exit_code: number | null;
  outputs: Record<string, { records: number; mb: number; avg_bytes: number; stopped_by: string }>;
  output_records_per_input: number;
  output_mb_per_input_mb: number;
  check?: string;
  ok: boolean;
}

interface RefRun extends Load {
  tool: "ConsumerPerformance" | "ProducerPerformance";
  pinned: boolean;
  command: string;
  records: number;
  record_size?: number;
  msgs_per_s: number;
  mb_per_s: number;
  /** ConsumerPerformance: rate over fetch time only (group join excluded). */
  fetch_msgs_per_s?: number;
  avg_latency_ms?: number;
  p99_latency_ms?: number;
  java: ProcessStats;
  output_tail: string;
}

interface LatencyTopic {
  count: number;
  min: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
  expected: number;
  missing: number;
}

interface LatencyPhase extends Load {
  rate: number;
  seconds: number;
  tags: number;
  sent_in_window: number;
  achieved_rate: number;
  send_ms: { p50: number; p99: number; max: number };
  raw?: LatencyTopic;
  clean: LatencyTopic;
  worker: ProcessStats;
  worker_rss_mb_at_start: number;
  broker?: ProcessStats;
  committed_batches_per_s?: number;
  restarts: number;
}

interface Run {
  prefix: string;
  load?: LoadPhase;
  quality?: WorkerPhase;
  aggregate?: WorkerPhase;
  reference: RefRun[];
  latency?: LatencyPhase;
}

function machineWindow() {
  const j0 = machineJiffies();
  const loadavg_1m = round(loadavg()[0]!, 2);
  return {
    loadavg_1m,
    stop: () => {
      const j1 = machineJiffies();
      return { loadavg_1m, machine_busy_pct: round((100 * (j1.busy - j0.busy)) / Math.max(1, j1.total - j0.total), 1) };
    },
  };
}

function brokerSampler(intervalMs = 1000): ProcessSampler | undefined {
  const pid = findPid("kafka.Kafka ");
  if (!pid) return undefined;
  const s = new ProcessSampler(pid);
  s.start(intervalMs);
  return s;
}

// ---- 1. Load ----

async function loadPhase(prefix: string): Promise<LoadPhase> {
  const topic = `${prefix}telemetry.raw`;
  const producer = new ReliableProducer(connection, "bench-load");
  const perTag = Math.floor(READINGS / TAGS);
  const total = perTag * TAGS;
  const base = Math.floor((Date.now() - perTag * 1000 - 60_000) / 1000) * 1000;
  log(`load: ${total} readings (${TAGS} tags x ${perTag} samples) -> ${topic}, batches of ${BATCH}, ${LOAD_INFLIGHT} in flight`);
  const m = machineWindow();
  const broker = brokerSampler();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let bytes = 0;
  let valueBytes = 0;
  const inflight = new Set<Promise<void>>();
  let batch: OutgoingRecord[] = [];
  let n = 0;
  const flush = async () => {
    const records = batch;
    batch = [];
    const p = producer.send(records).finally(() => inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= LOAD_INFLIGHT) await Promise.race(inflight);
  };
  for (let seq = 0; seq < perTag; seq++) {
    const device = base + seq * 1000;
    for (let tag = 0; tag < TAGS; tag++) {
      const r = benchRecord(topic, tag, seq, device, device + 20, (seq * TAGS + tag) % 1000 === 999);
      bytes += recordBytes(r);
      valueBytes += r.value.length;
      batch.push(r);
      n++;
      if (batch.length >= BATCH) await flush();
    }
  }
  if (batch.length > 0) await flush();
  await Promise.all(inflight);
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await producer.close();
  const brokerStats = broker?.stop();
  const end = [...(await admin.endOffsets(topic)).values()].reduce((a, b) => a + b, 0n);
  if (Number(end) !== n) throw new Error(`load: topic holds ${end} records, sent ${n}`);
  const result: LoadPhase = {
    records: n,
    wall_s: round(wall, 2),
    msgs_per_s: round(n / wall),
    mb_per_s: round(bytes / wall / 1e6, 2),
    avg_record_bytes: round(bytes / n, 1),
    avg_value_bytes: round(valueBytes / n, 1),
    bench_cpu_pct: round((100 * (cpu.user + cpu.system)) / 1e6 / wall, 1),
    ...(brokerStats ? { broker: brokerStats } : {}),
    ...m.stop(),
  };
  log(`load: ${result.msgs_per_s} msgs/s (${result.mb_per_s} MB/s, ${result.avg_record_bytes} B/record), ${result.wall_s} s; load ${result.loadavg_1m}, machine busy ${result.machine_busy_pct} %`);
  return result;
}

// ---- 2/3. Worker throughput ----

async function workerPhase(
  kind: "quality" | "aggregate",
  prefix: string,
  input: { topic: string; records: number; target: Map<number, bigint> },
  outputTopics: string[],
): Promise<WorkerPhase> {
  const group = `${prefix}${kind === "quality" ? QUALITY_GROUP : AGGREGATE_GROUP}`;
  const partitions = Math.max(...input.target.keys()) + 1;
  const targetTotal = [...input.target.values()].reduce((a, b) => a + b, 0n);
  log(`${kind}: one worker on core ${CORE}, input ${input.records} records on ${input.topic}`);
  const m = machineWindow();
  const tSpawn = performance.now();
  const child = spawnWorker(kind, prefix, "b1", !!profDir);
  let tFirst: number | undefined;
  let sampler: ProcessSampler | undefined;
  let broker: ProcessSampler | undefined;
  const progress: [number, number][] = [];
  let tDone: number | undefined;
  try {
    while (performance.now() - tSpawn < PHASE_TIMEOUT_MS) {
      if (child.proc.exitCode !== null) throw new Error(`${kind} worker exited ${child.proc.exitCode}: ${(await child.stderr).slice(-2000)}`);
      const committed = await committedOffsets(group, input.topic, partitions);
      const now = performance.now();
      let done = 0n;
      let complete = true;
      for (const [p, target] of input.target) {
        const c = committed.get(p) ?? -1n;
        done += c > 0n ? (c < target ? c : target) : 0n;
        if (c < target) complete = false;
      }
      if (done > 0n && tFirst === undefined) {
        tFirst = now;
        sampler = new ProcessSampler(child.proc.pid);
        sampler.start(500);
        broker = brokerSampler(500);
      }
      if (tFirst !== undefined) progress.push([now, Number(done) / Number(targetTotal)]);
      if (complete) {
        tDone = now;
        break;
      }
      await Bun.sleep(100);
    }
    if (tDone === undefined || tFirst === undefined) throw new Error(`${kind}: not done within ${PHASE_TIMEOUT_MS / 1000} s (restarts: ${restarts(child)})`);
  } catch (error) {
    sampler?.stop();
    broker?.stop();
    await stopChild(child);
    throw error;
  }
  const cpu = sampler!.stop();
  const brokerStats = broker?.stop();
  const machine = m.stop();
  const exitCode = await stopChild(child);
  const restartCount = restarts(child);
  // Steady rate: from 10 % to 90 % of the input (interpolated on the 100 ms progress samples).
  const timeAt = (q: number) => {
    const i = progress.findIndex(([, f]) => f >= q);
    if (i <= 0) return progress[Math.max(0, i)]?.[0] ?? NaN;
    const [t0, f0] = progress[i - 1]!;
    const [t1, f1] = progress[i]!;
    return t0 + ((q - f0) / Math.max(1e-9, f1 - f0)) * (t1 - t0);
  };
  const steady = (0.8 * input.records) / ((timeAt(0.9) - timeAt(0.1)) / 1000);

  log(`${kind}: done; counting outputs`);
  const counts = await countRecords(outputTopics.map((t) => prefix + t), true);
  const outputs: WorkerPhase["outputs"] = {};
  let outRecords = 0;
  let outBytes = 0;
  for (const [topic, c] of counts) {
    outputs[topic.slice(prefix.length)] = { records: c.records, mb: round(c.bytes / 1e6, 1), avg_bytes: round(c.bytes / Math.max(1, c.records)), stopped_by: c.stopped_by };
    outRecords += c.records;
    outBytes += c.bytes;
  }
  let check: string | undefined;
  let ok = exitCode === 0;
  if (kind === "quality") {
    const clean = outputs["telemetry.clean"]?.records ?? 0;
    const dlq = outputs["dlq.invalid_telemetry"]?.records ?? 0;
    ok &&= clean + dlq === input.records;
    check = `clean ${clean} + DLQ ${dlq} = ${clean + dlq} (input ${input.records})`;
  }
  const processing = (tDone! - tFirst!) / 1000;
  const total = (tDone! - tSpawn) / 1000;
  const result: WorkerPhase = {
    worker: kind,
    command: workerCommand(kind, "<prefix>", "b1", false).join(" ").replace(process.execPath, "bun").replace(rulesFile, "<rules.json>"),
    input_records: input.records,
    startup_s: round((tFirst! - tSpawn) / 1000, 2),
    processing_s: round(processing, 2),
    total_s: round(total, 2),
    msgs_per_s: round(input.records / processing),
    msgs_per_s_incl_startup: round(input.records / total),
    msgs_per_s_10_90: round(steady),
    cpu,
    ...(brokerStats ? { broker: brokerStats } : {}),
    restarts: restartCount,
    exit_code: exitCode,
    outputs,
    output_records_per_input: round(outRecords / input.records, 2),
    output_mb_per_input_mb: 0,
    ...(check ? { check } : {}),
    ok,
    ...machine,
  };
  log(
    `${kind}: ${result.msgs_per_s} msgs/s (10-90 %: ${result.msgs_per_s_10_90}; incl. startup ${result.msgs_per_s_incl_startup}), ` +
      `CPU ${cpu.cpu_pct} %, RSS max ${cpu.rss_mb_max} MB, broker CPU ${brokerStats?.cpu_pct ?? "-"} %, restarts ${restartCount}; ` +
      `${outRecords} output records (${round(outBytes / 1e6)} MB)${check ? `; ${check}` : ""}; load ${machine.loadavg_1m}, machine busy ${machine.machine_busy_pct} %`,
  );
  (result as { _outBytes?: number })._outBytes = outBytes;
  return result;
}

// ---- 4. Kafka reference ----

async function runJava(tool: RefRun["tool"], toolArgs: string[], pinned: boolean): Promise<{ out: string; java: ProcessStats; machine: Load }> {
  const cmd = [...(pinned ? ["taskset", "-c", CORE] : []), "java", `-Dlog4j2.configurationFile=${TOOLS_LOG4J}`, "-cp", KAFKA_LIBS, `org.apache.kafka.tools.${tool}`, ...toolArgs];
  const m = machineWindow();
  const child = spawn(cmd);
  const sampler = new ProcessSampler(child.proc.pid);
  sampler.start(250);
  const exit = await Promise.race([child.proc.exited, Bun.sleep(300_000).then(() => "timeout" as const)]);
  const java = sampler.stop();
  if (exit === "timeout") {
    child.proc.kill("SIGKILL");
    throw new Error(`${tool} timed out`);
  }
  const out = (await child.stdout).join("\n");
  if (exit !== 0) throw new Error(`${tool} exited ${exit}: ${(await child.stderr).slice(-2000)}`);
  return { out, java, machine: m.stop() };
}

const javaCommand = (tool: string, toolArgs: string[], pinned: boolean) =>
  [...(pinned ? ["taskset", "-c", CORE] : []), "java", "-cp", '".cache/kafka-4.1.1/libs/*"', `org.apache.kafka.tools.${tool}`, ...toolArgs].join(" ");

async function consumerPerformance(topic: string, records: number, pinned: boolean): Promise<RefRun> {
  const toolArgs = ["--bootstrap-server", BOOTSTRAP, "--topic", topic, "--messages", String(records), "--group", `bench-cperf-${crypto.randomUUID()}`, "--timeout", "30000"];
  log(`reference: ConsumerPerformance ${records} records of ${topic}${pinned ? ` (core ${CORE})` : ""}`);
  const { out, java, machine } = await runJava("ConsumerPerformance", toolArgs, pinned);
  // start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
  const line = out.split("\n").filter((l) => /^\d{4}-\d\d-\d\d/.test(l.trim())).at(-1);
  if (!line) throw new Error(`cannot parse ConsumerPerformance output:\n${out}`);
  const f = line.split(",").map((s) => s.trim());
  return {
    tool: "ConsumerPerformance",
    pinned,
    command: javaCommand("ConsumerPerformance", toolArgs, pinned).replace(topic, "<prefix>telemetry.raw").replace(/bench-cperf-[\w-]+/, "<fresh group>"),
    records: Number(f[4]),
    msgs_per_s: round(Number(f[5])),
    mb_per_s: Number(f[3]),
    fetch_msgs_per_s: round(Number(f[9])),
    java,
    output_tail: line,
    ...machine,
  };
}

async function producerPerformance(records: number, recordSize: number, pinned: boolean): Promise<RefRun> {
  const topic = `bench.streams.pperf-${Date.now().toString(36)}`;
  await admin.createTopic(topic, 6);
  const toolArgs = [
    "--topic", topic, "--num-records", String(records), "--throughput", "-1", "--record-size", String(recordSize),
    "--producer-props", `bootstrap.servers=${BOOTSTRAP}`, "acks=all", "enable.idempotence=true",
  ];
  log(`reference: ProducerPerformance ${records} records of ${recordSize} B${pinned ? ` (core ${CORE})` : ""}`);
  try {
    const { out, java, machine } = await runJava("ProducerPerformance", toolArgs, pinned);
    const final = [...out.matchAll(/(\d+) records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency(?:, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th)?/g)].at(-1);
    if (!final) throw new Error(`cannot parse ProducerPerformance output:\n${out}`);
    return {
      tool: "ProducerPerformance",
      pinned,
      command: javaCommand("ProducerPerformance", toolArgs, pinned).replace(topic, "<fresh 6-partition topic>"),
      records: Number(final[1]),
      record_size: recordSize,
      msgs_per_s: round(Number(final[2])),
      mb_per_s: Number(final[3]),
      avg_latency_ms: Number(final[4]),
      ...(final[8] ? { p99_latency_ms: Number(final[8]) } : {}),
      java,
      output_tail: final[0],
      ...machine,
    };
  } finally {
    await admin.deleteTopics([topic]).catch(() => undefined);
  }
}

// ---- 5. Latency ----

async function latencyPhase(prefix: string): Promise<LatencyPhase> {
  const raw = `${prefix}telemetry.raw`;
  const clean = `${prefix}telemetry.clean`;
  const withRaw = !args["no-raw-baseline"];
  log(`latency: quality worker on core ${CORE}; ${RATE} msgs/s over ${TAGS} tags for ${LAT_WARMUP} + ${LAT_SECONDS} s`);
  const worker = spawnWorker("quality", prefix, "lat1");
  const consumer = spawn([process.execPath, import.meta.path, "--bootstrap", BOOTSTRAP, "--latency-consumer", (withRaw ? [raw, clean] : [clean]).join(",")], process.env, "pipe");
  const producer = new ReliableProducer(connection, "bench-latency");
  try {
    await waitLine(worker, (l) => l.msg === "stream worker started", 60_000, "quality worker start");
    await waitLine(consumer, (l) => l.ready === true, 60_000, "latency consumer ready");
    // Let the worker's first (empty) fetches settle.
    await Bun.sleep(1000);
    const workerRss0 = processRssMb(worker.proc.pid) ?? NaN;
    const total = RATE * (LAT_WARMUP + LAT_SECONDS);
    const t0 = epochMs() + 50;
    const from = t0 + LAT_WARMUP * 1000;
    const to = from + LAT_SECONDS * 1000;
    const scheduled = (k: number) => t0 + (k * 1000) / RATE;
    const sendTimes: number[] = [];
    let sent = 0;
    let sentInWindow = 0;
    let m: ReturnType<typeof machineWindow> | undefined;
    let sampler: ProcessSampler | undefined;
    let broker: ProcessSampler | undefined;
    let windowStartWall = 0;
    let windowEndWall = 0;
    while (sent < total) {
      const now = epochMs();
      if (!sampler && now >= from) {
        m = machineWindow();
        sampler = new ProcessSampler(worker.proc.pid);
        sampler.start(1000);
        broker = brokerSampler();
        windowStartWall = now;
      }
      const due = Math.min(total, Math.floor(((now - t0) * RATE) / 1000) + 1);
      if (due <= sent) {
        await Bun.sleep(Math.max(1, scheduled(sent) - now));
        continue;
      }
      const records: OutgoingRecord[] = [];
      for (let k = sent; k < due; k++) {
        const at = scheduled(k);
        const tag = k % TAGS;
        records.push(benchRecord(raw, tag, Math.floor(k / TAGS), at, at, false, round(at, 3)));
        if (at >= from && at < to) sentInWindow++;
      }
      const s0 = performance.now();
      await producer.send(records);
      sendTimes.push(performance.now() - s0);
      sent = due;
    }
    windowEndWall = epochMs();
    const workerStats = sampler!.stop();
    const brokerStats = broker?.stop();
    const machine = m!.stop();
    consumer.proc.stdin!.write(JSON.stringify({ from, to, expected: sentInWindow }) + "\n");
    consumer.proc.stdin!.flush();
    const summary = await waitLine(consumer, (l) => "result" in l, 60_000, "latency result");
    const result = summary.result as Record<string, LatencyTopic>;
    sendTimes.sort((a, b) => a - b);
    const q = (p: number) => round(sendTimes[Math.min(sendTimes.length - 1, Math.ceil(p * sendTimes.length) - 1)]!, 2);
    const phase: LatencyPhase = {
      rate: RATE,
      seconds: LAT_SECONDS,
      tags: TAGS,
      sent_in_window: sentInWindow,
      achieved_rate: round((sent * 1000) / (windowEndWall - t0)),
      send_ms: { p50: q(0.5), p99: q(0.99), max: round(sendTimes.at(-1) ?? NaN, 2) },
      ...(withRaw ? { raw: result[raw]! } : {}),
      clean: result[clean]!,
      worker: workerStats,
      worker_rss_mb_at_start: round(workerRss0, 1),
      ...(brokerStats ? { broker: brokerStats } : {}),
      restarts: restarts(worker),
      ...machine,
    };
    void windowStartWall;
    log(
      `latency: raw -> clean p50 ${phase.clean.p50} / p95 ${phase.clean.p95} / p99 ${phase.clean.p99} / max ${phase.clean.max} ms ` +
        `(missing ${phase.clean.missing})${phase.raw ? `; raw baseline p50 ${phase.raw.p50} / p99 ${phase.raw.p99} ms` : ""}; ` +
        `worker CPU ${workerStats.cpu_pct} %, RSS max ${workerStats.rss_mb_max} MB; load ${machine.loadavg_1m}, machine busy ${machine.machine_busy_pct} %`,
    );
    return phase;
  } finally {
    await producer.close().catch(() => undefined);
    await stopChild(consumer, 5000);
    await stopChild(worker);
  }
}

async function waitLine(child: Child, match: (l: Record<string, unknown>) => boolean, timeoutMs: number, what: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = child.lines.find(match);
    if (line) return line;
    if (child.proc.exitCode !== null) throw new Error(`${what}: process exited ${child.proc.exitCode}: ${(await child.stderr).slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`${what}: timed out after ${timeoutMs} ms`);
    await Bun.sleep(50);
  }
}

// ---- One run ----

const QUALITY_OUTPUTS = ["telemetry.clean", "dlq.invalid_telemetry", "events.clean", "telemetry.completeness", "_gateway.quality.changelog"];
const AGGREGATE_OUTPUTS = ["telemetry.1s", "telemetry.10s", "telemetry.1min", "telemetry.1hour", "events.clean", "_gateway.aggregate.changelog"];

async function oneRun(index: number): Promise<Run> {
  const prefix = `bench${Date.now().toString(36)}.`;
  const created: string[] = [];
  const run: Run = { prefix, reference: [] };
  log(`run ${index + 1}/${RUNS}: topics ${prefix}*`);
  try {
    for (const spec of TOPIC_CATALOGUE) {
      await admin.createTopic(prefix + spec.name, spec.partitions, spec.configs);
      created.push(prefix + spec.name);
    }
    if (PHASES.has("load")) run.load = await loadPhase(prefix);
    if (PHASES.has("quality")) {
      const raw = `${prefix}telemetry.raw`;
      const ends = await admin.endOffsets(raw);
      run.quality = await workerPhase("quality", prefix, { topic: raw, records: run.load!.records, target: ends }, QUALITY_OUTPUTS);
      run.quality.output_mb_per_input_mb = round(((run.quality as { _outBytes?: number })._outBytes ?? 0) / (run.load!.avg_record_bytes * run.load!.records), 2);
    }
    if (PHASES.has("aggregate")) {
      const clean = `${prefix}telemetry.clean`;
      // Count the clean topic itself: its end offsets include transaction markers.
      const counted = (await countRecords([clean], true)).get(clean)!;
      run.aggregate = await workerPhase("aggregate", prefix, { topic: clean, records: counted.records, target: counted.next }, AGGREGATE_OUTPUTS);
      const cleanBytes = counted.bytes;
      run.aggregate.output_mb_per_input_mb = round(((run.aggregate as { _outBytes?: number })._outBytes ?? 0) / Math.max(1, cleanBytes), 2);
    }
    for (const phase of [run.quality, run.aggregate]) if (phase) delete (phase as { _outBytes?: number })._outBytes;
    if (PHASES.has("reference")) {
      const raw = `${prefix}telemetry.raw`;
      const size = Math.round(run.load!.avg_record_bytes);
      for (const pinned of REF_UNPINNED ? [true, false] : [true]) {
        run.reference.push(await consumerPerformance(raw, run.load!.records, pinned));
        run.reference.push(await producerPerformance(run.load!.records, size, pinned));
      }
    }
    if (PHASES.has("latency")) run.latency = await latencyPhase(prefix);
  } finally {
    if (!args["keep-topics"]) {
      log(`run ${index + 1}: deleting ${created.length} topics and the workers' consumer groups`);
      await admin.deleteTopics(created).catch((e) => log(`delete topics failed: ${(e as Error).message}`));
      await rawAdmin.deleteGroups({ groups: [`${prefix}${QUALITY_GROUP}`, `${prefix}${AGGREGATE_GROUP}`] }).catch(() => undefined);
    }
  }
  return run;
}

// ---- Summary ----

const med = (values: (number | undefined)[]) => {
  const v = values.filter((x): x is number => typeof x === "number" && Number.isFinite(x));
  return v.length === 0 ? NaN : round(median(v), 2);
};
const all = (values: (number | undefined)[]) => values.map((v) => (v === undefined ? "-" : String(v))).join(" / ");

function markdown(runs: Run[]): string {
  const lines: string[] = [];
  const n = runs.length;
  lines.push(`Medians of ${n} run${n > 1 ? "s" : ""} (each run's value in brackets, in run order).`, "");
  lines.push("| phase | msgs/s | other | process CPU % (max 1 s) | RSS avg / max MB | broker CPU % | load 1m / machine busy % |", "|---|---|---|---|---|---|---|");
  const loads = runs.map((r) => r.load).filter((x): x is LoadPhase => !!x);
  if (loads.length) {
    lines.push(
      `| load: ReliableProducer -> telemetry.raw (${BATCH}/batch, ${LOAD_INFLIGHT} in flight) | **${med(loads.map((l) => l.msgs_per_s))}** [${all(loads.map((l) => l.msgs_per_s))}] | ` +
        `${med(loads.map((l) => l.mb_per_s))} MB/s, ${loads[0]!.avg_record_bytes} B/record | bench process ${med(loads.map((l) => l.bench_cpu_pct))} | - | ${med(loads.map((l) => l.broker?.cpu_pct))} | ${all(loads.map((l) => l.loadavg_1m))} / ${all(loads.map((l) => l.machine_busy_pct))} |`,
    );
  }
  for (const kind of ["quality", "aggregate"] as const) {
    const ps = runs.map((r) => r[kind]).filter((x): x is WorkerPhase => !!x);
    if (!ps.length) continue;
    lines.push(
      `| ${kind} worker (1 process, core ${CORE}) | **${med(ps.map((p) => p.msgs_per_s))}** [${all(ps.map((p) => p.msgs_per_s))}] | ` +
        `10-90 %: ${med(ps.map((p) => p.msgs_per_s_10_90))}; incl. ${med(ps.map((p) => p.startup_s))} s startup: ${med(ps.map((p) => p.msgs_per_s_incl_startup))}; ` +
        `${med(ps.map((p) => p.output_records_per_input))} output records and ${med(ps.map((p) => p.output_mb_per_input_mb))}x the bytes per input; restarts ${all(ps.map((p) => p.restarts))}; ok ${all(ps.map((p) => (p.ok ? 1 : 0)))} | ` +
        `${med(ps.map((p) => p.cpu.cpu_pct))} (${med(ps.map((p) => p.cpu.cpu_pct_max_1s))}) | ${med(ps.map((p) => p.cpu.rss_mb_avg))} / ${med(ps.map((p) => p.cpu.rss_mb_max))} | ` +
        `${med(ps.map((p) => p.broker?.cpu_pct))} | ${all(ps.map((p) => p.loadavg_1m))} / ${all(ps.map((p) => p.machine_busy_pct))} |`,
    );
  }
  const lats = runs.map((r) => r.latency).filter((x): x is LatencyPhase => !!x);
  if (lats.length) {
    lines.push(
      `| latency: quality worker at ${RATE} msgs/s (achieved ${med(lats.map((l) => l.achieved_rate))}) | - | see below | ${med(lats.map((l) => l.worker.cpu_pct))} (${med(lats.map((l) => l.worker.cpu_pct_max_1s))}) | ` +
        `${med(lats.map((l) => l.worker.rss_mb_avg))} / ${med(lats.map((l) => l.worker.rss_mb_max))} | ${med(lats.map((l) => l.broker?.cpu_pct))} | ${all(lats.map((l) => l.loadavg_1m))} / ${all(lats.map((l) => l.machine_busy_pct))} |`,
    );
  }
  for (const kind of ["quality", "aggregate"] as const) {
    const ps = runs.map((r) => r[kind]).filter((x): x is WorkerPhase => !!x);
    if (!ps.length) continue;
    lines.push("", `${kind} outputs (run 1): ` + Object.entries(ps[0]!.outputs).map(([t, o]) => `${t} ${o.records} (${o.mb} MB, ${o.avg_bytes} B avg)`).join("; ") + (ps[0]!.check ? `. Check: ${ps[0]!.check}.` : "."));
  }
  if (lats.length) {
    lines.push("", "| latency (scheduled send -> received, read_committed), ms | p50 | p95 | p99 | p99.9 | max | received / expected |", "|---|---|---|---|---|---|---|");
    const row = (name: string, xs: LatencyTopic[]) =>
      `| ${name} | ${med(xs.map((x) => x.p50))} [${all(xs.map((x) => x.p50))}] | ${med(xs.map((x) => x.p95))} [${all(xs.map((x) => x.p95))}] | **${med(xs.map((x) => x.p99))}** [${all(xs.map((x) => x.p99))}] | ` +
      `${med(xs.map((x) => x.p999))} | ${med(xs.map((x) => x.max))} | ${all(xs.map((x) => x.count))} / ${all(xs.map((x) => x.expected))} |`;
    lines.push(row(`raw -> clean via the quality worker (${LAT_SECONDS} s at ${RATE}/s)`, lats.map((l) => l.clean)));
    const raws = lats.map((l) => l.raw).filter((x): x is LatencyTopic => !!x);
    if (raws.length) lines.push(row("raw topic only (Kafka produce + fetch baseline)", raws));
    lines.push("", `Producer send() (acks=all) per batch: p50 ${med(lats.map((l) => l.send_ms.p50))} ms, p99 ${med(lats.map((l) => l.send_ms.p99))} ms.`);
  }
  const refs = runs.flatMap((r) => r.reference);
  if (refs.length) {
    lines.push("", "| Kafka reference | msgs/s | MB/s | java CPU % | load 1m / machine busy % |", "|---|---|---|---|---|");
    for (const tool of ["ConsumerPerformance", "ProducerPerformance"] as const) {
      for (const pinned of [true, false]) {
        const xs = refs.filter((r) => r.tool === tool && r.pinned === pinned);
        if (!xs.length) continue;
        const rate = tool === "ConsumerPerformance" ? xs.map((x) => x.fetch_msgs_per_s) : xs.map((x) => x.msgs_per_s);
        lines.push(
          `| ${tool}${tool === "ConsumerPerformance" ? " (fetch rate, join excluded)" : ` (${xs[0]!.record_size} B, acks=all, idempotent)`}, ${pinned ? `pinned to core ${CORE}` : "unpinned"} | **${med(rate)}** [${all(rate)}] | ` +
            `${med(xs.map((x) => x.mb_per_s))} | ${med(xs.map((x) => x.java.cpu_pct))} | ${all(xs.map((x) => x.loadavg_1m))} / ${all(xs.map((x) => x.machine_busy_pct))} |`,
        );
      }
    }
    const ratio = (ours: number, theirs: number) => `${round((100 * ours) / theirs, 1)} %`;
    const refRate = (tool: RefRun["tool"], pinned: boolean) => med(refs.filter((r) => r.tool === tool && r.pinned === pinned).map((x) => (tool === "ConsumerPerformance" ? x.fetch_msgs_per_s : x.msgs_per_s)));
    const q = med(runs.map((r) => r.quality?.msgs_per_s));
    const a = med(runs.map((r) => r.aggregate?.msgs_per_s));
    const l = med(runs.map((r) => r.load?.msgs_per_s));
    lines.push("");
    for (const pinned of REF_UNPINNED ? [true, false] : [true]) {
      const c = refRate("ConsumerPerformance", pinned);
      const p = refRate("ProducerPerformance", pinned);
      const tag = pinned ? `pinned to core ${CORE}` : "unpinned";
      lines.push(
        `Ratios vs the Java tools ${tag}: validator ${q} msgs/s = ${ratio(q, c)} of ConsumerPerformance (${c}), aggregator ${a} = ${ratio(a, c)}; ` +
          `our load ${l} msgs/s = ${ratio(l, p)} of ProducerPerformance (${p}).`,
      );
    }
  }
  return lines.join("\n");
}

// ---- Main ----

async function main() {
  const machine = machineInfo();
  const uptime = Bun.spawnSync(["uptime"]).stdout.toString().trim();
  admin = new KafkaAdmin(connection);
  rawAdmin = new Admin({ clientId: "bench-streams-admin", bootstrapBrokers: BOOTSTRAP.split(",") });
  await admin.ping(5000);
  const scratch = mkdtempSync(join(tmpdir(), "bench-streams-"));
  rulesFile = join(scratch, "rules.json");
  writeFileSync(rulesFile, JSON.stringify(RULES));
  profDir = args["cpu-prof"];
  log(`machine: ${machine.nproc} cpus (${machine.cpu_model}), ${machine.memory_gb} GB; ${uptime}`);
  const runs: Run[] = [];
  try {
    for (let i = 0; i < RUNS; i++) runs.push(await oneRun(i));
  } finally {
    await admin.close().catch(() => undefined);
    await rawAdmin.close().catch(() => undefined);
    rmSync(scratch, { recursive: true, force: true });
  }
  const result = {
    benchmark: "streams",
    command: `bun bench/streams.ts ${process.argv.slice(2).join(" ")}`.trim(),
    machine,
    uptime_at_start: uptime,
    uptime_at_end: Bun.spawnSync(["uptime"]).stdout.toString().trim(),
    git: gitInfo(repo),
    config: { readings: READINGS, tags: TAGS, runs: RUNS, batch: BATCH, load_inflight: LOAD_INFLIGHT, core: CORE, rate: RATE, latency_seconds: LAT_SECONDS, latency_warmup: LAT_WARMUP, rules: RULES, cpu_prof: profDir ?? null },
    runs,
  };
  if (args.json) writeFileSync(args.json, JSON.stringify(result, (_, v) => (typeof v === "bigint" ? String(v) : v instanceof Map ? Object.fromEntries(v) : v), 2) + "\n");
  console.log(markdown(runs));
  const ok = runs.every((r) => (r.quality?.ok ?? true) && (r.aggregate?.ok ?? true));
  process.exit(ok ? 0 : 1);
}

await main();
