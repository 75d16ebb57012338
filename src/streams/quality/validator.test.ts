import { describe, expect, test } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import type { Reading } from "../../envelope/reading.ts";
import { loadRules } from "./rules.ts";
import {
  createValidatorState,
  decodeTimes,
  encodeTimes,
  EventSchema,
  restoreState,
  restoreStateFromChanges,
  snapshotState,
  takeStateChanges,
  validate,
  type DlqRecord,
  type Output,
  type ValidatorInput,
  type ValidatorState,
} from "./validator.ts";

const NOW = new Date("2025-01-12T00:00:00.000Z");
const T0 = Date.parse("2025-01-10T12:00:00.000Z");
const iso = (ms: number) => new Date(ms).toISOString();

const RULES = loadRules({
  rules: [
    { parameter: "temperature", unit: "celsius", min: -50, max: 500, action_on_violation: "mark_bad" },
    { parameter: "level", min: 0, max: 100, action_on_violation: "mark_suspect" },
    { parameter: "flow", max_change_per_s: 10, expected_interval_ms: 1000 },
  ],
});

type ReadingPatch = Partial<Omit<Reading, "timestamps">> & { device?: number | null; gateway?: number };

function reading({ device = T0, gateway, ...rest }: ReadingPatch = {}): Reading {
  return {
    asset_id: "boiler_1",
    parameter: "temperature",
    value: 120.5,
    unit: "celsius",
    quality: "GOOD",
    classification: "TELEMETRY",
    timestamps: { device_time: device === null ? null : iso(device), gateway_time: iso(gateway ?? device ?? T0), kafka_time: null },
    clock_skew_ms: null,
    metadata: { adapter_id: "modbus-1", adapter_version: "0.1.0", pipeline_id: "plant", hostname: "gw-1" },
    ...rest,
  };
}

let offset = 0;
const input = (value: unknown, topic = "telemetry.raw", key?: string): ValidatorInput => ({
  topic,
  key,
  value: typeof value === "string" ? value : JSON.stringify(value),
  partition: 3,
  offset: BigInt(offset++),
});

const run = (state: ValidatorState, ...values: unknown[]) => values.map((v) => validate(state, input(v), RULES, NOW));
const body = (o: Output | undefined) => JSON.parse(o?.value ?? "null");
const topics = (outputs: Output[]) => outputs.map((o) => o.topic);

