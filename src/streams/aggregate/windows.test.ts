import { describe, expect, test } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import type { Quality } from "../../envelope/reading.ts";
import { EventSchema } from "../quality/validator.ts";
import { LOG_CHUNK } from "./sample-log.ts";
import { statsToJSON } from "./stats.ts";
import {
  advanceWatermark,
  aggregate,
  createAggregatorState,
  restoreAggregator,
  restoreAggregatorFromChanges,
  snapshotAggregator,
  takeAggregatorChanges,
  windowStart,
  type AggregateRecord,
  type AggregatorConfig,
  type AggregatorState,
  type AggregatorInput,
  type Output,
  type Resolution,
} from "./windows.ts";

const T0 = Date.parse("2025-01-10T12:00:00.000Z");
const S = 1_000;
const MIN = 60 * S;
const HOUR = 60 * MIN;
const iso = (ms: number) => new Date(ms).toISOString();

function sample(device: number, value: AggregatorInput["value"] = 1, opts: { parameter?: string; quality?: Quality; gateway?: number } = {}): AggregatorInput {
  return {
    asset_id: "pump_7",
    parameter: opts.parameter ?? "vibration",
    value,
    unit: "mm/s",
    quality: opts.quality ?? "GOOD",
    timestamps: { device_time: iso(device), gateway_time: iso(opts.gateway ?? device) },
  };
}

const only = (resolutions: Resolution[], extra: Partial<AggregatorConfig> = {}) => createAggregatorState({ resolutions, ...extra });
const feed = (state: ReturnType<typeof createAggregatorState>, inputs: AggregatorInput[]) => inputs.flatMap((r) => aggregate(state, r));
const records = (outputs: Output[]) => outputs.filter((o) => o.topic.startsWith("telemetry.")).map((o) => JSON.parse(o.value) as AggregateRecord);
const events = (outputs: Output[]) => outputs.filter((o) => o.topic === "events.clean").map((o) => JSON.parse(o.value));
const windowsOf = (outputs: Output[]) => records(outputs).map((r) => [r.resolution, r.window_start, r.aggregates.count, r.revision]);

describe("window math", () => {
  const cases: [name: string, time: number, resolution: Resolution, start: number][] = [
    ["inside a second", T0 + 999, "1s", T0],
    ["exactly at window_end starts the next", T0 + 1_000, "1s", T0 + 1_000],
    ["10s aligned to the epoch", T0 + 19_999, "10s", T0 + 10_000],
    ["1min", T0 + 61_000, "1min", T0 + MIN],
    ["1hour mid-hour", T0 + 59 * MIN, "1hour", T0],
    ["1hour at the hour", T0 + HOUR, "1hour", T0 + HOUR],
    ["epoch itself", 0, "1hour", 0],
    ["before the epoch floors down", -1, "1s", -1_000],
  ];
  test.each(cases)("%s", (_name, time, resolution, start) => {
    expect(windowStart(time, resolution)).toBe(start);
  });
});

