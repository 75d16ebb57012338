import { describe, expect, test } from "bun:test";
import type { Quality } from "../../envelope/reading.ts";
import {
  appendSample,
  createSampleLog,
  encodeSamples,
  LOG_CHUNK,
  logRecords,
  restoreSampleLog,
  takeLogChanges,
  type LoggedSample,
  type SampleLog,
  type SamplesJSON,
} from "./sample-log.ts";

/** Through JSON and back, as the changelog carries it. */
const parse = (json: SamplesJSON) => JSON.parse(JSON.stringify(json)) as SamplesJSON;
const T0 = Date.parse("2025-01-10T12:00:00.000Z");
const QUALITIES: Quality[] = ["GOOD", "SUSPECT", "UNCERTAIN", "BAD"];
const sample = (i: number, unit: string | null = "bar"): LoggedSample => ({ time: T0 + i * 1_000 - (i % 3) * 700, value: i / 7 - 3, quality: QUALITIES[i % 4] as Quality, unit });

function logOf(n: number, unit: (i: number) => string | null = () => "bar"): SampleLog {
  const log = createSampleLog();
  for (let i = 0; i < n; i++) appendSample(log, sample(i, unit(i)));
  return log;
}

/** A compacted changelog of one tag's log: chunk records by number (null deletes), plus the latest tail. */
class Store {
  chunks = new Map<number, SamplesJSON>();
  tail: SamplesJSON | undefined;
  first = 0;
  apply(log: SampleLog, changes: ReturnType<typeof takeLogChanges>): void {
    for (const { chunk, value } of changes.chunks) {
      if (value) this.chunks.set(chunk, parse(value));
      else this.chunks.delete(chunk);
    }
    this.tail = parse(changes.tail);
    this.first = log.first;
  }
  restore(): SampleLog {
    return restoreSampleLog(this.first, this.tail as SamplesJSON, new Map(this.chunks));
  }
}

describe("encoding a run of samples", () => {
  // units of the samples -> where the run names a unit
  const cases: [name: string, units: (string | null)[], named: [number, string | null][]][] = [
    ["the unit on the first sample only", ["bar", "bar", "bar"], [[0, "bar"]]],
    ["and again where it changes", ["bar", "psi", "psi", "bar"], [[0, "bar"], [1, "psi"], [3, "bar"]]],
    ["a null unit is a unit", [null, null, "bar", null], [[0, null], [2, "bar"], [3, null]]],
    ["empty", [], []],
  ];
  test.each(cases)("%s", (_name, units, named) => {
    const log = createSampleLog();
    units.forEach((u, i) => appendSample(log, sample(i, u)));
    const json = parse(encodeSamples(log, 0, units.length));
    expect(json.units).toEqual(named);
    expect(json.samples).toHaveLength(3 * units.length);
    const back = restoreSampleLog(0, json, new Map());
    expect(back.entries).toEqual(log.entries);
  });
});

describe("sealing and dropping", () => {
  // [samples appended, samples no longer needed] per step -> chunk records written / deleted, tail length.
  const cases: [name: string, steps: [append: number, drop: number][], written: number[], deleted: number[], tail: number][] = [
    ["below a chunk: all in the tail", [[LOG_CHUNK - 1, 0]], [], [], LOG_CHUNK - 1],
    ["a full chunk is sealed once", [[LOG_CHUNK, 0], [1, 0]], [0], [], 1],
    ["several chunks in one batch", [[2 * LOG_CHUNK + 3, 0]], [0, 1], [], 3],
    ["a chunk is deleted once all its samples are dropped", [[2 * LOG_CHUNK, 0], [1, LOG_CHUNK]], [0, 1], [0], 1],
    ["a partly dropped chunk stays", [[2 * LOG_CHUNK, 0], [1, LOG_CHUNK - 1]], [0, 1], [], 1],
    ["dropped samples of the tail are never sealed", [[LOG_CHUNK - 2, 0], [4, LOG_CHUNK - 1]], [0], [], 2],
    ["everything dropped", [[LOG_CHUNK + 5, 0], [0, LOG_CHUNK + 5]], [0], [0], 0],
  ];
  test.each(cases)("%s", (_name, steps, written, deleted, tail) => {
    const log = createSampleLog();
    const store = new Store();
    const all: LoggedSample[] = [];
    let dropUpTo = 0;
    const seen: { chunk: number; value: SamplesJSON | null }[] = [];
    for (const [append, drop] of steps) {
      for (let i = 0; i < append; i++) {
        all.push(sample(all.length));
        appendSample(log, all.at(-1)!);
      }
      dropUpTo += drop;
      const dropped = new Set(all.slice(0, dropUpTo));
      const changes = takeLogChanges(log, (s) => !dropped.has(s));
      seen.push(...changes.chunks);
      store.apply(log, changes);
    }
    expect(seen.filter((c) => c.value).map((c) => c.chunk)).toEqual(written);
    expect(seen.filter((c) => !c.value).map((c) => c.chunk)).toEqual(deleted);
    expect(store.tail?.samples).toHaveLength(3 * tail);
    const restored = store.restore();
    expect(restored).toEqual(log);
    expect(restored.entries).toEqual(all.slice(dropUpTo));
  });

  test("dropping stops at the first sample still needed (later unneeded ones wait)", () => {
    const log = logOf(10);
    takeLogChanges(log, (s) => s.value !== sample(0).value && s.value !== sample(5).value);
    expect(log.first).toBe(1);
    expect(log.entries).toHaveLength(9);
  });
});

describe("records as they stand (whole snapshots)", () => {
  test("rebuild the same log without sealing or dropping anything", () => {
    const log = logOf(3 * LOG_CHUNK + 7, (i) => (i < 40 ? "bar" : "psi"));
    takeLogChanges(log, (s) => s.time > T0 + 20_000);
    for (let i = 0; i < 5; i++) appendSample(log, sample(200 + i));
    const before = structuredClone(log);
    const { chunks, tail } = logRecords(log);
    expect(log).toEqual(before);
    const restored = restoreSampleLog(log.first, parse(tail), new Map(chunks.map((c) => [c.chunk, parse(c.value!)])));
    expect(restored).toEqual(log);
  });

  test("a missing sample is refused, not skipped", () => {
    const log = logOf(2 * LOG_CHUNK + 1);
    const { chunks, tail } = takeLogChanges(log, () => true);
    expect(() => restoreSampleLog(0, parse(tail), new Map([[1, parse(chunks[1]!.value!)]]))).toThrow("sample 0 missing");
  });
});
