import { afterAll, describe, expect, test } from "bun:test";
import { createRecordsBatch, ProduceAcks, Producer, stringSerializers } from "@platformatic/kafka";
import { kafkaConnection, kafkaUp, uniqueName } from "../../test/support/services.ts";
import { KafkaAdmin } from "./admin.ts";
import { baseClientOptions } from "./connection.ts";
import { decodeRecordBatches } from "./fetch-records.ts";
import { LeanGroupConsumer } from "./lean-consumer.ts";
import type { ConsumedRecord } from "./processor.ts";

const T0 = 1_736_500_000_000n;

/** One record batch at `base`, as the broker would store it (the client writes base offset 0; CRCs are not checked). */
function batch(base: bigint, records: { key?: string; value: string; headers?: Record<string, string> }[], o: { producerId?: bigint; control?: "abort" | "commit"; gzip?: boolean } = {}): Buffer {
  const messages = records.map((r, i) => ({
    key: o.control ? Buffer.from([0, 0, 0, o.control === "abort" ? 0 : 1]) : r.key === undefined ? undefined : Buffer.from(r.key),
    value: Buffer.from(r.value),
    headers: new Map(Object.entries(r.headers ?? {}).map(([k, v]) => [Buffer.from(k), Buffer.from(v)])),
    timestamp: T0 + BigInt(i * 10),
    topic: "t",
  }));
  const bytes = Buffer.from(
    createRecordsBatch(messages, {
      ...(o.producerId !== undefined ? { producerId: o.producerId, transactionalId: "tx" } : {}),
      ...(o.gzip ? { compression: "gzip" as const } : {}),
    }).buffer,
  );
  bytes.writeBigInt64BE(base, 0);
  if (o.control) bytes.writeInt16BE(bytes.readInt16BE(21) | (1 << 5), 21);
  return bytes;
}

test("record batches: from the fetch offset on; control batches and aborted transactions skipped; a cut-short batch left for the next fetch", () => {
  const whole = Buffer.concat([
    batch(0n, [{ key: "k", value: "a0" }, { key: "k", value: "a1", headers: { h: "v" } }, { value: "a2" }]),
    batch(3n, [{ value: "aborted3" }, { value: "aborted4" }], { producerId: 7n }),
    batch(5n, [{ value: "c5" }], { producerId: 8n }),
    batch(6n, [{ value: "" }], { producerId: 7n, control: "abort" }),
    batch(7n, [{ value: "" }], { producerId: 8n, control: "commit" }),
    batch(8n, [{ value: "f8" }], { producerId: 7n }), // the producer's next transaction, committed
    batch(9n, [{ key: "g", value: "g9" }, { key: "g", value: "g10" }], { gzip: true }),
  ]);
  const cut = batch(11n, [{ value: "h11" }]);
  const out: ConsumedRecord[] = [];
  const next = decodeRecordBatches(Buffer.concat([whole, cut.subarray(0, cut.length - 3)]), "t", 2, 1n, [{ producerId: 7n, firstOffset: 3n }], out);
  expect(next).toBe(11n);
  expect(out.map((r) => [r.offset, r.value])).toEqual([
    [1n, "a1"],
    [2n, "a2"],
    [5n, "c5"],
    [8n, "f8"],
    [9n, "g9"],
    [10n, "g10"],
  ]);
  expect(out[0]).toMatchObject({ topic: "t", partition: 2, key: "k", timestamp: T0 + 10n });
  expect([...out[0]!.headers]).toEqual([["h", "v"]]);
  expect(out[1]!.key).toBeUndefined();
  expect(out[5]!.timestamp).toBe(T0 + 10n);
  expect(decodeRecordBatches(cut.subarray(0, 20), "t", 2, 11n, [], [])).toBe(11n);
});

describe.skipIf(!kafkaUp)("lean group consumer", () => {
  const connection = kafkaConnection();
  const admin = new KafkaAdmin(connection);
  const topic = uniqueName("test.lean");
  afterAll(async () => {
    await admin.deleteTopics([topic]).catch(() => undefined);
    await admin.close();
  });

  test("read_committed against the broker: committed transactions only; pause holds delivery; commits move the lag", async () => {
    await admin.createTopic(topic, 2);
    const producer = new Producer({
      ...baseClientOptions(connection, "test-lean"),
      idempotent: true,
      acks: ProduceAcks.ALL,
      transactionalId: uniqueName("lean-tx"),
      producerId: -1n,
      producerEpoch: -1,
      serializers: stringSerializers,
      autocreateTopics: false,
    });
    const inTransaction = async (values: string[], outcome: "commit" | "abort") => {
      const transaction = await producer.beginTransaction();
      await transaction.send({ messages: values.map((value, i) => ({ topic, key: `k${i % 4}`, value })) });
      await (outcome === "commit" ? transaction.commit() : transaction.abort());
    };
    const range = (prefix: string, from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`);
    try {
      await inTransaction(range("ok", 0, 20), "commit");
      await inTransaction(range("aborted", 0, 20), "abort");
      await inTransaction(range("ok", 20, 40), "commit");
    } finally {
      await producer.close();
    }

    const consumer = new LeanGroupConsumer({ connection, groupId: uniqueName("lean-group"), topics: [topic], role: "test", startFrom: "earliest" });
    const received: ConsumedRecord[] = [];
    const errors: Error[] = [];
    let assigned = 0;
    await consumer.start({
      onRecord: (record) => {
        received.push(record);
        if (received.length === 10) consumer.pause();
      },
      onAssignment: (partitions) => (assigned = partitions.length),
      onError: (error) => errors.push(error),
    });
    try {
      const deadline = Date.now() + 15_000;
      while (received.length < 10 && Date.now() < deadline) await Bun.sleep(50);
      await Bun.sleep(500);
      expect(assigned).toBe(2);
      expect(received.length).toBe(10);
      consumer.resume();
      while (received.length < 40 && Date.now() < deadline) await Bun.sleep(50);
      await Bun.sleep(300);
      expect(received.map((r) => r.value).sort()).toEqual(range("ok", 0, 40).sort());
      const before = await consumer.lag();
      expect(before.every((p) => p.committed === null && p.lag === p.end)).toBe(true);
      await consumer.commit(before.map((p) => ({ topic, partition: p.partition, offset: p.end })));
      expect((await consumer.lag()).map((p) => p.lag)).toEqual([0n, 0n]);
      expect(errors).toEqual([]);
    } finally {
      await consumer.close();
    }
  }, 30_000);
});
