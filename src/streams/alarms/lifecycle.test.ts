import { describe, expect, test } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import { ALARM_SEVERITIES, ALARM_STATES as VALIDATOR_STATES, AlarmSchema } from "../quality/validator.ts";
import {
  ACTIONS,
  ALARM_STATES,
  TRANSITION_TABLE,
  acknowledge,
  alarmIdFor,
  applyAction,
  applyCommand,
  clearCondition,
  createAlarmStore,
  expireSuppressions,
  nextSuppressionExpiry,
  openAlarmFor,
  pruneCleared,
  raiseAlarm,
  restoreAlarmStore,
  snapshotAlarmStore,
  suppress,
  transition,
  unsuppress,
  type AlarmAction,
  type AlarmState,
  type AlarmStore,
  type NewAlarm,
} from "./lifecycle.ts";
import { SEVERITIES } from "./rules.ts";

const T0 = Date.parse("2025-01-10T12:00:00.000Z");
const at = (s: number) => T0 + s * 1000;
const iso = (s: number) => new Date(at(s)).toISOString();

const NEW: NewAlarm = {
  asset_id: "reactor_1",
  parameter: "pressure",
  type: "overpressure",
  severity: "CRITICAL",
  message: "Reactor pressure exceeded threshold",
  value: 210.5,
  threshold: 200,
  unit: "psi",
  condition: "reactor_1/pressure|reactor|high",
  rule_id: "reactor",
  limit: "high",
};

/** A store holding one alarm brought to `state` the ordinary way; SUPPRESSED comes from ACTIVE unless `from` says otherwise. */
function alarmIn(state: AlarmState, from: "ACTIVE" | "ACKNOWLEDGED" = "ACTIVE"): { store: AlarmStore; id: string } {
  const store = createAlarmStore();
  const id = raiseAlarm(store, NEW, at(0)).alarm_id;
  const ok = (r: ReturnType<typeof applyAction>) => {
    if (!r.ok) throw r.error;
  };
  if (state === "ACKNOWLEDGED" || (state === "SUPPRESSED" && from === "ACKNOWLEDGED")) ok(acknowledge(store, id, "alice", at(10)));
  if (state === "SUPPRESSED") ok(suppress(store, id, "bob", at(20), at(3600)));
  if (state === "CLEARED") clearCondition(store, NEW.condition, { at: at(30), value: 190 });
  expect(store.alarms[id]!.state).toBe(state);
  return { store, id };
}

const ctxFor = (action: AlarmAction) => ({ by: action === "clear" ? null : "carol", at: at(100), ...(action === "suppress" ? { until: at(7200) } : {}) });

describe("transition table", () => {
  test("states and severities agree with the validator's AlarmSchema", () => {
    expect([...ALARM_STATES].sort()).toEqual([...VALIDATOR_STATES].sort());
    expect([...SEVERITIES]).toEqual([...ALARM_SEVERITIES]);
  });

  // Every (state, action) pair, allowed or refused, with the resulting state or the exact error.
  const expected: Record<AlarmState, Record<AlarmAction, AlarmState | string>> = {
    ACTIVE: {
      acknowledge: "ACKNOWLEDGED",
      clear: "CLEARED",
      suppress: "SUPPRESSED",
      unsuppress: "cannot unsuppress alarm {id}: it is ACTIVE, not SUPPRESSED",
    },
    ACKNOWLEDGED: {
      acknowledge: `cannot acknowledge alarm {id}: it is already ACKNOWLEDGED (by alice at ${iso(10)})`,
      clear: "CLEARED",
      suppress: "SUPPRESSED",
      unsuppress: "cannot unsuppress alarm {id}: it is ACKNOWLEDGED, not SUPPRESSED",
    },
    SUPPRESSED: {
      acknowledge: "cannot acknowledge alarm {id}: it is SUPPRESSED; unsuppress it first",
      clear: "CLEARED",
      suppress: "SUPPRESSED",
      unsuppress: "ACTIVE",
    },
    CLEARED: {
      acknowledge: "cannot acknowledge alarm {id}: it is CLEARED",
      clear: "cannot clear alarm {id}: it is already CLEARED",
      suppress: "cannot suppress alarm {id}: it is CLEARED",
      unsuppress: "cannot unsuppress alarm {id}: it is CLEARED, not SUPPRESSED",
    },
  };

  const pairs = ALARM_STATES.flatMap((s) => ACTIONS.map((a) => [s, a] as const));
  test("covers every pair", () => {
    expect(pairs).toHaveLength(16);
    for (const [s, a] of pairs) expect(TRANSITION_TABLE[s][a]).toBeDefined();
  });

  test.each(pairs)("%s + %s", (state, action) => {
    const { store, id } = alarmIn(state);
    const before = structuredClone(store.alarms[id]!);
    const result = applyAction(store, id, action, ctxFor(action));
    const want = expected[state][action];
    if ((ALARM_STATES as readonly string[]).includes(want)) {
      if (!result.ok) throw result.error;
      expect(result.alarm.state).toBe(want as AlarmState);
      expect(result.event.state).toBe(want as AlarmState);
      expect(result.event.event).toBe(({ acknowledge: "acknowledged", clear: "cleared", suppress: "suppressed", unsuppress: "unsuppressed" } as const)[action]);
      expect(result.event.event_at).toBe(iso(100));
      expect(result.alarm.sequence).toBe(before.sequence + 1);
      expect(Value.Check(AlarmSchema, result.event)).toBe(true);
      expect(store.alarms[id]).toEqual(result.alarm);
    } else {
      if (result.ok) throw new Error(`expected refusal, got ${result.alarm.state}`);
      expect(result.error.message).toBe(want.replace("{id}", id));
      expect(result.error.code).toBe("invalid_transition");
      expect(result.error.state).toBe(state);
      expect(store.alarms[id]).toEqual(before); // a refusal changes nothing
    }
  });

  test("transition() never mutates its input", () => {
    const { store, id } = alarmIn("ACTIVE");
    const alarm = store.alarms[id]!;
    const copy = structuredClone(alarm);
    transition(alarm, "acknowledge", { by: "x", at: at(5) });
    expect(alarm).toEqual(copy);
  });
});

