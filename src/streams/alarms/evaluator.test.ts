import { describe, expect, test } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import { AlarmSchema } from "../quality/validator.ts";
import {
  applyAlarmCommand,
  createAlarmEngine,
  evaluateReading,
  restoreAlarmEngine,
  restoreAlarmEngineFromChanges,
  snapshotAlarmEngine,
  takeAlarmEngineChanges,
  tickAlarmEngine,
  toAlarmRecord,
  type AlarmEngineState,
  type ChangelogRecord,
  type ReadingInput,
} from "./evaluator.ts";
import type { AlarmEvent } from "./lifecycle.ts";
import { alarmRuleDefaultsOf, alarmRuleSetOf, loadAlarmRules, type AlarmRuleSet } from "./rules.ts";

const T0 = Date.parse("2025-01-10T12:00:00.000Z");
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();

function reading(s: number, value: ReadingInput["value"], extra: Partial<ReadingInput> = {}): ReadingInput {
  return {
    asset_id: "reactor_1",
    parameter: "pressure",
    value,
    unit: "psi",
    quality: "GOOD",
    timestamps: { device_time: iso(s), gateway_time: iso(s) },
    ...extra,
  };
}

const rulesWith = (rule: Record<string, unknown>, set: Record<string, unknown> = {}) =>
  loadAlarmRules({ ...set, rules: [{ id: "r", asset_id: "reactor_1", parameter: "pressure", ...rule }] });

/** Feeds [seconds, value] samples; returns "t:event:limit" per transition. */
function run(rules: AlarmRuleSet, samples: [number, number][], engine = createAlarmEngine()): string[] {
  const out: string[] = [];
  for (const [s, v] of samples) {
    for (const e of evaluateReading(engine, reading(s, v), rules)) {
      expect(Value.Check(AlarmSchema, e)).toBe(true);
      out.push(`${(Date.parse(e.event_at) - T0) / 1000}:${e.event}:${e.limit}`);
    }
  }
  return out;
}

const series = (values: number[], start = 0, step = 1): [number, number][] => values.map((v, i) => [start + i * step, v]);

describe("limits and severities", () => {
  const rules = rulesWith({ high_high: 250, high: 200, low: 50, low_low: 20 });

  test.each([
    ["high", 210, ["high"], ["HIGH"]],
    ["high_high also trips high (separate alarms)", 260, ["high_high", "high"], ["CRITICAL", "HIGH"]],
    ["low", 40, ["low"], ["MEDIUM"]],
    ["low_low also trips low", 10, ["low", "low_low"], ["MEDIUM", "CRITICAL"]],
    ["exactly at the limit is not beyond it", 200, [], []],
    ["normal", 100, [], []],
  ])("%s", (_, value, limits, severities) => {
    const engine = createAlarmEngine();
    evaluateReading(engine, reading(0, 100), rules);
    const events = evaluateReading(engine, reading(1, value), rules);
    expect(events.map((e): string => e.limit).sort()).toEqual([...limits].sort());
    expect(events.map((e): string => e.severity).sort()).toEqual([...severities].sort());
    for (const e of events) expect(e).toMatchObject({ event: "raised", state: "ACTIVE", value, raised_at: iso(1) });
  });

  test("the seed's message shape", () => {
    const r = rulesWith({ high: { value: 200, type: "overpressure", severity: "CRITICAL", message: "Reactor pressure exceeded threshold" } });
    const [e] = evaluateReading(createAlarmEngine(), reading(0, 210.5), r);
    expect(e).toMatchObject({
      asset_id: "reactor_1",
      type: "overpressure",
      severity: "CRITICAL",
      state: "ACTIVE",
      raised_at: iso(0),
      acked_at: null,
      acked_by: null,
      cleared_at: null,
      message: "Reactor pressure exceeded threshold",
      value: 210.5,
      threshold: 200,
      unit: "psi",
      event: "raised",
      parameter: "pressure",
      condition: "reactor_1/pressure|r|high",
    });
    const record = toAlarmRecord(e!);
    expect(record).toMatchObject({ topic: "alarms.raw", key: e!.alarm_id });
    expect(JSON.parse(record.value)).toEqual(e);
  });

  test("default messages", () => {
    const [e] = evaluateReading(createAlarmEngine(), reading(0, 260), rulesWith({ high_high: 250 }));
    expect(e!.message).toBe("reactor_1 pressure high-high: 260 psi above 250 psi");
  });
});