describe("routes of a single record", () => {
  const cases: [name: string, topic: string, value: unknown, want: { topics: string[]; check?: (outputs: Output[]) => void }][] = [
    [
      "good reading → telemetry.clean, keyed asset/parameter, skew recomputed",
      "telemetry.raw",
      reading({ gateway: T0 + 878, clock_skew_ms: 5 }),
      {
        topics: ["telemetry.clean"],
        check: ([o]) => {
          expect(o?.key).toBe("boiler_1/temperature");
          expect(body(o)).toMatchObject({ quality: "GOOD", clock_skew_ms: 878 });
          expect(body(o).validation_notes).toBeUndefined();
        },
      },
    ],
    [
      "malformed JSON → DLQ with raw bytes and source position",
      "telemetry.raw",
      "{not json",
      {
        topics: ["dlq.invalid_telemetry"],
        check: ([o]) => {
          const d: DlqRecord = body(o);
          expect(d).toMatchObject({ reason: "malformed_json", source_topic: "telemetry.raw", source_partition: 3, failed_at: NOW.toISOString() });
          expect(Buffer.from(d.raw_base64, "base64").toString()).toBe("{not json");
          expect(d.source_offset).toMatch(/^\d+$/);
          expect(o?.key).toBe("telemetry.raw/3");
        },
      },
    ],
    [
      "schema failure → DLQ naming each path",
      "telemetry.raw",
      { ...reading(), quality: "OK", asset_id: "" },
      {
        topics: ["dlq.invalid_telemetry"],
        check: ([o]) => {
          expect(body(o).reason).toBe("schema_invalid");
          expect(body(o).error_paths.map((e: { path: string }) => e.path).sort()).toEqual(["asset_id", "quality"]);
        },
      },
    ],
    [
      "unparseable timestamp → schema failure",
      "telemetry.raw",
      { ...reading(), timestamps: { device_time: "yesterday", gateway_time: iso(T0), kafka_time: null } },
      { topics: ["dlq.invalid_telemetry"], check: ([o]) => expect(body(o).error_paths[0].path).toBe("timestamps.device_time") },
    ],
    [
      "missing device_time → gateway_time used, UNCERTAIN, note",
      "telemetry.raw",
      reading({ device: null, gateway: T0 }),
      {
        topics: ["telemetry.clean"],
        check: ([o]) => {
          const r = body(o);
          expect(r).toMatchObject({ quality: "UNCERTAIN", clock_skew_ms: null, timestamps: { device_time: iso(T0) }, metadata: { time_source: "gateway" } });
          expect(r.validation_notes[0].code).toBe("device_time_missing");
        },
      },
    ],
    [
      "BAD from the adapter → DLQ, never to sinks",
      "telemetry.raw",
      reading({ quality: "BAD", value: null, metadata: { adapter_id: "m", adapter_version: "1", pipeline_id: "p", hostname: "h", error: "device offline" } }),
      { topics: ["dlq.invalid_telemetry"], check: ([o]) => expect(body(o)).toMatchObject({ reason: "adapter_bad", validation_failure_reason: "quality BAD from adapter: device offline" }) },
    ],
    [
      "range mark_bad → DLQ with the reading marked BAD",
      "telemetry.raw",
      reading({ value: 612 }),
      {
        topics: ["dlq.invalid_telemetry"],
        check: ([o]) => {
          expect(body(o)).toMatchObject({ reason: "out_of_range", reading: { quality: "BAD", value: 612 } });
          expect(body(o).validation_failure_reason).toContain("outside valid range [-50, 500]");
        },
      },
    ],
    ["range boundary is valid", "telemetry.raw", reading({ value: 500 }), { topics: ["telemetry.clean"], check: ([o]) => expect(body(o).quality).toBe("GOOD") }],
    ["range needs the unit to match", "telemetry.raw", reading({ value: 612, unit: "kelvin" }), { topics: ["telemetry.clean"] }],
    [
      "range mark_suspect → clean, SUSPECT with note",
      "telemetry.raw",
      reading({ parameter: "level", unit: "%", value: 101 }),
      { topics: ["telemetry.clean"], check: ([o]) => expect(body(o)).toMatchObject({ quality: "SUSPECT", validation_notes: [{ code: "range" }] }) },
    ],
    ["non-numeric values skip range checks", "telemetry.raw", reading({ value: "open" }), { topics: ["telemetry.clean"] }],
    [
      "adapter SUSPECT stays SUSPECT",
      "telemetry.raw",
      reading({ quality: "SUSPECT" }),
      { topics: ["telemetry.clean"], check: ([o]) => expect(body(o).quality).toBe("SUSPECT") },
    ],
    [
      "skew > 5 s → clock_skew event",
      "telemetry.raw",
      reading({ gateway: T0 + 6_000 }),
      { topics: ["events.clean", "telemetry.clean"], check: ([e]) => expect(body(e)).toMatchObject({ event_type: "clock_skew", severity: "WARNING", skew_ms: 6_000, asset_id: "boiler_1", parameter: "temperature" }) },
    ],
    [
      "device clock ahead counts too",
      "telemetry.raw",
      reading({ gateway: T0 - 6_000 }),
      { topics: ["events.clean", "telemetry.clean"], check: ([e]) => expect(body(e)).toMatchObject({ event_type: "clock_skew", skew_ms: -6_000 }) },
    ],
    [
      "skew > 10 s → ntp_warning event",
      "telemetry.raw",
      reading({ gateway: T0 + 11_000 }),
      { topics: ["events.clean", "telemetry.clean"], check: ([e]) => expect(body(e)).toMatchObject({ event_type: "ntp_warning", skew_ms: 11_000 }) },
    ],
    ["skew of exactly 5 s is fine", "telemetry.raw", reading({ gateway: T0 + 5_000 }), { topics: ["telemetry.clean"] }],
    [
      "events.raw valid → events.clean unchanged",
      "events.raw",
      { event_type: "door_open", asset_id: "cab_1", time: iso(T0), severity: "INFO" },
      { topics: ["events.clean"], check: ([o]) => expect(o?.key).toBe("cab_1") },
    ],
    ["events.raw without time → dlq.invalid_events", "events.raw", { event_type: "door_open", asset_id: "cab_1" }, { topics: ["dlq.invalid_events"] }],
    ["events.raw unknown severity → dlq.invalid_events", "events.raw", { event_type: "x", asset_id: "a", time: iso(T0), severity: "LOUD" }, { topics: ["dlq.invalid_events"] }],
    ["events.raw malformed → dlq.invalid_events", "events.raw", "[", { topics: ["dlq.invalid_events"], check: ([o]) => expect(body(o).reason).toBe("malformed_json") }],
    [
      "alarms.raw valid → alarms.clean keyed by alarm_id",
      "alarms.raw",
      { alarm_id: "uuid-1234", asset_id: "reactor", type: "overpressure", severity: "CRITICAL", state: "ACTIVE", raised_at: iso(T0), acked_at: null, value: 210.5 },
      { topics: ["alarms.clean"], check: ([o]) => expect(o?.key).toBe("uuid-1234") },
    ],
    [
      "alarms.raw invalid state → dlq.invalid_events naming the path",
      "alarms.raw",
      { alarm_id: "u", asset_id: "r", type: "t", severity: "CRITICAL", state: "OPEN" },
      { topics: ["dlq.invalid_events"], check: ([o]) => expect(body(o).error_paths[0].path).toBe("state") },
    ],
    ["alarms.raw missing alarm_id → dlq.invalid_events", "alarms.raw", { asset_id: "r", type: "t", severity: "LOW", state: "ACTIVE" }, { topics: ["dlq.invalid_events"] }],
  ];
  test.each(cases)("%s", (_name, topic, value, want) => {
    const { outputs } = validate(createValidatorState(), input(value, topic), RULES, NOW);
    expect(topics(outputs)).toEqual(want.topics);
    want.check?.(outputs);
  });

  test("an event passes through byte for byte", () => {
    const raw = '{"event_type":"x","asset_id":"a","time":"2025-01-10T12:00:00.000Z","extra":[1, 2]}';
    expect(validate(createValidatorState(), input(raw, "events.raw"), RULES, NOW).outputs[0]?.value).toBe(raw);
  });

  test("kafka_time comes from the record timestamp when the producer left it null", () => {
    const { outputs } = validate(createValidatorState(), { ...input(reading()), timestamp: BigInt(T0 + 50) }, RULES, NOW);
    expect(body(outputs[0]).timestamps.kafka_time).toBe(iso(T0 + 50));
  });

  test("an unknown input topic is a wiring bug and throws", () => {
    expect(() => validate(createValidatorState(), input(reading(), "telemetry.clean"), RULES, NOW)).toThrow("does not consume");
  });
});

