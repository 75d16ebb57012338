#!/usr/bin/env bun
/**
 * Stream worker benchmark (targets: >= 50,000 msgs/s per worker on one core; raw -> clean p99 < 50 ms
 * at a steady 10,000 msgs/s).
 *
 *   bun bench/streams.ts [--readings 1000000] [--tags 10000] [--runs 3]
 *
 * Every topic set is `bench<ts><variant>.` + every catalogue topic (catalogue partitions and configs);
 * all of them, and the workers' consumer groups, are deleted at the end of each run.
 *
 *  1. load       --readings readings over --tags tags (1 Hz each, interleaved per second, 0.1 % out of
 *                range -> DLQ) into <prefix>telemetry.raw with ReliableProducer (acks=all, idempotent),
 *                batches of --batch, --load-inflight batches in flight. Measured: msgs/s, MB/s.
 *  2. quality    ONE `bun src/main.ts worker quality` process pinned with `taskset -c <--core>`, started
 *                on the loaded topic. Done when the group's committed offsets (OffsetFetch: committed
 *                transactions only) reach the raw end offsets; outputs are
 *                committed in the same transactions, so they are complete then. Measured: msgs/s from
 *                the first commit to done (and from spawn; and 10 %-90 % of the input), worker CPU % and
 *                RSS, broker CPU. Then every output topic is counted (read_committed): clean + DLQ must
 *                equal the input. No committed progress for --stall-timeout s while the worker restarts
 *                = stalled (reported with the broker's error for the failing produce).
 *  3. aggregate  the same for `worker aggregate` on the clean topic phase 2 produced.
 *  4. reference  Kafka's own tools on the same broker: ConsumerPerformance reading the 1M-record raw
 *                topic and ProducerPerformance writing as many records of the same size (key + value +
 *                headers) to a scratch 6-partition topic, acks=all, idempotent; pinned to the worker's
 *                core and unpinned.
 *  5. latency    a quality worker on fresh topics (primed, so its changelog restore is done); this
 *                process produces --rate msgs/s (--tags tags, rate/tags Hz each) for --latency-warmup +
 *                --latency-seconds s, each record stamped with its *scheduled* send time
 *                (metadata.bench_send_ms: a producer that falls behind shows up as latency instead of
 *                hiding it). It sends what is due every --send-interval ms (default 5), as the
 *                appliance's adapters do: each one's publisher lingers 20 ms (buffer.linger_ms), so 5
 *                ms is four adapters sharing the tags. Records wait for it with their scheduled stamp,
 *                so that wait counts as latency. Sending as soon as due (0: ~1,000 produce requests/s
 *                of ~10 records) took the broker 76-104 % CPU instead of ~41 %, the box 88 % busy
 *                instead of 60 %, and put p99 raw -> clean at 83-153 ms (BENCHMARKS.md).
 *                A separate consumer process (read_committed) on telemetry.raw and
 *                telemetry.clean records receive time - scheduled time; exact percentiles over the
 *                window. telemetry.raw is the Kafka-only baseline, clean adds the worker. The worker, the
 *                load generator and the consumer run on --latency-cores (default: every core, as a
 *                deployed appliance runs): pinning the worker to one core shared with the broker's
 *                threads left it waiting up to 340 ms for its core (p99 165-220 ms pinned against
 *                107-137 ms unpinned, interleaved); with --latency-cores equal to --core the worker
 *                has that core and the rest run on the others, as in the throughput phases.
 *
 * Variants (--variants): `stock` is the worker as shipped; the processor caps every transaction at
 * its maxBatch and splits its produce requests below max.message.bytes, so it gets through any backlog.
 * `capped` is the same command with this file preloaded to pause the processor's input stream after
 * --max-batch records per batch (how the batch cap was tried before it was in src/kafka/processor.ts;
 * kept to compare batch sizes). Every worker gets the preload
 * (`bun --preload bench/streams.ts src/main.ts worker ...`), which also reports failed produce calls
 * with the broker's error codes; the stock variant is otherwise unchanged.
 *
 * CPU % = (utime + stime) delta / wall time from /proc/<pid>/stat (100 % = one core); RSS = VmRSS.
 * The machine is shared: every phase records the 1-minute load average at its start and the
 * whole-machine busy % during it. Progress on stderr, Markdown on stdout, everything with --json FILE;
 * --cpu-prof DIR writes a .cpuprofile and a Markdown summary per worker (throughput and latency phases).
 */
import { Admin, Consumer, FetchIsolationLevels, MessagesStreamModes, Producer } from "@platformatic/kafka";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { readingHeaders, readingKey } from "../src/envelope/reading.ts";
import { KafkaAdmin } from "../src/kafka/admin.ts";
import { TOPIC_CATALOGUE } from "../src/kafka/catalogue.ts";
import { connectionFromBootstrap } from "../src/kafka/connection.ts";
import { ReliableProducer, type OutgoingRecord } from "../src/kafka/producer.ts";
import { collectLines, findPid, gitInfo, log, machineInfo, machineJiffies, median, waitFor, processCpuSeconds, ProcessSampler, processRssMb, round, tryJson, type ProcessStats, nonNegativeInt } from "./lib.ts";

const repo = join(import.meta.dir, "..");
const KAFKA_LIBS = join(repo, ".cache/kafka-4.1.1/libs/*");
const TOOLS_LOG4J = join(repo, "scripts/kafka/tools-log4j2.properties");

// This file is also preloaded into worker processes (`bun --preload bench/streams.ts src/main.ts worker ...`)
// for the "capped" variant; there it must not parse the worker's argv or run the bench.
const IS_MAIN = import.meta.main;
const { values: args } = parseArgs({
  args: IS_MAIN ? process.argv.slice(2) : [],
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
    // The latency worker's cores; empty = every core (see phase 5).
    "latency-cores": { type: "string", default: "" },
    "no-raw-baseline": { type: "boolean", default: false },
    // How often the latency phase's load generator sends what is due (ms; 0 = as soon as due); see phase 5.
    "send-interval": { type: "string", default: "5" },
    "ref-unpinned": { type: "boolean", default: true },
    "no-ref-unpinned": { type: "boolean", default: false },
    "phase-timeout": { type: "string", default: "900" },
    "stall-timeout": { type: "string", default: "60" },
    variants: { type: "string", default: "stock" },
    "stock-readings": { type: "string", default: "1000000" },
    "stock-runs": { type: "string", default: "3" },
    "latency-variants": { type: "string", default: "stock" },
    "max-batch": { type: "string", default: "500" },
    "fetch-max-bytes": { type: "string", default: "0" },
    bootstrap: { type: "string", default: "127.0.0.1:9092" },
    "cpu-prof": { type: "string" },
    "worker-log": { type: "string" },
    render: { type: "string" },
    "keep-topics": { type: "boolean", default: false },
    json: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
    // Internal: the latency consumer, run as its own process.
    "latency-consumer": { type: "string" },
  },
  allowPositionals: false,
});
if (IS_MAIN && args.help) {
  console.log(
    "usage: bun bench/streams.ts [--readings 1000000] [--tags 10000] [--runs 3]\n" +
      "       [--phases load,quality,aggregate,reference,latency] [--batch 5000] [--load-inflight 4] [--core 1]\n" +
      "       [--rate 10000] [--latency-seconds 30] [--latency-warmup 5] [--latency-cores 0-1] [--send-interval 5] [--no-raw-baseline] [--no-ref-unpinned]\n" +
      "       [--variants stock] [--stock-readings 1000000] [--stock-runs 3] [--max-batch 500] [--fetch-max-bytes 0]\n" +
      "       [--latency-variants stock] [--stall-timeout 60] [--phase-timeout 900]\n" +
      "       [--bootstrap 127.0.0.1:9092] [--cpu-prof DIR] [--worker-log DIR] [--keep-topics] [--json FILE]\n" +
      "       bun bench/streams.ts --render FILE.json   (the Markdown of a saved run again; same options as that run)",
  );
  process.exit(0);
}

