import type { Quality, Reading } from "../../envelope/reading.ts";
import {
  appendSample,
  createSampleLog,
  logRecords,
  restoreSampleLog,
  takeLogChanges,
  type LogChanges,
  type LoggedSample,
  type SampleLog,
  type SamplesJSON,
} from "./sample-log.ts";
import {
  addValue,
  createStats,
  DEFAULT_STATS_CONFIG,
  statsFromJSON,
  statsToJSON,
  summarize,
  type Stats,
  type StatsConfig,
  type StatsJSON,
} from "./stats.ts";

export const RESOLUTION_MS = { "1s": 1_000, "10s": 10_000, "1min": 60_000, "1hour": 3_600_000 } as const;
export type Resolution = keyof typeof RESOLUTION_MS;
export const RESOLUTIONS = Object.keys(RESOLUTION_MS) as Resolution[];
export const AGGREGATE_TOPICS: Record<Resolution, string> = {
  "1s": "telemetry.1s",
  "10s": "telemetry.10s",
  "1min": "telemetry.1min",
  "1hour": "telemetry.1hour",
};
export const LATE_EVENTS_TOPIC = "events.clean";
export const AGGREGATOR_SOURCE = "aggregator";
/** Version of the aggregator's state records; 2: samples logged per tag instead of whole windows. */
export const SNAPSHOT_VERSION = 2;

/** Out-of-order tolerance within one tag; per-tag Kafka ordering makes real disorder rare, so a few seconds do. */
export const DEFAULT_ALLOWED_LATENESS_MS = 5_000;
/** Closed windows kept per resolution for late corrections (2 → 2 s of 1s windows, 2 h of 1hour windows). */
export const DEFAULT_RETAINED_WINDOWS = 2;
/** A tag silent for this much partition time starts closing its windows as if its clock ran with the partition's. */
export const DEFAULT_IDLE_GRACE_MS = 60_000;
/** Idle tags are checked once per this much partition time, so the scan over all tags is amortised. */
export const SWEEP_INTERVAL_MS = 1_000;
/**
 * A partition's gateway time advances in small steps; a larger step is a discontinuity (live data
 * joining a replay, a partition waking up after an outage). Counted in full it would make every tag
 * look idle at once and close a replaying gateway's windows under it, so idleness counts at most this.
 */
export const MAX_CLOCK_STEP_MS = 10_000;

/** Epoch-aligned: [start, start + resolution). A sample exactly at a window's end opens the next one. */
export function windowStart(time: number, resolution: Resolution): number {
  const size = RESOLUTION_MS[resolution];
  return Math.floor(time / size) * size;
}

// ---------------------------------------------------------------------------------------------------
// Event-time window engine, shared with the completeness ledger.
//
// Watermarks are per tag: a tag's windows close when its own latest device time, less the allowed
// lateness, passes their end. A per-partition watermark would let live tags close every window of a
// gateway replaying three days of buffered data in the same partition, and drop all of it as too late.
// Per tag, the replay's windows close by its own event time and come out whole.
//
// A tag that stops sending would then never close its last windows, so the partition keeps a clock
// (the newest gateway_time seen, NTP-disciplined unlike device clocks) and a tag idle for longer than
// `idle_grace_ms` of that clock has its watermark carried forward by the excess, as if its clock ran on.
// Idleness is measured on a "steady" clock that follows gateway time but takes no step above
// MAX_CLOCK_STEP_MS. Everything is a function of the records processed: no wall clock, so a replay
// emits the same windows.
// ---------------------------------------------------------------------------------------------------

export interface WindowTiming {
  allowed_lateness_ms: number;
  retained_windows: number;
  idle_grace_ms: number;
}

export interface WindowSlot<W> {
  start: number;
  /** -1 until first emitted; each late correction re-emits with revision + 1. */
  revision: number;
  data: W;
}

export interface TagTimeline<W> {
  asset_id: string;
  parameter: string;
  /** Latest device time seen for the tag. */
  max_time: number;
  /** The partition's steady clock when the tag last had a sample. */
  arrival_steady: number;
  /** Highest watermark reached: it never moves back, so a forgotten window can never be emitted afresh. */
  watermark: number;
  /** Per resolution, ascending by start: the open windows and the retained closed ones. */
  windows: Partial<Record<Resolution, WindowSlot<W>[]>>;
}

export interface Timeline<W> {
  /** Newest gateway time seen. */
  clock: number | null;
  /** Partition time with discontinuities capped; idleness and sweeps are measured on it. */
  steady: number;
  last_sweep: number | null;
  tags: Map<string, TagTimeline<W>>;
  /** Keys (tags, PARTITION_ENTRY_KEY) whose stored state changed since the last `takeTimelineChanges`; not itself state. */
  dirty: Set<string>;
}

export interface Emission<W> {
  tag: TagTimeline<W>;
  resolution: Resolution;
  slot: WindowSlot<W>;
}