describe("duplicates", () => {
  test("same asset, parameter and device_time twice → second to DLQ as a duplicate", () => {
    const state = createValidatorState();
    const [first, second] = run(state, reading(), reading({ value: 99 }));
    expect(topics(first?.outputs ?? [])).toEqual(["telemetry.clean"]);
    expect(topics(second?.outputs ?? [])).toEqual(["dlq.invalid_telemetry"]);
    expect(body(second?.outputs[0])).toMatchObject({ reason: "duplicate", validation_failure_reason: "Duplicate message", reading: { quality: "BAD" } });
    expect(second?.outcome?.outcome).toBe("duplicate");
  });

  test("a duplicate writes no second clock event", () => {
    const state = createValidatorState();
    const results = run(state, reading({ gateway: T0 + 20_000 }), reading({ gateway: T0 + 20_000 }));
    expect(results.map((r) => topics(r.outputs))).toEqual([["events.clean", "telemetry.clean"], ["dlq.invalid_telemetry"]]);
  });

  const sequences: [name: string, rules: object, devices: number[], wantLastDuplicate: boolean][] = [
    ["other parameter is not a duplicate", {}, [T0], false],
    ["out of order but new", {}, [T0 + 2_000, T0 + 1_000, T0], false],
    ["repeat inside the window", {}, [T0, T0 + 60_000, T0], true],
    ["forgotten after the dedup window", { dedup_window_ms: 10_000 }, [T0, T0 + 11_000, T0], false],
    ["forgotten past the per-tag cap", { dedup_max_per_tag: 2 }, [T0, T0 + 1, T0 + 2, T0], false],
    ["kept up to the per-tag cap", { dedup_max_per_tag: 3 }, [T0, T0 + 1, T0 + 2, T0], true],
  ];
  test.each(sequences)("%s", (name, rules, devices, wantLastDuplicate) => {
    const state = createValidatorState();
    const set = loadRules(rules);
    if (name.startsWith("other")) validate(state, input(reading({ parameter: "pressure" })), set, NOW);
    const results = devices.map((device) => validate(state, input(reading({ device })), set, NOW));
    expect(results.at(-1)?.outcome?.outcome === "duplicate").toBe(wantLastDuplicate);
  });
});

