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
export const LOG_CHUNK = 32;

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
   * JSON of each of the tail's samples after its first. Built as samples arrive, so a batch does not
   * encode the whole tail again for every record it writes; joined per record, because a string grown
   * by += across batches is a deep rope that costs far more to encode to UTF-8 when it is produced.
   */
  tailRows: string[];
}

const QUALITIES: readonly Quality[] = ["GOOD", "SUSPECT", "UNCERTAIN", "BAD"];
const QUALITY_CODE: Record<Quality, number> = { GOOD: 0, SUSPECT: 1, UNCERTAIN: 2, BAD: 3 };

/**
 * A run of consecutive samples as JSON: `seq` of the first, then each sample as `[time, value, quality
 * code, unit]` for the first and `[dt, value, quality code]` after it, dt from the sample before (shorter
 * than epoch milliseconds), with the unit as a fourth element wherever it changes.
 */
export interface SamplesJSON {
  seq: number;
  samples: (number | string | null)[][];
}

export function createSampleLog(): SampleLog {
  return { first: 0, sealed: 0, entries: [], chunks: [], tailRows: [] };
}

/** A sample's JSON: absolute and with its unit when it opens a run, else relative to the one before. Numbers print as JSON prints them. */
function row(s: LoggedSample, before: LoggedSample | undefined): string {
  const q = QUALITY_CODE[s.quality];
  if (!before) return `[${s.time},${s.value},${q},${JSON.stringify(s.unit)}]`;
  return s.unit === before.unit ? `[${s.time - before.time},${s.value},${q}]` : `[${s.time - before.time},${s.value},${q},${JSON.stringify(s.unit)}]`;
}

export function appendSample(log: SampleLog, sample: LoggedSample): void {
  const before = log.entries.at(-1);
  log.entries.push(sample);
  if (endOf(log) - log.sealed > 1) log.tailRows.push(row(sample, before as LoggedSample));
}

/** Sequence number one past the newest sample. */
const endOf = (log: SampleLog) => log.first + log.entries.length;

const at = (log: SampleLog, seq: number) => log.entries[seq - log.first] as LoggedSample;

/** The JSON members `"seq":…,"samples":[…]` of samples [from, to), for the caller to wrap. */
export function encodeSamples(log: SampleLog, from: number, to: number): string {
  let rows = from < to ? row(at(log, from), undefined) : "";
  for (let seq = from + 1; seq < to; seq++) rows += `,${row(at(log, seq), at(log, seq - 1))}`;
  return `"seq":${from},"samples":[${rows}]`;
}

/** encodeSamples of the tail, from what appendSample encoded already. */
function encodeTail(log: SampleLog): string {
  if (log.sealed === endOf(log)) return `"seq":${log.sealed},"samples":[]`;
  return `"seq":${log.sealed},"samples":[${row(at(log, log.sealed), undefined)}${log.tailRows.length > 0 ? "," : ""}${log.tailRows.join(",")}]`;
}

function decodeSamples(json: SamplesJSON, into: Map<number, LoggedSample>): void {
  let before: LoggedSample | undefined;
  json.samples.forEach((r, i) => {
    const sample: LoggedSample = {
      time: (before?.time ?? 0) + (r[0] as number),
      value: r[1] as number,
      quality: QUALITIES[r[2] as number] as Quality,
      unit: r.length > 3 ? (r[3] as string | null) : (before?.unit ?? null),
    };
    into.set(json.seq + i, sample);
    before = sample;
  });
}

export interface LogChanges {
  /** Chunk records to write (JSON members, see encodeSamples) or delete (null: no window needs them any more). */
  chunks: { chunk: number; value: string | null }[];
  /** The unsealed samples, for the tag's record (JSON members). */
  tail: string;
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
  if (log.sealed !== tailFrom) log.tailRows = rowsAfterFirst(log);
  return { chunks, tail: encodeTail(log) };
}

/** tailRows computed afresh, once the tail starts at another sample. */
function rowsAfterFirst(log: SampleLog): string[] {
  const rows: string[] = [];
  for (let seq = log.sealed + 1; seq < endOf(log); seq++) rows.push(row(at(log, seq), at(log, seq - 1)));
  return rows;
}

/** The live chunk records and the tail as they stand, without sealing or dropping anything (whole snapshots). */
export function logRecords(log: SampleLog): LogChanges {
  const chunks = log.chunks.map((chunk) => ({
    chunk,
    // A chunk partly dropped already keeps only its live samples.
    value: encodeSamples(log, Math.max(chunk * LOG_CHUNK, log.first), (chunk + 1) * LOG_CHUNK),
  }));
  return { chunks, tail: encodeTail(log) };
}

/** Rebuild a log from its tag record's `first` and tail and its live chunk records (any order). */
export function restoreSampleLog(first: number, tail: SamplesJSON, chunks: Map<number, SamplesJSON>): SampleLog {
  const bySeq = new Map<number, LoggedSample>();
  const live = [...chunks.keys()].sort((a, b) => a - b);
  for (const chunk of live) decodeSamples(chunks.get(chunk) as SamplesJSON, bySeq);
  decodeSamples(tail, bySeq);
  const entries: LoggedSample[] = [];
  const end = tail.seq + tail.samples.length;
  for (let seq = first; seq < end; seq++) {
    const sample = bySeq.get(seq);
    if (!sample) throw new Error(`sample log: sample ${seq} missing (records ${first}..${end})`);
    entries.push(sample);
  }
  const log: SampleLog = { first, sealed: tail.seq, entries, chunks: live, tailRows: [] };
  log.tailRows = rowsAfterFirst(log);
  return log;
}
