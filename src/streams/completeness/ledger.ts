import {
  advanceTimeline,
  createTimeline,
  DEFAULT_ALLOWED_LATENESS_MS,
  DEFAULT_IDLE_GRACE_MS,
  DEFAULT_RETAINED_WINDOWS,
  ingest,
  lateDroppedEvent,
  RESOLUTION_MS,
  restoreTimeline,
  restoreTimelineFromChanges,
  roundPct,
  snapshotTimeline,
  takeTimelineChanges,
  type Emission,
  type Output,
  type Resolution,
  type StateEntry,
  type Timeline,
  type TimelineSnapshot,
  type WindowTiming,
} from "../aggregate/windows.ts";
import type { ReadingOutcome } from "../quality/validator.ts";

export const COMPLETENESS_TOPIC = "telemetry.completeness";
export const LEDGER_SOURCE = "completeness_ledger";
export const LEDGER_RESOLUTIONS = ["1min", "1hour"] as const satisfies readonly Resolution[];
export type LedgerResolution = (typeof LEDGER_RESOLUTIONS)[number];
export const SNAPSHOT_VERSION = 1;
/** Empty windows written for one silent stretch, per resolution: a day of minutes. Longer outages are told by the validator's gap event. */
export const MAX_EMPTY_WINDOWS_PER_GAP = 1_440;

/**
 * Same window timing as the aggregator by default, so a reading that corrects an aggregate also
 * corrects its completeness window, and one too late for the one is too late for the other.
 */
export const DEFAULT_LEDGER_CONFIG: WindowTiming = {
  allowed_lateness_ms: DEFAULT_ALLOWED_LATENESS_MS,
  retained_windows: DEFAULT_RETAINED_WINDOWS,
  idle_grace_ms: DEFAULT_IDLE_GRACE_MS,
};

interface LedgerWindow {
  expected_interval_ms: number | null;
  /** Readings that arrived, duplicates excluded: accepted and rejected. */
  received: number;
  /** Of those, how many the validator sent to the DLQ (quality BAD). */
  rejected: number;
  duplicates: number;
  /** Arrived after the window had closed (then the window is re-emitted). */
  late: number;
  /** Gaps the validator detected that ended in this window. */
  gaps: number;
}

export interface CompletenessRecord {
  asset_id: string;
  parameter: string;
  resolution: LedgerResolution;
  window_start: string;
  window_end: string;
  /** Window length / expected interval; null when no rule gives the tag an interval. */
  expected: number | null;
  received: number;
  rejected: number;
  duplicates: number;
  late: number;
  gaps: number;
  /** received / expected, capped at 100, two decimals; null without an expected count. */
  pct_complete: number | null;
}

/** One per input partition, beside the validator's state: it consumes that validator's outcomes. */
export interface LedgerState {
  config: WindowTiming;
  timeline: Timeline<LedgerWindow>;
}

export interface LedgerSnapshot extends TimelineSnapshot<LedgerWindow> {
  version: typeof SNAPSHOT_VERSION;
}

export function createLedgerState(config: Partial<WindowTiming> = {}): LedgerState {
  return { config: { ...DEFAULT_LEDGER_CONFIG, ...config }, timeline: createTimeline() };
}

const emptyWindow = (expected_interval_ms: number | null): LedgerWindow => ({ expected_interval_ms, received: 0, rejected: 0, duplicates: 0, late: 0, gaps: 0 });

function toOutput({ tag, resolution, slot }: Emission<LedgerWindow>): Output {
  const w = slot.data;
  const length = RESOLUTION_MS[resolution];
  const expected = w.expected_interval_ms === null ? null : Math.floor(length / w.expected_interval_ms);
  const window_start = new Date(slot.start).toISOString();
  const record: CompletenessRecord = {
    asset_id: tag.asset_id,
    parameter: tag.parameter,
    resolution: resolution as LedgerResolution,
    window_start,
    window_end: new Date(slot.start + length).toISOString(),
    expected,
    received: w.received,
    rejected: w.rejected,
    duplicates: w.duplicates,
    late: w.late,
    gaps: w.gaps,
    pct_complete: expected ? roundPct(Math.min(100, (w.received / expected) * 100)) : null,
  };
  // The key names the window, so compaction keeps each window's latest revision.
  return { topic: COMPLETENESS_TOPIC, key: `${tag.asset_id}/${tag.parameter}/${resolution}/${window_start}`, value: JSON.stringify(record) };
}

/**
 * Count one reading's fate (from `validate(...).outcome`) in its 1min and 1hour windows; returns the
 * completeness records that closed or changed. Windows a tag skipped entirely are written as empty
 * (received 0) once its next reading shows they were skipped, when its expected interval is known.
 */