describe("rate of change", () => {
  const flow = (device: number, value: number | null, quality: Reading["quality"] = "GOOD") =>
    reading({ parameter: "flow", unit: "m3/h", device, value, quality });
  const cases: [name: string, readings: Reading[], wantQualities: string[]][] = [
    ["steady", [flow(T0, 10), flow(T0 + 1_000, 15), flow(T0 + 2_000, 24)], ["GOOD", "GOOD", "GOOD"]],
    ["jump above 10/s", [flow(T0, 10), flow(T0 + 1_000, 50)], ["GOOD", "SUSPECT"]],
    ["judged per second of device time", [flow(T0, 10), flow(T0 + 10_000, 60)], ["GOOD", "GOOD"]],
    ["SUSPECT becomes the reference", [flow(T0, 10), flow(T0 + 1_000, 50), flow(T0 + 2_000, 55)], ["GOOD", "SUSPECT", "GOOD"]],
    ["BAD never becomes the reference", [flow(T0, 10), flow(T0 + 1_000, null, "BAD"), flow(T0 + 2_000, 15)], ["GOOD", "BAD", "GOOD"]],
    ["a late reading is not judged", [flow(T0 + 1_000, 10), flow(T0, 500)], ["GOOD", "GOOD"]],
  ];
  test.each(cases)("%s", (_name, readings, wantQualities) => {
    const state = createValidatorState();
    const qualities = run(state, ...readings).map((r) => {
      const o = r.outputs.find((x) => x.topic !== "events.clean");
      return o?.topic === "telemetry.clean" ? body(o).quality : body(o).reading.quality;
    });
    expect(qualities).toEqual(wantQualities);
  });

  test("the note gives the seed's reason", () => {
    const [, second] = run(createValidatorState(), flow(T0, 10), flow(T0 + 1_000, 50));
    const note = body(second?.outputs[0]).validation_notes[0];
    expect(note.code).toBe("rate_of_change");
    expect(note.message).toStartWith("Abnormal rate of change");
  });
});

describe("gap detection", () => {
  const flow = (device: number) => reading({ parameter: "flow", unit: "m3/h", device, value: 10 });
  test("seed example: expected 1000 ms, 5000 ms elapsed → 4 missing samples", () => {
    const [, second] = run(createValidatorState(), flow(T0), flow(T0 + 5_000));
    const gap = second?.outputs.find((o) => o.topic === "events.clean");
    expect(body(gap)).toMatchObject({
      event_type: "gap",
      asset_id: "boiler_1",
      parameter: "flow",
      expected_interval_ms: 1000,
      actual_gap_ms: 5000,
      missing_samples: 4,
      from: iso(T0),
      to: iso(T0 + 5_000),
    });
    expect(gap?.key).toBe("boiler_1/flow");
    expect(second?.outcome?.gap).toEqual({ actual_gap_ms: 5000, missing_samples: 4 });
  });

  const cases: [name: string, devices: number[], wantGapEvents: number][] = [
    ["exactly twice the interval is no gap", [T0, T0 + 2_000], 0],
    ["just over twice is a gap", [T0, T0 + 2_001], 1],
    ["late readings never open a gap", [T0 + 10_000, T0], 0],
    ["one event per gap", [T0, T0 + 5_000, T0 + 6_000, T0 + 20_000], 2],
  ];
  test.each(cases)("%s", (_name, devices, want) => {
    const results = run(createValidatorState(), ...devices.map(flow));
    expect(results.flatMap((r) => r.outputs).filter((o) => body(o).event_type === "gap")).toHaveLength(want);
  });

  test("no expected interval, no gap detection", () => {
    const results = run(createValidatorState(), reading({ device: T0 }), reading({ device: T0 + 60_000 }));
    expect(results.flatMap((r) => topics(r.outputs))).toEqual(["telemetry.clean", "telemetry.clean"]);
  });

  test("a rule set's default interval applies to tags without a rule", () => {
    const set = loadRules({ expected_interval_ms: 500 });
    const state = createValidatorState();
    validate(state, input(reading({ device: T0 })), set, NOW);
    expect(validate(state, input(reading({ device: T0 + 2_000 })), set, NOW).outcome?.gap?.missing_samples).toBe(3);
  });
});