describe("on-delay, off-delay, deadband", () => {
  test.each([
    ["on 0: raise at once, clear at once", { high: 200 }, series([190, 210, 190]), ["1:raised:high", "2:cleared:high"]],
    ["on-delay 5 s: 4 s above is not enough", { high: 200, on_delay_s: 5 }, series([210, 210, 210, 210, 210, 190]), []],
    ["on-delay 5 s: 5 s above raises at 5 s", { high: 200, on_delay_s: 5 }, series([210, 210, 210, 210, 210, 210]), ["5:raised:high"]],
    ["on-delay restarts after a dip", { high: 200, on_delay_s: 3 }, series([210, 210, 199, 210, 210, 210, 210]), ["6:raised:high"]],
    ["on-delay on sparse samples: measured on device time", { high: 200, on_delay_s: 5 }, [[0, 210], [10, 210]] as [number, number][], ["10:raised:high"]],
    ["off-delay 3 s: normal for 2 s then back up keeps it", { high: 200, off_delay_s: 3 }, series([210, 190, 190, 210, 190, 190, 190, 190]), ["0:raised:high", "7:cleared:high"]],
    ["off-delay: the band counts as not normal", { high: 200, deadband: 5, off_delay_s: 2 }, series([210, 190, 197, 190, 190, 190]), ["0:raised:high", "5:cleared:high"]],
    ["deadband 5: stays above 195, clears below", { high: 200, deadband: 5 }, series([210, 197, 195, 196, 194.9]), ["0:raised:high", "4:cleared:high"]],
    ["low deadband mirrors: clears above limit + deadband", { low: 50, deadband: 5 }, series([40, 53, 55, 55.1]), ["0:raised:low", "3:cleared:low"]],
    ["rate-of-change ignores the level deadband", { rate_of_change: { max_change_per_s: 10 }, deadband: 5 }, series([0, 20, 25]), ["1:raised:rate_of_change", "2:cleared:rate_of_change"]],
  ])("%s", (_, rule, samples, want) => {
    expect(run(rulesWith(rule), samples)).toEqual(want);
  });
});

describe("flapping", () => {
  // A signal chattering around the limit every second: 201, 199, 201, 199 ... for 20 s.
  const chatter = series(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 201 : 199)));
  const raises = (rule: Record<string, unknown>, samples = chatter) => run(rulesWith(rule), samples).filter((e) => e.includes("raised")).length;

  test.each([
    ["nothing against it: raises every other second", { high: 200 }, 10],
    ["deadband 5: raised once, never cleared by the chatter", { high: 200, deadband: 5 }, 1],
    ["on-delay 2 s: never holds long enough", { high: 200, on_delay_s: 2 }, 0],
    ["off-delay 3 s: raised once, the dips are too short to clear", { high: 200, off_delay_s: 3 }, 1],
    ["on-delay + deadband", { high: 200, on_delay_s: 2, deadband: 5 }, 0],
  ])("%s", (_, rule, want) => {
    expect(raises(rule)).toBe(want);
  });

  test("noise around the limit then a real excursion: one alarm, one clear", () => {
    const noisy = series([199, 201, 199, 201, 199, 205, 206, 207, 208, 207, 206, 190, 190, 190]);
    expect(run(rulesWith({ high: 200, on_delay_s: 2, deadband: 5, off_delay_s: 1 }), noisy)).toEqual(["7:raised:high", "12:cleared:high"]);
  });
});

