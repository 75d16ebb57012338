import { describe, expect, test } from "bun:test";
import { Kind, type TSchema } from "@sinclair/typebox";
import { ConfigError } from "../config/schema-errors.ts";
import type { ConsumedRecord } from "../kafka/processor.ts";
import { copyText, tableDdl, telemetryLine } from "./postgres/tables.ts";
import { classifyPgError } from "./postgres/sink.ts";
import { parseSinkConfig, SINKS } from "./registry.ts";
import { canonicalMs, kindForTopic, mapRecord, PoisonRecord, type TelemetryRow } from "./rows.ts";
import { toBatch } from "./runtime.ts";

const record = (value: string | undefined, topic = "telemetry.clean", offset = 0n): ConsumedRecord => ({
  topic,
  partition: 0,
  offset,
  key: "k",
  value,
  headers: new Map(),
  timestamp: BigInt(Date.UTC(2025, 0, 10, 12)),
});

describe("sink registry and config", () => {
  test("every sink: unique type, a description, and every config field described, defaulted or required", () => {
    expect(new Set(SINKS.map((s) => s.type)).size).toBe(SINKS.length);
    const undocumented: string[] = [];
    const walk = (schema: TSchema, path: string) => {
      if (schema[Kind] === "Object") {
        for (const [name, child] of Object.entries(schema.properties as Record<string, TSchema>)) {
          const described = typeof child.description === "string" || child.default !== undefined || child[Kind] === "Object" || child[Kind] === "Literal";
          if (!described && !["sink_id", "type"].includes(name)) undocumented.push(`${path}${name}`);
          walk(child, `${path}${name}.`);
        }
      }
    };
    for (const sink of SINKS) {
      expect(sink.description.length).toBeGreaterThan(20);
      walk(sink.configSchema, `${sink.type}: `);
    }
    expect(undocumented).toEqual([]);
  });

  test("defaults fill in; errors name their field paths", () => {
    const { config } = parseSinkConfig({
      sink_id: "cloud",
      type: "cloud-api",
      kafka: { topics: ["telemetry.clean"] },
      target: { url: "https://api.example.com/ingest" },
    });
    expect(config.batch).toEqual({ max_rows: 1000, max_wait_ms: 1000 });
    expect(config.retry.max_attempts).toBe(5);
    expect(config.dlq.topic).toBe("dlq.sinks");
    expect(config.kafka.start_from).toBe("earliest");

    const errors = (input: unknown) => {
      try {
        parseSinkConfig(input);
        return [];
      } catch (error) {
        return (error as ConfigError).fieldErrors.map((e) => e.path);
      }
    };
    expect(errors({ sink_id: "x", type: "nope" })).toEqual(["type"]);
    expect(
      errors({ sink_id: "x", type: "s3-parquet", kafka: { topics: ["telemetry.clean"] }, batch: { max_rows: 0 }, target: { bucket: "B", access_key_id: "a", secret_access_key: "s" } }),
    ).toEqual(expect.arrayContaining(["batch.max_rows", "target.bucket"]));
    // A topic whose row kind can't be told from its name needs topic_kinds.
    expect(errors({ sink_id: "x", type: "postgres", kafka: { topics: ["plant.readings"] }, target: { url: "postgres://h/db" } })).toEqual(["kafka.topics[0]"]);
    expect(() => parseSinkConfig({ sink_id: "x", type: "postgres", kafka: { topics: ["plant.readings"], topic_kinds: { "plant.readings": "telemetry" } }, target: { url: "postgres://h/db" } })).not.toThrow();
  });
});