describe("closing by event time", () => {
  test("a window closes when the tag's device time passes its end + lateness", () => {
    const state = only(["1s"]);
    expect(feed(state, [sample(T0), sample(T0 + 500), sample(T0 + 5_999)])).toEqual([]);
    expect(windowsOf(feed(state, [sample(T0 + 6_000)]))).toEqual([["1s", iso(T0), 2, 0]]);
  });

  test("the seed's aggregate format, plus resolution and revision", () => {
    const state = only(["1min"], { allowed_lateness_ms: 0 });
    const values: [number, Quality][] = [[2.91, "GOOD"], [4.15, "GOOD"], [3.2, "SUSPECT"], [3.42, "UNCERTAIN"]];
    const outputs = feed(state, [...values.map(([v, q], i) => sample(T0 + i * S, v, { quality: q })), sample(T0 + MIN)]);
    expect(outputs).toHaveLength(1);
    expect(outputs[0]?.topic).toBe("telemetry.1min");
    expect(outputs[0]?.key).toBe("pump_7/vibration");
    const [r] = records(outputs);
    expect(r).toMatchObject({
      asset_id: "pump_7",
      parameter: "vibration",
      unit: "mm/s",
      resolution: "1min",
      window_start: iso(T0),
      window_end: iso(T0 + MIN),
      revision: 0,
      aggregates: { min: 2.91, max: 4.15, count: 4 },
      quality_summary: { good_samples: 2, suspect_samples: 1, uncertain_samples: 1, bad_samples: 0, pct_good: 50 },
    });
    expect(r?.aggregates.avg).toBeCloseTo(3.42, 10);
    expect(r?.aggregates.p50).toBeCloseTo(3.31, 10);
  });

  test("written exactly as JSON.stringify writes the record, in the seed's field order", () => {
    const state = only(["1s", "1min"], { allowed_lateness_ms: 0 });
    // No unit: written as null.
    const odd = (t: number, v: number): AggregatorInput => ({ ...sample(t, v), asset_id: 'pump "7"\\ü', unit: undefined });
    const outputs = feed(state, [sample(T0, 1e21), sample(T0 + 500, -3), odd(T0 + 2_000, -0.1 / 3), sample(T0 + 1_000, 2), sample(T0 + 100, 4), sample(T0 + MIN, 0), odd(T0 + MIN, 1)]);
    expect(records(outputs).map((r) => [r.asset_id, r.resolution, r.revision])).toEqual([
      ["pump_7", "1s", 0],
      ["pump_7", "1s", 1],
      ["pump_7", "1s", 0],
      ["pump_7", "1min", 0],
      ['pump "7"\\ü', "1s", 0],
      ['pump "7"\\ü', "1min", 0],
    ]);
    for (const o of outputs) {
      const parsed = JSON.parse(o.value) as AggregateRecord;
      expect(JSON.stringify(parsed)).toBe(o.value);
      expect(Object.keys(parsed)).toEqual(["asset_id", "parameter", "unit", "resolution", "window_start", "window_end", "revision", "aggregates", "quality_summary"]);
      expect(Object.keys(parsed.aggregates)).toEqual(["avg", "min", "max", "stddev", "count", "p50", "p95", "p99"]);
      expect(Object.keys(parsed.quality_summary)).toEqual(["good_samples", "suspect_samples", "uncertain_samples", "bad_samples", "pct_good"]);
    }
  });

  test("a sample exactly at window_end belongs to the next window", () => {
    const state = only(["1s"], { allowed_lateness_ms: 0 });
    const outputs = feed(state, [sample(T0), sample(T0 + 1_000), sample(T0 + 2_000)]);
    expect(windowsOf(outputs)).toEqual([["1s", iso(T0), 1, 0], ["1s", iso(T0 + 1_000), 1, 0]]);
  });

  test("every resolution closes on its own boundary, in order", () => {
    const state = createAggregatorState({ allowed_lateness_ms: 0 });
    const outputs = feed(state, Array.from({ length: 3_601 }, (_, i) => sample(T0 + i * S, i)));
    const count = (res: Resolution) => records(outputs).filter((r) => r.resolution === res);
    expect(count("1s")).toHaveLength(3_600);
    expect(count("10s")).toHaveLength(360);
    expect(count("1min")).toHaveLength(60);
    expect(count("1hour").map((r) => [r.window_start, r.aggregates.count, r.aggregates.min, r.aggregates.max])).toEqual([[iso(T0), 3_600, 0, 3_599]]);
  });

  test("non-numeric values are not aggregated", () => {
    const state = only(["1s"], { allowed_lateness_ms: 0 });
    expect(feed(state, [sample(T0, "open"), sample(T0 + 1, true), sample(T0 + 2, null), sample(T0 + 5_000, "closed")])).toEqual([]);
  });

  test("tags have their own windows", () => {
    const state = only(["1s"], { allowed_lateness_ms: 0 });
    const outputs = feed(state, [sample(T0, 1), sample(T0, 2, { parameter: "temp" }), sample(T0 + 1_000, 1), sample(T0 + 1_000, 2, { parameter: "temp" })]);
    expect(records(outputs).map((r) => [r.parameter, r.aggregates.avg])).toEqual([["vibration", 1], ["temp", 2]]);
  });
});

