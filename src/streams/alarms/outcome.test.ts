import { describe, expect, test } from "bun:test";
import { applyCommand, createAlarmStore, acknowledge, clearCondition, raiseAlarm, suppress, type AlarmState, type NewAlarm } from "./lifecycle.ts";
import { commandOutcome, decodeCommandOutcome } from "./outcome.ts";

const T0 = Date.parse("2025-01-10T12:00:00.000Z");
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();
const NEW: NewAlarm = {
  asset_id: "reactor_1",
  parameter: "pressure",
  type: "overpressure",
  severity: "CRITICAL",
  message: "Reactor pressure exceeded threshold",
  value: 210,
  threshold: 200,
  condition: "reactor_1/pressure|p|high",
  rule_id: "p",
  limit: "high",
};

function alarmIn(state: AlarmState) {
  const store = createAlarmStore();
  const id = raiseAlarm(store, NEW, T0).alarm_id;
  if (state === "ACKNOWLEDGED") acknowledge(store, id, "alice", iso(10));
  if (state === "SUPPRESSED") suppress(store, id, "bob", iso(20), null);
  if (state === "CLEARED") clearCondition(store, NEW.condition, { at: iso(30), value: 190 });
  return { store, id };
}

describe("command outcomes: one per command, what the API answers from", () => {
  // [state before, command, expected outcome fields]
  const cases: [AlarmState, Record<string, unknown>, Record<string, unknown>][] = [
    ["ACTIVE", { action: "acknowledge", by: "carol" }, { outcome: "applied", state: "ACKNOWLEDGED", event: "acknowledged", sequence: 2 }],
    ["ACTIVE", { action: "suppress", by: "carol", until: iso(3600) }, { outcome: "applied", state: "SUPPRESSED", event: "suppressed", sequence: 2 }],
    ["SUPPRESSED", { action: "unsuppress", by: "carol" }, { outcome: "applied", state: "ACTIVE", event: "unsuppressed", sequence: 3 }],
    ["ACKNOWLEDGED", { action: "acknowledge", by: "carol" }, { outcome: "refused", state: "ACKNOWLEDGED", error: { code: "invalid_transition" } }],
    ["CLEARED", { action: "acknowledge", by: "carol" }, { outcome: "refused", state: "CLEARED", error: { code: "invalid_transition" } }],
    ["CLEARED", { action: "suppress", by: "carol" }, { outcome: "refused", state: "CLEARED", error: { code: "invalid_transition" } }],
    ["ACTIVE", { action: "unsuppress", by: "carol" }, { outcome: "refused", state: "ACTIVE", error: { code: "invalid_transition" } }],
    ["SUPPRESSED", { action: "acknowledge", by: "carol" }, { outcome: "refused", state: "SUPPRESSED", error: { code: "invalid_transition" } }],
    ["ACTIVE", { action: "suppress", by: "carol", until: iso(-10) }, { outcome: "refused", state: "ACTIVE", error: { code: "invalid_argument" } }],
  ];
  test.each(cases)("%s + %o → %o", (state, body, expected) => {
    const { store, id } = alarmIn(state);
    const command = { alarm_id: id, at: iso(100), command_id: "c-1", ...body };
    const outcome = commandOutcome(command, applyCommand(store, command));
    expect(outcome).toMatchObject({ command_id: "c-1", alarm_id: id, action: body.action, by: "carol", at: iso(100), ...expected });
    if (outcome.outcome === "applied") expect(outcome.alarm).toMatchObject({ alarm_id: id, state: outcome.state, sequence: outcome.sequence });
    else expect(outcome.error.message).toStartWith(`cannot ${body.action} alarm ${id}: `);
    // What the worker writes is what the API reads back.
    expect(decodeCommandOutcome(JSON.stringify(outcome))).toEqual(outcome);
  });

  test("the refusal reason is the lifecycle's, naming who acknowledged first", () => {
    const { store, id } = alarmIn("ACKNOWLEDGED");
    const command = { action: "acknowledge", alarm_id: id, by: "bob", at: iso(100), command_id: "c-2" };
    const outcome = commandOutcome(command, applyCommand(store, command));
    expect(outcome).toMatchObject({ outcome: "refused", error: { message: `cannot acknowledge alarm ${id}: it is already ACKNOWLEDGED (by alice at ${iso(10)})` } });
  });

  test("unknown alarm, a command failing the schema, one without a command id: still an outcome, with what is known", () => {
    const store = createAlarmStore();
    const unknown = { action: "acknowledge", alarm_id: "nope", by: "bob", at: iso(1), command_id: "c-3" };
    expect(commandOutcome(unknown, applyCommand(store, unknown))).toMatchObject({ command_id: "c-3", outcome: "refused", state: null, error: { code: "unknown_alarm" } });
    const bad = { action: "ring", alarm_id: "x", command_id: "c-4" };
    expect(commandOutcome(bad, applyCommand(store, bad))).toMatchObject({ command_id: "c-4", alarm_id: "x", action: null, by: null, outcome: "refused", error: { code: "invalid_command" } });
    expect(commandOutcome("not an object", applyCommand(store, "not an object"))).toMatchObject({ command_id: null, alarm_id: null, outcome: "refused" });
    const { store: s2, id } = alarmIn("ACTIVE");
    const legacy = { action: "acknowledge", alarm_id: id, by: "bob", at: iso(1) };
    expect(commandOutcome(legacy, applyCommand(s2, legacy))).toMatchObject({ command_id: null, outcome: "applied" });
  });

  test("decode ignores what is not an outcome", () => {
    for (const v of [null, "", "{", "[]", "42", '{"outcome":"applied"}', '{"outcome":"refused","error":{}}', '{"outcome":"maybe"}']) expect(decodeCommandOutcome(v)).toBeNull();
  });
});
