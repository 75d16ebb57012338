import { describe, expect, test } from "bun:test";
import type { ConsumedRecord } from "../../kafka/processor.ts";
import type { OutgoingRecord } from "../../kafka/producer.ts";
import { takeTimelineChanges } from "../aggregate/windows.ts";
import { createLedgerState, recordOutcome } from "../completeness/ledger.ts";
import { topicNamespace } from "../namespace.ts";
import { loadRules } from "./rules.ts";
import { createValidatorState, takeStateChanges, validate } from "./validator.ts";
import { QUALITY_CHANGELOG, qualityBatches } from "./worker.ts";

const NOW = new Date("2026-01-02T00:00:00Z");
const BASE = Date.parse("2026-01-01T00:00:00Z");
const RULES = loadRules({ expected_interval_ms: 1000, rules: [{ parameter: "p0", min: 0, max: 55, action_on_violation: "mark_bad" }] });
const BATCH = 7;

/** One partition's input: 6 tags at 1 Hz, with duplicates, a gap, clock skew and garbage. */
function input(): ConsumedRecord[] {
  const records: ConsumedRecord[] = [];
  for (let i = 0; i < 150; i++) {
    for (let tag = 0; tag < 6; tag++) {
      if (tag === 3 && i >= 15 && i <= 20) continue;
      const device = BASE + i * 1000;
      const reading = {
        asset_id: `asset${tag % 2}`,
        parameter: `p${Math.floor(tag / 2)}`,
        value: i + tag / 10,
        quality: "GOOD",
        classification: "TELEMETRY",
        timestamps: { device_time: new Date(device).toISOString(), gateway_time: new Date(device + (tag === 5 ? 12_000 : 100)).toISOString(), kafka_time: null },
        clock_skew_ms: null,
        metadata: { adapter_id: "a", adapter_version: "1", pipeline_id: "p", hostname: "h" },
      };
      const value = JSON.stringify(reading);
      const copies = (i * 6 + tag) % 13 === 0 ? 2 : 1;
      for (let c = 0; c < copies; c++) records.push({ topic: "telemetry.raw", partition: 0, offset: 0n, key: `${reading.asset_id}/${reading.parameter}`, value, headers: new Map(), timestamp: BigInt(device + 200) });
    }
    if (i % 40 === 0) records.push({ topic: "telemetry.raw", partition: 0, offset: 0n, key: "garbage/x", value: "{not json", headers: new Map(), timestamp: 0n });
  }
  return records.map((r, i) => ({ ...r, offset: BigInt(i) }));
}

function run(batches: ReturnType<typeof qualityBatches>, records: ConsumedRecord[]) {
  const outputs: OutgoingRecord[] = [];
  for (let i = 0; i < records.length; i += BATCH) outputs.push(...batches.process(records.slice(i, i + BATCH)));
  return {
    data: outputs.filter((o) => o.topic !== QUALITY_CHANGELOG),
    changelog: outputs.filter((o) => o.topic === QUALITY_CHANGELOG).map((o, i): ConsumedRecord => ({ topic: o.topic, partition: 0, offset: BigInt(i), key: o.key, value: o.value, headers: new Map(), timestamp: 0n })),
  };
}

/** What compaction leaves: each key's last record, in the order those were written. */
function compacted(records: ConsumedRecord[]): ConsumedRecord[] {
  const latest = new Map<string | undefined, ConsumedRecord>();
  for (const r of records) {
    latest.delete(r.key);
    latest.set(r.key, r);
  }
  return [...latest.values()];
}

const fresh = () => qualityBatches(RULES, topicNamespace(), () => NOW);

describe("quality worker batches", () => {
  const records = input();
  const whole = run(fresh(), records);

  test.each([BATCH * 3, BATCH * 20, BATCH * 60])("restored from its compacted changelog after %i records, it continues as if never stopped", (cut) => {
    const first = fresh();
    const before = run(first, records.slice(0, cut));
    const second = fresh();
    second.restore(0, compacted(before.changelog));
    const after = run(second, records.slice(cut));
    expect([...before.data, ...after.data]).toEqual(whole.data);
    expect(whole.data.some((o) => o.topic === "dlq.invalid_telemetry" && o.value.includes('"duplicate"'))).toBe(true);
    expect(whole.data.some((o) => o.topic === "events.clean" && o.value.includes('"gap"'))).toBe(true);
  });

  test("one changelog record per changed tag and batch, holding both the validator's and the ledger's state", () => {
    const { changelog } = run(fresh(), records.slice(0, BATCH));
    const keys = changelog.map((r) => r.key);
    expect(new Set(keys).size).toBe(keys.length);
    const tag = changelog.find((r) => r.key === "asset0/p0")!;
    const [validator, ledger] = JSON.parse(tag.value!);
    expect(validator.seen[0]).toBe(BASE);
    expect(ledger.asset_id).toBe("asset0");
  });

  test("a changelog written in the previous layout (separate v| and l| records) is restored the same", () => {
    const cut = BATCH * 20;
    const validator = createValidatorState();
    const ledger = createLedgerState();
    const previous: ConsumedRecord[] = [];
    const log = (key: string, value: string) => previous.push({ topic: QUALITY_CHANGELOG, partition: 0, offset: BigInt(previous.length), key, value, headers: new Map(), timestamp: 0n });
    for (let i = 0; i < cut; i += BATCH) {
      for (const r of records.slice(i, Math.min(i + BATCH, cut))) {
        const result = validate(validator, { topic: "telemetry.raw", key: r.key, value: r.value!, partition: 0, offset: r.offset, timestamp: r.timestamp }, RULES, NOW);
        if (result.outcome) recordOutcome(ledger, result.outcome);
      }
      for (const e of takeStateChanges(validator)) log(`v|${e.key}`, e.value);
      // That layout's ledger records named each window's counts (format 1).
      for (const e of takeTimelineChanges(ledger.timeline, 1, (w) => w)) log(`l|${e.key}`, e.value);
    }
    const restored = fresh();
    restored.restore(0, compacted(previous));
    const after = run(restored, records.slice(cut));
    expect([...run(fresh(), records.slice(0, cut)).data, ...after.data]).toEqual(whole.data);
  });

  test("processing that yields to the event loop gives the same outputs and state", async () => {
    const yielding = fresh();
    const outputs: OutgoingRecord[] = [];
    for (let i = 0; i < records.length; i += 1200) outputs.push(...(await yielding.processYielding(records.slice(i, i + 1200))));
    const plain = fresh();
    const expected: OutgoingRecord[] = [];
    for (let i = 0; i < records.length; i += 1200) expected.push(...plain.process(records.slice(i, i + 1200)));
    expect(outputs).toEqual(expected);
  });
});
