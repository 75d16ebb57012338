import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ProduceAcks, Producer, stringSerializers } from "@platformatic/kafka";
import { kafkaConnection, kafkaUp, uniqueName } from "../../test/support/services.ts";
import { KafkaAdmin } from "./admin.ts";
import { baseClientOptions } from "./connection.ts";
import { readPartition } from "./reader.ts";

describe.skipIf(!kafkaUp)("readPartition (restoring a changelog)", () => {
  const connection = kafkaConnection();
  const admin = new KafkaAdmin(connection);
  const topic = uniqueName("test.reader.changelog");
  const empty = uniqueName("test.reader.empty");
  let producer: Producer<string, string, string, string>;

  /** One transaction, committed or aborted, as a worker writes its changelog. */
  async function transaction(partition: number, keys: string[], outcome: "commit" | "abort"): Promise<void> {
    const txn = await producer.beginTransaction();
    await txn.send({ messages: keys.map((key) => ({ topic, partition, key, value: `${key}@${outcome}` })) });
    await (outcome === "commit" ? txn.commit() : txn.abort());
  }

  beforeAll(async () => {
    await admin.createTopic(topic, 2);
    await admin.createTopic(empty, 1);
    producer = new Producer({
      ...baseClientOptions(connection, "test-reader"),
      idempotent: true,
      acks: ProduceAcks.ALL,
      transactionalId: uniqueName("test-reader-txn"),
      producerId: -1n,
      producerEpoch: -1,
      serializers: stringSerializers,
      autocreateTopics: false,
    });
    await transaction(0, ["a", "b"], "commit");
    await transaction(1, ["other"], "commit");
    await transaction(0, ["lost"], "abort");
    await transaction(0, ["c"], "commit");
  });
  afterAll(async () => {
    await producer?.close();
    await admin.deleteTopics([topic, empty]).catch(() => undefined);
    await admin.close();
  });

  test("the committed records of the partition, in order, without the aborted transaction's", async () => {
    const records = await readPartition(connection, topic, 0);
    expect(records.map((r) => [r.key, r.value])).toEqual([
      ["a", "a@commit"],
      ["b", "b@commit"],
      ["c", "c@commit"],
    ]);
    expect(records.every((r) => r.topic === topic && r.partition === 0)).toBe(true);
  });

  test("ends at the commit marker that closes the log instead of waiting for a quiet spell", async () => {
    const started = performance.now();
    await readPartition(connection, topic, 0);
    // The stream-based reader waited 1 s after the last record for a marker that never arrives as one.
    expect(performance.now() - started).toBeLessThan(900);
  });

  test("an empty partition is an empty state", async () => {
    expect(await readPartition(connection, empty, 0)).toEqual([]);
  });
});
