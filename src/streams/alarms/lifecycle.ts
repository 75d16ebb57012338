/**
 * Alarm lifecycle: the state machine of one alarm (one occurrence of a condition, one `alarm_id`) and
 * the store of the alarms a partition owns. Pure: every function takes the time it acts at.
 *
 * Transition table (rows: state now; columns: action). "—" = refused with a TransitionError.
 *
 * | state \ action | acknowledge      | clear (condition normal) | suppress (shelve)            | unsuppress / expiry        |
 * |----------------|------------------|--------------------------|------------------------------|----------------------------|
 * | ACTIVE         | → ACKNOWLEDGED   | → CLEARED, acked_at null | → SUPPRESSED (from ACTIVE)   | — not suppressed           |
 * | ACKNOWLEDGED   | — already acked  | → CLEARED                | → SUPPRESSED (from ACK'D)    | — not suppressed           |
 * | SUPPRESSED     | — unsuppress 1st | → CLEARED                | → SUPPRESSED (new until/by)  | → the state it came from   |
 * | CLEARED        | — cleared        | — already cleared        | — cleared                    | — not suppressed           |
 *
 * Raising is not a row: a condition that becomes abnormal always starts a new alarm (new alarm_id, ACTIVE),
 * including after CLEARED. CLEARED is final. ACTIVE → CLEARED is ISA-18.2's "return to normal
 * unacknowledged", which the seed auto-acknowledges: the alarm is done, `acked_at` stays null.
 */
