import { describe, expect, test } from "bun:test";
import type { Reading } from "../../envelope/reading.ts";
import { takeTimelineChanges, type Output } from "../aggregate/windows.ts";
import { loadRules } from "../quality/rules.ts";
import { createValidatorState, validate, type ReadingOutcome } from "../quality/validator.ts";
import {
  advanceLedger,
  createLedgerState,
  recordOutcome,
  restoreLedger,
  restoreLedgerFromChanges,
  snapshotLedger,
  takeLedgerChanges,
  upgradeLedgerRecord,
  type CompletenessRecord,
  type LedgerState,
} from "./ledger.ts";

const T0 = Date.parse("2025-01-10T12:00:00.000Z");
const S = 1_000;
const MIN = 60 * S;
const iso = (ms: number) => new Date(ms).toISOString();

function outcome(device: number, kind: ReadingOutcome["outcome"] = "accepted", extra: Partial<ReadingOutcome> = {}): ReadingOutcome {
  return {
    asset_id: "pump_7",
    parameter: "flow",
    device_time: iso(device),
    gateway_time: iso(device),
    outcome: kind,
    expected_interval_ms: 1_000,
    gap: null,
    ...extra,
  };
}

const feed = (state: LedgerState, outcomes: ReadingOutcome[]) => outcomes.flatMap((o) => recordOutcome(state, o));
const ledger = (outputs: Output[]) => outputs.filter((o) => o.topic === "telemetry.completeness").map((o) => JSON.parse(o.value) as CompletenessRecord);
const minutes = (outputs: Output[]) => ledger(outputs).filter((r) => r.resolution === "1min");
const everySecond = (from: number, count: number, kind?: ReadingOutcome["outcome"]) => Array.from({ length: count }, (_, i) => outcome(from + i * S, kind));
const fresh = () => createLedgerState({ allowed_lateness_ms: 0 });

describe("completeness per window", () => {
  test("a full minute: expected 60, received 60, 100 %, keyed by window", () => {
    const outputs = feed(fresh(), [...everySecond(T0, 60), outcome(T0 + MIN)]);
    expect(outputs).toHaveLength(1);
    expect(outputs[0]?.key).toBe(`pump_7/flow/1min/${iso(T0)}`);
    expect(JSON.parse(outputs[0]?.value ?? "")).toEqual({
      asset_id: "pump_7",
      parameter: "flow",
      resolution: "1min",
      window_start: iso(T0),
      window_end: iso(T0 + MIN),
      expected: 60,
      received: 60,
      rejected: 0,
      duplicates: 0,
      late: 0,
      gaps: 0,
      pct_complete: 100,
    });
  });

  const cases: [name: string, outcomes: ReadingOutcome[], want: Partial<CompletenessRecord>][] = [
    ["half the samples", everySecond(T0, 30).map((o, i) => ({ ...o, device_time: iso(T0 + i * 2 * S) })), { expected: 60, received: 30, pct_complete: 50 }],
    ["duplicates are not received", [...everySecond(T0, 10), ...everySecond(T0, 3, "duplicate")], { received: 10, duplicates: 3 }],
    ["rejected readings were received", [...everySecond(T0, 10), ...everySecond(T0 + 10 * S, 2, "rejected")], { received: 12, rejected: 2 }],
    ["gaps that ended in the window", [outcome(T0), outcome(T0 + 5 * S, "accepted", { gap: { missing_samples: 4, actual_gap_ms: 5_000 } })], { received: 2, gaps: 1 }],
    ["no interval, no expectation", [outcome(T0, "accepted", { expected_interval_ms: null })], { expected: null, received: 1, pct_complete: null }],
    ["faster than configured caps at 100 %", Array.from({ length: 120 }, (_, i) => outcome(T0 + i * 500)), { expected: 60, received: 120, pct_complete: 100 }],
    ["two decimals", everySecond(T0, 7).map((o) => ({ ...o, expected_interval_ms: 7_000 })), { expected: 8, received: 7, pct_complete: 87.5 }],
  ];
  test.each(cases)("%s", (_name, outcomes, want) => {
    const outputs = feed(fresh(), [...outcomes, outcome(T0 + MIN, "accepted", { expected_interval_ms: outcomes[0]?.expected_interval_ms ?? null })]);
    expect(minutes(outputs)[0]).toMatchObject(want);
  });

  test("the hour expects 3600 at a 1 s interval", () => {
    const outputs = feed(fresh(), [outcome(T0), outcome(T0 + 60 * MIN)]);
    expect(ledger(outputs).find((r) => r.resolution === "1hour")).toMatchObject({ expected: 3_600, received: 1, pct_complete: 0.03 });
  });
});

