import { describe, expect, test } from "bun:test";
import type { ConsumedRecord } from "../kafka/processor.ts";
import { InMemoryAlarmSource } from "./alarms.ts";
import { describeDlqRecord } from "./dlq-browser.ts";
import { routeRecord } from "./index.ts";
import { RateCounter } from "./rate.ts";
import { formatSse } from "./sse.ts";
import { TagCache } from "./tag-cache.ts";

const record = (topic: string, value: unknown, extra: Partial<ConsumedRecord> = {}): ConsumedRecord => ({
  topic,
  partition: 0,
  offset: 0n,
  key: undefined,
  value: typeof value === "string" ? value : JSON.stringify(value),
  headers: new Map(),
  timestamp: 1_764_200_000_000n,
  ...extra,
});

const reading = (parameter: string, value: unknown, quality = "GOOD") => ({
  asset_id: "well_12",
  parameter,
  value,
  unit: "psi",
  quality,
  classification: "TELEMETRY",
  timestamps: { device_time: "2025-11-27T03:20:15.123Z", gateway_time: "2025-11-27T03:20:15.125Z", kafka_time: null },
  metadata: { pipeline_id: "p1", adapter_id: "a", adapter_version: "1", hostname: "h" },
});

describe("TagCache", () => {
  test("latest value per tag; the validated reading wins over the raw one", () => {
    const cache = new TagCache(100, () => 1000);
    cache.ingest(record("telemetry.raw", reading("pressure", 1)), "raw");
    cache.ingest(record("telemetry.raw", reading("pressure", 2)), "raw");
    expect(cache.list().tags.map((t) => [t.key, t.value, t.stage])).toEqual([["well_12/pressure", 2, "raw"]]);
    cache.ingest(record("telemetry.clean", reading("pressure", 2, "SUSPECT")), "clean");
    cache.ingest(record("telemetry.raw", reading("pressure", 3)), "raw");
    const [tag] = cache.list().tags;
    expect([tag!.value, tag!.quality, tag!.stage, tag!.pipeline_id, tag!.kafka_time]).toEqual([2, "SUSPECT", "clean", "p1", new Date(1_764_200_000_000).toISOString()]);
  });

  test("bounded: the least recently updated tag goes first", () => {
    const cache = new TagCache(2);
    for (const p of ["a", "b", "a", "c"]) cache.ingest(record("telemetry.raw", reading(p, 0)), "raw");
    expect(cache.list().tags.map((t) => t.parameter)).toEqual(["a", "c"]);
  });

  test("filter words match key, unit and quality; junk is counted, not stored", () => {
    const cache = new TagCache();
    cache.ingest(record("telemetry.raw", reading("pressure", 1)), "raw");
    cache.ingest(record("telemetry.raw", reading("flow", 1, "BAD")), "raw");
    expect(cache.ingest(record("telemetry.raw", "{not json"), "raw")).toBe(false);
    expect(cache.ingest(record("telemetry.raw", { value: 1 }), "raw")).toBe(false);
    expect(cache.ignored).toBe(2);
    expect(cache.list("WELL bad").tags.map((t) => t.parameter)).toEqual(["flow"]);
    expect(cache.list("", 1)).toMatchObject({ matched: 2, tags: [{ parameter: "flow" }] });
  });
});

describe("RateCounter", () => {
  test("per-second rates of completed 5 s buckets over the window; nothing before counting started", () => {
    let now = 2000;
    const rates = new RateCounter(5000, 4, () => now);
    rates.add(10); // the first, partial bucket
    now = 5000;
    rates.add(25);
    now = 10_000;
    expect(rates.series().rates).toEqual([null, null, null, 5]);
    now = 40_000;
    expect(rates.series()).toEqual({ bucketMs: 5000, rates: [0, 0, 0, 0], current: 0 });
  });
});

describe("routing tailed records", () => {
  test("raw readings count towards the rate (clean ones are the same readings again); alarms go to the alarm list", async () => {
    let now = 0;
    const tags = new TagCache();
    const rates = new RateCounter(5000, 2, () => now);
    now = 5000;
    const alarms = new InMemoryAlarmSource();
    routeRecord(record("telemetry.raw", reading("p", 1)), tags, rates, alarms);
    routeRecord(record("telemetry.clean", reading("p", 1)), tags, rates, alarms);
    routeRecord(record("alarms.clean", { alarm_id: "A1", state: "active", severity: "high" }), tags, rates, alarms);
    now = 10_000;
    expect(tags.size).toBe(1);
    expect(rates.series().current).toBe(0.2);
    expect(await alarms.list({})).toHaveLength(1);
  });
});