import { createHash } from "node:crypto";
import { Type, type Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { schemaErrors, formatFieldErrors } from "../../config/schema-errors.ts";
import type { LimitKind, Severity } from "./rules.ts";

export const ALARM_STATES = ["ACTIVE", "ACKNOWLEDGED", "CLEARED", "SUPPRESSED"] as const;
export type AlarmState = (typeof ALARM_STATES)[number];

/** The `event` field of every alarms.raw record: what just happened to the alarm. */
export const ALARM_EVENTS = ["raised", "acknowledged", "cleared", "suppressed", "unsuppressed", "escalated"] as const;
export type AlarmEventName = (typeof ALARM_EVENTS)[number];

/** Transitions of an existing alarm. `clear` comes from the evaluator, the others from operators (unsuppress also from expiry). */
export const ACTIONS = ["acknowledge", "clear", "suppress", "unsuppress"] as const;
export type AlarmAction = (typeof ACTIONS)[number];
export const OPERATOR_ACTIONS = ["acknowledge", "suppress", "unsuppress"] as const;
export type OperatorAction = (typeof OPERATOR_ACTIONS)[number];

export const EVENT_OF: Record<AlarmAction, AlarmEventName> = {
  acknowledge: "acknowledged",
  clear: "cleared",
  suppress: "suppressed",
  unsuppress: "unsuppressed",
};

export type ClearReason = "condition_cleared" | "rule_removed";

/** The seed's alarm message plus the fields that make it self-describing. */
export interface Alarm {
  alarm_id: string;
  asset_id: string;
  /** With asset_id, the Kafka key of the condition's readings (`asset_id/parameter`): operator commands go there. */
  parameter: string;
  type: string;
  severity: Severity;
  state: AlarmState;
  raised_at: string;
  acked_at: string | null;
  acked_by: string | null;
  cleared_at: string | null;
  message: string;
  /** Value that raised the alarm (for rate of change: the rate, per second). */
  value: number;
  threshold: number;
  unit?: string;
  /** `asset_id/parameter|rule_id|limit`: one open alarm per condition. */
  condition: string;
  rule_id: string;
  limit: LimitKind;
  suppressed_at: string | null;
  suppressed_by: string | null;
  /** null while suppressed = until unsuppressed by hand. */
  suppressed_until: string | null;
  /** State to return to on unsuppress; set only while SUPPRESSED. */
  suppressed_from: "ACTIVE" | "ACKNOWLEDGED" | null;
  cleared_value: number | null;
  clear_reason: ClearReason | null;
  /** 1 on raise, +1 per transition: orders an alarm's events and keys their deliveries. */
  sequence: number;
}

/** One record on alarms.raw: the alarm after the transition, and the transition. */
export interface AlarmEvent extends Alarm {
  event: AlarmEventName;
  event_at: string;
  /** The operator; null when the engine did it (raise, clear, expiry of a suppression). */
  event_by: string | null;
  note?: string;
  /** Only on `escalated` events (written by the alert router). */
  escalation_level?: number;
}

export type TransitionErrorCode = "invalid_transition" | "invalid_argument" | "unknown_alarm";

export class TransitionError extends Error {
  constructor(
    readonly code: TransitionErrorCode,
    readonly alarm_id: string,
    readonly action: AlarmAction,
    message: string,
    readonly state: AlarmState | null = null,
  ) {
    super(message);
    this.name = "TransitionError";
  }

  toJSON() {
    return { code: this.code, alarm_id: this.alarm_id, action: this.action, state: this.state, message: this.message };
  }
}

type Cell = { to: AlarmState | "previous" } | { refused: string };

/** The table above as data: `transition` follows it and the tests walk every cell. */
export const TRANSITION_TABLE: Record<AlarmState, Record<AlarmAction, Cell>> = {
  ACTIVE: {
    acknowledge: { to: "ACKNOWLEDGED" },
    clear: { to: "CLEARED" },
    suppress: { to: "SUPPRESSED" },
    unsuppress: { refused: "it is ACTIVE, not SUPPRESSED" },
  },
  ACKNOWLEDGED: {
    acknowledge: { refused: "it is already ACKNOWLEDGED" },
    clear: { to: "CLEARED" },
    suppress: { to: "SUPPRESSED" },
    unsuppress: { refused: "it is ACKNOWLEDGED, not SUPPRESSED" },
  },
  SUPPRESSED: {
    acknowledge: { refused: "it is SUPPRESSED; unsuppress it first" },
    clear: { to: "CLEARED" },
    suppress: { to: "SUPPRESSED" },
    unsuppress: { to: "previous" },
  },
  CLEARED: {
    acknowledge: { refused: "it is CLEARED" },
    clear: { refused: "it is already CLEARED" },
    suppress: { refused: "it is CLEARED" },
    unsuppress: { refused: "it is CLEARED, not SUPPRESSED" },
  },
};

export interface TransitionContext {
  /** Operator; required for acknowledge and suppress; null for the engine (clear, expiry). */
  by?: string | null;
  /** When: ISO string or epoch ms. */
  at: string | number;
  /** suppress only: end of the suppression (ISO or ms); omitted/null = until unsuppressed. */
  until?: string | number | null;
  /** clear only: the value that confirmed the return to normal. */
  value?: number | null;
  reason?: ClearReason;
  note?: string;
}

export type TransitionResult = { ok: true; alarm: Alarm; event: AlarmEvent } | { ok: false; error: TransitionError };

const VERB: Record<AlarmAction, string> = { acknowledge: "acknowledge", clear: "clear", suppress: "suppress", unsuppress: "unsuppress" };

function toMs(t: string | number): number {
  return typeof t === "number" ? t : Date.parse(t);
}
export const iso = (ms: number) => new Date(ms).toISOString();

function refuse(alarm: Pick<Alarm, "alarm_id" | "state">, action: AlarmAction, code: TransitionErrorCode, why: string): TransitionResult {
  return { ok: false, error: new TransitionError(code, alarm.alarm_id, action, `cannot ${VERB[action]} alarm ${alarm.alarm_id}: ${why}`, alarm.state) };
}

/** Applies one action to one alarm, following TRANSITION_TABLE. Never mutates `alarm`. */
export function transition(alarm: Alarm, action: AlarmAction, ctx: TransitionContext): TransitionResult {
  const cell = TRANSITION_TABLE[alarm.state][action];
  if ("refused" in cell) {
    let why = cell.refused;
    if (action === "acknowledge" && alarm.state === "ACKNOWLEDGED" && alarm.acked_by) why += ` (by ${alarm.acked_by} at ${alarm.acked_at})`;
    return refuse(alarm, action, "invalid_transition", why);
  }
  const atMs = toMs(ctx.at);
  if (!Number.isFinite(atMs)) return refuse(alarm, action, "invalid_argument", `time ${JSON.stringify(ctx.at)} is not a valid time`);
  const at = iso(atMs);
  const by = ctx.by ?? null;
  if ((action === "acknowledge" || action === "suppress") && (by === null || by.trim() === "")) {
    return refuse(alarm, action, "invalid_argument", "no user given");
  }
  const next: Alarm = { ...alarm, sequence: alarm.sequence + 1 };
  switch (action) {
    case "acknowledge":
      next.state = "ACKNOWLEDGED";
      next.acked_at = at;
      next.acked_by = by;
      break;
    case "clear":
      next.state = "CLEARED";
      next.cleared_at = at;
      next.cleared_value = ctx.value ?? null;
      next.clear_reason = ctx.reason ?? "condition_cleared";
      next.suppressed_from = null;
      break;
    case "suppress": {
      let until: string | null = null;
      if (ctx.until !== undefined && ctx.until !== null) {
        const untilMs = toMs(ctx.until);
        if (!Number.isFinite(untilMs)) return refuse(alarm, action, "invalid_argument", `until ${JSON.stringify(ctx.until)} is not a valid time`);
        if (untilMs <= atMs) return refuse(alarm, action, "invalid_argument", `until (${iso(untilMs)}) must be after the suppression time (${at})`);
        until = iso(untilMs);
      }
      next.suppressed_from = alarm.state === "SUPPRESSED" ? alarm.suppressed_from : (alarm.state as "ACTIVE" | "ACKNOWLEDGED");
      next.state = "SUPPRESSED";
      next.suppressed_at = at;
      next.suppressed_by = by;
      next.suppressed_until = until;
      break;
    }
    case "unsuppress":
      next.state = alarm.suppressed_from ?? "ACTIVE";
      next.suppressed_at = null;
      next.suppressed_by = null;
      next.suppressed_until = null;
      next.suppressed_from = null;
      break;
  }
  const event: AlarmEvent = { ...next, event: EVENT_OF[action], event_at: at, event_by: by };
  if (ctx.note !== undefined) event.note = ctx.note;
  return { ok: true, alarm: next, event };
}

/** Throwing form of `transition`, for callers that treat a refusal as a bug. */
export function mustTransition(alarm: Alarm, action: AlarmAction, ctx: TransitionContext): { alarm: Alarm; event: AlarmEvent } {
  const result = transition(alarm, action, ctx);
  if (!result.ok) throw result.error;
  return result;
}

// ---------------------------------------------------------------------------------------------
// Store

export const STORE_VERSION = 1;
/** Cleared alarms are kept this long (of `now`) so a late ack says "it is CLEARED" rather than "unknown alarm". */
export const DEFAULT_CLEARED_RETENTION_MS = 24 * 3_600_000;

/** JSON as it stands. One per input partition; holds the alarms of the tags that partition carries. */
export interface AlarmStore {
  version: typeof STORE_VERSION;
  /** Open alarms and those cleared within the retention. */
  alarms: Record<string, Alarm>;
  /** condition → alarm_id of its open (not CLEARED) alarm. */
  open: Record<string, string>;
}

export function createAlarmStore(): AlarmStore {
  return { version: STORE_VERSION, alarms: {}, open: {} };
}

/** Tags whose alarms changed since the last `takeDirtyAlarmTags`: kept beside the state, never in it. */
const dirty = new WeakMap<AlarmStore, Set<string>>();
const tagOf = (a: Pick<Alarm, "asset_id" | "parameter">) => `${a.asset_id}/${a.parameter}`;
function touch(store: AlarmStore, alarm: Alarm): void {
  let set = dirty.get(store);
  if (!set) dirty.set(store, (set = new Set()));
  set.add(tagOf(alarm));
}
export function takeDirtyAlarmTags(store: AlarmStore): string[] {
  const set = dirty.get(store);
  dirty.delete(store);
  return set ? [...set] : [];
}

/**
 * UUID (version 5 layout) from the condition and the raise time: a replay from a restored state gives
 * the same id, and two occurrences of one condition never share one (raise times strictly increase).
 */
export function alarmIdFor(condition: string, raisedAtMs: number): string {
  const h = createHash("sha1").update(`alarm\u0000${condition}\u0000${raisedAtMs}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

export type NewAlarm = Pick<Alarm, "asset_id" | "parameter" | "type" | "severity" | "message" | "value" | "threshold" | "condition" | "rule_id" | "limit"> & {
  unit?: string | undefined;
};

export function openAlarmFor(store: AlarmStore, condition: string): Alarm | undefined {
  const id = store.open[condition];
  return id === undefined ? undefined : store.alarms[id];
}

/** A condition became abnormal: a new ACTIVE alarm. Throws if the condition already has an open one (a bug in the caller). */
export function raiseAlarm(store: AlarmStore, init: NewAlarm, at: string | number): AlarmEvent {
  if (store.open[init.condition] !== undefined) throw new Error(`condition ${init.condition} already has open alarm ${store.open[init.condition]}`);
  const atMs = toMs(at);
  const { unit, ...rest } = init;
  const alarm: Alarm = {
    alarm_id: alarmIdFor(init.condition, atMs),
    ...rest,
    state: "ACTIVE",
    raised_at: iso(atMs),
    acked_at: null,
    acked_by: null,
    cleared_at: null,
    ...(unit !== undefined && unit !== "" ? { unit } : {}),
    suppressed_at: null,
    suppressed_by: null,
    suppressed_until: null,
    suppressed_from: null,
    cleared_value: null,
    clear_reason: null,
    sequence: 1,
  };
  store.alarms[alarm.alarm_id] = alarm;
  store.open[alarm.condition] = alarm.alarm_id;
  touch(store, alarm);
  return { ...alarm, event: "raised", event_at: alarm.raised_at, event_by: null };
}

function commit(store: AlarmStore, result: TransitionResult): TransitionResult {
  if (!result.ok) return result;
  store.alarms[result.alarm.alarm_id] = result.alarm;
  if (result.alarm.state === "CLEARED" && store.open[result.alarm.condition] === result.alarm.alarm_id) delete store.open[result.alarm.condition];
  touch(store, result.alarm);
  return result;
}

/** Applies an action to a stored alarm by id. Unknown ids are refused (`unknown_alarm`). */
export function applyAction(store: AlarmStore, alarm_id: string, action: AlarmAction, ctx: TransitionContext): TransitionResult {
  const alarm = store.alarms[alarm_id];
  if (!alarm) {
    return { ok: false, error: new TransitionError("unknown_alarm", alarm_id, action, `cannot ${VERB[action]} alarm ${alarm_id}: no such alarm in this partition (never raised here, or cleared more than the retention ago)`) };
  }
  return commit(store, transition(alarm, action, ctx));
}

export const acknowledge = (store: AlarmStore, alarm_id: string, by: string, at: string | number, note?: string) =>
  applyAction(store, alarm_id, "acknowledge", { by, at, ...(note !== undefined ? { note } : {}) });
export const suppress = (store: AlarmStore, alarm_id: string, by: string, at: string | number, until?: string | number | null, note?: string) =>
  applyAction(store, alarm_id, "suppress", { by, at, until: until ?? null, ...(note !== undefined ? { note } : {}) });
export const unsuppress = (store: AlarmStore, alarm_id: string, by: string | null, at: string | number, note?: string) =>
  applyAction(store, alarm_id, "unsuppress", { by, at, ...(note !== undefined ? { note } : {}) });

/** The condition returned to normal: clears its open alarm (whatever its state), or null when it has none. */
export function clearCondition(store: AlarmStore, condition: string, ctx: { at: string | number; value?: number | null; reason?: ClearReason }): AlarmEvent | null {
  const id = store.open[condition];
  if (id === undefined) return null;
  const result = applyAction(store, id, "clear", { by: null, ...ctx });
  return result.ok ? result.event : null;
}

/**
 * Suppressions whose `suppressed_until` ≤ now end: back to the state they came from, event
 * `unsuppressed` with `event_by` null and `event_at` = the until time (not `now`, so when the glue
 * calls this does not change the record). In until order, then alarm_id.
 */
export function expireSuppressions(store: AlarmStore, now: number): AlarmEvent[] {
  const due = Object.values(store.alarms)
    .filter((a) => a.state === "SUPPRESSED" && a.suppressed_until !== null && Date.parse(a.suppressed_until) <= now)
    .sort((a, b) => Date.parse(a.suppressed_until!) - Date.parse(b.suppressed_until!) || (a.alarm_id < b.alarm_id ? -1 : 1));
  const events: AlarmEvent[] = [];
  for (const a of due) {
    const result = applyAction(store, a.alarm_id, "unsuppress", { by: null, at: a.suppressed_until! });
    if (result.ok) events.push(result.event);
  }
  return events;
}

/** The earliest suppression end, for a glue that sets a timer; null when none is timed. */
export function nextSuppressionExpiry(store: AlarmStore): number | null {
  let next: number | null = null;
  for (const a of Object.values(store.alarms)) {
    if (a.state !== "SUPPRESSED" || a.suppressed_until === null) continue;
    const t = Date.parse(a.suppressed_until);
    if (next === null || t < next) next = t;
  }
  return next;
}

/** Forgets CLEARED alarms cleared more than `retentionMs` before `now`. */
export function pruneCleared(store: AlarmStore, now: number, retentionMs = DEFAULT_CLEARED_RETENTION_MS): number {
  let n = 0;
  for (const a of Object.values(store.alarms)) {
    if (a.state === "CLEARED" && a.cleared_at !== null && Date.parse(a.cleared_at) < now - retentionMs) {
      delete store.alarms[a.alarm_id];
      touch(store, a);
      n++;
    }
  }
  return n;
}

export function snapshotAlarmStore(store: AlarmStore): AlarmStore {
  return structuredClone(store);
}

export function restoreAlarmStore(snapshot: unknown): AlarmStore {
  const s = snapshot as Partial<AlarmStore> | null;
  if (!s || s.version !== STORE_VERSION || typeof s.alarms !== "object" || s.alarms === null) {
    throw new Error(`alarm store snapshot version ${JSON.stringify(s?.version)} is not ${STORE_VERSION}; refusing to misread it`);
  }
  const store = createAlarmStore();
  for (const a of Object.values(structuredClone(s.alarms) as Record<string, Alarm>)) putAlarm(store, a);
  return store;
}

/** Adds a restored alarm and its open-condition index entry. */
export function putAlarm(store: AlarmStore, alarm: Alarm): void {
  store.alarms[alarm.alarm_id] = alarm;
  if (alarm.state !== "CLEARED") store.open[alarm.condition] = alarm.alarm_id;
}

/** The alarms of one tag (for per-tag changelog records), by alarm_id. */
export function alarmsOfTag(store: AlarmStore, tag: string): Alarm[] {
  return Object.values(store.alarms)
    .filter((a) => tagOf(a) === tag)
    .sort((a, b) => (a.alarm_id < b.alarm_id ? -1 : a.alarm_id > b.alarm_id ? 1 : 0));
}

export function dropTagAlarms(store: AlarmStore, tag: string): void {
  for (const a of alarmsOfTag(store, tag)) {
    delete store.alarms[a.alarm_id];
    if (store.open[a.condition] === a.alarm_id) delete store.open[a.condition];
  }
}

// ---------------------------------------------------------------------------------------------
// Operator commands

const IsoTime = Type.String({ minLength: 1, description: "ISO 8601" });

/** An operator action as the API writes it (to a commands topic keyed `asset_id/parameter`, the alarm's tag). */
export const AlarmCommandSchema = Type.Object(
  {
    action: Type.Union(OPERATOR_ACTIONS.map((a) => Type.Literal(a))),
    alarm_id: Type.String({ minLength: 1 }),
    by: Type.String({ minLength: 1, description: "operator user name" }),
    at: IsoTime,
    until: Type.Optional(Type.Union([IsoTime, Type.Null()], { description: "suppress only: end of the suppression; omitted = until unsuppressed" })),
    note: Type.Optional(Type.String({ maxLength: 2000 })),
    command_id: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: "set by the API: the evaluator reports the command's outcome under it (alarms.command_outcomes)" })),
  },
  { additionalProperties: false },
);
export type AlarmCommand = Static<typeof AlarmCommandSchema>;

export interface CommandError {
  code: TransitionErrorCode | "invalid_command";
  message: string;
  alarm_id: string | null;
  /** The alarm's state when the command was refused; null when unknown (no such alarm, bad command). */
  state: AlarmState | null;
}

export type CommandResult = { events: AlarmEvent[]; error: null } | { events: []; error: CommandError };

/** Validates and applies one operator command; refusals come back as `error`, never thrown. */
export function applyCommand(store: AlarmStore, command: unknown): CommandResult {
  if (!Value.Check(AlarmCommandSchema, command)) {
    const id = (command as { alarm_id?: unknown } | null)?.alarm_id;
    return { events: [], error: { code: "invalid_command", message: formatFieldErrors(schemaErrors(AlarmCommandSchema, command)), alarm_id: typeof id === "string" ? id : null, state: null } };
  }
  const ctx: TransitionContext = { by: command.by, at: command.at, ...(command.note !== undefined ? { note: command.note } : {}) };
  if (command.action === "suppress") ctx.until = command.until ?? null;
  const result = applyAction(store, command.alarm_id, command.action, ctx);
  if (!result.ok) return { events: [], error: { code: result.error.code, message: result.error.message, alarm_id: command.alarm_id, state: result.error.state } };
  return { events: [result.event], error: null };
}
