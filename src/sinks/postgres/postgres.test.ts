import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { KAFKA_BOOTSTRAP, kafkaConnection, kafkaUp, serviceAvailable, uniqueName } from "../../../test/support/services.ts";
import { createLogger } from "../../log/logger.ts";
import { createMetricsRegistry } from "../../metrics/registry.ts";
import { startSink } from "../run-sink.ts";
import type { SinkRuntime } from "../runtime.ts";
import { createTopics, deleteTopics, produce, readDlq, readingRecords, runScaleOut, spawnSink, tcpProxy, waitFor } from "../testing.ts";

const PG_URL = process.env.TEST_DATABASE_URL ?? "postgres://gateway:gateway@127.0.0.1:5432/gateway_test";
const pgAddress = new URL(PG_URL);
const pgUp = await serviceAvailable("PostgreSQL", `${pgAddress.hostname}:${pgAddress.port || 5432}`);
const log = createLogger("test", "silent");
const connection = kafkaConnection();

/** n readings with values 0..n-1: count n, sum n(n-1)/2. */
const expectedSum = (n: number) => (n * (n - 1)) / 2;

describe.skipIf(!kafkaUp || !pgUp)("postgres sink", () => {
  const sql = postgres(PG_URL, { max: 2, onnotice: () => {} });
  const prefix = uniqueName("pgsink");
  const topics: string[] = [];
  const schemas: string[] = [];

  const schemaName = () => {
    const s = `sink_${uniqueName("t").replace(/[^a-z0-9]/g, "_")}`;
    schemas.push(s);
    return s;
  };
  const topicsFor = async (partitions: Record<string, number>) => {
    const named = Object.fromEntries(Object.entries(partitions).map(([suffix, n]) => [`${prefix}-${uniqueName("x")}.${suffix}`, n]));
    await createTopics(connection, named);
    topics.push(...Object.keys(named));
    return Object.keys(named);
  };
  const config = (id: string, inputTopics: string[], dlq: string, schema: string, overrides: Record<string, unknown> = {}) => ({
    sink_id: id,
    type: "postgres",
    kafka: { bootstrap: KAFKA_BOOTSTRAP, topics: inputTopics, group_id: `${prefix}-${id}`, session_timeout_ms: 6000, lag_interval_ms: 500 },
    batch: { max_rows: 1000, max_wait_ms: 100 },
    retry: { max_attempts: 3, backoff_ms: 50, max_backoff_ms: 400 },
    dlq: { topic: dlq },
    target: { url: PG_URL, schema, statement_timeout_ms: 5000, connect_timeout_ms: 1000 },
    ...overrides,
  });
  const stats = async (schema: string) => {
    try {
      const [row] = await sql.unsafe(`select count(*)::int as n, count(distinct (asset_id, parameter, time))::int as distinct_n, coalesce(sum(value), 0)::float8 as total from ${schema}.telemetry_timeseries`);
      return row as unknown as { n: number; distinct_n: number; total: number };
    } catch {
      return { n: 0, distinct_n: 0, total: 0 };
    }
  };

  beforeAll(() => {});
  afterAll(async () => {
    for (const s of schemas) await sql.unsafe(`drop schema if exists ${s} cascade`).catch(() => undefined);
    await sql.end();
    await deleteTopics(connection, topics);
  });

  test("readings, aggregate revisions, events and alarms land in their tables; poison records go to the DLQ alone", async () => {
    const [telemetry, minute, events, alarms, dlq] = await topicsFor({ "telemetry.clean": 2, "telemetry.1min": 1, "events.clean": 1, "alarms.clean": 1, dlq: 1 });
    const schema = schemaName();
    const reading = (value: unknown, extra: Record<string, unknown> = {}) =>
      JSON.stringify({
        asset_id: "pump_1",
        parameter: `p_${JSON.stringify(value)}`,
        value,
        unit: "bar",
        quality: "GOOD",
        classification: "TELEMETRY",
        timestamps: { device_time: "2025-01-10T12:00:00.000Z", gateway_time: "2025-01-10T12:00:00.250Z", kafka_time: null },
        clock_skew_ms: 250,
        metadata: {},
        ...extra,
      });
    const agg = (revision: number, avg: number) =>
      JSON.stringify({
        asset_id: "pump_1",
        parameter: "pressure",
        unit: "bar",
        resolution: "1min",
        window_start: "2025-01-10T12:01:00.000Z",
        window_end: "2025-01-10T12:02:00.000Z",
        revision,
        aggregates: { avg, min: 1, max: 9, stddev: 0.5, count: 60, p50: 5, p95: 8, p99: 9 },
        quality_summary: { good_samples: 58, suspect_samples: 2, uncertain_samples: 0, bad_samples: 0, pct_good: 96.67 },
      });
    await produce(connection, [
      { topic: telemetry!, key: "a", value: reading(4.5) },
      { topic: telemetry!, key: "a", value: reading(true) },
      { topic: telemetry!, key: "a", value: reading("RUNNING\ttab\\slash") },
      { topic: telemetry!, key: "a", value: reading(null, { quality: "BAD" }) },
      { topic: telemetry!, key: "bad", value: "{not json" },
      { topic: telemetry!, key: "bad", value: reading(1, { asset_id: "" }) },
      // Neither a device nor a gateway time: nothing to key the row on.
      { topic: telemetry!, key: "bad", value: reading(2, { timestamps: { device_time: null, gateway_time: null } }) },
      { topic: minute!, key: "pump_1/pressure", value: agg(0, 5) },
      { topic: minute!, key: "pump_1/pressure", value: agg(2, 7) },
      { topic: minute!, key: "pump_1/pressure", value: agg(1, 6) }, // older revision arriving late: ignored
      {
        topic: events!,
        key: "pump_1",
        value: JSON.stringify({ event_type: "gap", asset_id: "pump_1", parameter: "pressure", severity: "WARNING", time: "2025-01-10T12:00:05.000Z", message: "4 samples missing", source: "quality_validator", missing_samples: 4 }),
      },
      {
        topic: alarms!,
        key: "ALM-1",
        value: JSON.stringify({ alarm_id: "ALM-1", asset_id: "pump_1", type: "HIGH_PRESSURE", severity: "HIGH", state: "ACTIVE", raised_at: "2025-01-10T12:00:03.000Z", value: 9.5, threshold: 9, unit: "bar" }),
      },
      {
        topic: alarms!,
        key: "ALM-1",
        value: JSON.stringify({ alarm_id: "ALM-1", asset_id: "pump_1", type: "HIGH_PRESSURE", severity: "HIGH", state: "CLEARED", raised_at: "2025-01-10T12:00:03.000Z", cleared_at: "2025-01-10T12:00:09.000Z" }),
      },
    ]);
    const metrics = createMetricsRegistry();
    const runtime = await startSink(config("shapes", [telemetry!, minute!, events!, alarms!], dlq!, schema), { log, metrics });
    try {
      await waitFor(async () => runtime.status().rows_written + runtime.status().dlq_records >= 13, 20_000, "all 13 records handled");
      const rows = (await sql.unsafe(`select parameter, value, value_text, quality, clock_skew_ms, extract(epoch from gateway_time - time)::float8 as lag from ${schema}.telemetry_timeseries`)).sort((x, y) =>
        x.parameter < y.parameter ? -1 : 1,
      );
      expect(rows.map((r) => [r.parameter, r.value, r.value_text, r.quality])).toEqual([
        ['p_"RUNNING\\ttab\\\\slash"', null, "RUNNING\ttab\\slash", "GOOD"],
        ["p_4.5", 4.5, null, "GOOD"],
        ["p_null", null, null, "BAD"],
        ["p_true", null, "true", "GOOD"],
      ]);
      expect(rows[1]!.clock_skew_ms).toBe(250);
      expect(rows[1]!.lag).toBeCloseTo(0.25);
      const [aggregate] = await sql.unsafe(`select revision, avg, count, pct_good, resolution from ${schema}.telemetry_aggregates`);
      expect(aggregate).toMatchObject({ revision: 2, avg: 7, count: "60", pct_good: 96.67, resolution: "1min" });
      const [event] = await sql.unsafe(`select event_type, severity, source, payload->>'missing_samples' as missing from ${schema}.events`);
      expect(event).toMatchObject({ event_type: "gap", severity: "WARNING", source: "quality_validator", missing: "4" });
      const transitions = await sql.unsafe(`select state, time from ${schema}.alarms order by time`);
      expect(transitions.map((t) => [t.state, (t.time as Date).toISOString()])).toEqual([
        ["ACTIVE", "2025-01-10T12:00:03.000Z"],
        ["CLEARED", "2025-01-10T12:00:09.000Z"],
      ]);
      const dead = await readDlq(connection, dlq!, 3);
      expect(dead.map((d) => d.reason).sort()).toEqual(["malformed_json", "unmappable", "unmappable"]);
      const notJson = dead.find((d) => d.reason === "malformed_json")!;
      expect(Buffer.from(String(notJson.raw_base64), "base64").toString()).toBe("{not json");
      expect(notJson).toMatchObject({ sink_id: "shapes", sink_type: "postgres", source_topic: telemetry });
      expect(dead.map((d) => d.error).join("\n")).toContain("asset_id: expected a non-empty string");
      const text = await metrics.metrics();
      expect(text).toContain(`sink_rows_written_total{sink="shapes",topic="${telemetry}"} 4`);
      expect(text).toMatch(/sink_dlq_records_total\{sink="shapes",reason="unmappable"\} 2/);
      await waitFor(async () => /sink_consumer_lag\{sink="shapes",topic="[^"]+",partition="\d"\} 0/.test(await metrics.metrics()), 5000, "lag gauge");
    } finally {
      await runtime.stop();
    }
  }, 40_000);

  test("kill -9 mid-batch, and a crash between the write and its commit: the restarted sink ends with exactly the input", async () => {
    const N = 30_000;
    const FIRST = 6000;
    const [input, dlq] = await topicsFor({ "telemetry.clean": 3, dlq: 1 });
    const schema = schemaName();
    await produce(connection, readingRecords(input!, 0, FIRST));
    const base = config("crash", [input!], dlq!, schema, { batch: { max_rows: 500, max_wait_ms: 50 } });
    // Static membership: each restart takes the partitions back at once instead of waiting out the dead session.
    const cfg = { ...base, kafka: { ...base.kafka, instance_id: "crash-1" } };

    // 1. Dies by itself right after its 4th durable write, before committing it.
    const first = spawnSink(cfg, { SINK_FAULT: "crash_after_write:4" });
    await first.waitForLog(/crashing after a durable write/);
    expect(await first.proc.exited).not.toBe(0);
    const afterCrash = (await stats(schema)).n;
    expect(afterCrash).toBeGreaterThanOrEqual(2000);

    // 2. Killed from outside while batches are flowing and the rest of the readings still arrives
    // (paced, so the sink cannot be through before the kill, however fast it is).
    const second = spawnSink(cfg);
    const producing = (async () => {
      for (let i = FIRST; i < N; i += 1000) {
        await produce(connection, readingRecords(input!, i, i + 1000));
        await Bun.sleep(100);
      }
    })();
    await waitFor(async () => (await stats(schema)).n > afterCrash + 3000, 30_000, "second run progressing");
    await second.kill9();
    const afterKill = await stats(schema);
    expect(afterKill.n).toBeLessThan(N);
    await producing;

    // 3. Runs to the end: every reading once, none missing.
    const third = spawnSink(cfg);
    try {
      await waitFor(async () => (await stats(schema)).n >= N, 40_000, "all rows written");
      await Bun.sleep(500);
      const final = await stats(schema);
      expect(final).toEqual({ n: N, distinct_n: N, total: expectedSum(N) });
      // The batch written but not committed before the crash came again, conflicted, and went through the staging path.
      expect(second.lines.some((l) => l.includes("COPY conflicted"))).toBe(true);
    } finally {
      expect(await third.term()).toBe(0);
    }
  }, 90_000);

  test("target down: consumption pauses with bounded memory, nothing goes to the DLQ, and all rows land once it is back", async () => {
    const [input, dlq] = await topicsFor({ "telemetry.clean": 2, dlq: 1 });
    const schema = schemaName();
    const proxy = tcpProxy(pgAddress.hostname, Number(pgAddress.port || 5432));
    const url = new URL(PG_URL);
    url.port = String(proxy.port);
    const metrics = createMetricsRegistry();
    await produce(connection, readingRecords(input!, 0, 4000));
    const runtime: SinkRuntime = await startSink(
      config("outage", [input!], dlq!, schema, { batch: { max_rows: 500, max_wait_ms: 50 }, target: { url: url.toString(), schema, statement_timeout_ms: 2000, connect_timeout_ms: 1000 } }),
      { log, metrics },
    );
    try {
      await waitFor(async () => (await stats(schema)).n === 4000, 20_000, "first rows");
      proxy.down();
      await produce(connection, readingRecords(input!, 4000, 10_000));
      await waitFor(() => runtime.status().state === "target_down", 15_000, "target seen down");
      await Bun.sleep(1500);
      const status = runtime.status();
      expect(status.pending).toBeLessThanOrEqual(500);
      expect(await metrics.metrics()).toMatch(/sink_paused\{sink="outage"\} 1/);
      expect(await metrics.metrics()).toMatch(/sink_target_up\{sink="outage"\} 0/);
      proxy.up();
      await waitFor(async () => (await stats(schema)).n === 10_000, 30_000, "rows after the outage");
      expect(await stats(schema)).toEqual({ n: 10_000, distinct_n: 10_000, total: expectedSum(10_000) });
      expect(runtime.status().dlq_records).toBe(0);
      expect(runtime.status().state).toBe("running");
    } finally {
      await runtime.stop();
      proxy.stop();
    }
  }, 60_000);

  test("scale-out: two instances share the partitions; one stops mid-stream and the other takes over without loss or duplicates", async () => {
    const N = 30_000;
    const [input, dlq] = await topicsFor({ "telemetry.clean": 6, dlq: 1 });
    const schema = schemaName();
    const { a, b } = await runScaleOut({
      connection,
      input: input!,
      n: N,
      config: (id) => {
        const base = config(id, [input!], dlq!, schema, { batch: { max_rows: 200, max_wait_ms: 50 } });
        return { ...base, kafka: { ...base.kafka, group_id: `${prefix}-shared` } };
      },
      delivered: async () => (await stats(schema)).n,
      log,
    });
    expect(await stats(schema)).toEqual({ n: N, distinct_n: N, total: expectedSum(N) });
    expect(a.state).toBe("stopped");
    expect(a.rows_written).toBeLessThan(N);
    expect(a.rows_written + b.rows_written).toBeGreaterThanOrEqual(N);
  }, 90_000);
});