describe("late data", () => {
  test("within the retention horizon: the window is re-emitted with revision + 1", () => {
    const state = only(["1s"], { allowed_lateness_ms: 0, retained_windows: 2 });
    const first = feed(state, [sample(T0, 1), sample(T0 + 1_500, 2)]);
    expect(windowsOf(first)).toEqual([["1s", iso(T0), 1, 0]]);
    const late = feed(state, [sample(T0 + 400, 3)]);
    expect(windowsOf(late)).toEqual([["1s", iso(T0), 2, 1]]);
    expect(records(late)[0]?.aggregates.avg).toBe(2);
    expect(windowsOf(feed(state, [sample(T0 + 401, 5)]))).toEqual([["1s", iso(T0), 3, 2]]);
  });

  test("late into a window that never had data: emitted at once as revision 0", () => {
    const state = only(["1s"], { allowed_lateness_ms: 0, retained_windows: 2 });
    feed(state, [sample(T0), sample(T0 + 2_500)]);
    expect(windowsOf(feed(state, [sample(T0 + 1_200)]))).toEqual([["1s", iso(T0 + 1_000), 1, 0]]);
  });

  test("past the horizon: counted in a late_data_dropped event, other resolutions still corrected", () => {
    const state = only(["1s", "1min"], { allowed_lateness_ms: 0, retained_windows: 2 });
    feed(state, [sample(T0), sample(T0 + 10_000)]);
    const outputs = feed(state, [sample(T0 + 500, 42)]);
    expect(windowsOf(outputs)).toEqual([]); // the 1min window is still open: it just takes the sample
    expect(events(outputs)).toEqual([
      expect.objectContaining({ event_type: "late_data_dropped", asset_id: "pump_7", parameter: "vibration", time: iso(T0 + 500), resolutions: ["1s"], value: 42 }),
    ]);
    expect(Value.Check(EventSchema, events(outputs)[0])).toBe(true);
    expect(records(feed(state, [sample(T0 + MIN)])).find((r) => r.resolution === "1min")?.aggregates.count).toBe(3);
  });

  test("retention follows retained_windows per resolution", () => {
    const cases: [retained: number, lateBy: number, dropped: boolean][] = [
      [2, 2_999, false],
      [2, 3_000, true],
      [5, 5_999, false],
    ];
    for (const [retained, lateBy, dropped] of cases) {
      const state = only(["1s"], { allowed_lateness_ms: 0, retained_windows: retained });
      feed(state, [sample(T0 + lateBy)]);
      expect(events(feed(state, [sample(T0)])).length > 0).toBe(dropped);
    }
  });
});

describe("offline gateway replay", () => {
  const DAY = 24 * HOUR;
  const OLD = T0 - 3 * DAY;
  /** Three days of 1-per-10s samples, replayed in order long after the fact. */
  const replay = Array.from({ length: (3 * DAY) / (10 * S) }, (_, i) => sample(OLD + i * 10 * S, i % 100, { parameter: "pressure", gateway: OLD + i * 10 * S }));

  test("three days of buffered data produce every historical window", () => {
    const state = only(["1hour"]);
    const outputs = feed(state, replay);
    const hours = records(outputs);
    expect(events(outputs)).toEqual([]);
    expect(hours).toHaveLength(3 * 24 - 1); // the last hour closes when more data (or idleness) comes
    expect(hours[0]).toMatchObject({ window_start: iso(OLD), revision: 0, aggregates: { count: 360 } });
    expect(hours.every((h) => h.aggregates.count === 360 && h.revision === 0)).toBe(true);
  });

  test("a replay in a partition with live tags loses nothing", () => {
    const state = only(["1min", "1hour"]);
    const live = (i: number) => sample(T0 + i * S, 1, { parameter: "live" });
    const mixed = replay.flatMap((r, i) => [r, live(i)]);
    const outputs = feed(state, mixed);
    expect(events(outputs)).toEqual([]);
    const pressure = records(outputs).filter((r) => r.parameter === "pressure");
    expect(pressure.filter((r) => r.resolution === "1hour")).toHaveLength(3 * 24 - 1);
    expect(pressure.every((r) => r.revision === 0 && r.aggregates.count === (r.resolution === "1hour" ? 360 : 6))).toBe(true);
  });
});