describe("field effects", () => {
  test("ACTIVE → CLEARED is return-to-normal unacknowledged: acked_at stays null", () => {
    const { store, id } = alarmIn("ACTIVE");
    const ev = clearCondition(store, NEW.condition, { at: at(60), value: 180 })!;
    expect(ev).toMatchObject({ alarm_id: id, state: "CLEARED", event: "cleared", event_by: null, acked_at: null, acked_by: null, cleared_at: iso(60), cleared_value: 180, clear_reason: "condition_cleared" });
    expect(openAlarmFor(store, NEW.condition)).toBeUndefined();
  });

  test("acknowledge records who and when; clear keeps them", () => {
    const { store, id } = alarmIn("ACKNOWLEDGED");
    expect(store.alarms[id]).toMatchObject({ acked_by: "alice", acked_at: iso(10) });
    const ev = clearCondition(store, NEW.condition, { at: at(60) })!;
    expect(ev).toMatchObject({ state: "CLEARED", acked_by: "alice", acked_at: iso(10), cleared_at: iso(60) });
  });

  test("unsuppress returns to the state suppression came from", () => {
    for (const from of ["ACTIVE", "ACKNOWLEDGED"] as const) {
      const { store, id } = alarmIn("SUPPRESSED", from);
      expect(store.alarms[id]!.suppressed_from).toBe(from);
      const r = unsuppress(store, id, "dave", at(50));
      if (!r.ok) throw r.error;
      expect(r.alarm).toMatchObject({ state: from, suppressed_from: null, suppressed_until: null, suppressed_by: null });
      expect(r.event).toMatchObject({ event: "unsuppressed", event_by: "dave" });
    }
  });

  test("suppressing again changes until and who, and keeps the state to return to", () => {
    const { store, id } = alarmIn("SUPPRESSED", "ACKNOWLEDGED");
    const r = suppress(store, id, "erin", at(40), at(9000));
    if (!r.ok) throw r.error;
    expect(r.alarm).toMatchObject({ state: "SUPPRESSED", suppressed_from: "ACKNOWLEDGED", suppressed_by: "erin", suppressed_until: iso(9000), suppressed_at: iso(40) });
  });

  test("suppress without until lasts until unsuppressed", () => {
    const { store, id } = alarmIn("ACTIVE");
    const r = suppress(store, id, "bob", at(5));
    if (!r.ok) throw r.error;
    expect(r.alarm.suppressed_until).toBeNull();
    expect(expireSuppressions(store, at(10 ** 7))).toEqual([]);
    expect(nextSuppressionExpiry(store)).toBeNull();
  });

  test("a suppressed alarm whose condition clears is CLEARED", () => {
    const { store, id } = alarmIn("SUPPRESSED");
    const ev = clearCondition(store, NEW.condition, { at: at(70) })!;
    expect(ev).toMatchObject({ alarm_id: id, state: "CLEARED", suppressed_from: null });
    expect(expireSuppressions(store, at(10 ** 6))).toEqual([]);
  });
});

describe("argument checks", () => {
  test.each([
    ["acknowledge without a user", (s: AlarmStore, id: string) => acknowledge(s, id, "", at(1)), "cannot acknowledge alarm {id}: no user given"],
    ["suppress without a user", (s: AlarmStore, id: string) => suppress(s, id, "  ", at(1)), "cannot suppress alarm {id}: no user given"],
    ["suppress until before at", (s: AlarmStore, id: string) => suppress(s, id, "bob", at(100), at(50)), `cannot suppress alarm {id}: until (${iso(50)}) must be after the suppression time (${iso(100)})`],
    ["suppress until equal to at", (s: AlarmStore, id: string) => suppress(s, id, "bob", at(100), at(100)), `cannot suppress alarm {id}: until (${iso(100)}) must be after the suppression time (${iso(100)})`],
    ["a time that is not one", (s: AlarmStore, id: string) => acknowledge(s, id, "bob", "yesterday"), 'cannot acknowledge alarm {id}: time "yesterday" is not a valid time'],
  ])("%s is refused", (_, act, message) => {
    const { store, id } = alarmIn("ACTIVE");
    const r = act(store, id);
    if (r.ok) throw new Error("expected refusal");
    expect(r.error.code).toBe("invalid_argument");
    expect(r.error.message).toBe(message.replace("{id}", id));
    expect(store.alarms[id]!.state).toBe("ACTIVE");
  });

  test("unknown alarm", () => {
    const r = acknowledge(createAlarmStore(), "nope", "bob", at(1));
    if (r.ok) throw new Error("expected refusal");
    expect(r.error.code).toBe("unknown_alarm");
    expect(r.error.message).toStartWith("cannot acknowledge alarm nope: no such alarm");
  });
});