describe("InMemoryAlarmSource", () => {
  test("shows what arrives, acknowledges and suppresses, and never invents alarms", async () => {
    const alarms = new InMemoryAlarmSource(() => Date.parse("2025-11-27T04:00:00Z"));
    expect(await alarms.list({})).toEqual([]);
    alarms.ingest(record("alarms.clean", { alarm_id: "hp-1", asset_id: "well_12", parameter: "pressure", severity: "high", state: "active", message: "pressure high" }));
    alarms.ingest(record("alarms.clean", { alarm_id: "hp-0", state: "cleared" }));
    expect((await alarms.list({})).map((a) => a.id)).toEqual(["hp-1"]);
    expect((await alarms.list({ state: "all" })).map((a) => a.id).sort()).toEqual(["hp-0", "hp-1"]);
    expect(await alarms.ack("hp-1", "olga")).toMatchObject({ acked_by: "olga", acked_at: "2025-11-27T04:00:00.000Z" });
    expect(await alarms.suppress("hp-1", "olga", new Date("2025-11-27T05:00:00Z"))).toMatchObject({ suppressed_until: "2025-11-27T05:00:00.000Z" });
    // A later transition keeps the operator's acknowledgement.
    alarms.ingest(record("alarms.clean", { alarm_id: "hp-1", state: "active", message: "pressure high high" }));
    expect((await alarms.list({ q: "high high" }))[0]).toMatchObject({ acked_by: "olga", message: "pressure high high" });
    await expect(alarms.ack("nope", "olga")).rejects.toThrow("alarm nope not found");
  });
});

describe("DLQ records", () => {
  test("reason, message and the original bytes decoded", () => {
    const original = JSON.stringify({ asset_id: "x", value: "NaN" });
    const entry = describeDlqRecord(
      record("dlq.invalid_telemetry", {
        reason: "schema_invalid",
        validation_failure_reason: "value: expected number",
        raw_base64: Buffer.from(original).toString("base64"),
        source_topic: "telemetry.raw",
      }, { key: "x/p", offset: 42n }),
    );
    expect(entry).toMatchObject({ reason: "schema_invalid", message: "value: expected number", key: "x/p", offset: "42", raw: JSON.stringify(JSON.parse(original), null, 2) });
  });

  test("a value that is not JSON is shown as text", () => {
    expect(describeDlqRecord(record("dlq.x", "garbage"))).toMatchObject({ payload: "garbage", reason: null, raw: null });
  });
});

describe("SSE wire format", () => {
  test("one data line per line of payload", () => {
    expect(formatSse({ event: "rows", data: "<tr>\n<td>1</td>\n</tr>" })).toBe("event: rows\ndata: <tr>\ndata: <td>1</td>\ndata: </tr>\n\n");
  });
});

describe("SSE streams", () => {
  test("ticks while read, stop on abort, and cost nothing while nobody reads", async () => {
    const { sseResponse } = await import("./sse.ts");
    let ticks = 0;
    const abort = new AbortController();
    const response = sseResponse({ signal: abort.signal, intervalMs: 10, tick: () => [{ event: "n", data: String(++ticks) }] });
    const reader = response.body!.getReader();
    const text: string[] = [];
    for (let i = 0; i < 3; i++) text.push(new TextDecoder().decode((await reader.read()).value));
    expect(text.join("")).toBe("retry: 3000\n\nevent: n\ndata: 1\n\nevent: n\ndata: 2\n\nevent: n\ndata: 3\n\n");
    await Bun.sleep(60);
    // Not reading: at most the one chunk the stream keeps ready was produced meanwhile.
    expect(ticks).toBeLessThanOrEqual(4);
    abort.abort();
    let done = false;
    for (let i = 0; i < 5 && !done; i++) done = (await reader.read()).done;
    expect(done).toBe(true);
  });
});