describe("idle tags", () => {
  test("a silent tag's windows close once the partition clock has run past the grace", () => {
    const state = only(["1min"], { allowed_lateness_ms: 5_000, idle_grace_ms: 60_000 });
    feed(state, [sample(T0 + 10 * S, 7)]);
    const closedAt = (t: number) => records(feed(state, [sample(t, 1, { parameter: "other" })])).filter((r) => r.parameter === "vibration");
    // Closes when partition time since its last sample passes grace + lateness + (window_end − last sample): 125 s.
    for (let t = T0 + 11 * S; t < T0 + 125 * S; t += S) expect(closedAt(t)).toEqual([]);
    expect(closedAt(T0 + 125 * S).map((r) => [r.window_start, r.aggregates.count])).toEqual([[iso(T0), 1]]);
  });

  test("a jump of the partition clock is not idleness", () => {
    const state = only(["1min"], { allowed_lateness_ms: 0, idle_grace_ms: 60_000 });
    feed(state, [sample(T0, 1)]);
    feed(state, [sample(T0 + 3 * HOUR, 1, { parameter: "other" })]);
    expect(feed(state, [sample(T0 + 10 * S, 2)])).toEqual([]);
  });

  test("a slow tag is not mistaken for late", () => {
    const state = only(["1min"], { allowed_lateness_ms: 5_000, idle_grace_ms: 60_000 });
    const outputs = feed(
      state,
      Array.from({ length: 40 }, (_, i) => [sample(T0 + i * 5 * MIN, i), sample(T0 + i * 5 * MIN, 1, { parameter: "fast" })]).flat(),
    );
    expect(events(outputs)).toEqual([]);
    expect(records(outputs).filter((r) => r.parameter === "vibration").every((r) => r.revision === 0)).toBe(true);
  });

  test("advanceWatermark closes windows from an outside clock", () => {
    const state = only(["1s"], { allowed_lateness_ms: 0, idle_grace_ms: 1_000 });
    feed(state, [sample(T0)]);
    expect(advanceWatermark(state, T0 + 1_500)).toEqual([]);
    expect(windowsOf(advanceWatermark(state, T0 + 2_500))).toEqual([["1s", iso(T0), 1, 0]]);
  });
});