export interface Sample {
  asset_id: string;
  parameter: string;
  /** Event time (device time), ms. */
  time: number;
  /** Gateway time, ms: drives the partition clock. */
  gateway_time: number;
}

export interface Ingested<W> {
  /** The tag's key, `asset_id/parameter`. */
  key: string;
  emitted: Emission<W>[];
  /** Resolutions whose window for this sample was already closed and forgotten. */
  too_late: Resolution[];
  /** The tag's watermark when the sample arrived. */
  watermark: number;
}

export interface WindowHooks<W> {
  create: (resolution: Resolution) => W;
  /** Apply the sample to a window's data; `late` when the window had already closed or been emitted. */
  update: (data: W, late: boolean) => void;
  /** When set, windows a tag skipped entirely (no samples) are created with this data (none where it gives null), at most `max_fill` per resolution. */
  fill?: { create: (resolution: Resolution) => W | null; max_fill: number };
}

export function createTimeline<W>(): Timeline<W> {
  return { clock: null, steady: 0, last_sweep: null, tags: new Map(), dirty: new Set() };
}

/** Advance and return the tag's watermark: latest device time − lateness, carried on by idle time past the grace. */
export function tagWatermark(tag: TagTimeline<unknown>, steady: number, timing: WindowTiming): number {
  const idle = Math.max(0, steady - tag.arrival_steady - timing.idle_grace_ms);
  tag.watermark = Math.max(tag.watermark, tag.max_time + idle - timing.allowed_lateness_ms);
  return tag.watermark;
}

/** Index of the window starting at `start`, or where it would be inserted. */
function slotIndex<W>(slots: WindowSlot<W>[], start: number): number {
  // Samples mostly land in the newest window: search from the end.
  let at = slots.length;
  while (at > 0 && (slots[at - 1] as WindowSlot<W>).start >= start) at--;
  return at;
}

const tagKey = (t: { asset_id: string; parameter: string }) => `${t.asset_id}/${t.parameter}`;

/** Emit windows the watermark has passed, then forget closed ones beyond the retention horizon. */
function closeDue<W>(timeline: Timeline<W>, key: string, tag: TagTimeline<W>, watermark: number, resolutions: readonly Resolution[], timing: WindowTiming, out: Emission<W>[]): void {
  for (const resolution of resolutions) {
    const slots = tag.windows[resolution];
    if (!slots) continue;
    const size = RESOLUTION_MS[resolution];
    let expired = 0;
    for (const slot of slots) {
      const end = slot.start + size;
      if (end > watermark) break;
      if (slot.revision < 0) {
        slot.revision = 0;
        out.push({ tag, resolution, slot });
        timeline.dirty.add(key);
      }
      if (end <= watermark - timing.retained_windows * size) expired++;
    }
    if (expired > 0) {
      // Usually one window at a time; shift is much cheaper than splice.
      if (expired === 1) slots.shift();
      else slots.splice(0, expired);
      timeline.dirty.add(key);
    }
  }
}

function advanceClock<W>(timeline: Timeline<W>, gatewayTime: number): void {
  if (timeline.clock !== null && gatewayTime <= timeline.clock) return;
  if (timeline.clock !== null) timeline.steady += Math.min(gatewayTime - timeline.clock, MAX_CLOCK_STEP_MS);
  timeline.clock = gatewayTime;
  timeline.dirty.add(PARTITION_ENTRY_KEY);
}

/**
 * Close windows of every tag whose (idle-extended) watermark passed them; runs once per
 * SWEEP_INTERVAL_MS of steady clock. Emissions are ordered by tag key, not by map order, because a
 * state restored from a compacted changelog holds its tags in another order.
 */
function sweep<W>(timeline: Timeline<W>, resolutions: readonly Resolution[], timing: WindowTiming, out: Emission<W>[]): void {
  const steady = timeline.steady;
  if (timeline.last_sweep !== null && steady - timeline.last_sweep < SWEEP_INTERVAL_MS) return;
  timeline.last_sweep = steady;
  timeline.dirty.add(PARTITION_ENTRY_KEY);
  const closed: Emission<W>[] = [];
  for (const [key, tag] of timeline.tags) {
    // Within the grace a tag's watermark is still the one its last sample set, and closeDue already
    // ran with it; only idle tags can have something to close.
    if (steady - tag.arrival_steady <= timing.idle_grace_ms) continue;
    closeDue(timeline, key, tag, tagWatermark(tag, steady, timing), resolutions, timing, closed);
  }
  // Stable sort: within a tag, the resolution/start order closeDue produced is kept.
  closed.sort((a, b) => (tagKey(a.tag) < tagKey(b.tag) ? -1 : tagKey(a.tag) > tagKey(b.tag) ? 1 : 0));
  out.push(...closed);
}