describe("clock events are rate-limited per tag", () => {
  const skewed = (at: number, skew: number, parameter = "temperature") => reading({ parameter, device: at - skew, gateway: at });
  const cases: [name: string, readings: Reading[], want: [type: string, suppressed: number][]][] = [
    ["one per minute per tag", [skewed(T0, 6_000), skewed(T0 + 1_000, 6_000), skewed(T0 + 59_000, 6_000)], [["clock_skew", 0]]],
    ["again after a minute, saying how many were held", [skewed(T0, 6_000), skewed(T0 + 1_000, 6_000), skewed(T0 + 60_000, 6_000)], [["clock_skew", 0], ["clock_skew", 1]]],
    ["escalation to ntp_warning is not held back", [skewed(T0, 6_000), skewed(T0 + 1_000, 12_000), skewed(T0 + 2_000, 6_000)], [["clock_skew", 0], ["ntp_warning", 0]]],
    ["tags are limited separately", [skewed(T0, 6_000), skewed(T0 + 1_000, 6_000, "pressure")], [["clock_skew", 0], ["clock_skew", 0]]],
  ];
  test.each(cases)("%s", (_name, readings, want) => {
    const events = run(createValidatorState(), ...readings)
      .flatMap((r) => r.outputs)
      .filter((o) => o.topic === "events.clean")
      .map((o) => [body(o).event_type, body(o).suppressed_since_last]);
    expect(events).toEqual(want);
  });
});

describe("outcomes for the completeness ledger", () => {
  test("accepted, rejected, duplicate; none for unreadable input", () => {
    const state = createValidatorState();
    const results = run(state, reading(), reading({ device: T0 + 1, value: 900 }), reading(), "nope");
    expect(results.map((r) => r.outcome?.outcome)).toEqual(["accepted", "rejected", "duplicate", undefined]);
    expect(results[0]?.outcome).toEqual({
      asset_id: "boiler_1",
      parameter: "temperature",
      device_time: iso(T0),
      gateway_time: iso(T0),
      outcome: "accepted",
      expected_interval_ms: null,
      gap: null,
    });
  });
});

describe("events the validator writes", () => {
  test("gap and clock events satisfy EventSchema", () => {
    const flow = (device: number, gateway: number) => reading({ parameter: "flow", unit: "m3/h", device, gateway, value: 1 });
    const outputs = run(createValidatorState(), flow(T0, T0), flow(T0 + 9_000, T0 + 30_000)).flatMap((r) => r.outputs);
    const events = outputs.filter((o) => o.topic === "events.clean").map(body);
    expect(events.map((e) => e.event_type).sort()).toEqual(["gap", "ntp_warning"]);
    for (const e of events) expect(Value.Check(EventSchema, e)).toBe(true);
  });
});