describe("rate of change", () => {
  test.each([
    ["first reading has no rate", { max_change_per_s: 5 }, [[0, 1000]], []],
    ["rising too fast", { max_change_per_s: 5 }, series([0, 3, 10, 12]), ["2:raised:rate_of_change", "3:cleared:rate_of_change"]],
    ["falling too fast (both)", { max_change_per_s: 5 }, series([10, 0]), ["1:raised:rate_of_change"]],
    ["direction rising ignores a fall", { max_change_per_s: 5, direction: "rising" }, series([10, 0, 10]), ["2:raised:rate_of_change"]],
    ["direction falling ignores a rise", { max_change_per_s: 5, direction: "falling" }, series([0, 10, 0]), ["2:raised:rate_of_change"]],
    ["per second of device time: 20 over 10 s is 2/s", { max_change_per_s: 5 }, [[0, 0], [10, 20]], []],
    ["on-delay on the rate", { max_change_per_s: 5, on_delay_s: 2 }, series([0, 10, 20, 30, 35]), ["3:raised:rate_of_change"]],
  ] as [string, Record<string, unknown>, [number, number][], string[]][])("%s", (_, roc, samples, want) => {
    expect(run(rulesWith({ rate_of_change: roc }), samples)).toEqual(want);
  });

  test("reports the rate with a per-second unit", () => {
    const engine = createAlarmEngine();
    const rules = rulesWith({ rate_of_change: { max_change_per_s: 5, type: "pressure_surge" } });
    evaluateReading(engine, reading(0, 100), rules);
    const [e] = evaluateReading(engine, reading(2, 130), rules);
    expect(e).toMatchObject({ type: "pressure_surge", value: 15, threshold: 5, unit: "psi/s", severity: "HIGH" });
    expect(e!.message).toBe("reactor_1 pressure changing at 15 psi/s, limit 5 psi/s");
  });
});

describe("what is not evaluated", () => {
  const rules = rulesWith({ high: 200, rate_of_change: { max_change_per_s: 50 } });
  test.each([
    ["a boolean", reading(1, true)],
    ["null", reading(1, null)],
    ["a string", reading(1, "250")],
    ["BAD quality", reading(1, 999, { quality: "BAD" })],
    ["an out-of-order reading", reading(-5, 999)],
    ["a repeated device time", reading(0, 999)],
    ["another tag", reading(1, 999, { parameter: "temperature" })],
  ])("%s", (_, r) => {
    const engine = createAlarmEngine();
    evaluateReading(engine, reading(0, 100), rules);
    const before = snapshotAlarmEngine(engine);
    expect(evaluateReading(engine, r, rules)).toEqual([]);
    expect(engine).toEqual(before);
  });

  test("qualities are configurable", () => {
    const goodOnly = rulesWith({ high: 200 }, { evaluate_qualities: ["GOOD"] });
    expect(evaluateReading(createAlarmEngine(), reading(0, 300, { quality: "SUSPECT" }), goodOnly)).toEqual([]);
    expect(evaluateReading(createAlarmEngine(), reading(0, 300, { quality: "SUSPECT" }), rules)).toHaveLength(1);
  });

  test("device_time missing: gateway_time stands in", () => {
    const r = reading(3, 300);
    r.timestamps = { device_time: null, gateway_time: iso(3) };
    expect(evaluateReading(createAlarmEngine(), r, rules)[0]!.raised_at).toBe(iso(3));
  });
});

