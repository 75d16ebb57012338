import { afterAll, describe, expect, test } from "bun:test";
import { KAFKA_BOOTSTRAP, kafkaConnection, kafkaUp, uniqueName } from "../../../test/support/services.ts";
import { createLogger } from "../../log/logger.ts";
import { createMetricsRegistry } from "../../metrics/registry.ts";
import { startSink } from "../run-sink.ts";
import { createTopics, deleteTopics, produce, readDlq, readingRecords, runScaleOut, spawnSink, waitFor } from "../testing.ts";
import { classifyStatus, idempotencyKey } from "./sink.ts";

const log = createLogger("test", "silent");
const connection = kafkaConnection();

interface Received {
  key: string;
  auth: string | null;
  contentType: string | null;
  elements: Record<string, unknown>[];
}

/**
 * A receiver that behaves like a careful cloud API. `applied` is the effect of deduplicating by
 * Idempotency-Key alone: a request whose key was seen before is acknowledged and ignored, and
 * every element of a new key is applied (counted per `_kafka` coordinates, so an element applied
 * twice shows). `unique` counts each element once by its `_kafka` coordinates over every request,
 * what a receiver dedupes on when batch boundaries differ after a crash. `delayMs` makes each
 * accepted request take that long, like a remote API, so a sink can be caught mid-stream.
 */
