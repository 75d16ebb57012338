import { FormatRegistry, Type, type Static, type TSchema } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import { schemaErrors, type FieldError } from "../../config/schema-errors.ts";
import { readingKey, ReadingSchema, type Quality, type Reading } from "../../envelope/reading.ts";
import { resolveRule, type ResolvedRule, type RuleSet } from "./rules.ts";

export const TOPICS = {
  telemetryRaw: "telemetry.raw",
  telemetryClean: "telemetry.clean",
  telemetryDlq: "dlq.invalid_telemetry",
  eventsRaw: "events.raw",
  eventsClean: "events.clean",
  eventsDlq: "dlq.invalid_events",
  alarmsRaw: "alarms.raw",
  alarmsClean: "alarms.clean",
} as const;

/** Marks the events this worker writes itself, as against events validated from events.raw. */
export const VALIDATOR_SOURCE = "quality_validator";
/** Seed: a gap is more than twice the poll interval between readings. */
export const GAP_FACTOR = 2;
export const SNAPSHOT_VERSION = 1;

// TypeBox checks `format` only for registered formats; without this every timestamp fails as "unknown format".
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i;
if (!FormatRegistry.Has("date-time")) FormatRegistry.Set("date-time", (v) => RFC3339.test(v) && !Number.isNaN(Date.parse(v)));

const IsoTime = Type.String({ format: "date-time" });
const Name = Type.String({ minLength: 1, maxLength: 256 });

export const EVENT_SEVERITIES = ["CRITICAL", "ERROR", "WARNING", "INFO"] as const;

