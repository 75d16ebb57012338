/**
 * Alarm evaluation: readings from telemetry.clean in, alarm transitions (alarms.raw records) out.
 *
 * ```ts
 * const engine = createAlarmEngine();                          // one per input partition
 * const events = evaluateReading(engine, reading, rules);      // raise / clear, on device time
 * const r = applyAlarmCommand(engine, command);                // operator ack / suppress / unsuppress
 * const expired = tickAlarmEngine(engine, now);                // suppressions that ran out
 * outputs.push(...events.map(toAlarmRecord));
 * ```
 *
 * Per condition (tag × rule × limit) a small machine on event time:
 *
 *   normal ──abnormal──▶ pending_on ──held on_delay──▶ active (raise) ──normal──▶ pending_off ──held off_delay──▶ normal (clear)
 *            (on_delay 0: straight to active)    └─not abnormal─▶ normal          └─not normal─▶ active
 *
 * "abnormal" = beyond the limit (strictly: value > high, value < low, rate > max); "normal" = back past
 * the deadband (value < high − deadband, value > low + deadband, rate < max − deadband). Between the two
 * is the hysteresis band: it keeps an active alarm active and does not count towards a pending raise.
 */
import type { Reading } from "../../envelope/reading.ts";
import {
  alarmsOfTag,
  applyCommand,
  clearCondition,
  createAlarmStore,
  dropTagAlarms,
  expireSuppressions,
  openAlarmFor,
  pruneCleared,
  putAlarm,
  raiseAlarm,
  takeDirtyAlarmTags,
  DEFAULT_CLEARED_RETENTION_MS,
  STORE_VERSION,
  type Alarm,
  type AlarmEvent,
  type AlarmStore,
  type CommandResult,
} from "./lifecycle.ts";
import { conditionKey, renderMessage, resolveConditions, type AlarmRuleSet, type ConditionSpec } from "./rules.ts";

export const ALARMS_RAW_TOPIC = "alarms.raw";
export const ENGINE_VERSION = 1;

export type ConditionPhase = "normal" | "pending_on" | "active" | "pending_off";

export interface ConditionState {
  phase: ConditionPhase;
  /** Device time (ms) the pending phase started; null in normal/active. */
  since: number | null;
}

export interface TagState {
  /** Device time (ms) and value of the latest evaluated reading: ordering and rate of change. */
  last_time: number | null;
  last_value: number | null;
  /** By ConditionSpec.key (`rule_id|limit`). */
  conditions: Record<string, ConditionState>;
}

/** JSON as it stands: `tags` by `asset_id/parameter`, and the lifecycle store of those tags' alarms. */
export interface AlarmEngineState {
  version: typeof ENGINE_VERSION;
  tags: Record<string, TagState>;
  store: AlarmStore;
}

export type ReadingInput = Pick<Reading, "asset_id" | "parameter" | "value" | "quality"> & {
  unit?: string | undefined;
  timestamps: Pick<Reading["timestamps"], "device_time" | "gateway_time">;
};

export function createAlarmEngine(): AlarmEngineState {
  return { version: ENGINE_VERSION, tags: {}, store: createAlarmStore() };
}