describe("rows", () => {
  test("topic kinds, behind prefixes too", () => {
    expect(kindForTopic("telemetry.clean")).toBe("telemetry");
    expect(kindForTopic("site1.telemetry.raw")).toBe("telemetry");
    expect(kindForTopic("telemetry.1hour")).toBe("aggregate");
    expect(kindForTopic("events.clean")).toBe("event");
    expect(kindForTopic("alarms.raw")).toBe("alarm");
    expect(kindForTopic("telemetry.completeness")).toBeUndefined();
    expect(kindForTopic("x", { x: "event" })).toBe("event");
  });

  test("values split into value / value_text; device time falls back to gateway time", () => {
    const reading = (value: unknown, device: string | null = "2025-01-10T12:00:00.000Z") =>
      record(JSON.stringify({ asset_id: "a", parameter: "p", value, quality: "GOOD", timestamps: { device_time: device, gateway_time: "2025-01-10T12:00:01.000Z" }, clock_skew_ms: null }));
    const row = (value: unknown, device?: string | null) => mapRecord(reading(value, device), "telemetry").row as { value: unknown; value_text: unknown; time: number };
    expect(row(1.5)).toMatchObject({ value: 1.5, value_text: null });
    expect(row(false)).toMatchObject({ value: null, value_text: "false" });
    expect(row("OPEN")).toMatchObject({ value: null, value_text: "OPEN" });
    expect(row(null).time).toBe(Date.UTC(2025, 0, 10, 12));
    expect(row(1, null).time).toBe(Date.UTC(2025, 0, 10, 12, 0, 1));
    // Canonical ISO text is kept for the COPY line; anything else is formatted from the parsed time.
    const text = (device: string) => mapRecord(reading(1, device), "telemetry").row as { time_text: string | null };
    expect(text("2025-01-10T12:00:00.000Z").time_text).toBe("2025-01-10T12:00:00.000Z");
    expect(text("2025-01-10T12:00:00Z").time_text).toBeNull();
    expect(text("2025-02-30T00:00:00.000Z").time_text).toBeNull(); // JS rolls it over to March 2; PostgreSQL would refuse it
    expect(telemetryLine(mapRecord(reading(1, "2025-02-30T00:00:00.000Z"), "telemetry").row as TelemetryRow)).toStartWith("2025-03-02T00:00:00.000Z\t");
  });

  test("canonical ISO times are read without Date.parse, to the same millisecond; any other form is left to it", () => {
    for (const text of ["2025-01-10T12:00:00.000Z", "1900-01-01T00:00:00.000Z", "9999-12-28T23:59:59.999Z", "2024-02-28T07:08:09.010Z"]) expect(canonicalMs(text)).toBe(Date.parse(text));
    // Every month of every year 1900-9999 on a day the fast path takes, at a time of day that moves too.
    for (let ms = Date.UTC(1900, 0, 1); ms < Date.UTC(9999, 11, 1); ms += 29 * 86_400_000 + 3_723_456) {
      const text = new Date(ms).toISOString();
      if (new Date(ms).getUTCDate() <= 28) expect(canonicalMs(text)).toBe(ms);
    }
    for (const text of ["2025-01-10T12:00:00Z", "2025-01-10T12:00:00.000+01:00", "2025-02-29T00:00:00.000Z", "2025-01-31T00:00:00.000Z", "1899-12-31T00:00:00.000Z", "2025-13-01T00:00:00.000Z", "2025-01-10T24:00:00.000Z", "2025-01-1xT12:00:00.000Z"]) {
      expect(canonicalMs(text)).toBeNaN();
    }
  });

  test("poison: not JSON, missing identity, bad times, NUL characters", () => {
    const poison = (value: string | undefined, kind: "telemetry" | "event" = "telemetry") => {
      try {
        mapRecord(record(value), kind);
        return "mapped";
      } catch (error) {
        expect(error).toBeInstanceOf(PoisonRecord);
        return `${(error as PoisonRecord).reason}: ${(error as Error).message}`;
      }
    };
    expect(poison(undefined)).toStartWith("malformed_json");
    expect(poison("[1]")).toStartWith("malformed_json");
    expect(poison(JSON.stringify({ parameter: "p", quality: "GOOD", timestamps: { device_time: "2025-01-10T12:00:00Z" } }))).toContain("asset_id");
    expect(poison(JSON.stringify({ asset_id: "a", parameter: "p", quality: "GOOD", timestamps: { device_time: "yesterday" } }))).toContain("timestamps.device_time");
    expect(poison(JSON.stringify({ asset_id: "a\u0000", parameter: "p", quality: "GOOD", timestamps: { device_time: "2025-01-10T12:00:00Z" } }))).toContain("NUL");
    expect(poison(JSON.stringify({ event_type: "x", asset_id: "a", time: "2025-01-10T12:00:00Z", note: "\u0000" }), "event")).toContain("NUL");
  });
});

describe("postgres pieces", () => {
  test("COPY text escaping", () => {
    expect(copyText(null)).toBe("\\N");
    expect(copyText("plain")).toBe("plain");
    expect(copyText("a\tb\nc\\d\re")).toBe("a\\tb\\nc\\\\d\\re");
  });

  test("DDL: plain tables get a BRIN time index, hypertables a create_hypertable call", () => {
    const options = { schema: "public", tables: { telemetry: "t", aggregates: "a", events: "e", alarms: "al" }, chunkIntervalHours: 24 };
    const plain = tableDdl("telemetry", { ...options, hypertables: false }).join("\n");
    expect(plain).toContain('create unique index if not exists "t_key" on "public"."t" ("asset_id", "parameter", "time")');
    expect(plain).toContain("using brin");
    const hyper = tableDdl("telemetry", { ...options, hypertables: true }).join("\n");
    expect(hyper).toContain(`create_hypertable('"public"."t"'::regclass, 'time', chunk_time_interval => interval '24 hours', if_not_exists => true`);
    expect(hyper).not.toContain("brin");
  });

  test("errors: connection and schema problems wait, data errors are rejected", () => {
    expect(classifyPgError(Object.assign(new Error("refused"), { code: "ECONNREFUSED" })).kind).toBe("unavailable");
    expect(classifyPgError(Object.assign(new Error("admin shutdown"), { code: "57P01" })).kind).toBe("unavailable");
    expect(classifyPgError(Object.assign(new Error("no table"), { code: "42P01" })).kind).toBe("unavailable");
    expect(classifyPgError(Object.assign(new Error("bad ts"), { code: "22007" })).kind).toBe("rejected");
    expect(classifyPgError(Object.assign(new Error("deadlock"), { code: "40P01" })).kind).toBe("transient");
  });
});

test("batch ranges per partition", () => {
  const items = [0n, 1n, 5n].map((o) => ({ record: { ...record("{}"), offset: o }, row: null }));
  items.push({ record: { ...record("{}"), partition: 2, offset: 7n }, row: null });
  expect(toBatch(items).ranges).toEqual([
    { topic: "telemetry.clean", partition: 0, first: 0n, last: 5n, count: 3 },
    { topic: "telemetry.clean", partition: 2, first: 7n, last: 7n, count: 1 },
  ]);
});
