import type { Quality } from "../../envelope/reading.ts";

// ---------------------------------------------------------------------------------------------------
// Per-tag log of the samples the aggregator's exact windows hold, in arrival order: what its changelog
// persists instead of the windows themselves. Every resolution of a tag aggregates the same samples, so
// storing them once lets restore rebuild each exact window (values, count, Welford mean/M2, min, max,
// quality counts, unit) by replaying them; and the log is append-only, so a batch writes only the
// samples it added. Samples live in a tag's own record (the "tail") until LOG_CHUNK of them fill a
// chunk, which is then written once under its own key and deleted (tombstone) when no window needs it.
// ---------------------------------------------------------------------------------------------------

/**
 * Samples per sealed chunk record. Larger chunks mean fewer chunk records and tombstones (two per
 * chunk over its life) but a longer tail rewritten with the tag's record in every batch.
 */
export const LOG_CHUNK = 16;

export interface LoggedSample {
  /** Event time (device time), ms: says which windows the sample belongs to. */
  time: number;
  value: number;
  quality: Quality;
  /** The reading's unit: a window takes the unit of the first sample it got. */
  unit: string | null;
}

export interface SampleLog {
  /** Sequence number of entries[0]; earlier samples are no longer needed by any window. */
  first: number;
  /** Samples below this sequence number are in chunk records; the others travel in the tag's record. */
  sealed: number;
  entries: LoggedSample[];
  /** Chunk numbers written and not deleted, ascending (chunk k holds sequence numbers [k·LOG_CHUNK, (k+1)·LOG_CHUNK)). */
  chunks: number[];
  /**
   * The tail as JSON-ready SamplesJSON, built as samples arrive: a batch then writes the tag's record
   * with one JSON.stringify instead of encoding every tail sample again.
   */
  tail: SamplesJSON;
}

const QUALITIES: readonly Quality[] = ["GOOD", "SUSPECT", "UNCERTAIN", "BAD"];
const QUALITY_CODE: Record<Quality, number> = { GOOD: 0, SUSPECT: 1, UNCERTAIN: 2, BAD: 3 };

/**
 * A run of consecutive samples as JSON: `seq` of the first; `samples` three numbers per sample, time,
 * value and quality code, the first time absolute and the others relative to the sample before (short
 * numbers); `units` [index in the run, unit] for the first sample and wherever the unit changes. Flat
 * numbers, because encoding them is most of what writing a tag's record costs.
 */
export interface SamplesJSON {
  seq: number;
  samples: number[];
  units: [number, string | null][];
}

export function createSampleLog(): SampleLog {
  return { first: 0, sealed: 0, entries: [], chunks: [], tail: { seq: 0, samples: [], units: [] } };
}

/** Add `s` to a run; `before` is the run's previous sample (undefined: `s` opens it). */
function addToRun(run: SamplesJSON, s: LoggedSample, before: LoggedSample | undefined): void {
  if (!before || s.unit !== before.unit) run.units.push([run.samples.length / 3, s.unit]);
  run.samples.push(before ? s.time - before.time : s.time, s.value, QUALITY_CODE[s.quality]);
}

export function appendSample(log: SampleLog, sample: LoggedSample): void {
  const before = log.tail.samples.length > 0 ? log.entries.at(-1) : undefined;
  log.entries.push(sample);
  addToRun(log.tail, sample, before);
}

/** Sequence number one past the newest sample. */
const endOf = (log: SampleLog) => log.first + log.entries.length;

const at = (log: SampleLog, seq: number) => log.entries[seq - log.first] as LoggedSample;

/** Samples [from, to) as a run. */
export function encodeSamples(log: SampleLog, from: number, to: number): SamplesJSON {
  const run: SamplesJSON = { seq: from, samples: [], units: [] };
  for (let seq = from; seq < to; seq++) addToRun(run, at(log, seq), seq > from ? at(log, seq - 1) : undefined);
  return run;
}