const int = (name: keyof typeof args & string) => nonNegativeInt(name, args[name]);

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

/** Exact percentiles over `expected` samples: the ones never received count as infinitely late (null). */
function percentiles(sorted: Float64Array, expected = sorted.length) {
  const n = Math.max(expected, sorted.length);
  const at = (q: number) => {
    const i = Math.ceil(q * n) - 1;
    return i < sorted.length ? round(sorted[Math.max(0, i)]!, 2) : null;
  };
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    min: sorted.length ? round(sorted[0]!, 2) : null,
    p50: at(0.5),
    p90: at(0.9),
    p95: at(0.95),
    p99: at(0.99),
    p999: at(0.999),
    max: sorted.length < n ? null : round(sorted[sorted.length - 1] ?? NaN, 2),
    /** Of the received ones only. */
    mean: round(sum / Math.max(1, sorted.length), 2),
  };
}

async function latencyConsumer(topics: string[]): Promise<void> {
  const consumer = new Consumer({
    clientId: "bench-latency",
    bootstrapBrokers: String(args.bootstrap).split(","),
    groupId: process.env.BENCH_STREAMS_LATENCY_GROUP ?? `bench-latency-${crypto.randomUUID()}`,
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
    result[topic] = { ...percentiles(sorted, window!.expected), expected: window!.expected, missing: window!.expected - sorted.length };
  }
  console.log(JSON.stringify({ result }));
  await stream.close().catch(() => undefined);
  await consumer.close(true).catch(() => undefined);
}

// ---------------------------------------------------------------------------------------------------
// Preloaded into every worker process the bench starts (`bun --preload bench/streams.ts src/main.ts
// worker ...`):
//  - always: a failed Producer.send() prints one JSON line {"bench_send_error": ...} on stdout with
//    the message count per topic and the broker's error per partition. Observation only: the error
//    still reaches the processor unchanged. (The processor logs only "Producing messages failed.")
//  - "capped" variant only ($BENCH_STREAMS_MAX_BATCH): emulates the fix proposed for
//    TransactionalProcessor (src/kafka/processor.ts): its input stream (the consume() in COMMITTED
//    mode) is paused as soon as MAX_BATCH records were delivered since the last resume(), so a batch
//    never exceeds maxBatch (500) however large the backlog. The processor's own flush/resume cycle
//    is untouched. Optionally ($BENCH_STREAMS_FETCH_MAX_BYTES) fetches are capped too.
// ---------------------------------------------------------------------------------------------------

const MAX_BATCH_ENV = "BENCH_STREAMS_MAX_BATCH";
const FETCH_CAP_ENV = "BENCH_STREAMS_FETCH_MAX_BYTES";
if (!IS_MAIN && process.env.BENCH_STREAMS_PRELOAD === "1") {
  const maxBatch = Number(process.env[MAX_BATCH_ENV] ?? 0);
  const fetchCap = Number(process.env[FETCH_CAP_ENV] ?? 0);
  if (maxBatch > 0 || fetchCap > 0) {
    type Stream = { pause(): unknown; resume(): unknown; prependListener(event: string, fn: () => void): unknown };
    const proto = Consumer.prototype as unknown as { consume: (options: Record<string, unknown>, callback?: unknown) => unknown };
    const original = proto.consume;
    proto.consume = function (options, callback) {
      const opts = fetchCap > 0 ? { maxBytes: fetchCap, maxBytesPerPartition: fetchCap, ...options } : options;
      const result = original.call(this, opts, callback);
      if (maxBatch > 0 && options.mode === MessagesStreamModes.COMMITTED && result instanceof Promise) {
        return result.then((stream: Stream) => {
          let delivered = 0;
          const resume = stream.resume.bind(stream);
          stream.resume = () => {
            delivered = 0;
            return resume();
          };
          stream.prependListener("data", () => {
            if (++delivered >= maxBatch) stream.pause();
          });
          return stream;
        });
      }
      return result;
    };
  }
  type SendOptions = { messages: { topic: string; value?: unknown }[] };
  type Callback = (error: unknown, result?: unknown) => void;
  const producerProto = Producer.prototype as unknown as { send: (options: SendOptions, callback?: Callback) => unknown };
  const send = producerProto.send;
  const report = (options: SendOptions, error: unknown) => {
    const perTopic: Record<string, number> = {};
    let bytes = 0;
    for (const m of options.messages) {
      perTopic[m.topic] = (perTopic[m.topic] ?? 0) + 1;
      bytes += typeof m.value === "string" ? m.value.length : 0;
    }
    const errors: Record<string, number> = {};
    const partitions: string[] = [];
    const walk = (e: { message?: string; errors?: unknown[]; response?: { responses?: { name: string; partitionResponses: { index: number; errorCode: number }[] }[] } }) => {
      for (const r of e.response?.responses ?? []) for (const pr of r.partitionResponses) if (pr.errorCode) partitions.push(`${r.name}[${pr.index}]=${pr.errorCode}`);
      if (e.errors?.length) for (const sub of e.errors) walk(sub as typeof e);
      else errors[String(e.message)] = (errors[String(e.message)] ?? 0) + 1;
    };
    walk(error as Parameters<typeof walk>[0]);
    console.log(JSON.stringify({ bench_send_error: { messages: options.messages.length, value_bytes: bytes, per_topic: perTopic, errors, partitions: partitions.slice(0, 24) } }));
  };
  producerProto.send = function (options, callback) {
    if (typeof callback === "function") {
      return send.call(this, options, (error, result) => {
        if (error) report(options, error);
        callback(error, result);
      });
    }
    const promise = send.call(this, options) as Promise<unknown>;
    promise.catch((error) => report(options, error));
    return promise;
  };
}

if (IS_MAIN && args["latency-consumer"]) {
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
const RATES = String(args.rate).split(",").map((r) => Number(r));
for (const r of RATES) if (!Number.isInteger(r) || r < 1) throw new Error(`--rate must be positive integers, got ${args.rate}`);
const LAT_SECONDS = int("latency-seconds");
const LAT_WARMUP = int("latency-warmup");
const SEND_INTERVAL_MS = int("send-interval");
const PHASE_TIMEOUT_MS = int("phase-timeout") * 1000;
const PHASES = new Set(String(args.phases).split(",").filter(Boolean));
const REF_UNPINNED = args["ref-unpinned"] && !args["no-ref-unpinned"];
const BOOTSTRAP = String(args.bootstrap);
const STALL_MS = int("stall-timeout") * 1000;
const FETCH_MAX_BYTES = int("fetch-max-bytes");
const MAX_BATCH = int("max-batch");
type Variant = "stock" | "capped";
const VARIANTS = String(args.variants).split(",").filter(Boolean) as Variant[];
for (const v of VARIANTS) if (!["stock", "capped"].includes(v)) throw new Error(`unknown variant ${v}`);
const STOCK_READINGS = int("stock-readings");
const STOCK_RUNS = int("stock-runs");
const LATENCY_VARIANTS = String(args["latency-variants"]).split(",").filter(Boolean) as Variant[];
for (const v of LATENCY_VARIANTS) if (!["stock", "capped"].includes(v)) throw new Error(`unknown latency variant ${v}`);
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

/** The machine's, not this process's: `nproc` counts only the cores a pinned process may use. */
const CPU_COUNT = cpus().length || 1;

/** The cores other than the worker's: the bench's own load generation and consumers run there. */
function otherCores(): string {
  const others = Array.from({ length: CPU_COUNT }, (_, i) => String(i)).filter((c) => c !== CORE);
  return others.join(",");
}
const pinOthers = () => (otherCores() ? ["taskset", "-c", otherCores()] : []);
const allCores = () => `0-${CPU_COUNT - 1}`;
/** This process (all threads); its children inherit it. */
function pinSelf(cores: string): void {
  if (cores) Bun.spawnSync(["taskset", "-a", "-p", "-c", cores, String(process.pid)], { stdout: "ignore", stderr: "ignore" });
}

/** The worker as deployed (`stock`), or with the bench's batch cap preloaded (`capped`); both with the send-error hook. */
function workerCommand(kind: "quality" | "aggregate", prefix: string, instance: string, variant: Variant, profile: boolean, cores = CORE): string[] {
  return [
    "taskset", "-c", cores, process.execPath,
    "--preload", import.meta.path,
    ...(profile && profDir ? ["--cpu-prof", "--cpu-prof-md", `--cpu-prof-dir=${profDir}`, `--cpu-prof-name=${kind}-${variant}-${instance}-${Date.now()}.cpuprofile`] : []),
    "src/main.ts", "worker", kind, "--topic-prefix", prefix, "--instance", instance,
    ...(kind === "quality" ? ["--rules", rulesFile] : []),
  ];
}

function spawnWorker(kind: "quality" | "aggregate", prefix: string, instance: string, variant: Variant, profile = false, cores = CORE): Child {
  const env: Record<string, string | undefined> = { ...process.env, GATEWAY_KAFKA__BOOTSTRAP_SERVERS: BOOTSTRAP, LOG_LEVEL: "info" };
  env.BENCH_STREAMS_PRELOAD = "1";
  delete env[MAX_BATCH_ENV];
  delete env[FETCH_CAP_ENV];
  if (variant === "capped") {
    if (MAX_BATCH > 0) env[MAX_BATCH_ENV] = String(MAX_BATCH);
    if (FETCH_MAX_BYTES > 0) env[FETCH_CAP_ENV] = String(FETCH_MAX_BYTES);
  }
  return spawn(workerCommand(kind, prefix, instance, variant, profile, cores), env);
}

const cappedEnv = () => [MAX_BATCH > 0 ? `${MAX_BATCH_ENV}=${MAX_BATCH}` : "", FETCH_MAX_BYTES > 0 ? `${FETCH_CAP_ENV}=${FETCH_MAX_BYTES}` : ""].filter(Boolean).join(" ");
const printable = (cmd: string[], variant: Variant) =>
  `BENCH_STREAMS_PRELOAD=1 ${variant === "capped" ? `${cappedEnv()} ` : ""}` +
  cmd.join(" ").replace(process.execPath, "bun").replace(import.meta.path, "bench/streams.ts").replace(rulesFile, "<rules.json>");

/** With --worker-log DIR: the worker's JSON stdout lines (its log, and the preload's reports) as NDJSON. */
function saveWorkerLog(child: Child, name: string): void {
  const dir = args["worker-log"];
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}-${Date.now()}.ndjson`), child.lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
}

const restartLines = (child: Child) => child.lines.filter((l) => String(l.msg).includes("restarting"));
/** What the preloaded hook saw when a produce failed (first few), see the preload section. */
const sendErrors = (child: Child) => child.lines.filter((l) => "bench_send_error" in l).map((l) => l.bench_send_error as Record<string, unknown>);

// ---- Kafka helpers ----

let rawAdmin: Admin;
let admin: KafkaAdmin;
/** Consumer groups the bench's own readers created (counting, latency, ConsumerPerformance): deleted with the run's topics. */
const throwawayGroups: string[] = [];

/**
 * The group's committed offsets: those of committed transactions only (an open transaction's offsets
 * are not applied before its commit marker). Not require_stable: that refuses the answer while any
 * transaction of the group holds offsets, which for a worker that commits back to back is nearly
 * always, so the polls came back late by seconds and moved the measured first commit (startup 2-9 s).
 */
async function committedOffsets(groupId: string, topic: string, partitions: number): Promise<Map<number, bigint>> {
  const groups = await rawAdmin.listConsumerGroupOffsets({
    groups: [{ groupId, topics: [{ name: topic, partitionIndexes: Array.from({ length: partitions }, (_, i) => i) }] }],
    requireStable: false,
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
  const groupId = `bench-count-${crypto.randomUUID()}`;
  throwawayGroups.push(groupId);
  const consumer = new Consumer({
    clientId: "bench-count",
    bootstrapBrokers: BOOTSTRAP.split(","),
    groupId,
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
    for (const key of pending) counts.get(key.slice(0, key.lastIndexOf("#")))!.stopped_by = "idle";
    await stream.close();
  } finally {
    await consumer.close(true);
  }
  return counts;
}

// ---- Phase results ----

interface Load {
  /** 1-minute load average when the phase started (`uptime`). */
  loadavg_1m: number;
  /** Whole machine (both cores) busy during the phase, /proc/stat. */
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
  variant: Variant;
  command: string;
  input_records: number;
  /** No committed progress for --stall-timeout s while the worker kept restarting. */
  stalled: boolean;
  stall?: { after_s: number; committed_fraction: number; restart_reasons: Record<string, number> };
  startup_s?: number;
  processing_s?: number;
  total_s: number;
  msgs_per_s: number;
  msgs_per_s_incl_startup?: number;
  msgs_per_s_10_90?: number;
  /** CPU % of the worker between its first commit and done (100 = one core). */
  cpu_pct_processing?: number;
  /** Sampled from spawn to done (or stall): RSS, per-second CPU. */
  process: ProcessStats;
  broker?: ProcessStats;
  restarts: number;
  /** Failed produce calls seen by the preloaded hook: size of the send and the broker's errors (first 3). */
  send_errors: Record<string, unknown>[];
  exit_code: number | null;
  outputs: Record<string, { records: number; mb: number; avg_bytes: number; stopped_by: string }>;
  output_records_per_input?: number;
  /** All output records' key + value bytes. */
  output_bytes?: number;
  output_mb_per_input_mb?: number;
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

/** Percentiles in ms over every record sent in the window; null = beyond the records received (never arrived). */
interface LatencyTopic {
  count: number;
  min: number | null;
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p99: number | null;
  p999: number | null;
  max: number | null;
  mean: number;
  expected: number;
  missing: number;
}

interface LatencyPhase extends Load {
  variant: Variant;
  command: string;
  /** taskset list of the worker; the load generator and the consumer share it unless it is --core. */
  cores: string;
  rate: number;
  seconds: number;
  tags: number;
  send_interval_ms: number;
  sent_in_window: number;
  achieved_rate: number;
  send_ms: { p50: number; p99: number; max: number };
  raw?: LatencyTopic;
  clean: LatencyTopic;
  worker: ProcessStats;
  worker_rss_mb_at_start: number;
  broker?: ProcessStats;
  /** The load generator itself: this process (producer) and the latency consumer process. */
  bench_producer_cpu_pct: number;
  latency_consumer: ProcessStats;
  restarts: number;
  restart_reasons: string[];
  send_errors: Record<string, unknown>[];
}

interface VariantRun {
  variant: Variant;
  prefix: string;
  load?: LoadPhase;
  quality?: WorkerPhase;
  aggregate?: WorkerPhase;
}

interface Run {
  variants: VariantRun[];
  reference: RefRun[];
  latency: LatencyPhase[];
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

async function loadPhase(prefix: string, readings: number): Promise<LoadPhase> {
  const topic = `${prefix}telemetry.raw`;
  const producer = new ReliableProducer(connection, "bench-load");
  const perTag = Math.max(1, Math.floor(readings / TAGS));
  const base = Math.floor((Date.now() - perTag * 1000 - 60_000) / 1000) * 1000;
  pinSelf(allCores());
  log(`load: ${perTag * TAGS} readings (${TAGS} tags x ${perTag} samples) -> ${topic}, batches of ${BATCH}, ${LOAD_INFLIGHT} in flight`);
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
    const p: Promise<void> = producer.send(records).finally(() => inflight.delete(p));
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
  pinSelf(otherCores());
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
  variant: Variant,
  prefix: string,
  input: { topic: string; records: number; target: Map<number, bigint> },
  outputTopics: string[],
): Promise<WorkerPhase> {
  const group = `${prefix}${kind === "quality" ? QUALITY_GROUP : AGGREGATE_GROUP}`;
  const partitions = Math.max(...input.target.keys()) + 1;
  const targetTotal = [...input.target.values()].reduce((a, b) => a + b, 0n);
  log(`${kind} (${variant}): one worker on core ${CORE}, input ${input.records} records on ${input.topic}`);
  const m = machineWindow();
  const tSpawn = performance.now();
  const child = spawnWorker(kind, prefix, "b1", variant, !!profDir);
  const sampler = new ProcessSampler(child.proc.pid);
  sampler.start(500);
  const broker = brokerSampler(500);
  let tFirst: number | undefined;
  let cpuFirst = 0;
  let cpuDone = 0;
  let tDone: number | undefined;
  let lastDone = -1n;
  let lastChange = tSpawn;
  let fraction = 0;
  let stalled = false;
  const progress: [number, number][] = [];
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
      fraction = Number(done) / Number(targetTotal);
      if (done !== lastDone) [lastDone, lastChange] = [done, now];
      if (done > 0n && tFirst === undefined) {
        tFirst = now;
        cpuFirst = processCpuSeconds(child.proc.pid);
      }
      if (tFirst !== undefined) progress.push([now, fraction]);
      if (complete) {
        tDone = now;
        cpuDone = processCpuSeconds(child.proc.pid);
        break;
      }
      if (now - lastChange > STALL_MS && restartLines(child).length > 0) {
        stalled = true;
        tDone = now;
        break;
      }
      await Bun.sleep(100);
    }
    if (tDone === undefined) throw new Error(`${kind}: not done within ${PHASE_TIMEOUT_MS / 1000} s (restarts: ${restartLines(child).length})`);
  } catch (error) {
    sampler.stop();
    broker?.stop();
    await stopChild(child);
    throw error;
  }
  const processStats = sampler.stop();
  const brokerStats = broker?.stop();
  const machine = m.stop();
  const exitCode = await stopChild(child);
  saveWorkerLog(child, `${kind}-${variant}`);
  const restarts = restartLines(child);
  const reasons: Record<string, number> = {};
  for (const l of restarts) reasons[String(l.reason)] = (reasons[String(l.reason)] ?? 0) + 1;
  const base = {
    worker: kind,
    variant,
    command: printable(workerCommand(kind, "<prefix>", "b1", variant, false), variant),
    input_records: input.records,
    total_s: round((tDone - tSpawn) / 1000, 2),
    process: processStats,
    ...(brokerStats ? { broker: brokerStats } : {}),
    restarts: restarts.length,
    send_errors: sendErrors(child).slice(0, 3),
    exit_code: exitCode,
    ...machine,
  };
  if (stalled) {
    const result: WorkerPhase = {
      ...base,
      stalled: true,
      stall: { after_s: round((tDone - tSpawn) / 1000, 1), committed_fraction: round(fraction, 4), restart_reasons: reasons },
      msgs_per_s: round((fraction * input.records) / ((tDone - tSpawn) / 1000)),
      outputs: {},
      ok: false,
    };
    log(
      `${kind} (${variant}): STALLED - ${round(100 * fraction, 2)} % committed after ${result.total_s} s, ${restarts.length} restarts (${JSON.stringify(reasons)}); ` +
        `failed send: ${JSON.stringify(result.send_errors[0] ?? null)}; ` +
        `RSS max ${processStats.rss_mb_max} MB, CPU ${processStats.cpu_pct} %`,
    );
    return result;
  }

  // Steady rate: from 10 % to 90 % of the input (interpolated on the 100 ms progress samples).
  const timeAt = (q: number) => {
    const i = progress.findIndex(([, f]) => f >= q);
    if (i <= 0) return progress[Math.max(0, i)]?.[0] ?? NaN;
    const [t0, f0] = progress[i - 1]!;
    const [t1, f1] = progress[i]!;
    return t0 + ((q - f0) / Math.max(1e-9, f1 - f0)) * (t1 - t0);
  };
  const steady = (0.8 * input.records) / ((timeAt(0.9) - timeAt(0.1)) / 1000);
  log(`${kind} (${variant}): done; counting outputs`);
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
  const processing = (tDone - tFirst!) / 1000;
  const result: WorkerPhase = {
    ...base,
    stalled: false,
    startup_s: round((tFirst! - tSpawn) / 1000, 2),
    processing_s: round(processing, 2),
    msgs_per_s: round(input.records / processing),
    msgs_per_s_incl_startup: round(input.records / ((tDone - tSpawn) / 1000)),
    msgs_per_s_10_90: round(steady),
    cpu_pct_processing: round((100 * (cpuDone - cpuFirst)) / processing, 1),
    outputs,
    output_records_per_input: round(outRecords / input.records, 2),
    output_bytes: outBytes,
    ...(check ? { check } : {}),
    ok,
  };
  log(
    `${kind} (${variant}): ${result.msgs_per_s} msgs/s (10-90 %: ${result.msgs_per_s_10_90}; incl. ${result.startup_s} s startup ${result.msgs_per_s_incl_startup}), ` +
      `CPU ${result.cpu_pct_processing} %, RSS max ${processStats.rss_mb_max} MB, broker CPU ${brokerStats?.cpu_pct ?? "-"} %, restarts ${restarts.length}; ` +
      `${outRecords} output records (${round(outBytes / 1e6)} MB)${check ? `; ${check}` : ""}; load ${machine.loadavg_1m}, machine busy ${machine.machine_busy_pct} %`,
  );
  return result;
}

// ---- 4. Kafka reference ----

async function runJava(tool: RefRun["tool"], toolArgs: string[], pinned: boolean): Promise<{ out: string; java: ProcessStats; machine: Load }> {
  const cmd = ["taskset", "-c", pinned ? CORE : allCores(), "java", `-Dlog4j2.configurationFile=${TOOLS_LOG4J}`, "-cp", KAFKA_LIBS, `org.apache.kafka.tools.${tool}`, ...toolArgs];
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
  const group = `bench-cperf-${crypto.randomUUID()}`;
  throwawayGroups.push(group);
  const toolArgs = ["--bootstrap-server", BOOTSTRAP, "--topic", topic, "--messages", String(records), "--group", group, "--timeout", "30000"];
  log(`reference: ConsumerPerformance ${records} records of ${topic}${pinned ? ` (core ${CORE})` : ""}`);
  const { out, java, machine } = await runJava("ConsumerPerformance", toolArgs, pinned);
  // start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
  const line = out.split("\n").filter((l) => /^\d{4}-\d\d-\d\d/.test(l.trim())).at(-1);
  if (!line) throw new Error(`cannot parse ConsumerPerformance output:\n${out}`);
  const f = line.split(",").map((x) => x.trim());
  const result: RefRun = {
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
  log(`reference: ConsumerPerformance ${result.fetch_msgs_per_s} msgs/s (fetch), ${result.msgs_per_s} incl. join; java CPU ${java.cpu_pct} %`);
  return result;
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
    const result: RefRun = {
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
    log(`reference: ProducerPerformance ${result.msgs_per_s} msgs/s; java CPU ${java.cpu_pct} %`);
    return result;
  } finally {
    await admin.deleteTopics([topic]).catch(() => undefined);
  }
}

// ---- 5. Latency ----

async function latencyPhase(prefix: string, variant: Variant, RATE: number): Promise<LatencyPhase> {
  const raw = `${prefix}telemetry.raw`;
  const clean = `${prefix}telemetry.clean`;
  const withRaw = !args["no-raw-baseline"];
  // Every tag at 1 Hz (the rules' expected interval), so a lower rate means fewer tags, not gaps.
  const TAGS_L = Math.min(TAGS, RATE);
  const cores = String(args["latency-cores"] || allCores());
  // The worker alone on its core, as in the throughput phases; otherwise everything shares `cores`.
  const ownCore = cores === CORE;
  log(`latency: quality worker (${variant}) on cores ${cores}${ownCore ? " (its own)" : ", shared with the load generator"}; ${RATE} msgs/s over ${TAGS_L} tags, sent every ${SEND_INTERVAL_MS || "1"} ms, for ${LAT_WARMUP} + ${LAT_SECONDS} s`);
  const worker = spawnWorker("quality", prefix, "lat1", variant, !!profDir, cores);
  const latencyGroup = `bench-latency-${crypto.randomUUID()}`;
  throwawayGroups.push(latencyGroup);
  const consumer = spawn(
    [...(ownCore ? pinOthers() : ["taskset", "-c", cores]), process.execPath, import.meta.path, "--bootstrap", BOOTSTRAP, "--latency-consumer", (withRaw ? [raw, clean] : [clean]).join(",")],
    { ...process.env, BENCH_STREAMS_LATENCY_GROUP: latencyGroup },
    "pipe",
  );
  const producer = new ReliableProducer(connection, "bench-latency");
  if (!ownCore) pinSelf(cores);
  try {
    await waitLine(worker, (l) => l.msg === "stream worker started", 60_000, "quality worker start");
    await waitLine(consumer, (l) => l.ready === true, 60_000, "latency consumer ready");
    // Prime: the worker's first batch restores its (empty) changelog partitions, which takes a while;
    // let that happen before the paced load, then wait for the commit.
    const prime = Math.min(TAGS_L, 600);
    const primeAt = Date.now() - 1000;
    await producer.send(Array.from({ length: prime }, (_, tag) => benchRecord(raw, tag, 0, primeAt, primeAt, false)));
    await waitFor(
      "priming batch committed",
      async () => {
        const committed = await committedOffsets(`${prefix}${QUALITY_GROUP}`, raw, 6);
        return [...committed.values()].reduce((a, b) => a + (b > 0n ? b : 0n), 0n) >= BigInt(prime) ? true : undefined;
      },
      60_000,
      200,
    );
    await Bun.sleep(500);
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
    let consumerSampler: ProcessSampler | undefined;
    let selfCpu0 = process.cpuUsage();
    let selfWall0 = 0;
    while (sent < total) {
      const now = epochMs();
      if (!sampler && now >= from) {
        m = machineWindow();
        sampler = new ProcessSampler(worker.proc.pid);
        sampler.start(1000);
        consumerSampler = new ProcessSampler(consumer.proc.pid);
        consumerSampler.start(1000);
        broker = brokerSampler();
        selfCpu0 = process.cpuUsage();
        selfWall0 = now;
      }
      const due = Math.min(total, Math.floor(((now - t0) * RATE) / 1000) + 1);
      if (due <= sent) {
        await Bun.sleep(Math.max(1, scheduled(sent) - now));
        continue;
      }
      if (SEND_INTERVAL_MS > 0 && due < total && now < scheduled(sent) + SEND_INTERVAL_MS) {
        await Bun.sleep(scheduled(sent) + SEND_INTERVAL_MS - now);
        continue;
      }
      const records: OutgoingRecord[] = [];
      for (let k = sent; k < due; k++) {
        const at = scheduled(k);
        const stamp = round(at, 3);
        records.push(benchRecord(raw, k % TAGS_L, Math.floor(k / TAGS_L), at, at, false, stamp));
        if (stamp >= from && stamp < to) sentInWindow++;
      }
      const s0 = performance.now();
      await producer.send(records);
      sendTimes.push(performance.now() - s0);
      sent = due;
    }
    const endWall = epochMs();
    const workerStats = sampler!.stop();
    const consumerStats = consumerSampler!.stop();
    const selfCpu = process.cpuUsage(selfCpu0);
    const brokerStats = broker?.stop();
    const machine = m!.stop();
    consumer.proc.stdin!.write(JSON.stringify({ from, to, expected: sentInWindow }) + "\n");
    consumer.proc.stdin!.flush();
    const summary = await waitLine(consumer, (l) => "result" in l, 60_000, "latency result");
    const result = summary.result as Record<string, LatencyTopic>;
    sendTimes.sort((a, b) => a - b);
    const q = (p: number) => round(sendTimes[Math.min(sendTimes.length - 1, Math.ceil(p * sendTimes.length) - 1)]!, 2);
    const phase: LatencyPhase = {
      variant,
      command: printable(workerCommand("quality", "<prefix>", "lat1", variant, false, cores), variant),
      cores,
      rate: RATE,
      seconds: LAT_SECONDS,
      tags: TAGS_L,
      send_interval_ms: SEND_INTERVAL_MS,
      sent_in_window: sentInWindow,
      achieved_rate: round((sent * 1000) / (endWall - t0)),
      send_ms: { p50: q(0.5), p99: q(0.99), max: round(sendTimes.at(-1) ?? NaN, 2) },
      ...(withRaw ? { raw: result[raw]! } : {}),
      clean: result[clean]!,
      worker: workerStats,
      worker_rss_mb_at_start: round(workerRss0, 1),
      ...(brokerStats ? { broker: brokerStats } : {}),
      bench_producer_cpu_pct: round((100 * (selfCpu.user + selfCpu.system)) / 1e3 / (endWall - selfWall0), 1),
      latency_consumer: consumerStats,
      restarts: restartLines(worker).length,
      restart_reasons: restartLines(worker).map((l) => String(l.reason)),
      send_errors: sendErrors(worker).slice(0, 3),
      ...machine,
    };
    log(
      `latency: raw -> clean p50 ${phase.clean.p50} / p95 ${phase.clean.p95} / p99 ${phase.clean.p99} / max ${phase.clean.max} ms ` +
        `(missing ${phase.clean.missing})${phase.raw ? `; raw baseline p50 ${phase.raw.p50} / p99 ${phase.raw.p99} ms` : ""}; ` +
        `worker CPU ${workerStats.cpu_pct} %, RSS max ${workerStats.rss_mb_max} MB; bench producer CPU ${phase.bench_producer_cpu_pct} %, latency consumer CPU ${consumerStats.cpu_pct} %; achieved ${phase.achieved_rate} msgs/s; worker restarts ${phase.restarts}${phase.restarts ? ` (${phase.restart_reasons[0]}; failed send ${JSON.stringify(phase.send_errors[0] ?? null)})` : ""}; load ${machine.loadavg_1m}, machine busy ${machine.machine_busy_pct} %`,
    );
    return phase;
  } finally {
    if (!ownCore) pinSelf(otherCores());
    await producer.close().catch(() => undefined);
    await stopChild(consumer, 5000);
    await stopChild(worker);
    saveWorkerLog(worker, `latency-${variant}`);
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

async function createBenchTopics(prefix: string, created: string[]): Promise<void> {
  for (const spec of TOPIC_CATALOGUE) {
    await admin.createTopic(prefix + spec.name, spec.partitions, spec.configs);
    created.push(prefix + spec.name);
  }
}

/** Load, then the quality and aggregate workers, on a fresh topic set. */
async function variantRun(variant: Variant, readings: number, created: string[], prefixes: string[]): Promise<VariantRun> {
  const prefix = `bench${Date.now().toString(36)}${variant === "capped" ? "c" : "s"}.`;
  prefixes.push(prefix);
  const vr: VariantRun = { variant, prefix };
  log(`variant ${variant}: topics ${prefix}*`);
  await createBenchTopics(prefix, created);
  if (PHASES.has("load")) vr.load = await loadPhase(prefix, readings);
  if (PHASES.has("quality")) {
    const raw = `${prefix}telemetry.raw`;
    vr.quality = await workerPhase("quality", variant, prefix, { topic: raw, records: vr.load!.records, target: await admin.endOffsets(raw) }, QUALITY_OUTPUTS);
    if (vr.quality.output_bytes !== undefined) vr.quality.output_mb_per_input_mb = round(vr.quality.output_bytes / (vr.load!.avg_record_bytes * vr.load!.records), 2);
  }
  if (PHASES.has("aggregate") && vr.quality && !vr.quality.stalled) {
    const clean = `${prefix}telemetry.clean`;
    // Count the clean topic itself: its end offsets include transaction markers.
    const counted = (await countRecords([clean], true)).get(clean)!;
    vr.aggregate = await workerPhase("aggregate", variant, prefix, { topic: clean, records: counted.records, target: counted.next }, AGGREGATE_OUTPUTS);
    if (vr.aggregate.output_bytes !== undefined) vr.aggregate.output_mb_per_input_mb = round(vr.aggregate.output_bytes / Math.max(1, counted.bytes), 2);
  }
  return vr;
}

async function oneRun(index: number): Promise<Run> {
  const created: string[] = [];
  const prefixes: string[] = [];
  const run: Run = { variants: [], reference: [], latency: [] };
  log(`run ${index + 1}/${RUNS}`);
  try {
    for (const variant of VARIANTS) {
      // The stock worker cannot get through a backlog (see BENCHMARKS.md); it is shown failing on a smaller
      // one, once: a 1M backlog would make its first batch a ~100 MB produce request to a shared broker.
      if (variant === "stock" && index >= STOCK_RUNS) continue;
      run.variants.push(await variantRun(variant, variant === "stock" ? Math.min(STOCK_READINGS, READINGS) : READINGS, created, prefixes));
    }
    const loaded = run.variants.filter((v) => v.load).sort((a, b) => b.load!.records - a.load!.records)[0];
    if (PHASES.has("reference") && loaded) {
      const size = Math.round(loaded.load!.avg_record_bytes);
      for (const pinned of REF_UNPINNED ? [true, false] : [true]) {
        run.reference.push(await consumerPerformance(`${loaded.prefix}telemetry.raw`, loaded.load!.records, pinned));
        run.reference.push(await producerPerformance(loaded.load!.records, size, pinned));
      }
    }
    if (PHASES.has("latency")) {
      // Fresh topics: a worker that first restores a large changelog builds a backlog meanwhile, which the
      // stock worker cannot get through (the throughput phases show why).
      for (const rate of RATES) {
        for (const variant of LATENCY_VARIANTS) {
          const prefix = `bench${Date.now().toString(36)}l${variant[0]}.`;
          prefixes.push(prefix);
          await createBenchTopics(prefix, created);
          run.latency.push(await latencyPhase(prefix, variant, rate));
        }
      }
    }
  } finally {
    if (!args["keep-topics"]) {
      log(`run ${index + 1}: deleting ${created.length} topics and the workers' consumer groups`);
      await admin.deleteTopics(created).catch((e) => log(`delete topics failed: ${(e as Error).message}`));
      const groups = [...prefixes.flatMap((p) => [`${p}${QUALITY_GROUP}`, `${p}${AGGREGATE_GROUP}`]), ...throwawayGroups.splice(0)];
      // One call per group: deleting a group that never existed fails the whole request.
      for (const group of groups) await rawAdmin.deleteGroups({ groups: [group] }).catch(() => undefined);
    }
  }
  return run;
}