describe("snapshot and restore", () => {
  const r = (() => {
    let a = 7;
    return () => ((a = (a * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  })();
  // Out of order, late, too late, with the sketch in play (limit 5), and tags falling silent together
  // so idle sweeps close several tags' windows at once.
  const stream = Array.from({ length: 600 }, (_, i) => {
    const jitter = Math.floor(r() * 8_000);
    const parameter = i < 300 ? ["d", "a", "c", "b"][i % 4] : i % 3 ? "a" : "e";
    return sample(T0 + i * 200 - jitter, Math.round(r() * 1000) / 10 - 20, { parameter, quality: i % 17 ? "GOOD" : "SUSPECT", gateway: T0 + i * 200 });
  });
  const config = { exact_percentile_limit: 5, allowed_lateness_ms: 1_000, idle_grace_ms: 2_000 };

  test.each([0, 1, 150, 333, 599])("replay from a JSON snapshot after %i records gives identical outputs", (cut) => {
    const whole = createAggregatorState(config);
    const expected = feed(whole, stream);
    expect(events(expected).length).toBeGreaterThan(0);
    expect(records(expected).some((x) => x.revision > 0)).toBe(true);

    const first = createAggregatorState(config);
    const before = feed(first, stream.slice(0, cut));
    const restored = restoreAggregator(JSON.parse(JSON.stringify(snapshotAggregator(first))), config);
    expect([...before, ...feed(restored, stream.slice(cut))]).toEqual(expected);
  });

  test.each([1, 20, 50, 85])("rebuilt from a compacted changelog after %i batches gives identical outputs", (batches) => {
    const BATCH = 7;
    const expected = feed(createAggregatorState(config), stream);
    const first = createAggregatorState(config);
    const log: { key: string; value: string | null }[] = [];
    const cut = batches * BATCH;
    const before = stream.slice(0, cut).flatMap((r, i) => {
      const out = aggregate(first, r);
      if ((i + 1) % BATCH === 0) log.push(...takeAggregatorChanges(first));
      return out;
    });
    // Compaction keeps each key's latest record, in the order those were written.
    const latest = new Map<string, string | null>();
    for (const { key, value } of log) {
      latest.delete(key);
      latest.set(key, value);
    }
    const restored = restoreAggregatorFromChanges([...latest].map(([key, value]) => ({ key, value })), config);
    expect([...before, ...feed(restored, stream.slice(cut))]).toEqual(expected);
  });

  /** Everything a tag's windows hold, for comparing a live state with a restored one. */
  const windowsState = (state: AggregatorState) =>
    [...state.timeline.tags].sort(([a], [b]) => (a < b ? -1 : 1)).map(([key, tag]) => ({
      key,
      clocks: [tag.max_time, tag.arrival_steady, Math.max(tag.watermark, tag.max_time + Math.max(0, state.timeline.steady - tag.arrival_steady - state.config.idle_grace_ms) - state.config.allowed_lateness_ms)],
      windows: Object.entries(tag.windows).map(([resolution, slots]) => [resolution, slots.map((w) => ({ ...w, data: { ...w.data, stats: statsToJSON(w.data.stats) } }))]),
    }));

  test("after every batch the compacted changelog rebuilds the very state in memory", () => {
    // Unit changes, non-numeric values and every quality on top of the stream above.
    const mixed = stream.map((x, i) => ({ ...x, unit: i % 90 < 45 ? "mm/s" : "in/s", value: i % 37 === 0 ? "stopped" : x.value, quality: (["GOOD", "SUSPECT", "UNCERTAIN"] as const)[i % 3]! }));
    const state = createAggregatorState(config);
    const compacted = new Map<string, string | null>();
    let sketched = 0;
    for (let i = 0; i < mixed.length; i += 5) {
      feed(state, mixed.slice(i, i + 5));
      for (const { key, value } of takeAggregatorChanges(state)) compacted.set(key, value);
      const restored = restoreAggregatorFromChanges([...compacted].map(([key, value]) => ({ key, value })), config);
      expect(windowsState(restored)).toEqual(windowsState(state));
      expect([restored.timeline.clock, restored.timeline.steady, restored.timeline.last_sweep]).toEqual([state.timeline.clock, state.timeline.steady, state.timeline.last_sweep]);
      sketched += windowsState(state).flatMap((t) => t.windows.flatMap(([, slots]) => slots as { data: { stats: { sketch: unknown } } }[])).filter((w) => w.data.stats.sketch).length;
    }
    expect(sketched).toBeGreaterThan(0);
  });

  test("a batch writes what it changed, not the windows: records stay small and deleted samples leave no keys", () => {
    const state = createAggregatorState();
    const compacted = new Map<string, string | null>();
    let largest = 0;
    // One tag at 1 Hz for 3 hours: its 1hour windows hold up to 1,000 exact values, then a sketch.
    for (let i = 0; i < 3 * 3_600; i++) {
      aggregate(state, sample(T0 + i * S, 20 + Math.sin(i / 100)));
      if (i % 10 === 9) {
        for (const { key, value } of takeAggregatorChanges(state)) {
          compacted.set(key, value);
          if (i > 600) largest = Math.max(largest, value?.length ?? 0);
        }
      }
    }
    expect(largest).toBeLessThan(1_500); // the whole-timeline record of version 1 grew past 20 KB here
    const live = [...compacted.values()].filter((v) => v !== null).length;
    // Samples still needed: this hour's (exact) and the kept 1min windows', in chunks of LOG_CHUNK.
    expect(live).toBeLessThanOrEqual(2 + Math.ceil((600 + 180) / LOG_CHUNK) + 1);
    const restored = restoreAggregatorFromChanges([...compacted].map(([key, value]) => ({ key, value })));
    expect(windowsState(restored)).toEqual(windowsState(state));
  });

  test("a snapshot of another version is refused", () => {
    expect(() => restoreAggregator({ version: 9, records: [] } as never)).toThrow("version");
    const v1 = { key: "pump_7/vibration", value: JSON.stringify({ version: 1, asset_id: "pump_7", parameter: "vibration", windows: {} }) };
    expect(() => restoreAggregatorFromChanges([v1])).toThrow("has version 1, expected 2: it was written by an older gateway; stop the aggregate worker, delete its changelog topic");
  });
});