describe("raise, ids, expiry, retention", () => {
  test("alarm ids are deterministic UUIDs, new per occurrence", () => {
    const store = createAlarmStore();
    const a = raiseAlarm(store, NEW, at(0));
    expect(a.alarm_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a.alarm_id).toBe(alarmIdFor(NEW.condition, at(0)));
    expect(() => raiseAlarm(store, NEW, at(1))).toThrow("already has open alarm");
    clearCondition(store, NEW.condition, { at: at(2) });
    const b = raiseAlarm(store, NEW, at(3));
    expect(b.alarm_id).not.toBe(a.alarm_id);
    expect(store.alarms[a.alarm_id]!.state).toBe("CLEARED"); // the old one stays CLEARED: CLEARED is final
    expect(b).toMatchObject({ state: "ACTIVE", event: "raised", sequence: 1, raised_at: iso(3), acked_at: null, cleared_at: null });
    expect(Value.Check(AlarmSchema, b)).toBe(true);
  });

  test("expiry returns to the previous state at the until time, in until order", () => {
    const store = createAlarmStore();
    const a = raiseAlarm(store, NEW, at(0)).alarm_id;
    const b = raiseAlarm(store, { ...NEW, condition: "reactor_1/pressure|reactor|high_high", limit: "high_high" }, at(0)).alarm_id;
    acknowledge(store, b, "alice", at(1));
    suppress(store, a, "bob", at(2), at(600));
    suppress(store, b, "bob", at(2), at(300));
    expect(nextSuppressionExpiry(store)).toBe(at(300));
    expect(expireSuppressions(store, at(299))).toEqual([]);
    const events = expireSuppressions(store, at(1000));
    expect(events.map((e) => [e.alarm_id, e.state, e.event, e.event_at, e.event_by])).toEqual([
      [b, "ACKNOWLEDGED", "unsuppressed", iso(300), null],
      [a, "ACTIVE", "unsuppressed", iso(600), null],
    ]);
    expect(expireSuppressions(store, at(2000))).toEqual([]);
  });

  test("cleared alarms are kept for the retention, then unknown", () => {
    const { store, id } = alarmIn("CLEARED");
    expect(pruneCleared(store, at(30) + 1000, 5000)).toBe(0);
    expect(acknowledge(store, id, "x", at(31))).toMatchObject({ ok: false, error: { code: "invalid_transition" } });
    expect(pruneCleared(store, at(30) + 5001, 5000)).toBe(1);
    expect(acknowledge(store, id, "x", at(40))).toMatchObject({ ok: false, error: { code: "unknown_alarm" } });
  });

  test("snapshot and restore", () => {
    const { store, id } = alarmIn("SUPPRESSED", "ACKNOWLEDGED");
    const restored = restoreAlarmStore(JSON.parse(JSON.stringify(snapshotAlarmStore(store))));
    expect(restored).toEqual(store);
    expect(openAlarmFor(restored, NEW.condition)!.alarm_id).toBe(id);
    expect(() => restoreAlarmStore({ version: 99, alarms: {} })).toThrow("refusing to misread");
  });
});

describe("operator commands", () => {
  test("valid commands apply", () => {
    const { store, id } = alarmIn("ACTIVE");
    const r = applyCommand(store, { action: "suppress", alarm_id: id, by: "bob", at: iso(5), until: iso(900), note: "sensor maintenance" });
    expect(r.error).toBeNull();
    expect(r.events[0]).toMatchObject({ event: "suppressed", state: "SUPPRESSED", suppressed_until: iso(900), note: "sensor maintenance" });
  });

  test("invalid commands name the bad fields", () => {
    const r = applyCommand(createAlarmStore(), { action: "delete", alarm_id: "x", at: iso(0) });
    expect(r.error?.code).toBe("invalid_command");
    expect(r.error?.message).toContain("action:");
    expect(r.error?.message).toContain("by:");
    expect(r.error?.alarm_id).toBe("x");
  });

  test("refusals come back as errors with the lifecycle's message", () => {
    const { store, id } = alarmIn("CLEARED");
    expect(applyCommand(store, { action: "acknowledge", alarm_id: id, by: "bob", at: iso(99) })).toEqual({
      events: [],
      error: { code: "invalid_transition", message: `cannot acknowledge alarm ${id}: it is CLEARED`, alarm_id: id, state: "CLEARED" },
    });
  });
});
