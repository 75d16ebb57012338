import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { S3Client } from "bun";
import { KAFKA_BOOTSTRAP, kafkaConnection, kafkaUp, uniqueName } from "../../../test/support/services.ts";
import { createLogger } from "../../log/logger.ts";
import { createMetricsRegistry } from "../../metrics/registry.ts";
import { startSink } from "../run-sink.ts";
import { createTopics, deleteTopics, motoAvailable, produce, readDlq, readingRecords, runScaleOut, spawnSink, startMoto, tcpProxy, waitFor, type Moto } from "../testing.ts";
import { objectKey, parseObjectKey } from "./sink.ts";

const log = createLogger("test", "silent");
const connection = kafkaConnection();
const BUCKET = "gateway-sink-test";
const CREDENTIALS = { access_key_id: "test", secret_access_key: "test" };
const motoUp = await motoAvailable();
if (!motoUp) {
  if (process.env.CI) throw new Error("moto is not installed in .cache/venv; CI must run scripts/setup.sh");
  console.warn("skipping S3 sink tests: moto not installed in .cache/venv (run scripts/setup.sh)");
}
const expectedSum = (n: number) => (n * (n - 1)) / 2;

test("object keys: topic/date/hour folders of the first record's Kafka time, offsets in the name", () => {
  const key = objectKey("plant1/", "telemetry.clean", 4, 1200n, 1699n, Date.UTC(2025, 0, 10, 7, 59, 59));
  expect(key).toBe("plant1/topic=telemetry.clean/date=2025-01-10/hour=07/part-4-1200-1699.parquet");
  expect(parseObjectKey(key)).toEqual({ partition: 4, first: 1200n, last: 1699n });
  expect(parseObjectKey("topic=x/date=2025-01-10/hour=07/other.parquet")).toBeUndefined();
});