describe("with the lifecycle", () => {
  const rules = rulesWith({ high: 200 });

  test("acknowledged then cleared; the condition returning is a new alarm", () => {
    const engine = createAlarmEngine();
    const [raised] = evaluateReading(engine, reading(0, 210), rules);
    const ack = applyAlarmCommand(engine, { action: "acknowledge", alarm_id: raised!.alarm_id, by: "alice", at: iso(5) });
    expect(ack.events[0]).toMatchObject({ state: "ACKNOWLEDGED", acked_by: "alice" });
    const [cleared] = evaluateReading(engine, reading(10, 190), rules);
    expect(cleared).toMatchObject({ alarm_id: raised!.alarm_id, state: "CLEARED", acked_by: "alice", cleared_at: iso(10), cleared_value: 190 });
    const [again] = evaluateReading(engine, reading(20, 220), rules);
    expect(again!.alarm_id).not.toBe(raised!.alarm_id);
    expect(again).toMatchObject({ state: "ACTIVE", event: "raised", sequence: 1 });
  });

  test("suppressed: expires back to ACTIVE; clearing while suppressed clears", () => {
    const engine = createAlarmEngine();
    const [raised] = evaluateReading(engine, reading(0, 210), rules);
    const id = raised!.alarm_id;
    applyAlarmCommand(engine, { action: "suppress", alarm_id: id, by: "bob", at: iso(1), until: iso(60) });
    expect(evaluateReading(engine, reading(2, 230), rules)).toEqual([]); // still abnormal, still one alarm
    expect(tickAlarmEngine(engine, T0 + 59_999)).toEqual([]);
    expect(tickAlarmEngine(engine, T0 + 61_000)).toMatchObject([{ alarm_id: id, event: "unsuppressed", state: "ACTIVE", event_at: iso(60) }]);
    applyAlarmCommand(engine, { action: "suppress", alarm_id: id, by: "bob", at: iso(70) });
    expect(evaluateReading(engine, reading(80, 100), rules)).toMatchObject([{ alarm_id: id, event: "cleared", state: "CLEARED" }]);
  });

  test("a rule removed while its alarm is open clears it on the tag's next reading", () => {
    const engine = createAlarmEngine();
    const [raised] = evaluateReading(engine, reading(0, 210), rulesWith({ high: 200, low: 10 }));
    const events = evaluateReading(engine, reading(1, 210), rulesWith({ low: 10 }));
    expect(events).toMatchObject([{ alarm_id: raised!.alarm_id, event: "cleared", clear_reason: "rule_removed" }]);
    // and when no rule covers the tag any more, its state goes too
    const e2 = createAlarmEngine();
    evaluateReading(e2, reading(0, 210), rules);
    expect(evaluateReading(e2, reading(1, 210), loadAlarmRules({ rules: [] }))).toMatchObject([{ event: "cleared", clear_reason: "rule_removed" }]);
    expect(e2.tags).toEqual({});
  });

  test("a rule set swapped while running (rules from the topic) keeps the state of conditions whose rule stayed", () => {
    const defaults = alarmRuleDefaultsOf(loadAlarmRules({}));
    const delayed = { id: "delayed", asset_id: "reactor_1", parameter: "pressure", enabled: true, high: { value: 200, on_delay_s: 3 } };
    const low = { id: "low", asset_id: "reactor_1", parameter: "pressure", enabled: true, low: 100 };
    const engine = createAlarmEngine();
    // t=0..1: the delayed high is pending (1 s of 3 held); the low rule is not yet there.
    expect(run(alarmRuleSetOf(defaults, [delayed]), [[0, 210], [1, 210]], engine)).toEqual([]);
    // A new set object with the same `delayed` plus `low`: the pending on-delay goes on, it is not restarted.
    const swapped = alarmRuleSetOf(defaults, [delayed, low]);
    expect(run(swapped, [[2, 210], [3, 210]], engine)).toEqual(["3:raised:high"]);
    // The limit changed under the open alarm: it is judged by the new limit at the next reading.
    expect(run(alarmRuleSetOf(defaults, [{ ...delayed, high: { value: 300, on_delay_s: 3 } }, low]), [[4, 210]], engine)).toEqual(["4:cleared:high"]);
  });

  test("cleared alarms are forgotten after the retention", () => {
    const engine = createAlarmEngine();
    const [raised] = evaluateReading(engine, reading(0, 210), rules);
    evaluateReading(engine, reading(1, 100), rules);
    tickAlarmEngine(engine, T0 + 1000 + 3_600_000, { cleared_retention_ms: 3_600_000 });
    expect(engine.store.alarms[raised!.alarm_id]).toBeDefined();
    tickAlarmEngine(engine, T0 + 1001 + 3_600_000, { cleared_retention_ms: 3_600_000 });
    expect(engine.store.alarms[raised!.alarm_id]).toBeUndefined();
  });
});