/** Create the empty windows strictly between the tag's previous window and the sample's. */
function fillSkipped<W>(tag: TagTimeline<W>, time: number, resolutions: readonly Resolution[], fill: NonNullable<WindowHooks<W>["fill"]>): void {
  for (const resolution of resolutions) {
    const size = RESOLUTION_MS[resolution];
    const slots = (tag.windows[resolution] ??= []);
    const first = windowStart(tag.max_time, resolution) + size;
    const last = windowStart(time, resolution) - size;
    // The newest skipped windows matter most to a reader; an older stretch is already told by the gap event.
    for (let start = Math.max(first, last - (fill.max_fill - 1) * size); start <= last; start += size) {
      const data = fill.create(resolution);
      if (data === null) break;
      slots.push({ start, revision: -1, data });
    }
  }
}

/**
 * Place one sample in its window at each resolution, then emit what closed. A sample whose window
 * already closed but is still retained re-emits it with revision + 1; one whose window is past the
 * retention horizon is reported in `too_late`, never silently dropped.
 */
export function ingest<W>(timeline: Timeline<W>, sample: Sample, resolutions: readonly Resolution[], timing: WindowTiming, hooks: WindowHooks<W>): Ingested<W> {
  advanceClock(timeline, sample.gateway_time);
  const steady = timeline.steady;
  const key = tagKey(sample);
  timeline.dirty.add(key);
  let tag = timeline.tags.get(key);
  const emitted: Emission<W>[] = [];
  const too_late: Resolution[] = [];

  if (!tag) {
    const watermark = sample.time - timing.allowed_lateness_ms;
    tag = { asset_id: sample.asset_id, parameter: sample.parameter, max_time: sample.time, arrival_steady: steady, watermark, windows: {} };
    timeline.tags.set(key, tag);
  } else if (hooks.fill && sample.time > tag.max_time) {
    fillSkipped(tag, sample.time, resolutions, hooks.fill);
  }
  const watermark = tagWatermark(tag, steady, timing);

  for (const resolution of resolutions) {
    const size = RESOLUTION_MS[resolution];
    const start = windowStart(sample.time, resolution);
    const late = start + size <= watermark;
    if (late && start + size <= watermark - timing.retained_windows * size) {
      too_late.push(resolution);
      continue;
    }
    const slots = (tag.windows[resolution] ??= []);
    const at = slotIndex(slots, start);
    let slot = slots[at];
    if (slot?.start !== start) {
      slot = { start, revision: -1, data: hooks.create(resolution) };
      // Nearly always the newest window: push, as splice is several times slower even at the end.
      if (at === slots.length) slots.push(slot);
      else slots.splice(at, 0, slot);
    }
    hooks.update(slot.data, late || slot.revision >= 0);
    if (slot.revision >= 0) {
      slot.revision += 1;
      emitted.push({ tag, resolution, slot });
    }
  }

  tag.max_time = Math.max(tag.max_time, sample.time);
  tag.arrival_steady = steady;
  closeDue(timeline, key, tag, tagWatermark(tag, steady, timing), resolutions, timing, emitted);
  sweep(timeline, resolutions, timing, emitted);
  return { key, emitted, too_late, watermark };
}

/**
 * Move the partition clock without a sample, e.g. from wall time while a partition is silent, so idle
 * tags' windows close. Optional: emissions then depend on when it was called, not only on the records.
 */
export function advanceTimeline<W>(timeline: Timeline<W>, gatewayTime: number, resolutions: readonly Resolution[], timing: WindowTiming): Emission<W>[] {
  advanceClock(timeline, gatewayTime);
  const out: Emission<W>[] = [];
  sweep(timeline, resolutions, timing, out);
  return out;
}

export interface TimelineSnapshot<J> {
  clock: number | null;
  steady: number;
  last_sweep: number | null;
  tags: [key: string, tag: TagTimeline<J>][];
}

function mapWindows<A, B>(tag: TagTimeline<A>, map: (data: A) => B): TagTimeline<B> {
  const windows: Partial<Record<Resolution, WindowSlot<B>[]>> = {};
  for (const [resolution, slots] of Object.entries(tag.windows) as [Resolution, WindowSlot<A>[]][]) {
    windows[resolution] = slots.map((s) => ({ start: s.start, revision: s.revision, data: map(s.data) }));
  }
  return { ...tag, windows };
}

export function snapshotTimeline<W, J>(timeline: Timeline<W>, toJSON: (data: W) => J): TimelineSnapshot<J> {
  const tags = [...timeline.tags].map(([key, tag]): [string, TagTimeline<J>] => [key, mapWindows(tag, toJSON)]);
  return structuredClone({ clock: timeline.clock, steady: timeline.steady, last_sweep: timeline.last_sweep, tags });
}

export function restoreTimeline<W, J>(snapshot: TimelineSnapshot<J>, fromJSON: (json: J) => W): Timeline<W> {
  const tags = new Map(snapshot.tags.map(([key, tag]): [string, TagTimeline<W>] => [key, mapWindows(structuredClone(tag), fromJSON)]));
  return { clock: snapshot.clock, steady: snapshot.steady, last_sweep: snapshot.last_sweep, tags, dirty: new Set() };
}

