#!/usr/bin/env bun
/**
 * Sink throughput: the PostgreSQL sink beside a raw COPY of the same rows into the same database
 * (the limit), and the S3 Parquet sink against moto.
 *
 *   bun bench/sinks.ts [--rows 300000] [--runs 3] [--batch 5000] [--no-s3] [--json FILE]
 *
 * Kafka (127.0.0.1:9092) and PostgreSQL (TEST_DATABASE_URL or the test DB) must be up; moto is
 * started from .cache/venv. The readings are produced once into a fresh 6-partition topic (not
 * timed). Each PostgreSQL run gets fresh tables with the sink's DDL (unique index, BRIN on time):
 *
 * - raw COPY: the rows' COPY text (the sink's own encoder) sent in --batch-row COPYs on one
 *   connection, no conflict handling, no Kafka: what the database can ingest.
 * - sink: the whole path in this process — consume (read_committed), JSON parse and map, COPY in a
 *   transaction, commit offsets. `steady` counts from the first durable batch to the last row (the
 *   throughput compared with raw COPY); `overall` from start, with the group join and table DDL.
 * - replay: a new group over the same topic into the same tables, so every row conflicts: the
 *   idempotent staging path a crash recovery takes.
 *
 * Each window also records CPU per row — this process (over the whole run, and over the steady
 * window alone, without start-up), the PostgreSQL backends that did the work (by application_name),
 * the Kafka broker — and the whole machine's busy %, since rows/s on the shared box swing with
 * other people's load while CPU per row does not. S3: moto's server, the
 * sink with --s3-batch-row files, and Parquet encoding alone.
 */
import { parseArgs } from "node:util";
import postgres from "postgres";
import { connectionFromBootstrap } from "../src/kafka/connection.ts";
import type { ConsumedRecord } from "../src/kafka/processor.ts";
import { createLogger } from "../src/log/logger.ts";
import { createMetricsRegistry } from "../src/metrics/registry.ts";
import { telemetryRow } from "../src/sinks/rows.ts";
import { startSink } from "../src/sinks/run-sink.ts";
import { encodeParquet } from "../src/sinks/s3-parquet/parquet.ts";
import { tableDdl, telemetryLine } from "../src/sinks/postgres/tables.ts";
import { createTopics, deleteTopics, motoAvailable, produce, readingRecords, readingValue, startMoto } from "../src/sinks/testing.ts";
import { findPid, gitInfo, log, machineInfo, machineJiffies, median, processCpuSeconds, round } from "./lib.ts";