describe.skipIf(!kafkaUp || !motoUp)("s3-parquet sink", () => {
  const prefix = uniqueName("s3sink");
  const topics: string[] = [];
  let moto: Moto;
  let client: S3Client;
  const scratch = mkdtempSync(join(tmpdir(), "s3sink-"));

  beforeAll(async () => {
    moto = await startMoto(BUCKET);
    client = new S3Client({ bucket: BUCKET, endpoint: moto.endpoint, accessKeyId: "test", secretAccessKey: "test", region: "us-east-1" });
  });
  afterAll(async () => {
    await moto?.stop();
    rmSync(scratch, { recursive: true, force: true });
    await deleteTopics(connection, topics);
  });

  const topicsFor = async (partitions: Record<string, number>) => {
    const named = Object.fromEntries(Object.entries(partitions).map(([suffix, n]) => [`${prefix}-${uniqueName("x")}.${suffix}`, n]));
    await createTopics(connection, named);
    topics.push(...Object.keys(named));
    return Object.keys(named);
  };
  const config = (id: string, input: string, dlq: string, keyPrefix: string, endpoint = moto.endpoint, overrides: Record<string, unknown> = {}) => ({
    sink_id: id,
    type: "s3-parquet",
    kafka: { bootstrap: KAFKA_BOOTSTRAP, topics: [input], group_id: `${prefix}-${id}`, session_timeout_ms: 6000, lag_interval_ms: 500 },
    batch: { max_rows: 1000, max_wait_ms: 200 },
    retry: { max_attempts: 3, backoff_ms: 50, max_backoff_ms: 300 },
    dlq: { topic: dlq },
    target: { endpoint, bucket: BUCKET, ...CREDENTIALS, prefix: keyPrefix, request_timeout_ms: 3000 },
    ...overrides,
  });

  async function keysUnder(keyPrefix: string): Promise<string[]> {
    const keys: string[] = [];
    let continuationToken: string | undefined;
    do {
      const page = await client.list({ prefix: keyPrefix, ...(continuationToken ? { continuationToken } : {}) });
      keys.push(...(page.contents ?? []).map((o) => o.key));
      continuationToken = page.isTruncated ? page.nextContinuationToken : undefined;
    } while (continuationToken);
    return keys;
  }

  /** Downloads the files and reads them with DuckDB: an independent Parquet reader. */
  async function readBack(keyPrefix: string) {
    const dir = mkdtempSync(join(scratch, "read-"));
    const keys = await keysUnder(keyPrefix);
    for (const [i, key] of keys.entries()) await Bun.write(join(dir, `${i}.parquet`), await client.file(key).arrayBuffer());
    const db = await DuckDBInstance.create(":memory:");
    const c = await db.connect();
    try {
      if (keys.length === 0) return { files: 0, rows: 0, distinct: 0, total: 0, types: {} as Record<string, string> };
      const glob = `'${join(dir, "*.parquet")}'`;
      const [row] = (
        await c.runAndReadAll(`select count(*)::int as rows, count(distinct (asset_id, parameter, device_time))::int as "distinct", sum(value)::double as total from read_parquet(${glob})`)
      ).getRowObjectsJson();
      const described = (await c.runAndReadAll(`describe select * from read_parquet(${glob})`)).getRowObjectsJson();
      const types = Object.fromEntries(described.map((d) => [String(d.column_name), String(d.column_type)]));
      return { files: keys.length, rows: Number(row!.rows), distinct: Number(row!.distinct), total: Number(row!.total), types };
    } finally {
      c.closeSync();
      db.closeSync();
    }
  }

  /** Per partition, the files' offset ranges must not overlap. */
  function overlaps(keys: string[]): string[] {
    const ranges = keys.map((k) => parseObjectKey(k)!).sort((a, b) => a.partition - b.partition || Number(a.first - b.first));
    const bad: string[] = [];
    for (let i = 1; i < ranges.length; i++) {
      const [prev, cur] = [ranges[i - 1]!, ranges[i]!];
      if (prev.partition === cur.partition && cur.first <= prev.last) bad.push(`p${cur.partition}: ${prev.first}-${prev.last} / ${cur.first}-${cur.last}`);
    }
    return bad;
  }

  test("typed Parquet files, by rows and by time; DuckDB reads back exactly the input; poison records go to the DLQ", async () => {
    const [input, dlq] = await topicsFor({ "telemetry.clean": 2, dlq: 1 });
    const keyPrefix = `${uniqueName("shapes")}/`;
    const records = readingRecords(input!, 0, 2500);
    records.push({ topic: input!, key: "bad", value: "{]" });
    await produce(connection, records);
    const runtime = await startSink(config("shapes", input!, dlq!, keyPrefix), { log, metrics: createMetricsRegistry() });
    try {
      await waitFor(() => runtime.status().rows_written === 2500 && runtime.status().dlq_records === 1, 20_000, "all records handled");
      const back = await readBack(keyPrefix);
      expect(back).toMatchObject({ rows: 2500, distinct: 2500, total: expectedSum(2500) });
      expect(back.types).toMatchObject({
        device_time: "TIMESTAMP WITH TIME ZONE",
        gateway_time: "TIMESTAMP WITH TIME ZONE",
        kafka_time: "TIMESTAMP WITH TIME ZONE",
        value: "DOUBLE",
        asset_id: "VARCHAR",
        kafka_offset: "BIGINT",
        kafka_partition: "INTEGER",
      });
      const keys = await keysUnder(keyPrefix);
      expect(keys.every((k) => new RegExp(`^${keyPrefix}topic=${input!.replace(/\./g, "\\.")}/date=\\d{4}-\\d{2}-\\d{2}/hour=\\d{2}/part-\\d-\\d+-\\d+\\.parquet$`).test(k))).toBe(true);
      expect(overlaps(keys)).toEqual([]);
      // 1000-row batches over 2 partitions, then the time trigger for the rest: at least 4 files.
      expect(keys.length).toBeGreaterThanOrEqual(4);
      const dead = await readDlq(connection, dlq!, 1);
      expect(dead[0]).toMatchObject({ reason: "malformed_json", sink_type: "s3-parquet" });
    } finally {
      await runtime.stop();
    }
  }, 40_000);

  test("crash between upload and commit, then kill -9: the restart resumes after the files in the bucket, no overlapping file, nothing missing", async () => {
    const N = 12_000;
    const [input, dlq] = await topicsFor({ "telemetry.clean": 3, dlq: 1 });
    const keyPrefix = `${uniqueName("crash")}/`;
    await produce(connection, readingRecords(input!, 0, N));
    const base = config("crash", input!, dlq!, keyPrefix, moto.endpoint, { batch: { max_rows: 500, max_wait_ms: 100 } });
    const cfg = { ...base, kafka: { ...base.kafka, instance_id: "s3-crash-1" } };
    const first = spawnSink(cfg, { SINK_FAULT: "crash_after_write:3" });
    await first.waitForLog(/crashing after a durable write/);
    await first.proc.exited;
    // Batches of another size from here on, so a re-delivered batch can't just overwrite the same file.
    const resized = { ...cfg, batch: { max_rows: 800, max_wait_ms: 100 } };
    const second = spawnSink(resized);
    // Its first batches came again from the committed offsets, but the files already there were found.
    await second.waitForLog(/resuming after offsets already in the target/);
    await waitFor(async () => (await keysUnder(keyPrefix)).length > 12, 30_000, "second run progressing");
    await second.kill9();
    const third = spawnSink(resized);
    try {
      await waitFor(async () => (await readBack(keyPrefix)).rows >= N, 40_000, "every row in the bucket");
      const back = await readBack(keyPrefix);
      expect({ rows: back.rows, distinct: back.distinct, total: back.total }).toEqual({ rows: N, distinct: N, total: expectedSum(N) });
      expect(overlaps(await keysUnder(keyPrefix))).toEqual([]);
    } finally {
      await third.term();
    }
  }, 90_000);

  test("store unreachable, then back: consumption pauses, the batch is retried with the same key, nothing lost or doubled", async () => {
    const [input, dlq] = await topicsFor({ "telemetry.clean": 2, dlq: 1 });
    const keyPrefix = `${uniqueName("outage")}/`;
    // moto keeps objects in memory, so a restart would lose what was written before: the outage is a proxy going away.
    const proxy = tcpProxy("127.0.0.1", moto.port);
    await produce(connection, readingRecords(input!, 0, 2000));
    const runtime = await startSink(config("outage", input!, dlq!, keyPrefix, `http://127.0.0.1:${proxy.port}`, { batch: { max_rows: 500, max_wait_ms: 100 } }), {
      log,
      metrics: createMetricsRegistry(),
    });
    try {
      await waitFor(() => runtime.status().rows_written === 2000, 20_000, "first rows");
      proxy.down();
      await produce(connection, readingRecords(input!, 2000, 5000));
      await waitFor(() => runtime.status().state === "target_down", 15_000, "store seen down");
      await Bun.sleep(1000);
      expect(runtime.status().pending).toBeLessThanOrEqual(500);
      proxy.up();
      await waitFor(() => runtime.status().rows_written === 5000, 30_000, "rows after the outage");
      const back = await readBack(keyPrefix);
      expect({ rows: back.rows, distinct: back.distinct, total: back.total }).toEqual({ rows: 5000, distinct: 5000, total: expectedSum(5000) });
      expect(overlaps(await keysUnder(keyPrefix))).toEqual([]);
      expect(runtime.status().dlq_records).toBe(0);
    } finally {
      await runtime.stop();
      proxy.stop();
    }
  }, 60_000);

  test("scale-out: two instances share the partitions; one stops mid-stream; the files, one object per name, hold every row once", async () => {
    const N = 12_000;
    const [input, dlq] = await topicsFor({ "telemetry.clean": 6, dlq: 1 });
    const keyPrefix = `${uniqueName("scale")}/`;
    const { a, b } = await runScaleOut({
      connection,
      input: input!,
      n: N,
      config: (id) => {
        const base = config(id, input!, dlq!, keyPrefix, moto.endpoint, { batch: { max_rows: 500, max_wait_ms: 100 } });
        return { ...base, kafka: { ...base.kafka, group_id: `${prefix}-shared` } };
      },
      delivered: async () => (await readBack(keyPrefix)).distinct,
      log,
    });
    const back = await readBack(keyPrefix);
    expect({ rows: back.rows, distinct: back.distinct, total: back.total }).toEqual({ rows: N, distinct: N, total: expectedSum(N) });
    expect(overlaps(await keysUnder(keyPrefix))).toEqual([]);
    expect(a.rows_written).toBeLessThan(N);
    expect(a.rows_written + b.rows_written).toBeGreaterThanOrEqual(N);
    expect(a.dlq_records + b.dlq_records).toBe(0);
  }, 90_000);
});