/** One record of a compacted changelog: the key's latest state, JSON text. */
export interface StateEntry {
  key: string;
  value: string;
}

/** The changelog key of the partition-wide fields. Tag keys always contain "/", so it cannot collide. */
export const PARTITION_ENTRY_KEY = "@partition";

/** The partition-wide fields as a changelog record. */
function partitionEntry(timeline: Timeline<unknown>, version: number): StateEntry {
  return { key: PARTITION_ENTRY_KEY, value: JSON.stringify({ version, clock: timeline.clock, steady: timeline.steady, last_sweep: timeline.last_sweep }) };
}

/**
 * The changelog records for everything changed since the last call: the partition-wide clock and
 * one record per touched tag. A tag's stored watermark may lag in the changelog while only idle sweeps
 * raise it; that is harmless, since it is recomputed as a maximum from the restored clocks.
 */
export function takeTimelineChanges<W, J>(timeline: Timeline<W>, version: number, toJSON: (data: W) => J): StateEntry[] {
  const entries: StateEntry[] = [];
  for (const key of timeline.dirty) {
    const tag = timeline.tags.get(key);
    if (key === PARTITION_ENTRY_KEY) entries.push(partitionEntry(timeline, version));
    else if (tag) entries.push({ key, value: JSON.stringify({ version, ...mapWindows(tag, toJSON) }) });
  }
  timeline.dirty.clear();
  return entries;
}

/** Rebuild from changelog records in offset order (later records of a key win; a null value deletes it). */
export function restoreTimelineFromChanges<W, J>(
  entries: Iterable<{ key?: string | undefined; value?: string | null | undefined }>,
  version: number,
  fromJSON: (json: J) => W,
): Timeline<W> {
  const timeline = createTimeline<W>();
  for (const { key, value } of entries) {
    if (key === undefined) continue;
    if (value == null) {
      timeline.tags.delete(key);
      continue;
    }
    const { version: got, ...stored } = JSON.parse(value) as { version: number } & Record<string, unknown>;
    if (got !== version) throw new Error(`state record ${key} has version ${got}, expected ${version}`);
    if (key === PARTITION_ENTRY_KEY) Object.assign(timeline, stored as Pick<Timeline<W>, "clock" | "steady" | "last_sweep">);
    else timeline.tags.set(key, mapWindows(stored as unknown as TagTimeline<J>, fromJSON));
  }
  return timeline;
}

// ---------------------------------------------------------------------------------------------------
// Aggregator: multi-resolution aggregates of clean readings.
// ---------------------------------------------------------------------------------------------------

export interface AggregatorConfig extends WindowTiming, StatsConfig {
  resolutions: Resolution[];
}

export const DEFAULT_AGGREGATOR_CONFIG: AggregatorConfig = {
  resolutions: RESOLUTIONS,
  allowed_lateness_ms: DEFAULT_ALLOWED_LATENESS_MS,
  retained_windows: DEFAULT_RETAINED_WINDOWS,
  idle_grace_ms: DEFAULT_IDLE_GRACE_MS,
  ...DEFAULT_STATS_CONFIG,
};

interface QualityCounts {
  good: number;
  suspect: number;
  uncertain: number;
  bad: number;
}

interface AggWindow {
  unit: string | null;
  stats: Stats;
  quality: QualityCounts;
}

interface AggWindowJSON {
  unit: string | null;
  stats: StatsJSON;
  quality: QualityCounts;
}

/** One per input partition. */
export interface AggregatorState {
  config: AggregatorConfig;
  timeline: Timeline<AggWindow>;
  /** Per tag key, what its changelog records hold besides the windows' bookkeeping (see below). */
  stored: Map<string, StoredTag>;
  /** The reading being aggregated, for `hooks`; not state. */
  current: AggregatorInput | null;
  hooks: WindowHooks<AggWindow>;
}

/** A changelog record of the aggregator; a null value deletes the key (tombstone). */
export interface AggregatorStateEntry {
  key: string;
  value: string | null;
}

/** The aggregator's changelog records as one object (see `snapshotAggregator`). */
export interface AggregatorSnapshot {
  version: typeof SNAPSHOT_VERSION;
  records: AggregatorStateEntry[];
}

export interface Output {
  topic: string;
  key: string;
  value: string;
}

export interface AggregateRecord {
  asset_id: string;
  parameter: string;
  unit: string | null;
  resolution: Resolution;
  window_start: string;
  window_end: string;
  revision: number;
  aggregates: { avg: number; min: number; max: number; stddev: number; count: number; p50: number; p95: number; p99: number };
  quality_summary: { good_samples: number; suspect_samples: number; uncertain_samples: number; bad_samples: number; pct_good: number };
}