const { values: args } = parseArgs({
  options: {
    rows: { type: "string", default: "300000" },
    runs: { type: "string", default: "3" },
    batch: { type: "string", default: "5000" },
    "s3-batch": { type: "string", default: "100000" },
    "no-s3": { type: "boolean", default: false },
    bootstrap: { type: "string", default: "127.0.0.1:9092" },
    json: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (args.help) {
  console.log("usage: bun bench/sinks.ts [--rows 300000] [--runs 3] [--batch 5000] [--s3-batch 100000] [--no-s3] [--json FILE]");
  process.exit(0);
}
const N = Number(args.rows);
const RUNS = Number(args.runs);
const BATCH = Number(args.batch);
const S3_BATCH = Number(args["s3-batch"]);
const PG_URL = process.env.TEST_DATABASE_URL ?? "postgres://gateway:gateway@127.0.0.1:5432/gateway_test";
const connection = connectionFromBootstrap(args.bootstrap!, "bench-sinks");
const quiet = createLogger("bench", "warn");
const repo = new URL("..", import.meta.url).pathname;

const sql = postgres(PG_URL, { max: 1, onnotice: () => {} });
const stamp = Date.now().toString(36);
const topic = `bench-sinks-${stamp}.telemetry.clean`;
const dlq = `bench-sinks-${stamp}.dlq`;
const schemas: string[] = [];

async function freshSchema(name: string): Promise<string> {
  const schema = `bench_${name}_${stamp}_${schemas.length}`;
  schemas.push(schema);
  await sql.unsafe(`create schema ${schema}`);
  for (const statement of tableDdl("telemetry", {
    schema,
    tables: { telemetry: "telemetry_timeseries", aggregates: "telemetry_aggregates", events: "events", alarms: "alarms" },
    hypertables: false,
    chunkIntervalHours: 24,
  })) {
    await sql.unsafe(statement);
  }
  return schema;
}

async function count(schema: string): Promise<number> {
  const [row] = await sql.unsafe(`select count(*)::int as n from ${schema}.telemetry_timeseries`);
  return Number(row?.n ?? 0);
}

/** The rows as the sink would map them from Kafka, so both paths send identical COPY text. */
function mappedRows() {
  const at = BigInt(Date.now());
  return Array.from({ length: N }, (_, i) => {
    const value = JSON.stringify(readingValue(i));
    const record: ConsumedRecord = { topic, partition: 0, offset: BigInt(i), key: undefined, value, headers: new Map(), timestamp: at };
    return telemetryRow(record);
  });
}

/** CPU used during a window: this process (Bun), the Kafka broker, PostgreSQL backends, and the whole machine. */
class CpuWindow {
  readonly #bun = process.cpuUsage();
  readonly #broker = brokerPid ? processCpuSeconds(brokerPid) : 0;
  readonly #machine = machineJiffies();
  readonly #wall = performance.now();

  /** `pgSeconds`: CPU of the PostgreSQL backends that did this window's work. */
  end(rows: number, pgSeconds: number): CpuUse {
    const bun = process.cpuUsage(this.#bun);
    const machine = machineJiffies();
    const perRow = (seconds: number) => round((seconds * 1e6) / rows, 1);
    return {
      bun_us_per_row: perRow((bun.user + bun.system) / 1e6),
      postgres_us_per_row: perRow(pgSeconds),
      broker_us_per_row: brokerPid ? perRow(processCpuSeconds(brokerPid) - this.#broker) : null,
      machine_busy_pct: round((100 * (machine.busy - this.#machine.busy)) / Math.max(1, machine.total - this.#machine.total)),
      wall_s: round((performance.now() - this.#wall) / 1000, 2),
    };
  }
}

interface CpuUse {
  bun_us_per_row: number;
  postgres_us_per_row: number;
  broker_us_per_row: number | null;
  machine_busy_pct: number;
  wall_s: number;
}

const brokerPid = findPid("kafka.Kafka ");

/** CPU seconds of the backends of connections with this application_name (they live for the whole run). */
async function backendCpu(applicationName: string): Promise<number> {
  const rows = await sql<{ pid: number }[]>`select pid from pg_stat_activity where application_name = ${applicationName}`;
  return rows.reduce((sum, r) => {
    try {
      return sum + processCpuSeconds(r.pid);
    } catch {
      return sum;
    }
  }, 0);
}

async function rawCopy(rows: ReturnType<typeof mappedRows>): Promise<{ rate: number; cpu: CpuUse }> {
  const schema = await freshSchema("raw");
  const columns = "time, asset_id, parameter, value, value_text, unit, quality, gateway_time, kafka_time, clock_skew_ms";
  const [{ pid }] = (await sql`select pg_backend_pid() as pid`) as unknown as [{ pid: number }];
  const pgBefore = processCpuSeconds(pid);
  const window = new CpuWindow();
  const started = performance.now();
  for (let i = 0; i < rows.length; i += BATCH) {
    const text = rows.slice(i, i + BATCH).map(telemetryLine).join("");
    const writable = await sql.unsafe(`copy ${schema}.telemetry_timeseries (${columns}) from stdin`).writable();
    await new Promise<void>((resolve, reject) => {
      writable.on("error", reject);
      writable.end(text, () => resolve());
    });
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = window.end(N, processCpuSeconds(pid) - pgBefore);
  if ((await count(schema)) !== N) throw new Error("raw COPY lost rows");
  return { rate: N / seconds, cpu };
}

interface Rates {
  /** From the first durable batch to the last: throughput once running. */
  steady: number;
  /** From start (config, group join, table DDL) to the last row. */
  overall: number;
  cpu: CpuUse;
  /** This process's CPU per row over the steady window only: the per-row cost without start-up (imports, group join, DDL). */
  bunSteadyUsPerRow: number;
}

/** Polls the runtime until every record is handled; conflicting rows (the replay) add nothing to the table but count as handled. */
async function measure(runtime: Awaited<ReturnType<typeof startSink>>, started: number, window: CpuWindow, pgCpu: () => Promise<number>): Promise<Rates> {
  let first: { at: number; rows: number; cpu: NodeJS.CpuUsage } | undefined;
  for (;;) {
    const rows = runtime.status().rows_written;
    if (!first && rows > 0) first = { at: performance.now(), rows, cpu: process.cpuUsage() };
    if (rows >= N) break;
    await Bun.sleep(5);
  }
  const end = performance.now();
  const steadyCpu = process.cpuUsage(first!.cpu);
  const cpu = window.end(N, await pgCpu());
  await runtime.stop();
  return {
    steady: (N - first!.rows) / ((end - first!.at) / 1000),
    overall: N / ((end - started) / 1000),
    cpu,
    bunSteadyUsPerRow: round((steadyCpu.user + steadyCpu.system) / (N - first!.rows), 1),
  };
}

async function sinkRun(schema: string, group: string): Promise<Rates> {
  const started = performance.now();
  const window = new CpuWindow();
  const runtime = await startSink(
    {
      sink_id: group,
      type: "postgres",
      kafka: { bootstrap: args.bootstrap, topics: [topic], group_id: group },
      batch: { max_rows: BATCH, max_wait_ms: 200 },
      dlq: { topic: dlq },
      target: { url: PG_URL, schema, create_tables: true },
    },
    { log: quiet, metrics: createMetricsRegistry() },
  );
  return measure(runtime, started, window, () => backendCpu(`gateway-sink-${group}`));
}

async function s3Bench(rows: ReturnType<typeof mappedRows>) {
  if (args["no-s3"] || !(await motoAvailable())) {
    log("S3: skipped (--no-s3 or moto not installed)");
    return undefined;
  }
  const bucket = "bench-sinks";
  const moto = await startMoto(bucket);
  try {
    // Encoding alone, the same rows in S3_BATCH-row files.
    const items = rows.map((row, i) => ({ record: { topic, partition: 0, offset: BigInt(i), key: undefined, value: "", headers: new Map(), timestamp: BigInt(row.kafka_time) }, row: { kind: "telemetry" as const, row } }));
    let bytes = 0;
    const encodeStarted = performance.now();
    for (let i = 0; i < items.length; i += S3_BATCH) bytes += encodeParquet("telemetry", items.slice(i, i + S3_BATCH), { codec: "SNAPPY", rowGroupRows: 100_000 }).byteLength;
    const encodeRowsPerSecond = N / ((performance.now() - encodeStarted) / 1000);
    const results: Rates[] = [];
    for (let run = 0; run < RUNS; run++) {
      const started = performance.now();
      const window = new CpuWindow();
      const runtime = await startSink(
        {
          sink_id: `bench-s3-${run}`,
          type: "s3-parquet",
          kafka: { bootstrap: args.bootstrap, topics: [topic], group_id: `bench-s3-${stamp}-${run}` },
          batch: { max_rows: S3_BATCH, max_wait_ms: 1000 },
          dlq: { topic: dlq },
          target: { endpoint: moto.endpoint, bucket, access_key_id: "bench", secret_access_key: "bench", prefix: `run${run}/` },
        },
        { log: quiet, metrics: createMetricsRegistry() },
      );
      results.push(await measure(runtime, started, window, async () => 0));
      log(`S3 run ${run + 1}: ${round(results.at(-1)!.steady)} rows/s steady, ${round(results.at(-1)!.overall)} overall, ${results.at(-1)!.bunSteadyUsPerRow} µs CPU/row steady`);
    }
    return {
      sink_rows_per_s: round(median(results.map((r) => r.steady))),
      sink_overall_rows_per_s: round(median(results.map((r) => r.overall))),
      bun_steady_us_per_row: median(results.map((r) => r.bunSteadyUsPerRow)),
      runs: results.map((r) => ({ steady: round(r.steady), overall: round(r.overall), bun_us_per_row: r.cpu.bun_us_per_row, bun_steady_us_per_row: r.bunSteadyUsPerRow, machine_busy_pct: r.cpu.machine_busy_pct })),
      encode_only_rows_per_s: round(encodeRowsPerSecond), bytes_per_row: round(bytes / N, 1), file_rows: S3_BATCH };
  } finally {
    await moto.stop();
  }
}

function medianCpu(uses: CpuUse[]) {
  return {
    bun: median(uses.map((u) => u.bun_us_per_row)),
    postgres: median(uses.map((u) => u.postgres_us_per_row)),
    broker: brokerPid ? median(uses.map((u) => u.broker_us_per_row ?? 0)) : null,
    machine_busy_pct: median(uses.map((u) => u.machine_busy_pct)),
  };
}

async function main() {
  const machine = machineInfo();
  log(`producing ${N} readings into ${topic} (6 partitions)`);
  await createTopics(connection, { [topic]: 6, [dlq]: 1 });
  await produce(connection, readingRecords(topic, 0, N));
  const rows = mappedRows();

  const raw: { rate: number; cpu: CpuUse }[] = [];
  const sink: Rates[] = [];
  const replay: Rates[] = [];
  for (let run = 0; run < RUNS; run++) {
    raw.push(await rawCopy(rows));
    log(`PG run ${run + 1}: raw COPY ${round(raw.at(-1)!.rate)} rows/s (machine busy ${raw.at(-1)!.cpu.machine_busy_pct} %)`);
    const schema = await freshSchema("sink");
    sink.push(await sinkRun(schema, `bench-pg-${stamp}-${run}`));
    if ((await count(schema)) !== N) throw new Error("sink lost or doubled rows");
    log(`PG run ${run + 1}: sink ${round(sink.at(-1)!.steady)} rows/s steady, ${round(sink.at(-1)!.overall)} overall, ${sink.at(-1)!.bunSteadyUsPerRow} µs CPU/row steady (machine busy ${sink.at(-1)!.cpu.machine_busy_pct} %)`);
    replay.push(await sinkRun(schema, `bench-pg-replay-${stamp}-${run}`));
    if ((await count(schema)) !== N) throw new Error("replay doubled rows");
    log(`PG run ${run + 1}: replay (all conflicts) ${round(replay.at(-1)!.steady)} rows/s steady`);
  }
  const s3 = await s3Bench(rows);
  const result = {
    machine,
    git: gitInfo(repo),
    command: `bun bench/sinks.ts ${process.argv.slice(2).join(" ")}`.trim(),
    rows: N,
    batch_rows: BATCH,
    postgres: {
      raw_copy_rows_per_s: round(median(raw.map((r) => r.rate))),
      sink_rows_per_s: round(median(sink.map((r) => r.steady))),
      sink_vs_raw_copy: round(median(sink.map((r) => r.steady)) / median(raw.map((r) => r.rate)), 2),
      // Each sink run beside the raw COPY run just before it: the two saw about the same load.
      sink_vs_raw_copy_per_run: sink.map((r, i) => round(r.steady / raw[i]!.rate, 2)),
      // What one sink process could do if its own CPU were the only limit (a core to itself).
      sink_cpu_bound_rows_per_s: round(1e6 / median(sink.map((r) => r.bunSteadyUsPerRow))),
      sink_overall_rows_per_s: round(median(sink.map((r) => r.overall))),
      replay_rows_per_s: round(median(replay.map((r) => r.steady))),
      cpu_us_per_row: {
        raw: medianCpu(raw.map((r) => r.cpu)),
        sink: { ...medianCpu(sink.map((r) => r.cpu)), bun_steady: median(sink.map((r) => r.bunSteadyUsPerRow)) },
        replay: { ...medianCpu(replay.map((r) => r.cpu)), bun_steady: median(replay.map((r) => r.bunSteadyUsPerRow)) },
      },
      runs: {
        raw: raw.map((r) => ({ rate: round(r.rate), ...r.cpu })),
        sink: sink.map((r) => ({ steady: round(r.steady), overall: round(r.overall), bun_steady_us_per_row: r.bunSteadyUsPerRow, ...r.cpu })),
        replay: replay.map((r) => ({ steady: round(r.steady), bun_steady_us_per_row: r.bunSteadyUsPerRow, ...r.cpu })),
      },
    },
    s3_parquet: s3,
  };
  console.log(JSON.stringify(result, null, 2));
  if (args.json) await Bun.write(args.json, JSON.stringify(result, null, 2));
}

try {
  await main();
} finally {
  for (const schema of schemas) await sql.unsafe(`drop schema if exists ${schema} cascade`).catch(() => undefined);
  await sql.end();
  await deleteTopics(connection, [topic, dlq]);
}