describe("restart: state restored at any cut gives the uninterrupted outputs", () => {
  const rules = loadAlarmRules({
    rules: [
      { id: "p", asset_id: "reactor_*", parameter: "pressure", high: 200, high_high: 250, deadband: 5, on_delay_s: 2, off_delay_s: 2, rate_of_change: { max_change_per_s: 30 } },
      { id: "t", asset_id: "reactor_*", parameter: "temperature", low: 10 },
    ],
  });
  /** The newest alarm raised in `evs` that has not cleared since (optionally of one parameter). */
  const openOne = (evs: AlarmEvent[], parameter?: string) => {
    const cleared = new Set(evs.filter((e) => e.event === "cleared").map((e) => e.alarm_id));
    return evs.filter((e) => e.event === "raised" && !cleared.has(e.alarm_id) && (!parameter || e.parameter === parameter)).at(-1)?.alarm_id;
  };
  type Step = { r: ReadingInput } | { cmd: (events: AlarmEvent[]) => unknown } | { tick: number };
  const steps: Step[] = [];
  for (let i = 0; i < 60; i++) {
    const wave = 180 + 80 * Math.sin(i / 5);
    steps.push({ r: reading(i, Math.round(wave * 10) / 10, { asset_id: i % 3 === 0 ? "reactor_2" : "reactor_1" }) });
    steps.push({ r: reading(i, i % 7 < 3 ? 5 : 20, { parameter: "temperature" }) });
    if (i === 8) steps.push({ cmd: (evs) => ({ action: "acknowledge", alarm_id: openOne(evs, "pressure"), by: "op", at: iso(i) }) });
    if (i === 38) steps.push({ cmd: (evs) => ({ action: "suppress", alarm_id: openOne(evs, "pressure"), by: "op", at: iso(i), until: iso(42) }) });
    if (i === 45) steps.push({ tick: T0 + 45_000 });
  }

  function play(engine: AlarmEngineState, from: number, to: number, history: AlarmEvent[]): AlarmEvent[] {
    const out: AlarmEvent[] = [];
    for (let k = from; k < to; k++) {
      const step = steps[k]!;
      let evs: AlarmEvent[];
      if ("r" in step) evs = evaluateReading(engine, step.r, rules);
      else if ("tick" in step) evs = tickAlarmEngine(engine, step.tick);
      else evs = applyAlarmCommand(engine, step.cmd([...history, ...out])).events;
      out.push(...evs);
    }
    return out;
  }

  const whole = play(createAlarmEngine(), 0, steps.length, []);
  test("the scenario exercises raise, ack, suppress, expiry and clear", () => {
    const kinds = new Set(whole.map((e) => e.event));
    for (const k of ["raised", "acknowledged", "suppressed", "unsuppressed", "cleared"]) expect(kinds).toContain(k as AlarmEvent["event"]);
  });

  for (const cut of [1, 17, 19, 40, 77, 79, 92, 94, 110]) {
    test(`cut at step ${cut}: snapshot and changelog`, () => {
      const engine = createAlarmEngine();
      const changelog: ChangelogRecord[] = [];
      const before = play(engine, 0, cut, []);
      // the changelog is taken in several batches, as a glue would per transaction
      changelog.push(...takeAlarmEngineChanges(engine));
      const snap = JSON.parse(JSON.stringify(snapshotAlarmEngine(engine)));
      const fromSnapshot = play(restoreAlarmEngine(snap), cut, steps.length, before);
      const fromChanges = play(restoreAlarmEngineFromChanges(changelog), cut, steps.length, before);
      expect([...before, ...fromSnapshot]).toEqual(whole);
      expect([...before, ...fromChanges]).toEqual(whole);
    });
  }

  test("changelog records are per tag and only for touched tags", () => {
    const engine = createAlarmEngine();
    evaluateReading(engine, reading(0, 100), rules);
    expect(takeAlarmEngineChanges(engine).map((r) => r.key)).toEqual(["reactor_1/pressure"]);
    expect(takeAlarmEngineChanges(engine)).toEqual([]);
    evaluateReading(engine, reading(1, 100, { parameter: "flow" }), rules); // no rule: nothing stored
    expect(takeAlarmEngineChanges(engine)).toEqual([]);
    expect(() => restoreAlarmEngineFromChanges([{ key: "x/y", value: JSON.stringify({ version: 2 }) }])).toThrow("refusing to misread");
  });
});