/** The fields of a clean reading the aggregator reads. */
export type AggregatorInput = Pick<Reading, "asset_id" | "parameter" | "value" | "unit" | "quality"> & {
  timestamps: Pick<Reading["timestamps"], "device_time" | "gateway_time">;
};

const QUALITY_FIELD: Record<Quality, keyof QualityCounts> = { GOOD: "good", SUSPECT: "suspect", UNCERTAIN: "uncertain", BAD: "bad" };

/** Percentages are reported with two decimals, as in the seed (99.97). */
export function roundPct(pct: number): number {
  return Math.round(pct * 100) / 100;
}

export function createAggregatorState(config: Partial<AggregatorConfig> = {}): AggregatorState {
  const state = { config: { ...DEFAULT_AGGREGATOR_CONFIG, ...config }, timeline: createTimeline<AggWindow>(), stored: new Map<string, StoredTag>(), current: null as AggregatorInput | null };
  // Made once per state rather than per reading: aggregate() sets `current` before each ingest.
  const hooks: WindowHooks<AggWindow> = {
    create: () => ({ unit: state.current?.unit ?? null, stats: createStats(), quality: { good: 0, suspect: 0, uncertain: 0, bad: 0 } }),
    update: (w) => {
      const reading = state.current as AggregatorInput;
      addValue(w.stats, reading.value as number, state.config);
      w.quality[QUALITY_FIELD[reading.quality]] += 1;
    },
  };
  return Object.assign(state, { hooks });
}

/** ISO texts of recent window bounds: emissions come in runs of the same windows of different tags. A pure memo. */
const isoTexts = new Map<number, string>();
function isoOf(ms: number): string {
  let text = isoTexts.get(ms);
  if (text === undefined) {
    if (isoTexts.size >= 256) isoTexts.clear();
    isoTexts.set(ms, (text = new Date(ms).toISOString()));
  }
  return text;
}

/**
 * The AggregateRecord as JSON, keyed like the reading (`asset_id/parameter`: same partitioner as
 * telemetry.clean, and a revision follows its original). JSON.stringify, not text put together by
 * hand: that builds faster, but as a rope, which then costs more to encode when it is produced.
 */
function toOutput({ tag, resolution, slot }: Emission<AggWindow>): Output {
  const s = summarize(slot.data.stats);
  const q = slot.data.quality;
  const record: AggregateRecord = {
    asset_id: tag.asset_id,
    parameter: tag.parameter,
    unit: slot.data.unit,
    resolution,
    window_start: isoOf(slot.start),
    window_end: isoOf(slot.start + RESOLUTION_MS[resolution]),
    revision: slot.revision,
    aggregates: { avg: s.avg, min: s.min, max: s.max, stddev: s.stddev, count: s.count, p50: s.p50, p95: s.p95, p99: s.p99 },
    quality_summary: { good_samples: q.good, suspect_samples: q.suspect, uncertain_samples: q.uncertain, bad_samples: q.bad, pct_good: roundPct((q.good / s.count) * 100) },
  };
  return { topic: AGGREGATE_TOPICS[resolution], key: keyOf(tag), value: JSON.stringify(record) };
}

/** Per tag (by identity), its output key, built once. A pure memo. */
const outputKeys = new WeakMap<TagTimeline<AggWindow>, string>();
function keyOf(tag: TagTimeline<AggWindow>): string {
  let key = outputKeys.get(tag);
  if (key === undefined) outputKeys.set(tag, (key = `${tag.asset_id}/${tag.parameter}`));
  return key;
}

/**
 * Add one clean reading; returns the aggregate records that closed or were corrected, and a
 * `late_data_dropped` event when the reading was too late for some resolution. Only numeric values are
 * aggregated: booleans, strings and nulls are states, not measurements, and are skipped whole.
 */
export function aggregate(state: AggregatorState, reading: AggregatorInput): Output[] {
  if (typeof reading.value !== "number" || !Number.isFinite(reading.value)) return [];
  const value = reading.value;
  const { config } = state;
  const time = Date.parse(reading.timestamps.device_time ?? reading.timestamps.gateway_time);
  state.current = reading;
  const { key, emitted, too_late, watermark } = ingest(
    state.timeline,
    { asset_id: reading.asset_id, parameter: reading.parameter, time, gateway_time: Date.parse(reading.timestamps.gateway_time) },
    config.resolutions,
    config,
    state.hooks,
  );
  if (too_late.length < config.resolutions.length) {
    appendSample(storedOf(state, key).log, { time, value, quality: reading.quality, unit: reading.unit ?? null });
  }
  const outputs = emitted.map(toOutput);
  if (too_late.length > 0) {
    outputs.push(lateDroppedEvent(AGGREGATOR_SOURCE, reading.asset_id, reading.parameter, time, watermark, too_late, { value }));
  }
  return outputs;
}