const dirtyTags = new WeakMap<AlarmEngineState, Set<string>>();
function touch(engine: AlarmEngineState, tag: string): void {
  let set = dirtyTags.get(engine);
  if (!set) dirtyTags.set(engine, (set = new Set()));
  set.add(tag);
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

interface Observation {
  abnormal: boolean;
  normal: boolean;
  /** What the alarm reports as `value`: the reading, or for rate of change the rate per second. */
  measured: number;
}

function observe(spec: ConditionSpec, value: number, rate: number | null): Observation | null {
  const T = spec.threshold;
  const db = spec.deadband;
  switch (spec.limit) {
    case "high":
    case "high_high":
      return { abnormal: value > T, normal: value < T - db, measured: value };
    case "low":
    case "low_low":
      return { abnormal: value < T, normal: value > T + db, measured: value };
    case "rate_of_change": {
      if (rate === null) return null; // first reading of the tag: no rate yet, nothing changes
      const m = spec.direction === "rising" ? rate : spec.direction === "falling" ? -rate : Math.abs(rate);
      return { abnormal: m > T, normal: m < T - db, measured: round6(rate) };
    }
  }
}

function unitOf(spec: ConditionSpec, reading: ReadingInput): string | undefined {
  const unit = spec.unit ?? reading.unit;
  if (spec.limit === "rate_of_change") return unit ? `${unit}/s` : "/s";
  return unit || undefined;
}

function raise(engine: AlarmEngineState, reading: ReadingInput, spec: ConditionSpec, measured: number, t: number): AlarmEvent | null {
  const condition = conditionKey(reading.asset_id, reading.parameter, spec);
  if (openAlarmFor(engine.store, condition)) return null; // already open (state restored from an older cut): nothing new
  const unit = unitOf(spec, reading);
  const message = renderMessage(spec.message, {
    asset_id: reading.asset_id,
    parameter: reading.parameter,
    type: spec.type,
    severity: spec.severity,
    limit: spec.limit,
    value: measured,
    threshold: spec.threshold,
    unit,
  });
  return raiseAlarm(
    engine.store,
    {
      asset_id: reading.asset_id,
      parameter: reading.parameter,
      type: spec.type,
      severity: spec.severity,
      message,
      value: measured,
      threshold: spec.threshold,
      unit,
      condition,
      rule_id: spec.rule_id,
      limit: spec.limit,
    },
    t,
  );
}

/** One step of a condition's machine. Returns "raise", "clear" or null. Mutates `cs`. */
export function stepCondition(cs: ConditionState, spec: Pick<ConditionSpec, "on_delay_ms" | "off_delay_ms">, obs: Pick<Observation, "abnormal" | "normal">, t: number): "raise" | "clear" | null {
  switch (cs.phase) {
    case "normal":
      if (!obs.abnormal) return null;
      if (spec.on_delay_ms <= 0) {
        cs.phase = "active";
        cs.since = null;
        return "raise";
      }
      cs.phase = "pending_on";
      cs.since = t;
      return null;
    case "pending_on":
      if (!obs.abnormal) {
        cs.phase = "normal";
        cs.since = null;
        return null;
      }
      if (t - cs.since! >= spec.on_delay_ms) {
        cs.phase = "active";
        cs.since = null;
        return "raise";
      }
      return null;
    case "active":
      if (!obs.normal) return null;
      if (spec.off_delay_ms <= 0) {
        cs.phase = "normal";
        cs.since = null;
        return "clear";
      }
      cs.phase = "pending_off";
      cs.since = t;
      return null;
    case "pending_off":
      if (!obs.normal) {
        cs.phase = "active";
        cs.since = null;
        return null;
      }
      if (t - cs.since! >= spec.off_delay_ms) {
        cs.phase = "normal";
        cs.since = null;
        return "clear";
      }
      return null;
  }
}

/**
 * Evaluates one reading against the rules. Skipped (no output, no state change): tags no rule
 * covers, non-numeric or non-finite values, qualities outside `evaluate_qualities`, and readings not
 * newer (device time) than the tag's latest evaluated one: an out-of-order reading has no trustworthy
 * predecessor and would run the delays backwards. Conditions of rules that no longer apply to the tag
 * have their open alarm cleared with `clear_reason: "rule_removed"`.
 */
export function evaluateReading(engine: AlarmEngineState, reading: ReadingInput, rules: AlarmRuleSet): AlarmEvent[] {
  const tag = `${reading.asset_id}/${reading.parameter}`;
  const specs = resolveConditions(rules, reading.asset_id, reading.parameter);
  const existing = engine.tags[tag];
  if (specs.length === 0 && !existing) return [];
  const value = reading.value;
  if (typeof value !== "number" || !Number.isFinite(value)) return [];
  if (!rules.evaluate_qualities.includes(reading.quality)) return [];
  const t = Date.parse(reading.timestamps.device_time ?? reading.timestamps.gateway_time);
  if (!Number.isFinite(t)) return [];
  const ts: TagState = existing ?? { last_time: null, last_value: null, conditions: {} };
  if (ts.last_time !== null && t <= ts.last_time) return [];
  engine.tags[tag] = ts;
  touch(engine, tag);

  const events: AlarmEvent[] = [];
  const live = new Set(specs.map((s) => s.key));
  for (const key of Object.keys(ts.conditions).sort()) {
    if (live.has(key)) continue;
    delete ts.conditions[key];
    const cleared = clearCondition(engine.store, `${tag}|${key}`, { at: t, value, reason: "rule_removed" });
    if (cleared) events.push(cleared);
  }

  const rate = ts.last_time !== null && ts.last_value !== null ? (value - ts.last_value) / ((t - ts.last_time) / 1000) : null;
  for (const spec of specs) {
    const obs = observe(spec, value, rate);
    const cs = (ts.conditions[spec.key] ??= { phase: "normal", since: null });
    if (!obs) continue;
    const step = stepCondition(cs, spec, obs, t);
    if (step === "raise") {
      const event = raise(engine, reading, spec, obs.measured, t);
      if (event) events.push(event);
    } else if (step === "clear") {
      const cleared = clearCondition(engine.store, conditionKey(reading.asset_id, reading.parameter, spec), { at: t, value: obs.measured });
      if (cleared) events.push(cleared);
    }
  }
  ts.last_time = t;
  ts.last_value = value;
  if (specs.length === 0) delete engine.tags[tag];
  return events;
}

/** Operator ack / suppress / unsuppress (see `AlarmCommandSchema`); refusals come back as `error`. */
export function applyAlarmCommand(engine: AlarmEngineState, command: unknown): CommandResult {
  return applyCommand(engine.store, command);
}

export interface TickOptions {
  cleared_retention_ms?: number;
}

/** Ends suppressions due by `now` and forgets CLEARED alarms past the retention. */
export function tickAlarmEngine(engine: AlarmEngineState, now: number, options: TickOptions = {}): AlarmEvent[] {
  const events = expireSuppressions(engine.store, now);
  pruneCleared(engine.store, now, options.cleared_retention_ms ?? DEFAULT_CLEARED_RETENTION_MS);
  return events;
}

/** Kafka record for alarms.raw, keyed by alarm_id so every transition of one alarm stays in order. */
export function toAlarmRecord(event: AlarmEvent): { topic: string; key: string; value: string } {
  return { topic: ALARMS_RAW_TOPIC, key: event.alarm_id, value: JSON.stringify(event) };
}

// ---------------------------------------------------------------------------------------------
// State: whole snapshot, or per-tag changelog records

interface TagRecord extends TagState {
  version: typeof ENGINE_VERSION;
  alarms: Alarm[];
}

export interface ChangelogRecord {
  key: string;
  /** null deletes the key (compaction drops it). */
  value: string | null;
}

/**
 * The tags whose state or alarms changed since the last call, one record each keyed by the tag
 * (`asset_id/parameter`, like the input): its condition phases, last reading, and its alarms (open, and
 * cleared within the retention). Write them to the changelog partition numbered like the input's, in the
 * same transaction as the outputs.
 */
export function takeAlarmEngineChanges(engine: AlarmEngineState): ChangelogRecord[] {
  const tags = new Set([...(dirtyTags.get(engine) ?? []), ...takeDirtyAlarmTags(engine.store)]);
  dirtyTags.delete(engine);
  return [...tags].sort().map((tag) => {
    const ts = engine.tags[tag];
    const alarms = alarmsOfTag(engine.store, tag);
    if (!ts && alarms.length === 0) return { key: tag, value: null };
    const record: TagRecord = { version: ENGINE_VERSION, last_time: ts?.last_time ?? null, last_value: ts?.last_value ?? null, conditions: ts?.conditions ?? {}, alarms };
    return { key: tag, value: JSON.stringify(record) };
  });
}

/** Rebuilds a partition's engine from its changelog records in offset order (later wins, null deletes). */
export function restoreAlarmEngineFromChanges(records: Iterable<ChangelogRecord>): AlarmEngineState {
  const engine = createAlarmEngine();
  for (const { key, value } of records) {
    delete engine.tags[key];
    dropTagAlarms(engine.store, key);
    if (value === null) continue;
    const record = JSON.parse(value) as TagRecord;
    if (record.version !== ENGINE_VERSION) throw new Error(`alarm changelog record ${key} has version ${JSON.stringify(record.version)}, not ${ENGINE_VERSION}; refusing to misread it`);
    if (record.last_time !== null || Object.keys(record.conditions).length > 0) {
      engine.tags[key] = { last_time: record.last_time, last_value: record.last_value, conditions: record.conditions };
    }
    for (const alarm of record.alarms) putAlarm(engine.store, alarm);
  }
  takeDirtyAlarmTags(engine.store);
  return engine;
}

export function snapshotAlarmEngine(engine: AlarmEngineState): AlarmEngineState {
  return structuredClone(engine);
}

export function restoreAlarmEngine(snapshot: unknown): AlarmEngineState {
  const s = snapshot as Partial<AlarmEngineState> | null;
  if (!s || s.version !== ENGINE_VERSION || !s.store || s.store.version !== STORE_VERSION) {
    throw new Error(`alarm engine snapshot version ${JSON.stringify(s?.version)} is not ${ENGINE_VERSION}; refusing to misread it`);
  }
  const engine = createAlarmEngine();
  engine.tags = structuredClone(s.tags ?? {});
  for (const alarm of Object.values(structuredClone(s.store.alarms))) putAlarm(engine.store, alarm);
  return engine;
}
