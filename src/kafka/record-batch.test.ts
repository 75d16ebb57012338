import { describe, expect, test } from "bun:test";
import { crc32c, createRecordsBatch, Reader, readRecordsBatch } from "@platformatic/kafka";
import { RecordBatchEncoder, type BatchProducer, type BatchRecord } from "./record-batch.ts";

const TIMESTAMP = 1_795_000_000_123n;
const TRANSACTIONAL: BatchProducer = { producerId: 4_242n, producerEpoch: 7, baseSequence: 1_000, transactional: true };
const PLAIN: BatchProducer = { producerId: -1n, producerEpoch: -1, baseSequence: -1, transactional: false };

/** The same batch from the client's encoder: an independent implementation of the format. */
function clientBatch(records: readonly BatchRecord[], producer: BatchProducer): Buffer {
  const messages = records.map((r) => ({
    topic: "t",
    partition: 0,
    key: r.key == null ? undefined : Buffer.from(r.key),
    value: r.value == null ? undefined : Buffer.from(r.value),
    headers: new Map(Object.entries(r.headers ?? {}).map(([k, v]) => [Buffer.from(k), Buffer.from(v)])),
    timestamp: TIMESTAMP,
  }));
  const writer = createRecordsBatch(messages as never, {
    producerId: producer.producerId,
    producerEpoch: producer.producerEpoch,
    partitionLeaderEpoch: -1,
    sequences: { getWithDefault: () => producer.baseSequence } as never,
    ...(producer.transactional ? { transactionalId: "tx" } : {}),
  } as never);
  return writer.buffer;
}

const many = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `asset-${i % 7}/p${i}`, value: JSON.stringify({ v: i, q: "GOOD" }) }));

const cases: [string, BatchRecord[], BatchProducer][] = [
  ["one plain record", [{ key: "k", value: "v" }], TRANSACTIONAL],
  ["no key", [{ value: "v" }], TRANSACTIONAL],
  ["a tombstone (null value)", [{ key: "k", value: null }], TRANSACTIONAL],
  ["empty key and value (length 0, not null)", [{ key: "", value: "" }], TRANSACTIONAL],
  ["headers", [{ key: "k", value: "v", headers: { source: "modbus", "content-type": "application/json" } }], TRANSACTIONAL],
  ["multi-byte UTF-8", [{ key: "ünïcødé/温度", value: '{"unit":"°C","note":"🌡"}', headers: { "ä": "ö" } }], TRANSACTIONAL],
  ["offset deltas past one varint byte", many(300), TRANSACTIONAL],
  ["a value whose length needs three varint bytes", [{ key: "big", value: "x".repeat(70_000) }], TRANSACTIONAL],
  ["not transactional, no producer", many(3), PLAIN],
];

describe("record batch encoder", () => {
  const encoder = new RecordBatchEncoder();

  for (const [name, records, producer] of cases) {
    test(`${name}: byte for byte the client's batch`, () => {
      expect(encoder.encode(records, producer, TIMESTAMP).equals(clientBatch(records, producer))).toBe(true);
    });
  }

  test("decodes with the client's reader; the crc covers attributes to the end", () => {
    const records: BatchRecord[] = [{ key: "a", value: "1" }, { value: null, headers: { h: "x" } }, { key: "c", value: "3" }];
    const bytes = encoder.encode(records, TRANSACTIONAL, TIMESTAMP);
    const batch = readRecordsBatch(Reader.from(bytes));
    expect(batch.crc).toBe(crc32c(bytes.subarray(21)));
    expect(batch.magic).toBe(2);
    expect(batch.attributes).toBe(1 << 4);
    expect(batch.producerId).toBe(4_242n);
    expect(batch.producerEpoch).toBe(7);
    expect(batch.firstSequence).toBe(1_000);
    expect(batch.lastOffsetDelta).toBe(2);
    expect(batch.records.map((r) => [r.key?.toString() ?? null, r.value?.toString() ?? null])).toEqual([
      ["a", "1"],
      [null, null],
      ["c", "3"],
    ]);
    expect(batch.records[1]!.headers.map(([k, v]) => [String(k), String(v)])).toEqual([["h", "x"]]);
  });

  test("a batch is a copy: encoding the next one does not change it", () => {
    const first = encoder.encode([{ key: "k", value: "first" }], TRANSACTIONAL, TIMESTAMP);
    const copy = Buffer.from(first);
    encoder.encode([{ key: "k", value: "second, longer" }], TRANSACTIONAL, TIMESTAMP);
    expect(first.equals(copy)).toBe(true);
  });

  test("no records is refused", () => {
    expect(() => encoder.encode([], TRANSACTIONAL, TIMESTAMP)).toThrow("at least one record");
  });
});