// ---- Summary ----

const med = (values: (number | undefined)[]) => {
  const v = values.filter((x): x is number => typeof x === "number" && Number.isFinite(x));
  return v.length === 0 ? NaN : round(median(v), 2);
};
const all = (values: (number | string | undefined)[]) => values.map((v) => (v === undefined ? "-" : String(v))).join(" / ");
/** Latency percentiles: null (records that never arrived) sorts as +infinity. */
const medLat = (values: (number | null)[]) => {
  const v = values.map((x) => (x === null ? Infinity : x)).sort((a, b) => a - b);
  if (!v.length) return "-";
  const m = v.length % 2 ? v[v.length >> 1]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
  return Number.isFinite(m) ? String(round(m, 1)) : "never";
};
const allLat = (values: (number | null)[]) => values.map((v) => (v === null ? "never" : String(round(v, 1)))).join(" / ");
/** Per run: "load average / machine busy %". */
const loads = (xs: Load[]) => xs.map((x) => `${x.loadavg_1m} / ${x.machine_busy_pct} %`).join("; ");

function markdown(runs: Run[]): string {
  const lines: string[] = [];
  const n = runs.length;
  const flat = (p: ProcessStats) => `${p.cpu_pct} (${p.cpu_pct_max_1s})`;
  lines.push(`Medians of ${n} run${n > 1 ? "s" : ""}; [each run's value, in run order]. CPU % = 100 per core; "max" = busiest 1 s (0.5 s for workers).`, "");
  lines.push(
    "| phase | msgs/s | detail | process CPU % (max) | RSS avg / max MB | broker CPU % | per run: load 1m / machine busy |",
    "|---|---|---|---|---|---|---|",
  );
  for (const variant of VARIANTS) {
    const vrs = runs.map((r) => r.variants.find((v) => v.variant === variant)).filter((x): x is VariantRun => !!x);
    const lps = vrs.map((v) => v.load).filter((x): x is LoadPhase => !!x);
    if (lps.length) {
      lines.push(
        `| load of ${lps[0]!.records} readings (${variant} set): ReliableProducer -> telemetry.raw, ${BATCH}/batch, ${LOAD_INFLIGHT} in flight | **${med(lps.map((l) => l.msgs_per_s))}** [${all(lps.map((l) => l.msgs_per_s))}] | ` +
          `${med(lps.map((l) => l.mb_per_s))} MB/s, ${lps[0]!.avg_record_bytes} B/record | bench process ${med(lps.map((l) => l.bench_cpu_pct))} | - | ${med(lps.map((l) => l.broker?.cpu_pct))} | ` +
          `${loads(lps)} |`,
      );
    }
    for (const kind of ["quality", "aggregate"] as const) {
      const ps = vrs.map((v) => v[kind]).filter((x): x is WorkerPhase => !!x);
      if (!ps.length) continue;
      const name = `${kind} worker, ${variant}${variant === "capped" ? ` (${cappedEnv()})` : ""}, 1 process on core ${CORE}, ${ps[0]!.input_records} input records`;
      const cols = (xs: WorkerPhase[], cpu: string) =>
        `${cpu} | ${med(xs.map((p) => p.process.rss_mb_avg))} / ${med(xs.map((p) => p.process.rss_mb_max))} | ${med(xs.map((p) => p.broker?.cpu_pct))} | ` +
        `${loads(xs)} |`;
      const stalled = ps.filter((p) => p.stalled);
      if (stalled.length === ps.length) {
        const e = stalled[0]!.send_errors[0] as { messages?: number; errors?: Record<string, number> } | undefined;
        lines.push(
          `| ${name} | **0 (stalled)** | ${all(stalled.map((p) => round(100 * (p.stall?.committed_fraction ?? 0), 2)))} % committed after ${all(stalled.map((p) => p.stall?.after_s))} s; ` +
            `${all(stalled.map((p) => p.restarts))} restarts ("${Object.keys(stalled[0]!.stall?.restart_reasons ?? {}).join("; ")}")` +
            (e ? `; the failing batch: ${e.messages} output records, broker: ${Object.keys(e.errors ?? {}).join("; ")}` : "") +
            ` | ${cols(ps, flat(ps[0]!.process))}`,
        );
        continue;
      }
      const done = ps.filter((p) => !p.stalled);
      lines.push(
        `| ${name} | **${med(done.map((p) => p.msgs_per_s))}** [${all(ps.map((p) => (p.stalled ? "stalled" : p.msgs_per_s)))}] | ` +
          `10-90 %: ${med(done.map((p) => p.msgs_per_s_10_90))}; with ${med(done.map((p) => p.startup_s))} s startup: ${med(done.map((p) => p.msgs_per_s_incl_startup))}; ` +
          `${med(done.map((p) => p.output_records_per_input))} output records and ${med(done.map((p) => p.output_mb_per_input_mb))}x the bytes per input; restarts ${all(ps.map((p) => p.restarts))}; ok ${all(ps.map((p) => (p.ok ? "yes" : "NO")))} | ` +
          cols(done, `${med(done.map((p) => p.cpu_pct_processing))} (${med(done.map((p) => p.process.cpu_pct_max_1s))})`),
      );
    }
  }
  const lats = runs.flatMap((r) => r.latency);
  for (const RATE of RATES) for (const variant of LATENCY_VARIANTS) {
    const xs = lats.filter((l) => l.variant === variant && l.rate === RATE);
    if (!xs.length) continue;
    lines.push(
      `| latency run: quality worker, ${variant}, cores ${xs[0]!.cores}, ${RATE} msgs/s over ${xs[0]!.tags} tags sent every ${xs[0]!.send_interval_ms || 1} ms (achieved ${med(xs.map((l) => l.achieved_rate))}) | - | restarts ${all(xs.map((l) => l.restarts))}; ` +
        `load generator: bench producer ${med(xs.map((l) => l.bench_producer_cpu_pct))} %, latency consumer ${med(xs.map((l) => l.latency_consumer.cpu_pct))} % CPU | ${med(xs.map((l) => l.worker.cpu_pct))} (${med(xs.map((l) => l.worker.cpu_pct_max_1s))}) | ` +
        `${med(xs.map((l) => l.worker.rss_mb_avg))} / ${med(xs.map((l) => l.worker.rss_mb_max))} | ${med(xs.map((l) => l.broker?.cpu_pct))} | ${loads(xs)} |`,
    );
  }
  for (const variant of VARIANTS) {
    for (const kind of ["quality", "aggregate"] as const) {
      const p = runs.map((r) => r.variants.find((v) => v.variant === variant)?.[kind]).find((x) => x && !x.stalled);
      if (!p) continue;
      lines.push("", `${kind} (${variant}) outputs, first completed run: ` + Object.entries(p.outputs).map(([t, o]) => `${t} ${o.records} (${o.mb} MB, ${o.avg_bytes} B avg)`).join("; ") + (p.check ? `. Check: ${p.check}.` : "."));
    }
  }
  if (lats.length) {
    lines.push(
      "",
      `| latency, scheduled send -> received (read_committed), ${LAT_SECONDS} s window, ms; "never" = the record did not arrive | p50 | p95 | p99 | p99.9 | max | received of sent, per run |`,
      "|---|---|---|---|---|---|---|",
    );
    const row = (name: string, xs: LatencyTopic[]) =>
      `| ${name} | ${medLat(xs.map((x) => x.p50))} [${allLat(xs.map((x) => x.p50))}] | ${medLat(xs.map((x) => x.p95))} [${allLat(xs.map((x) => x.p95))}] | **${medLat(xs.map((x) => x.p99))}** [${allLat(xs.map((x) => x.p99))}] | ` +
      `${medLat(xs.map((x) => x.p999))} | ${medLat(xs.map((x) => x.max))} | ${xs.map((x) => `${x.count} of ${x.expected}`).join("; ")} |`;
    for (const RATE of RATES) for (const variant of LATENCY_VARIANTS) {
      const xs = lats.filter((l) => l.variant === variant && l.rate === RATE);
      if (!xs.length) continue;
      lines.push(row(`raw -> clean at ${RATE} msgs/s, quality worker ${variant} (restarts ${all(xs.map((l) => l.restarts))})`, xs.map((l) => l.clean)));
      const raws = xs.map((l) => l.raw).filter((x): x is LatencyTopic => !!x);
      if (raws.length) lines.push(row(`telemetry.raw itself during that run (Kafka produce + fetch)`, raws));
    }
    lines.push("", `Bench producer send() (acks=all) per batch: p50 ${med(lats.map((l) => l.send_ms.p50))} ms, p99 ${med(lats.map((l) => l.send_ms.p99))} ms.`);
  }
  const refs = runs.flatMap((r) => r.reference);
  if (refs.length) {
    lines.push("", "| Kafka reference (same broker; the capped set's raw topic / its record size) | msgs/s | MB/s | java CPU % | per run: load 1m / machine busy |", "|---|---|---|---|---|");
    for (const tool of ["ConsumerPerformance", "ProducerPerformance"] as const) {
      for (const pinned of [true, false]) {
        const xs = refs.filter((r) => r.tool === tool && r.pinned === pinned);
        if (!xs.length) continue;
        const rate = tool === "ConsumerPerformance" ? xs.map((x) => x.fetch_msgs_per_s) : xs.map((x) => x.msgs_per_s);
        lines.push(
          `| ${tool}${tool === "ConsumerPerformance" ? ` (${xs[0]!.records} records; fetch rate, group join excluded)` : ` (${xs[0]!.records} x ${xs[0]!.record_size} B, acks=all, idempotent)`}, ${pinned ? `pinned to core ${CORE}` : "unpinned"} | ` +
            `**${med(rate)}** [${all(rate)}] | ${med(xs.map((x) => x.mb_per_s))} | ${med(xs.map((x) => x.java.cpu_pct))} | ${loads(xs)} |`,
        );
      }
    }
    const ratio = (ours: number, theirs: number) => `${round((100 * ours) / theirs, 1)} %`;
    const refRate = (tool: RefRun["tool"], pinned: boolean) =>
      med(refs.filter((r) => r.tool === tool && r.pinned === pinned).map((x) => (tool === "ConsumerPerformance" ? x.fetch_msgs_per_s : x.msgs_per_s)));
    const workerRates = (variant: Variant, kind: "quality" | "aggregate") =>
      runs.map((r) => r.variants.find((v) => v.variant === variant)?.[kind]).filter((p): p is WorkerPhase => !!p).map((p) => (p.stalled ? 0 : p.msgs_per_s));
    const fullLoads = runs.flatMap((r) => r.variants.map((v) => v.load)).filter((l): l is LoadPhase => !!l && l.records === refs[0]!.records);
    const load = med(fullLoads.map((l) => l.msgs_per_s));
    lines.push("");
    for (const pinned of REF_UNPINNED ? [true, false] : [true]) {
      const c = refRate("ConsumerPerformance", pinned);
      const p = refRate("ProducerPerformance", pinned);
      const parts: string[] = [];
      for (const v of VARIANTS) {
        for (const kind of ["quality", "aggregate"] as const) {
          const rates = workerRates(v, kind);
          if (rates.length) parts.push(`${kind === "quality" ? "validator" : "aggregator"} (${v}) ${med(rates)} msgs/s = ${ratio(med(rates), c)}`);
        }
      }
      lines.push(
        `Ratios to the Java tools ${pinned ? `pinned to core ${CORE}` : "unpinned"}: of ConsumerPerformance's ${c} msgs/s: ${parts.join("; ")}.` +
          (Number.isFinite(load) ? ` Our load of the same records: ${load} msgs/s = ${ratio(load, p)} of ProducerPerformance's ${p}.` : ""),
        "",
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
  // Keep the bench's own work (pacing, polling, counting) off the worker's core; children inherit it.
  // Only the bulk load (phase 1) and the unpinned Java runs use every core.
  pinSelf(otherCores());
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
    config: {
      readings: READINGS, tags: TAGS, runs: RUNS, variants: VARIANTS, fetch_max_bytes: FETCH_MAX_BYTES, batch: BATCH, load_inflight: LOAD_INFLIGHT, core: CORE,
      rates: RATES, latency_seconds: LAT_SECONDS, latency_warmup: LAT_WARMUP, stall_timeout_s: STALL_MS / 1000, rules: RULES, cpu_prof: profDir ?? null,
      max_batch: MAX_BATCH, stock_readings: STOCK_READINGS, stock_runs: STOCK_RUNS, latency_variants: LATENCY_VARIANTS,
    },
    runs,
  };
  if (args.json) writeFileSync(args.json, JSON.stringify(result, (_, v) => (typeof v === "bigint" ? String(v) : v), 2) + "\n");
  console.log(markdown(runs));
  const ok = runs.every((r) => r.variants.every((v) => (v.quality?.ok ?? true) && (v.aggregate?.ok ?? true)));
  process.exit(ok ? 0 : 1);
}

/** Re-print the Markdown of a saved --json file (run with the same options as the measurement). */
async function render(file: string): Promise<void> {
  const saved = JSON.parse(await Bun.file(file).text()) as { runs: Run[] };
  for (const run of saved.runs) {
    for (const l of run.latency ?? []) {
      // Files written before percentiles counted lost records as "never": convert.
      for (const t of [l.clean, l.raw]) {
        if (!t || t.missing <= 0) continue;
        const keys = [["p50", 0.5], ["p90", 0.9], ["p95", 0.95], ["p99", 0.99], ["p999", 0.999]] as const;
        for (const [k, q] of keys) if ((1 - q) * t.expected < t.missing) t[k] = null;
        t.max = null;
      }
    }
  }
  console.log(markdown(saved.runs));
}

if (IS_MAIN && args.render) {
  await render(String(args.render));
  process.exit(0);
}
if (IS_MAIN) await main();