export function recordOutcome(state: LedgerState, outcome: ReadingOutcome): Output[] {
  const time = Date.parse(outcome.device_time);
  const interval = outcome.expected_interval_ms;
  const { emitted, too_late, watermark } = ingest(
    state.timeline,
    { asset_id: outcome.asset_id, parameter: outcome.parameter, time, gateway_time: Date.parse(outcome.gateway_time) },
    LEDGER_RESOLUTIONS,
    state.config,
    {
      create: () => emptyWindow(interval),
      update: (w, late) => {
        if (interval !== null) w.expected_interval_ms = interval;
        if (outcome.outcome === "duplicate") w.duplicates += 1;
        else w.received += 1;
        if (outcome.outcome === "rejected") w.rejected += 1;
        if (late) w.late += 1;
        if (outcome.gap) w.gaps += 1;
      },
      // An empty window says something only where at least one sample was expected in it.
      fill: interval === null ? undefined : { create: (res) => (RESOLUTION_MS[res] >= interval ? emptyWindow(interval) : null), max_fill: MAX_EMPTY_WINDOWS_PER_GAP },
    },
  );
  const outputs = emitted.map(toOutput);
  // A too-late duplicate needs no event: its DLQ record already accounts for it.
  if (too_late.length > 0 && outcome.outcome !== "duplicate") {
    outputs.push(lateDroppedEvent(LEDGER_SOURCE, outcome.asset_id, outcome.parameter, time, watermark, too_late, { outcome: outcome.outcome }));
  }
  return outputs;
}

/** Close idle tags' windows from an outside clock; see `advanceTimeline` for the trade-off. */
export function advanceLedger(state: LedgerState, gatewayTimeMs: number): Output[] {
  return advanceTimeline(state.timeline, gatewayTimeMs, LEDGER_RESOLUTIONS, state.config).map(toOutput);
}

export function snapshotLedger(state: LedgerState): LedgerSnapshot {
  return { version: SNAPSHOT_VERSION, ...snapshotTimeline(state.timeline, (w) => w) };
}

export function restoreLedger(snapshot: LedgerSnapshot, config: Partial<WindowTiming> = {}): LedgerState {
  if (snapshot.version !== SNAPSHOT_VERSION) throw new Error(`ledger snapshot version ${snapshot.version}, expected ${SNAPSHOT_VERSION}`);
  return { config: { ...DEFAULT_LEDGER_CONFIG, ...config }, timeline: restoreTimeline(snapshot, (w: LedgerWindow) => w) };
}

/**
 * Changelog record format. 2: a window's counts as one array in the order below (a tag record is
 * ~40 % smaller, and it is written for every tag a batch touches); 1: the counts as named fields,
 * still read through `upgradeLedgerRecord`.
 */
export const CHANGELOG_VERSION = 2;
const NAMED_FIELDS_VERSION = 1;
type CompactWindow = [expected_interval_ms: number | null, received: number, rejected: number, duplicates: number, late: number, gaps: number];

const compact = (w: LedgerWindow): CompactWindow => [w.expected_interval_ms, w.received, w.rejected, w.duplicates, w.late, w.gaps];
const expand = ([expected_interval_ms, received, rejected, duplicates, late, gaps]: CompactWindow): LedgerWindow => ({ expected_interval_ms, received, rejected, duplicates, late, gaps });

/** Changelog records for the state changed since the last call (see `takeTimelineChanges`). */
export function takeLedgerChanges(state: LedgerState): StateEntry[] {
  return takeTimelineChanges(state.timeline, CHANGELOG_VERSION, compact);
}

export function restoreLedgerFromChanges(
  entries: Iterable<{ key?: string | undefined; value?: string | null | undefined }>,
  config: Partial<WindowTiming> = {},
): LedgerState {
  return { config: { ...DEFAULT_LEDGER_CONFIG, ...config }, timeline: restoreTimelineFromChanges(entries, CHANGELOG_VERSION, expand) };
}

/** A changelog record of format 1 (named fields) as format 2, for `restoreLedgerFromChanges`. */
export function upgradeLedgerRecord(value: string): string {
  const record = JSON.parse(value) as { version: number; windows?: Record<string, { data: LedgerWindow | CompactWindow }[]> };
  if (record.version !== NAMED_FIELDS_VERSION) throw new Error(`ledger state record has version ${record.version}, expected ${NAMED_FIELDS_VERSION}`);
  record.version = CHANGELOG_VERSION;
  for (const slots of Object.values(record.windows ?? {})) for (const slot of slots) slot.data = compact(slot.data as LedgerWindow);
  return JSON.stringify(record);
}