function decodeSamples(json: SamplesJSON, into: Map<number, LoggedSample>): void {
  const units = new Map(json.units);
  let before: LoggedSample | undefined;
  for (let i = 0; i < json.samples.length / 3; i++) {
    const sample: LoggedSample = {
      time: (before?.time ?? 0) + (json.samples[3 * i] as number),
      value: json.samples[3 * i + 1] as number,
      quality: QUALITIES[json.samples[3 * i + 2] as number] as Quality,
      unit: units.has(i) ? (units.get(i) as string | null) : (before?.unit ?? null),
    };
    into.set(json.seq + i, sample);
    before = sample;
  }
}

export interface LogChanges {
  /** Chunk records to write or delete (null: no window needs them any more). */
  chunks: { chunk: number; value: SamplesJSON | null }[];
  /** The unsealed samples, for the tag's record. */
  tail: SamplesJSON;
}

/**
 * Drop the oldest samples no window needs (`needed` says; once false it stays false, since windows only
 * expire or turn to sketches), delete the chunk records they emptied, seal full chunks, and return the
 * records to write plus the tail for the tag's record.
 */
export function takeLogChanges(log: SampleLog, needed: (sample: LoggedSample) => boolean): LogChanges {
  let dropped = 0;
  while (dropped < log.entries.length && !needed(log.entries[dropped] as LoggedSample)) dropped++;
  if (dropped > 0) {
    log.entries.splice(0, dropped);
    log.first += dropped;
  }
  const chunks: LogChanges["chunks"] = [];
  while (log.chunks.length > 0 && ((log.chunks[0] as number) + 1) * LOG_CHUNK <= log.first) chunks.push({ chunk: log.chunks.shift() as number, value: null });
  const tailFrom = log.sealed;
  // Dropped samples are never sealed: a chunk record may start after its chunk's first sequence number.
  if (log.sealed < log.first) log.sealed = log.first;
  const end = endOf(log);
  while (Math.floor(log.sealed / LOG_CHUNK) < Math.floor(end / LOG_CHUNK)) {
    const chunk = Math.floor(log.sealed / LOG_CHUNK);
    const to = (chunk + 1) * LOG_CHUNK;
    chunks.push({ chunk, value: encodeSamples(log, log.sealed, to) });
    log.chunks.push(chunk);
    log.sealed = to;
  }
  // The tail starts at another sample, whose time must now be absolute.
  if (log.sealed !== tailFrom) log.tail = encodeSamples(log, log.sealed, end);
  return { chunks, tail: log.tail };
}

/** The live chunk records and the tail as they stand, without sealing or dropping anything (whole snapshots). */
export function logRecords(log: SampleLog): LogChanges {
  const chunks = log.chunks.map((chunk) => ({
    chunk,
    // A chunk partly dropped already keeps only its live samples.
    value: encodeSamples(log, Math.max(chunk * LOG_CHUNK, log.first), (chunk + 1) * LOG_CHUNK),
  }));
  return { chunks, tail: log.tail };
}

/** Rebuild a log from its tag record's `first` and tail and its live chunk records (any order). */
export function restoreSampleLog(first: number, tail: SamplesJSON, chunks: Map<number, SamplesJSON>): SampleLog {
  const bySeq = new Map<number, LoggedSample>();
  const live = [...chunks.keys()].sort((a, b) => a - b);
  for (const chunk of live) decodeSamples(chunks.get(chunk) as SamplesJSON, bySeq);
  decodeSamples(tail, bySeq);
  const entries: LoggedSample[] = [];
  const end = tail.seq + tail.samples.length / 3;
  for (let seq = first; seq < end; seq++) {
    const sample = bySeq.get(seq);
    if (!sample) throw new Error(`sample log: sample ${seq} missing (records ${first}..${end})`);
    entries.push(sample);
  }
  const log: SampleLog = { first, sealed: tail.seq, entries, chunks: live, tail };
  log.tail = encodeSamples(log, log.sealed, end);
  return log;
}