function receiver(delayMs = 0) {
  const requests: Received[] = [];
  const unique = new Map<string, Record<string, unknown>>();
  const keys = new Set<string>();
  const applied = new Map<string, number>();
  let mode: "ok" | "down" = "ok";
  let attemptsWhileDown = 0;
  const keysWhileDown = new Set<string>();
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      if (mode === "down") {
        attemptsWhileDown++;
        const key = request.headers.get("idempotency-key");
        if (key) keysWhileDown.add(key);
        return new Response("maintenance", { status: 503 });
      }
      if (request.method === "HEAD") return new Response(null, { status: 200 });
      if (delayMs > 0) await Bun.sleep(delayMs);
      const text = await request.text();
      const ndjson = request.headers.get("content-type") === "application/x-ndjson";
      const elements = (ndjson ? text.trim().split("\n").map((l) => JSON.parse(l)) : JSON.parse(text)) as Record<string, unknown>[];
      if (elements.some((e) => e.reject === true)) return Response.json({ error: "field reject is not allowed" }, { status: 422 });
      const key = request.headers.get("idempotency-key") ?? "";
      requests.push({ key, auth: request.headers.get("authorization"), contentType: request.headers.get("content-type"), elements });
      const replay = keys.has(key);
      keys.add(key);
      for (const e of elements) {
        const k = e._kafka as { topic: string; partition: number; offset: string };
        const coordinates = `${k.topic}:${k.partition}:${k.offset}`;
        unique.set(coordinates, e);
        if (!replay) applied.set(coordinates, (applied.get(coordinates) ?? 0) + 1);
      }
      return Response.json({ accepted: elements.length });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}/ingest`,
    requests,
    unique,
    applied,
    setMode(m: "ok" | "down") {
      mode = m;
    },
    get attemptsWhileDown() {
      return attemptsWhileDown;
    },
    keysWhileDown,
    stop: () => server.stop(true),
  };
}

const sumValues = (elements: Iterable<Record<string, unknown>>) => [...elements].reduce((s, e) => s + Number(e.value), 0);
const expectedSum = (n: number) => (n * (n - 1)) / 2;

test("status classes: 4xx rejected, 408/5xx retried, 429 and auth failures wait", () => {
  expect(classifyStatus(200, "")).toBeUndefined();
  expect(classifyStatus(400, "bad")?.kind).toBe("rejected");
  expect(classifyStatus(422, "")?.kind).toBe("rejected");
  expect(classifyStatus(408, "")?.kind).toBe("transient");
  expect(classifyStatus(503, "")?.kind).toBe("transient");
  expect(classifyStatus(429, "")?.kind).toBe("unavailable");
  expect(classifyStatus(401, "")?.kind).toBe("unavailable");
  expect(idempotencyKey("telemetry.clean", 3, 100n, 199n)).toBe("telemetry.clean:3:100-199");
});

describe.skipIf(!kafkaUp)("cloud-api (HTTP) sink", () => {
  const prefix = uniqueName("httpsink");
  const topics: string[] = [];
  const topicsFor = async (partitions: Record<string, number>) => {
    const named = Object.fromEntries(Object.entries(partitions).map(([suffix, n]) => [`${prefix}-${uniqueName("x")}.${suffix}`, n]));
    await createTopics(connection, named);
    topics.push(...Object.keys(named));
    return Object.keys(named);
  };
  const config = (id: string, input: string, dlq: string, url: string, overrides: Record<string, unknown> = {}) => ({
    sink_id: id,
    type: "cloud-api",
    kafka: { bootstrap: KAFKA_BOOTSTRAP, topics: [input], group_id: `${prefix}-${id}`, session_timeout_ms: 6000, lag_interval_ms: 500 },
    batch: { max_rows: 200, max_wait_ms: 50 },
    retry: { max_attempts: 3, backoff_ms: 50, max_backoff_ms: 300 },
    dlq: { topic: dlq },
    target: { url, timeout_ms: 2000 },
    ...overrides,
  });
  afterAll(() => deleteTopics(connection, topics));

  test("auth from a secret, NDJSON, and poison: unparsable and server-refused records go to the DLQ alone", async () => {
    const [input, dlq] = await topicsFor({ "telemetry.clean": 1, dlq: 1 });
    const server = receiver();
    process.env.SECRET_CLOUD_API_TOKEN = "t0ken";
    const records = readingRecords(input!, 0, 50);
    records.splice(10, 0, { topic: input!, key: "x", value: "not json at all" });
    records.splice(30, 0, { topic: input!, key: "x", value: JSON.stringify({ ...JSON.parse(records[29]!.value), value: 999_999, reject: true }) });
    await produce(connection, records);
    const runtime = await startSink(
      config("poison", input!, dlq!, server.url, {
        target: { url: server.url, format: "ndjson", auth: { value: "Bearer ${secret:cloud_api_token}" }, timeout_ms: 2000 },
      }),
      { log, metrics: createMetricsRegistry() },
    );
    try {
      await waitFor(() => runtime.status().rows_written + runtime.status().dlq_records >= 52, 20_000, "all records handled");
      expect(server.unique.size).toBe(50);
      expect(sumValues(server.unique.values())).toBe(expectedSum(50));
      expect(server.requests.every((r) => r.auth === "Bearer t0ken" && r.contentType === "application/x-ndjson")).toBe(true);
      const dead = await readDlq(connection, dlq!, 2);
      expect(dead.map((d) => d.reason).sort()).toEqual(["malformed_json", "rejected"]);
      expect(String(dead.find((d) => d.reason === "rejected")!.error)).toContain("HTTP 422");
      expect(dead.find((d) => d.reason === "rejected")!.source_offset).toBe("30");
    } finally {
      await runtime.stop();
      server.stop();
      delete process.env.SECRET_CLOUD_API_TOKEN;
    }
  }, 30_000);

  test("503 then 200: the sink waits with consumption paused, retries with the same Idempotency-Key, loses nothing", async () => {
    const [input, dlq] = await topicsFor({ "telemetry.clean": 2, dlq: 1 });
    const server = receiver();
    await produce(connection, readingRecords(input!, 0, 1000));
    const runtime = await startSink(config("flaky", input!, dlq!, server.url), { log, metrics: createMetricsRegistry() });
    try {
      await waitFor(() => server.unique.size === 1000, 20_000, "first records");
      server.setMode("down");
      await produce(connection, readingRecords(input!, 1000, 3000));
      await waitFor(() => runtime.status().state === "target_down", 10_000, "target seen down");
      await Bun.sleep(1000);
      expect(runtime.status().pending).toBeLessThanOrEqual(200);
      server.setMode("ok");
      await waitFor(() => server.unique.size === 3000, 20_000, "records after the outage");
      expect(server.attemptsWhileDown).toBeGreaterThan(2);
      expect(sumValues(server.unique.values())).toBe(expectedSum(3000));
      // Retries kept their batch's boundaries, so the key refused during the outage is the key later accepted.
      const accepted = server.requests.map((r) => r.key);
      expect(server.keysWhileDown.size).toBeGreaterThan(0);
      for (const key of server.keysWhileDown) expect(accepted).toContain(key);
      expect(new Set(accepted).size).toBe(accepted.length);
      expect(runtime.status().dlq_records).toBe(0);
    } finally {
      await runtime.stop();
      server.stop();
    }
  }, 40_000);

  test("kill -9 mid-batch and a crash before the commit: after restart every record is at the receiver, duplicates only as re-deliveries", async () => {
    const N = 6000;
    const [input, dlq] = await topicsFor({ "telemetry.clean": 3, dlq: 1 });
    // 30 requests of 200 at 20 ms each: slow enough to kill the second run before it is through.
    const server = receiver(20);
    await produce(connection, readingRecords(input!, 0, N));
    const base = config("crash", input!, dlq!, server.url);
    const cfg = { ...base, kafka: { ...base.kafka, instance_id: "http-crash-1" } };
    const first = spawnSink(cfg, { SINK_FAULT: "crash_after_write:3" });
    await first.waitForLog(/crashing after a durable write/);
    await first.proc.exited;
    const second = spawnSink(cfg);
    await waitFor(() => server.unique.size > 2000, 20_000, "second run progressing");
    await second.kill9();
    expect(server.unique.size).toBeLessThan(N);
    const third = spawnSink(cfg);
    try {
      await waitFor(() => server.unique.size === N, 30_000, "every record delivered");
      expect(sumValues(server.unique.values())).toBe(expectedSum(N));
      const delivered = server.requests.reduce((s, r) => s + r.elements.length, 0);
      // The batch written before the crash came again: the receiver saw it twice and kept it once.
      expect(delivered).toBeGreaterThan(N);
    } finally {
      await third.term();
      server.stop();
    }
  }, 60_000);

  test("scale-out: two instances share the partitions; one stops mid-stream; deduplicating by Idempotency-Key applies every record exactly once", async () => {
    const N = 12_000;
    const [input, dlq] = await topicsFor({ "telemetry.clean": 6, dlq: 1 });
    const server = receiver();
    try {
      const { a, b } = await runScaleOut({
        connection,
        input: input!,
        n: N,
        config: (id) => {
          const base = config(id, input!, dlq!, server.url);
          return { ...base, kafka: { ...base.kafka, group_id: `${prefix}-shared` } };
        },
        delivered: async () => server.applied.size,
        log,
      });
      expect(server.applied.size).toBe(N);
      expect([...server.applied.values()].filter((times) => times > 1)).toEqual([]);
      expect(sumValues(server.unique.values())).toBe(expectedSum(N));
      expect(a.rows_written).toBeLessThan(N);
      expect(a.rows_written + b.rows_written).toBeGreaterThanOrEqual(N);
      expect(a.dlq_records + b.dlq_records).toBe(0);
    } finally {
      server.stop();
    }
  }, 90_000);
});