/** One event per too-late reading, naming every resolution it missed: nothing is dropped silently. */
export function lateDroppedEvent(
  source: string,
  asset_id: string,
  parameter: string,
  time: number,
  watermark: number,
  resolutions: Resolution[],
  extra: Record<string, unknown> = {},
): Output {
  const value = {
    event_type: "late_data_dropped",
    severity: "WARNING",
    source,
    asset_id,
    parameter,
    time: new Date(time).toISOString(),
    resolutions,
    watermark: new Date(watermark).toISOString(),
    ...extra,
    message: `reading at ${new Date(time).toISOString()} arrived after its ${resolutions.join("/")} windows were closed and forgotten`,
  };
  return { topic: LATE_EVENTS_TOPIC, key: `${asset_id}/${parameter}`, value: JSON.stringify(value) };
}

/** See `advanceTimeline`: closes idle tags' windows from an outside clock. */
export function advanceWatermark(state: AggregatorState, gatewayTimeMs: number): Output[] {
  return advanceTimeline(state.timeline, gatewayTimeMs, state.config.resolutions, state.config).map(toOutput);
}

// ---------------------------------------------------------------------------------------------------
// The aggregator's changelog. A batch writes, per touched tag, one small record (clocks, which windows
// exist, the few facts the samples cannot tell, and the samples not yet sealed in a chunk); every
// LOG_CHUNK samples one chunk record (sample-log.ts); and a record for each sketched window that got
// samples. Never an exact window's values again. Restore replays each tag's logged samples into its
// exact windows, in arrival order, which gives the same values and bit-identical Welford sums.
//
// Which exact windows exist follows from the log: every sample in the log was added to its window at
// each resolution unless that window was already past retention, and a window past retention is gone
// for good (the watermark never moves back, so it is never created again). So a resolution's windows
// are exactly those of logged samples from `oldest` (the start of its oldest kept window) on. Their
// revision is -1 (open) or 0 (emitted) by the watermark, since closeDue emits every window the
// watermark has passed whenever it moves; only corrections (revision >= 1) are stored.
//
// Keys: `t|<tag>` the tag record, `c|<chunk>|<tag>` a chunk, `s|<resolution>|<start>|<tag>` a sketched
// window, `@partition` the partition clock. The prefixes keep them apart whatever a tag contains.
// ---------------------------------------------------------------------------------------------------

const TAG_PREFIX = "t|";
const CHUNK_PREFIX = "c|";
const SKETCH_PREFIX = "s|";
const chunkKey = (tag: string, chunk: number) => `${CHUNK_PREFIX}${chunk}|${tag}`;
const windowId = (resolution: Resolution, start: number) => `${resolution}|${start}`;

/** Per tag, what its records hold beyond the windows themselves. */
interface StoredTag {
  log: SampleLog;
  /** Sketched windows with a record, by `windowId`: the sample count that record has. Replaced, never changed in place. */
  sketches: ReadonlyMap<string, number>;
}

/** The tag record: one per touched tag and batch. */
interface TagRecord {
  version: number;
  asset_id: string;
  parameter: string;
  max_time: number;
  arrival_steady: number;
  watermark: number;
  /** Per resolution the tag has windows of: the start of the oldest kept window (null: none kept). */
  oldest: Partial<Record<Resolution, number | null>>;
  /** Windows re-emitted after late data: [resolution, start, revision]. */
  revised: [Resolution, number, number][];
  /** Sequence number of the oldest logged sample. */
  first: number;
  tail: SamplesJSON;
}

const NO_SKETCHES: ReadonlyMap<string, number> = new Map();

function storedOf(state: AggregatorState, key: string): StoredTag {
  let stored = state.stored.get(key);
  if (!stored) state.stored.set(key, (stored = { log: createSampleLog(), sketches: NO_SKETCHES }));
  return stored;
}

/** Whether some exact window still holds the sample. Its window at a resolution exists iff it has not expired (see above). */
/** Largest first: the longest window holds a sample longest, so the first look usually answers. */
const RESOLUTIONS_DESCENDING = [...RESOLUTIONS].reverse();

function sampleNeeded(tag: TagTimeline<AggWindow>, sample: LoggedSample): boolean {
  for (const resolution of RESOLUTIONS_DESCENDING) {
    const slots = tag.windows[resolution];
    if (!slots) continue;
    const start = windowStart(sample.time, resolution);
    const slot = slots[slotIndex(slots, start)];
    if (slot?.start === start && slot.data.stats.values) return true;
  }
  return false;
}

/**
 * A tag's records: chunks sealed or deleted, sketched windows that changed or are gone, and the tag
 * record. `all` writes every sketched window (whole snapshots) instead of only changed ones.
 */