describe("silent stretches", () => {
  test("minutes a tag skipped are written as empty", () => {
    const outputs = feed(fresh(), [...everySecond(T0, 60), outcome(T0 + 5 * MIN, "accepted", { gap: { missing_samples: 240, actual_gap_ms: 241_000 } }), outcome(T0 + 6 * MIN)]);
    expect(minutes(outputs).map((r) => [r.window_start, r.received, r.gaps, r.pct_complete])).toEqual([
      [iso(T0), 60, 0, 100],
      [iso(T0 + MIN), 0, 0, 0],
      [iso(T0 + 2 * MIN), 0, 0, 0],
      [iso(T0 + 3 * MIN), 0, 0, 0],
      [iso(T0 + 4 * MIN), 0, 0, 0],
      [iso(T0 + 5 * MIN), 1, 1, 1.67],
    ]);
  });

  test("a tag polled less often than once a minute gets no empty minutes, but its hours count", () => {
    const slow = (t: number) => outcome(t, "accepted", { expected_interval_ms: 5 * MIN });
    const outputs = feed(fresh(), Array.from({ length: 13 }, (_, i) => slow(T0 + i * 5 * MIN)));
    expect(minutes(outputs).map((r) => [r.expected, r.received, r.pct_complete])).toEqual(Array.from({ length: 12 }, () => [0, 1, null]));
    expect(ledger(outputs).find((r) => r.resolution === "1hour")).toMatchObject({ expected: 12, received: 12, pct_complete: 100 });
  });

  test("without an interval nothing is filled", () => {
    const outputs = feed(fresh(), [outcome(T0, "accepted", { expected_interval_ms: null }), outcome(T0 + 5 * MIN, "accepted", { expected_interval_ms: null })]);
    expect(minutes(outputs).map((r) => r.window_start)).toEqual([iso(T0)]);
  });

  test("a silent tag's last window closes as the partition moves on", () => {
    const state = createLedgerState({ allowed_lateness_ms: 0, idle_grace_ms: 10 * S });
    feed(state, everySecond(T0, 30));
    const other = Array.from({ length: 60 }, (_, i) => ({ ...outcome(T0 + 30 * S + i * S), parameter: "other" }));
    expect(minutes(feed(state, other)).filter((r) => r.parameter === "flow").map((r) => r.received)).toEqual([30]);
  });

  test("advanceLedger closes windows from an outside clock", () => {
    const state = createLedgerState({ allowed_lateness_ms: 0, idle_grace_ms: 0 });
    feed(state, [outcome(T0 + 59 * S)]);
    expect(minutes(advanceLedger(state, T0 + 60 * S)).map((r) => r.received)).toEqual([1]);
  });
});

describe("late arrivals", () => {
  test("counted as late and received; the window is re-emitted under the same key", () => {
    const state = fresh();
    const first = feed(state, [...everySecond(T0, 59), outcome(T0 + MIN)]);
    const again = feed(state, [outcome(T0 + 59 * S)]);
    expect(again[0]?.key).toBe(first[0]?.key as string);
    expect(minutes(again)[0]).toMatchObject({ received: 60, late: 1, pct_complete: 100 });
  });

  test("too late: a late_data_dropped event, but not for duplicates", () => {
    const state = fresh();
    feed(state, [outcome(T0), outcome(T0 + 3 * 60 * MIN)]);
    const dropped = feed(state, [outcome(T0 + S)]);
    expect(dropped.map((o) => [o.topic, JSON.parse(o.value).event_type, JSON.parse(o.value).resolutions])).toEqual([["events.clean", "late_data_dropped", ["1min", "1hour"]]]);
    expect(feed(state, [outcome(T0, "duplicate")])).toEqual([]);
  });
});