describe("snapshot and restore", () => {
  const flow = (device: number, value: number, skew = 0) => reading({ parameter: "flow", unit: "m3/h", device, gateway: device + skew, value });
  const stream = [
    flow(T0, 10, 7_000),
    flow(T0 + 1_000, 12),
    flow(T0 + 1_000, 12),
    flow(T0 + 6_000, 90, 7_000),
    reading({ device: T0 + 3 }),
    flow(T0 + 7_000, 91, 7_000),
    flow(T0 + 1_000, 12),
    flow(T0 + 70_000, 92, 7_000),
  ];

  test.each([0, 1, 3, 5, stream.length])("replay from a JSON snapshot after %i records gives identical outputs", (cut) => {
    const whole = createValidatorState();
    const expected = stream.map((r, i) => validate(whole, { ...input(r), offset: i }, RULES, NOW));

    const first = createValidatorState();
    const before = stream.slice(0, cut).map((r, i) => validate(first, { ...input(r), offset: i }, RULES, NOW));
    const restored = restoreState(JSON.parse(JSON.stringify(snapshotState(first))));
    const after = stream.slice(cut).map((r, i) => validate(restored, { ...input(r), offset: cut + i }, RULES, NOW));
    expect([...before, ...after]).toEqual(expected);
  });

  test.each([1, 2, 5])("rebuilt from a compacted changelog after %i batches gives identical outputs", (batches) => {
    const BATCH = 2;
    const whole = createValidatorState();
    const expected = stream.map((r, i) => validate(whole, { ...input(r), offset: i }, RULES, NOW));

    const first = createValidatorState();
    const log: { key: string; value: string }[] = [];
    const cut = batches * BATCH;
    const before = stream.slice(0, cut).map((r, i) => {
      const result = validate(first, { ...input(r), offset: i }, RULES, NOW);
      if ((i + 1) % BATCH === 0) log.push(...takeStateChanges(first));
      return result;
    });
    // Compaction keeps each key's latest record, in the order those were written.
    const latest = new Map<string, string>();
    for (const { key, value } of log) {
      latest.delete(key);
      latest.set(key, value);
    }
    const restored = restoreStateFromChanges([...latest].map(([key, value]) => ({ key, value })));
    const after = stream.slice(cut).map((r, i) => validate(restored, { ...input(r), offset: cut + i }, RULES, NOW));
    expect([...before, ...after]).toEqual(expected);
  });

  test("only changed tags are in the changelog; duplicates change nothing", () => {
    const state = createValidatorState();
    run(state, reading(), reading({ parameter: "pressure" }));
    expect(takeStateChanges(state).map((e) => e.key)).toEqual(["boiler_1/temperature", "boiler_1/pressure"]);
    run(state, reading());
    expect(takeStateChanges(state)).toEqual([]);
  });

  test("a snapshot is detached from the live state", () => {
    const state = createValidatorState();
    run(state, reading());
    const snap = snapshotState(state);
    run(state, reading({ device: T0 + 1 }));
    expect(snap.tags[0]?.[1].seen).toEqual([T0]);
  });

  test("a snapshot of another version is refused", () => {
    expect(() => restoreState({ version: 2, tags: [] } as never)).toThrow("version");
  });

  test.each([
    ["none", []],
    ["one", [T0]],
    ["a steady rate", Array.from({ length: 600 }, (_, i) => T0 + i * 1000)],
    ["jitter and a gap", [T0, T0 + 999, T0 + 2001, T0 + 3001, T0 + 4001, T0 + 9000, T0 + 9000 + 250]],
  ])("the changelog's dedup window encoding gives back the same times: %s", (_name, times) => {
    expect(decodeTimes(encodeTimes(times))).toEqual(times);
  });

  test("a steady rate is stored as three numbers, whatever the window holds", () => {
    expect(encodeTimes(Array.from({ length: 600 }, (_, i) => T0 + i * 1000))).toEqual([T0, 1000, 599]);
  });

  test("changelog records of the previous format (plain list of times) are still read", () => {
    const state = createValidatorState();
    run(state, reading(), reading({ device: T0 + 1000 }));
    const [entry] = takeStateChanges(state);
    const current = JSON.parse(entry!.value);
    const previous = { ...current, version: 1, seen: decodeTimes(current.seen) };
    expect(restoreStateFromChanges([{ key: entry!.key, value: JSON.stringify(previous) }]).tags).toEqual(restoreStateFromChanges([entry!]).tags);
    expect(restoreStateFromChanges([entry!]).tags.get(entry!.key)?.seen).toEqual([T0, T0 + 1000]);
  });

  test("a changelog record of an unknown version is refused", () => {
    expect(() => restoreStateFromChanges([{ key: "a/b", value: JSON.stringify({ version: 3, seen: [] }) }])).toThrow("version");
  });
});