function tagEntries(out: AggregatorStateEntry[], key: string, tag: TagTimeline<AggWindow>, stored: StoredTag, log: LogChanges, all: boolean): void {
  for (let i = 0; i < log.chunks.length; i++) {
    const { chunk, value } = log.chunks[i] as LogChanges["chunks"][number];
    out.push({ key: chunkKey(key, chunk), value: value && JSON.stringify({ version: SNAPSHOT_VERSION, seq: value.seq, samples: value.samples, units: value.units }) });
  }
  const record: TagRecord = {
    version: SNAPSHOT_VERSION,
    asset_id: tag.asset_id,
    parameter: tag.parameter,
    max_time: tag.max_time,
    arrival_steady: tag.arrival_steady,
    watermark: tag.watermark,
    oldest: {},
    revised: [],
    first: stored.log.first,
    tail: log.tail,
  };
  let sketches: Map<string, number> | undefined;
  for (const resolution of RESOLUTIONS) {
    const slots = tag.windows[resolution];
    if (!slots) continue;
    record.oldest[resolution] = slots[0]?.start ?? null;
    for (const slot of slots) {
      if (slot.revision > 0) record.revised.push([resolution, slot.start, slot.revision]);
      if (slot.data.stats.values) continue;
      const id = windowId(resolution, slot.start);
      (sketches ??= new Map()).set(id, slot.data.stats.count);
      if (all || stored.sketches.get(id) !== slot.data.stats.count) {
        out.push({ key: `${SKETCH_PREFIX}${id}|${key}`, value: JSON.stringify({ version: SNAPSHOT_VERSION, ...aggToJSON(slot.data) }) });
      }
    }
  }
  for (const id of stored.sketches.keys()) if (!sketches?.has(id)) out.push({ key: `${SKETCH_PREFIX}${id}|${key}`, value: null });
  stored.sketches = sketches ?? NO_SKETCHES;
  out.push({ key: TAG_PREFIX + key, value: JSON.stringify(record) });
}

/** Changelog records for the state changed since the last call: write them in the batch's transaction, in order. */
export function takeAggregatorChanges(state: AggregatorState): AggregatorStateEntry[] {
  const { timeline } = state;
  const entries: AggregatorStateEntry[] = [];
  for (const key of timeline.dirty) {
    const tag = timeline.tags.get(key);
    if (key === PARTITION_ENTRY_KEY) entries.push(partitionEntry(timeline, SNAPSHOT_VERSION));
    else if (tag) {
      const stored = storedOf(state, key);
      tagEntries(entries, key, tag, stored, takeLogChanges(stored.log, (sample) => sampleNeeded(tag, sample)), false);
    }
  }
  timeline.dirty.clear();
  return entries;
}

/** Rebuild a tag's windows: sketched ones as stored, exact ones by replaying its logged samples in arrival order. */
function restoreTag(record: TagRecord, log: SampleLog, sketches: Map<string, AggWindowJSON>, config: StatsConfig): TagTimeline<AggWindow> {
  const revised = new Map(record.revised.map(([resolution, start, revision]) => [windowId(resolution, start), revision]));
  const revision = (resolution: Resolution, start: number) =>
    revised.get(windowId(resolution, start)) ?? (start + RESOLUTION_MS[resolution] <= record.watermark ? 0 : -1);
  const kept = Object.entries(record.oldest) as [Resolution, number | null][];
  const byStart = new Map<Resolution, Map<number, WindowSlot<AggWindow>>>(kept.map(([resolution]) => [resolution, new Map()]));
  for (const [id, data] of sketches) {
    const [resolution, start] = [id.slice(0, id.indexOf("|")) as Resolution, Number(id.slice(id.indexOf("|") + 1))];
    byStart.get(resolution)?.set(start, { start, revision: revision(resolution, start), data: aggFromJSON(data) });
  }
  for (const sample of log.entries) {
    for (const [resolution, oldest] of kept) {
      const start = windowStart(sample.time, resolution);
      if (oldest === null || start < oldest) continue;
      const slots = byStart.get(resolution) as Map<number, WindowSlot<AggWindow>>;
      let slot = slots.get(start);
      if (!slot) {
        const data: AggWindow = { unit: sample.unit, stats: createStats(), quality: { good: 0, suspect: 0, uncertain: 0, bad: 0 } };
        slots.set(start, (slot = { start, revision: revision(resolution, start), data }));
      } else if (!slot.data.stats.values) continue;
      addValue(slot.data.stats, sample.value, config);
      slot.data.quality[QUALITY_FIELD[sample.quality]] += 1;
    }
  }
  const windows: Partial<Record<Resolution, WindowSlot<AggWindow>[]>> = {};
  for (const [resolution, slots] of byStart) windows[resolution] = [...slots.values()].sort((a, b) => a.start - b.start);
  const { asset_id, parameter, max_time, arrival_steady, watermark } = record;
  return { asset_id, parameter, max_time, arrival_steady, watermark, windows };
}