/** A discrete event on events.raw/events.clean. Gap and clock events written here have this shape too. */
export const EventSchema = Type.Object(
  {
    event_type: Type.String({ minLength: 1, maxLength: 128 }),
    asset_id: Name,
    parameter: Type.Optional(Name),
    severity: Type.Optional(Type.Union(EVENT_SEVERITIES.map((s) => Type.Literal(s)))),
    time: IsoTime,
    message: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);
export type EventRecord = Static<typeof EventSchema>;

export const ALARM_SEVERITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"] as const;
export const ALARM_STATES = ["ACTIVE", "ACKNOWLEDGED", "CLEARED", "SUPPRESSED"] as const;

/** The seed's alarm message: identity, severity and lifecycle state are required, the rest typed when present. */
export const AlarmSchema = Type.Object(
  {
    alarm_id: Name,
    asset_id: Name,
    type: Name,
    severity: Type.Union(ALARM_SEVERITIES.map((s) => Type.Literal(s))),
    state: Type.Union(ALARM_STATES.map((s) => Type.Literal(s))),
    raised_at: Type.Optional(IsoTime),
    acked_at: Type.Optional(Type.Union([IsoTime, Type.Null()])),
    acked_by: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    cleared_at: Type.Optional(Type.Union([IsoTime, Type.Null()])),
    message: Type.Optional(Type.String()),
    value: Type.Optional(Type.Union([Type.Number(), Type.Boolean(), Type.String(), Type.Null()])),
    threshold: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
    unit: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);

export interface ValidatorInput {
  topic: string;
  key?: string | undefined;
  /** The record value as consumed (UTF-8 text). */
  value: string;
  partition: number;
  offset: bigint | number;
  /** Kafka record timestamp (ms); fills `timestamps.kafka_time` when the producer left it null. */
  timestamp?: bigint | number | undefined;
}

export interface Output {
  topic: string;
  key: string;
  value: string;
}

/** What happened to one reading, for the completeness ledger (`recordOutcome`). */
export interface ReadingOutcome {
  asset_id: string;
  parameter: string;
  /** Effective device time: gateway_time when the device gave none. */
  device_time: string;
  gateway_time: string;
  outcome: "accepted" | "rejected" | "duplicate";
  expected_interval_ms: number | null;
  /** Set when this reading ended a gap. */
  gap: { missing_samples: number; actual_gap_ms: number } | null;
}

export interface ValidateResult {
  outputs: Output[];
  /** Present for every schema-valid reading; absent for events, alarms and unreadable input. */
  outcome?: ReadingOutcome;
}

export type DlqReason = "malformed_json" | "schema_invalid" | "duplicate" | "out_of_range" | "adapter_bad";

export interface DlqRecord {
  reason: DlqReason;
  /** Human-readable, the seed's field name. */
  validation_failure_reason: string;
  error_paths: FieldError[];
  /** The input bytes, so a DLQ re-drive can re-inject them unchanged. */
  raw_base64: string;
  /** The reading as judged (quality BAD, notes), when it passed the schema. */
  reading?: Reading;
  source_topic: string;
  source_partition: number;
  /** A string: Kafka offsets are int64, past JSON's exact integers. */
  source_offset: string;
  /** Processing time; the one field that depends on `now`, never on state. */
  failed_at: string;
}

export interface ValidationNote {
  code: "device_time_missing" | "range" | "rate_of_change";
  message: string;
}

type ClockEventType = "clock_skew" | "ntp_warning";

interface TagState {
  /** Ascending device times (ms) within the dedup window, at most `dedup_max_per_tag`. */
  seen: number[];
  /** Latest device time of any non-duplicate reading, for gap detection. */
  last_time: number | null;
  /** Latest GOOD/SUSPECT numeric reading, the rate-of-change reference. */
  ref: [time: number, value: number] | null;
  /** Last clock event written for this tag, by gateway time, and how many were held back since. */
  clock: { type: ClockEventType; at: number; suppressed: number } | null;
}

/** One per input partition. Every field is a function of the records processed, never of wall time. */
export interface ValidatorState {
  tags: Map<string, TagState>;
  /** Tags changed since the last `takeStateChanges`; not itself state. */
  dirty: Set<string>;
}

/** One record of a compacted changelog: the key's latest state, JSON text. */
export interface StateEntry {
  key: string;
  value: string;
}

export interface ValidatorSnapshot {
  version: typeof SNAPSHOT_VERSION;
  tags: [key: string, tag: TagState][];
}

export function createValidatorState(): ValidatorState {
  return { tags: new Map(), dirty: new Set() };
}

export function snapshotState(state: ValidatorState): ValidatorSnapshot {
  return structuredClone({ version: SNAPSHOT_VERSION, tags: [...state.tags] });
}

export function restoreState(snapshot: ValidatorSnapshot): ValidatorState {
  if (snapshot.version !== SNAPSHOT_VERSION) throw new Error(`validator snapshot version ${snapshot.version}, expected ${SNAPSHOT_VERSION}`);
  return { tags: new Map(structuredClone(snapshot.tags)), dirty: new Set() };
}

/**
 * Changelog record format. 2: the dedup window as runs of equal steps (`encodeTimes`); 1 (still read):
 * the plain list, which at 1 Hz held 600 13-digit times and made each record ~8 KB, rewritten per batch.
 */
export const CHANGELOG_VERSION = 2;
const PLAIN_TIMES_VERSION = 1;

/** Ascending times as [first, step, count, step, count, ...]: readings at a steady rate are 3 numbers. */
export function encodeTimes(times: number[]): number[] {
  if (times.length === 0) return [];
  const out = [times[0] as number];
  for (let i = 1; i < times.length; i++) {
    const step = (times[i] as number) - (times[i - 1] as number);
    if (out.length > 1 && out[out.length - 2] === step) (out[out.length - 1] as number)++;
    else out.push(step, 1);
  }
  return out;
}

export function decodeTimes(runs: number[]): number[] {
  if (runs.length === 0) return [];
  const times = [runs[0] as number];
  let time = runs[0] as number;
  for (let i = 1; i < runs.length; i += 2) {
    for (let n = runs[i + 1] as number; n > 0; n--) times.push((time += runs[i] as number));
  }
  return times;
}

/** One tag's changelog value (JSON), or null when the validator holds nothing for the key. */
export function stateRecord(state: ValidatorState, key: string): string | null {
  const tag = state.tags.get(key);
  if (!tag) return null;
  return JSON.stringify({ version: CHANGELOG_VERSION, seen: encodeTimes(tag.seen), last_time: tag.last_time, ref: tag.ref, clock: tag.clock });
}

/** Changelog records (key `asset_id/parameter`) for the tags changed since the last call. */
export function takeStateChanges(state: ValidatorState): StateEntry[] {
  const entries = [...state.dirty].map((key) => ({ key, value: stateRecord(state, key) as string }));
  state.dirty.clear();
  return entries;
}

/** Rebuild from changelog records in offset order (later records of a key win; a null value deletes it). */
export function restoreStateFromChanges(entries: Iterable<{ key?: string | undefined; value?: string | null | undefined }>): ValidatorState {
  const state = createValidatorState();
  for (const { key, value } of entries) {
    if (key === undefined) continue;
    if (value == null) {
      state.tags.delete(key);
      continue;
    }
    const { version, ...tag } = JSON.parse(value) as { version: number } & TagState;
    if (version === CHANGELOG_VERSION) tag.seen = decodeTimes(tag.seen);
    else if (version !== PLAIN_TIMES_VERSION) throw new Error(`validator state record ${key} has version ${version}, expected ${CHANGELOG_VERSION} or ${PLAIN_TIMES_VERSION}`);
    state.tags.set(key, tag);
  }
  return state;
}

/** Worst first wins: SUSPECT (a check found an anomaly) outranks UNCERTAIN (low confidence, nothing wrong seen). */
const QUALITY_RANK: Record<Quality, number> = { GOOD: 0, UNCERTAIN: 1, SUSPECT: 2, BAD: 3 };
const worse = (a: Quality, b: Quality): Quality => (QUALITY_RANK[b] > QUALITY_RANK[a] ? b : a);

const iso = (ms: number) => new Date(ms).toISOString();

/** Index of the first element ≥ x in an ascending array. */
function lowerBound(sorted: number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function isDuplicate(tag: TagState, time: number): boolean {
  return tag.seen[lowerBound(tag.seen, time)] === time;
}

/** Remember a device time; forget those older than the window behind the newest, and the oldest past the cap. */
function remember(tag: TagState, time: number, rules: RuleSet): void {
  tag.seen.splice(lowerBound(tag.seen, time), 0, time);
  const newest = tag.seen[tag.seen.length - 1] as number;
  const expired = lowerBound(tag.seen, newest - rules.dedup_window_ms);
  const excess = Math.max(expired, tag.seen.length - rules.dedup_max_per_tag);
  if (excess > 0) tag.seen.splice(0, excess);
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false; message: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, message: (error as Error).message };
  }
}

function dlq(
  topic: string,
  key: string,
  input: ValidatorInput,
  now: Date,
  reason: DlqReason,
  text: string,
  extra: { error_paths?: FieldError[]; reading?: Reading } = {},
): Output {
  const record: DlqRecord = {
    reason,
    validation_failure_reason: text,
    error_paths: extra.error_paths ?? [],
    raw_base64: Buffer.from(input.value, "utf8").toString("base64"),
    ...(extra.reading ? { reading: extra.reading } : {}),
    source_topic: input.topic,
    source_partition: input.partition,
    source_offset: String(input.offset),
    failed_at: now.toISOString(),
  };
  return { topic, key, value: JSON.stringify(record) };
}

/** Unkeyed junk keeps its source partition's order in the DLQ. */
const fallbackKey = (input: ValidatorInput) => input.key ?? `${input.topic}/${input.partition}`;

/**
 * Compiled once: nearly every record is valid, and a generated check costs a fraction of collecting
 * errors (`schemaErrors` walks the whole schema), so errors are only collected for a failure.
 */
const READING_CHECK = TypeCompiler.Compile(ReadingSchema);
const EVENT_CHECK = TypeCompiler.Compile(EventSchema);
const ALARM_CHECK = TypeCompiler.Compile(AlarmSchema);

/** JSON parse + schema check shared by every topic; `null` means the DLQ record was written. */
function parseAs<T extends TSchema>(check: TypeCheck<T>, input: ValidatorInput, dlqTopic: string, now: Date, outputs: Output[]): Static<T> | null {
  const parsed = parseJson(input.value);
  if (!parsed.ok) {
    const error_paths = [{ path: "(root)", message: parsed.message }];
    outputs.push(dlq(dlqTopic, fallbackKey(input), input, now, "malformed_json", `malformed JSON: ${parsed.message}`, { error_paths }));
    return null;
  }
  if (!check.Check(parsed.value)) {
    const errors = schemaErrors(check.Schema(), parsed.value);
    const text = `schema: ${errors.map((e) => `${e.path}: ${e.message}`).join("; ")}`;
    outputs.push(dlq(dlqTopic, fallbackKey(input), input, now, "schema_invalid", text, { error_paths: errors }));
    return null;
  }
  return parsed.value as Static<T>;
}

function event(type: string, reading: Reading, time: number, fields: Record<string, unknown>): Output {
  const value = { event_type: type, severity: "WARNING", source: VALIDATOR_SOURCE, asset_id: reading.asset_id, parameter: reading.parameter, time: iso(time), ...fields };
  return { topic: TOPICS.eventsClean, key: readingKey(reading), value: JSON.stringify(value) };
}

/**
 * One clock event per tag per `clock_event_interval_ms` of gateway time (gateway time, not wall time, so
 * a replay writes the same events); an escalation from clock_skew to ntp_warning is never held back.
 */
function clockEvent(tag: TagState, reading: Reading, skew: number, gatewayTime: number, rules: RuleSet): Output | null {
  const size = Math.abs(skew);
  const type: ClockEventType | null = size > rules.ntp_warning_ms ? "ntp_warning" : size > rules.clock_skew_warning_ms ? "clock_skew" : null;
  if (type === null) return null;
  const last = tag.clock;
  const escalation = last?.type === "clock_skew" && type === "ntp_warning";
  if (last && !escalation && gatewayTime - last.at < rules.clock_event_interval_ms) {
    last.suppressed += 1;
    return null;
  }
  tag.clock = { type, at: gatewayTime, suppressed: 0 };
  const threshold = type === "ntp_warning" ? rules.ntp_warning_ms : rules.clock_skew_warning_ms;
  return event(type, reading, gatewayTime, {
    skew_ms: skew,
    threshold_ms: threshold,
    device_time: reading.timestamps.device_time,
    gateway_time: reading.timestamps.gateway_time,
    suppressed_since_last: last?.suppressed ?? 0,
    message: type === "ntp_warning" ? `clock skew ${skew} ms exceeds ${threshold} ms: check NTP on the device or gateway` : `clock skew ${skew} ms exceeds ${threshold} ms`,
  });
}

/** Seed: more than 2 × the interval since the previous reading → gap event; missing = gap/interval − 1 (5000/1000 → 4). */
function detectGap(tag: TagState, time: number, interval: number | null): ReadingOutcome["gap"] {
  if (interval === null || tag.last_time === null) return null;
  const gap = time - tag.last_time;
  if (gap <= GAP_FACTOR * interval) return null;
  return { actual_gap_ms: gap, missing_samples: Math.round(gap / interval) - 1 };
}

/** Range and rate-of-change checks on a numeric value; returns the quality they call for and why. */
function checkValue(tag: TagState, time: number, value: number, rule: ResolvedRule, notes: ValidationNote[]): Quality {
  let quality: Quality = "GOOD";
  const range = rule.range;
  if (range && ((range.min !== null && value < range.min) || (range.max !== null && value > range.max))) {
    const bounds = `[${range.min ?? "-∞"}, ${range.max ?? "∞"}]`;
    notes.push({ code: "range", message: `Value ${value} outside valid range ${bounds}` });
    quality = range.action === "mark_bad" ? "BAD" : "SUSPECT";
  }
  // Only a reading newer than the reference is judged: a late one has no trustworthy predecessor here.
  if (rule.max_change_per_s !== null && tag.ref && time > tag.ref[0]) {
    const perSecond = Math.abs(value - tag.ref[1]) / ((time - tag.ref[0]) / 1000);
    if (perSecond > rule.max_change_per_s) {
      notes.push({ code: "rate_of_change", message: `Abnormal rate of change: ${+perSecond.toPrecision(6)}/s exceeds ${rule.max_change_per_s}/s` });
      quality = worse(quality, "SUSPECT");
    }
  }
  return quality;
}

function validateReading(state: ValidatorState, input: ValidatorInput, rules: RuleSet, now: Date): ValidateResult {
  const outputs: Output[] = [];
  const reading = parseAs(READING_CHECK, input, TOPICS.telemetryDlq, now, outputs);
  if (!reading) return { outputs };

  const key = readingKey(reading);
  const ts = reading.timestamps;
  const notes: ValidationNote[] = [];
  let quality = reading.quality;
  const gatewayTime = Date.parse(ts.gateway_time);
  if (ts.device_time === null) {
    // Seed: device_time is authoritative; when missing, use gateway_time and flag UNCERTAIN.
    ts.device_time = ts.gateway_time;
    reading.metadata.time_source = "gateway";
    reading.clock_skew_ms = null;
    quality = worse(quality, "UNCERTAIN");
    notes.push({ code: "device_time_missing", message: "device_time missing: gateway_time used" });
  } else {
    reading.clock_skew_ms = gatewayTime - Date.parse(ts.device_time);
  }
  if (ts.kafka_time === null && input.timestamp !== undefined) ts.kafka_time = iso(Number(input.timestamp));
  const time = Date.parse(ts.device_time);

  let tag = state.tags.get(key);
  if (!tag) state.tags.set(key, (tag = { seen: [], last_time: null, ref: null, clock: null }));
  const rule = resolveRule(rules, reading);
  const outcome: ReadingOutcome = {
    asset_id: reading.asset_id,
    parameter: reading.parameter,
    device_time: ts.device_time,
    gateway_time: ts.gateway_time,
    outcome: "accepted",
    expected_interval_ms: rule.expected_interval_ms,
    gap: null,
  };
  const judged = (q: Quality): Reading => {
    reading.quality = q;
    if (notes.length > 0) (reading as Record<string, unknown>).validation_notes = notes;
    return reading;
  };
  const forward = (q: Quality): ValidateResult => {
    outputs.push({ topic: TOPICS.telemetryClean, key, value: JSON.stringify(judged(q)) });
    return { outputs, outcome };
  };
  const reject = (reason: DlqReason, text: string): ValidateResult => {
    outputs.push(dlq(TOPICS.telemetryDlq, key, input, now, reason, text, { reading: judged("BAD") }));
    outcome.outcome = reason === "duplicate" ? "duplicate" : "rejected";
    return { outputs, outcome };
  };

  // Seed: duplicate → quality BAD, "Duplicate message", dropped. Checked first so a replay writes no events twice.
  if (isDuplicate(tag, time)) return reject("duplicate", "Duplicate message");
  remember(tag, time, rules);
  state.dirty.add(key);

  if (reading.clock_skew_ms !== null) {
    const clock = clockEvent(tag, reading, reading.clock_skew_ms, gatewayTime, rules);
    if (clock) outputs.push(clock);
  }
  outcome.gap = detectGap(tag, time, rule.expected_interval_ms);
  if (outcome.gap && tag.last_time !== null) {
    outputs.push(
      event("gap", reading, time, {
        expected_interval_ms: rule.expected_interval_ms,
        ...outcome.gap,
        from: iso(tag.last_time),
        to: ts.device_time,
        message: `${outcome.gap.missing_samples} samples missing`,
      }),
    );
  }
  // A BAD reading from the adapter still shows the poll happened, so it moves the gap clock.
  tag.last_time = Math.max(tag.last_time ?? time, time);

  // Seed: BAD → DLQ, never to sinks. The adapter's own BAD (device offline, value null) needs no checks.
  if (quality === "BAD") return reject("adapter_bad", adapterReason(reading));
  if (typeof reading.value === "number") {
    quality = worse(quality, checkValue(tag, time, reading.value, rule, notes));
    if (quality === "BAD") return reject("out_of_range", notes.find((n) => n.code === "range")?.message ?? "out of range");
    if ((quality === "GOOD" || quality === "SUSPECT") && (!tag.ref || time > tag.ref[0])) tag.ref = [time, reading.value];
  }
  return forward(quality);
}

function adapterReason(reading: Reading): string {
  const detail = reading.metadata.error ?? reading.metadata.status_text;
  return `quality BAD from adapter${detail ? `: ${detail}` : ""}`;
}

/**
 * Judge one consumed record and say where it goes. Never throws on bad input: unreadable or invalid
 * records become DLQ records. `now` only stamps `failed_at` on DLQ records; state and routing depend on
 * the records alone, so replaying from a snapshot's offset reproduces the same outputs.
 */
export function validate(state: ValidatorState, input: ValidatorInput, rules: RuleSet, now: Date): ValidateResult {
  switch (input.topic) {
    case TOPICS.telemetryRaw:
      return validateReading(state, input, rules, now);
    case TOPICS.eventsRaw: {
      const outputs: Output[] = [];
      const ev = parseAs(EVENT_CHECK, input, TOPICS.eventsDlq, now, outputs);
      // The original bytes go on unchanged: validation adds nothing to an event.
      if (ev) outputs.push({ topic: TOPICS.eventsClean, key: input.key ?? ev.asset_id, value: input.value });
      return { outputs };
    }
    case TOPICS.alarmsRaw: {
      const outputs: Output[] = [];
      const alarm = parseAs(ALARM_CHECK, input, TOPICS.eventsDlq, now, outputs);
      // Keyed by alarm_id so every transition of one alarm stays in order.
      if (alarm) outputs.push({ topic: TOPICS.alarmsClean, key: alarm.alarm_id, value: input.value });
      return { outputs };
    }
    default:
      // A wiring mistake, not bad data: fail the batch loudly rather than drop records.
      throw new Error(`quality validator does not consume ${input.topic}`);
  }
}