describe("fed by the validator", () => {
  test("validate(...).outcome drives the ledger", () => {
    const rules = loadRules({ rules: [{ parameter: "flow", expected_interval_ms: 1_000, max: 100 }] });
    const validator = createValidatorState();
    const state = fresh();
    const reading = (device: number, value: number | null, quality: Reading["quality"] = "GOOD"): Reading => ({
      asset_id: "pump_7",
      parameter: "flow",
      value,
      unit: "m3/h",
      quality,
      classification: "TELEMETRY",
      timestamps: { device_time: iso(device), gateway_time: iso(device), kafka_time: null },
      clock_skew_ms: null,
      metadata: { adapter_id: "a", adapter_version: "1", pipeline_id: "p", hostname: "h" },
    });
    const stream = [reading(T0, 1), reading(T0, 1), reading(T0 + S, 500), reading(T0 + 2 * S, null, "BAD"), reading(T0 + 10 * S, 2), reading(T0 + MIN, 3)];
    const outputs = stream.flatMap((r, i) => {
      const { outcome: o } = validate(validator, { topic: "telemetry.raw", value: JSON.stringify(r), partition: 0, offset: i }, rules, new Date(T0));
      return o ? recordOutcome(state, o) : [];
    });
    expect(minutes(outputs)[0]).toMatchObject({ expected: 60, received: 4, rejected: 2, duplicates: 1, gaps: 1, late: 0 });
  });
});

describe("snapshot and restore", () => {
  const stream = [
    ...everySecond(T0, 90),
    ...everySecond(T0 + 30 * S, 5, "duplicate"),
    outcome(T0 + 4 * MIN),
    outcome(T0 + 3 * MIN + 30 * S),
    outcome(T0 + 10 * S),
    ...everySecond(T0 + 5 * MIN, 70),
  ];
  test.each([0, 50, 96, 100, stream.length])("replay from a JSON snapshot after %i outcomes gives identical outputs", (cut) => {
    const expected = feed(fresh(), stream);
    const first = fresh();
    const before = feed(first, stream.slice(0, cut));
    const restored = restoreLedger(JSON.parse(JSON.stringify(snapshotLedger(first))), { allowed_lateness_ms: 0 });
    expect([...before, ...feed(restored, stream.slice(cut))]).toEqual(expected);
  });

  test.each([1, 9, 20])("rebuilt from a compacted changelog after %i batches gives identical outputs", (batches) => {
    const BATCH = 8;
    const expected = feed(fresh(), stream);
    const first = fresh();
    const log: { key: string; value: string }[] = [];
    const cut = batches * BATCH;
    const before = stream.slice(0, cut).flatMap((o, i) => {
      const out = recordOutcome(first, o);
      if ((i + 1) % BATCH === 0) log.push(...takeLedgerChanges(first));
      return out;
    });
    const latest = new Map<string, string>();
    for (const { key, value } of log) {
      latest.delete(key);
      latest.set(key, value);
    }
    const restored = restoreLedgerFromChanges([...latest].map(([key, value]) => ({ key, value })), { allowed_lateness_ms: 0 });
    expect([...before, ...feed(restored, stream.slice(cut))]).toEqual(expected);
  });

  test("records of the previous format (named counts) restore the same state once upgraded", () => {
    const state = fresh();
    for (const o of stream.slice(0, 40)) recordOutcome(state, o);
    const previous = takeTimelineChanges(state.timeline, 1, (w) => w);
    for (const e of previous) state.timeline.dirty.add(e.key);
    const current = takeLedgerChanges(state);
    expect(previous.map((e) => upgradeLedgerRecord(e.value))).toEqual(current.map((e) => e.value));
    const bytes = (entries: { value: string }[]) => entries.reduce((n, e) => n + e.value.length, 0);
    expect(bytes(current)).toBeLessThan(bytes(previous));
  });

  test("a record of an unknown format is refused", () => {
    expect(() => upgradeLedgerRecord(JSON.stringify({ version: 7 }))).toThrow("version");
    expect(() => restoreLedgerFromChanges([{ key: "a/b", value: JSON.stringify({ version: 1, windows: {} }) }])).toThrow("version");
  });
});