function parseVersioned<T>(key: string, value: string): T {
  const parsed = JSON.parse(value) as { version?: unknown };
  if (parsed.version !== SNAPSHOT_VERSION) {
    throw new Error(
      `aggregator state record ${key} has version ${String(parsed.version)}, expected ${SNAPSHOT_VERSION}: it was written by an older gateway; ` +
        "stop the aggregate worker, delete its changelog topic (_gateway.aggregate.changelog) and its consumer group's offsets, then start it (see src/streams/README.md)",
    );
  }
  return parsed as T;
}

/** `<prefix><field>|…|<tag>` with `count` fields → [...fields, tag]: fields never contain "|", a tag may. */
function splitKey(key: string, prefix: string, count: number): string[] {
  const parts: string[] = [];
  let from = prefix.length;
  for (let i = 0; i < count; i++) {
    const bar = key.indexOf("|", from);
    parts.push(key.slice(from, bar));
    from = bar + 1;
  }
  parts.push(key.slice(from));
  return parts;
}

function innerMap<K, V>(outer: Map<string, Map<K, V>>, tag: string): Map<K, V> {
  let map = outer.get(tag);
  if (!map) outer.set(tag, (map = new Map()));
  return map;
}

/** Later records of a key win; a null value deletes it. */
function upsert<K, V>(map: Map<K, V>, key: K, value: V | null): void {
  if (value === null) map.delete(key);
  else map.set(key, value);
}

/** Rebuild from changelog records in offset order (later records of a key win; a null value deletes it). */
export function restoreAggregatorFromChanges(
  entries: Iterable<{ key?: string | undefined; value?: string | null | undefined }>,
  config: Partial<AggregatorConfig> = {},
): AggregatorState {
  const state = createAggregatorState(config);
  const records = new Map<string, TagRecord>();
  const chunks = new Map<string, Map<number, SamplesJSON>>();
  const sketches = new Map<string, Map<string, AggWindowJSON>>();
  for (const { key, value } of entries) {
    if (key === undefined) continue;
    const parsed = value == null ? null : parseVersioned<unknown>(key, value);
    if (key.startsWith(CHUNK_PREFIX)) {
      const [chunk, tag] = splitKey(key, CHUNK_PREFIX, 1) as [string, string];
      upsert(innerMap(chunks, tag), Number(chunk), parsed as SamplesJSON | null);
    } else if (key.startsWith(SKETCH_PREFIX)) {
      const [resolution, start, tag] = splitKey(key, SKETCH_PREFIX, 2) as [Resolution, string, string];
      upsert(innerMap(sketches, tag), windowId(resolution, Number(start)), parsed as AggWindowJSON | null);
    } else if (key.startsWith(TAG_PREFIX)) upsert(records, key.slice(TAG_PREFIX.length), parsed as TagRecord | null);
    else if (key === PARTITION_ENTRY_KEY && parsed) {
      const { clock, steady, last_sweep } = parsed as Pick<Timeline<AggWindow>, "clock" | "steady" | "last_sweep">;
      Object.assign(state.timeline, { clock, steady, last_sweep });
    } else throw new Error(`aggregator state record with unknown key ${key}`);
  }
  for (const [key, record] of records) {
    const log = restoreSampleLog(record.first, record.tail, chunks.get(key) ?? new Map());
    const tagSketches = sketches.get(key) ?? new Map<string, AggWindowJSON>();
    state.timeline.tags.set(key, restoreTag(record, log, tagSketches, state.config));
    Object.assign(storedOf(state, key), { log, sketches: new Map([...tagSketches].map(([id, w]) => [id, w.stats.count])) });
  }
  return state;
}

/**
 * The whole state as the changelog records that rebuild it, in one object (tests, tools, a glue that
 * prefers periodic snapshots): the same format, so there is one restore path.
 */
export function snapshotAggregator(state: AggregatorState): AggregatorSnapshot {
  const records: AggregatorStateEntry[] = [partitionEntry(state.timeline, SNAPSHOT_VERSION)];
  for (const [key, tag] of state.timeline.tags) {
    const stored = storedOf(state, key);
    // A copy: a snapshot must not change what the next takeAggregatorChanges writes.
    tagEntries(records, key, tag, { ...stored }, logRecords(stored.log), true);
  }
  return { version: SNAPSHOT_VERSION, records };
}

const aggToJSON = (w: AggWindow): AggWindowJSON => ({ unit: w.unit, stats: statsToJSON(w.stats), quality: { ...w.quality } });
const aggFromJSON = (j: AggWindowJSON): AggWindow => ({ unit: j.unit, stats: statsFromJSON(j.stats), quality: { ...j.quality } });

/** Config is not in the snapshot: it comes from the deployment, and may change across a restart. */
export function restoreAggregator(snapshot: AggregatorSnapshot, config: Partial<AggregatorConfig> = {}): AggregatorState {
  if (snapshot.version !== SNAPSHOT_VERSION) throw new Error(`aggregator snapshot version ${snapshot.version}, expected ${SNAPSHOT_VERSION}`);
  return restoreAggregatorFromChanges(snapshot.records, config);
}
