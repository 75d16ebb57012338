import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Consumer, FetchIsolationLevels, MessagesStreamModes, ProduceAcks, Producer, stringDeserializers, stringSerializers, type Message } from "@platformatic/kafka";
import { kafkaConnection, kafkaUp, uniqueName } from "../../test/support/services.ts";
import { createLogger } from "../log/logger.ts";
import { baseClientOptions } from "./connection.ts";
import { KafkaAdmin } from "./admin.ts";
import { TransactionalProcessor, type ConsumedRecord } from "./processor.ts";
import { ReliableProducer } from "./producer.ts";
import { readTopic } from "./reader.ts";

const log = createLogger("test", "silent");
const COUNT = 2000;

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await Bun.sleep(100);
  }
}

describe.skipIf(!kafkaUp)("transactional processor", () => {
  const connection = kafkaConnection();
  const admin = new KafkaAdmin(connection);
  const input = uniqueName("test.proc.in");
  const output = uniqueName("test.proc.out");

  beforeAll(async () => {
    await admin.createTopic(input, 3);
    await admin.createTopic(output, 3);
    const producer = new ReliableProducer(connection, "test");
    await producer.send(Array.from({ length: COUNT }, (_, i) => ({ topic: input, key: `k${i % 17}`, value: String(i) })));
    await producer.close();
  });
  afterAll(async () => {
    await admin.deleteTopics([input, output]).catch(() => undefined);
    await admin.close();
  });

  test("every input yields exactly one output, even when batches fail and replay", async () => {
    let failuresLeft = 3;
    let processed = 0;
    const transform = (batch: ConsumedRecord[]) => {
      processed += batch.length;
      // Fail mid-stream: the batch's outputs must be aborted and the batch replayed.
      if (processed > COUNT / 3 && failuresLeft-- > 0) throw new Error("injected failure");
      return batch.map((r) => ({ topic: output, key: r.key, value: String(Number(r.value) * 2) }));
    };
    const processor = new TransactionalProcessor({
      connection,
      groupId: uniqueName("test-proc"),
      transactionalId: uniqueName("test-proc-tx"),
      inputTopics: [input],
      process: transform,
      log,
      maxBatch: 100,
    });
    await processor.start();
    await waitFor(async () => (await admin.endOffsets(output)).size > 0 && failuresLeft < 0, 60_000);
    const records = await readTopic(connection, output, { until: COUNT, idleMs: 3000 });
    await processor.stop();
    const values = records.map((r) => Number(r.value)).sort((a, b) => a - b);
    expect(values).toEqual(Array.from({ length: COUNT }, (_, i) => i * 2));
  });

  test("a commit that fails drops the batch processed meanwhile too; every input still yields exactly one output", async () => {
    const failing = uniqueName("test.proc.commitfail");
    await admin.createTopic(failing, 3);
    let poisoned = false;
    let processed = 0;
    let committed = 0;
    const seen = new Map<string, number>();
    const processor = new TransactionalProcessor({
      connection,
      groupId: uniqueName("test-proc-commitfail"),
      transactionalId: uniqueName("test-proc-commitfail-tx"),
      inputTopics: [input],
      process: (batch) => {
        processed += batch.length;
        for (const r of batch) seen.set(r.value!, (seen.get(r.value!) ?? 0) + 1);
        const outputs = batch.map((r) => ({ topic: failing, key: r.key, value: String(Number(r.value) * 2) }));
        // Once, midway: an output to a topic that does not exist fails this batch's commit (not its
        // processing), while the next batch is already being processed.
        if (!poisoned && processed > COUNT / 3) {
          poisoned = true;
          outputs.push({ topic: uniqueName("test.proc.missing"), key: "k", value: "x" });
        }
        return outputs;
      },
      onCommit: (outputs) => (committed += outputs.length),
      log,
      maxBatch: 100,
    });
    await processor.start();
    await waitFor(() => poisoned && committed >= COUNT, 60_000);
    const records = await readTopic(connection, failing, { until: COUNT + 1, idleMs: 3000 });
    await processor.stop();
    await admin.deleteTopics([failing]).catch(() => undefined);
    expect(records.map((r) => Number(r.value)).sort((a, b) => a - b)).toEqual(Array.from({ length: COUNT }, (_, i) => i * 2));
    // The failed batch and the one processed meanwhile were processed again after the restart.
    expect([...seen.values()].filter((n) => n > 1).length).toBeGreaterThan(100);
  });

  test("a backlog is processed in transactions of at most maxBatch records", async () => {
    const sizes: number[] = [];
    const backlogOutput = uniqueName("test.proc.backlog");
    await admin.createTopic(backlogOutput, 3);
    const processor = new TransactionalProcessor({
      connection,
      groupId: uniqueName("test-proc-backlog"),
      transactionalId: uniqueName("test-proc-backlog-tx"),
      inputTopics: [input],
      process: (batch) => {
        sizes.push(batch.length);
        return batch.map((r) => ({ topic: backlogOutput, key: r.key, value: r.value ?? "" }));
      },
      log,
      maxBatch: 150,
    });
    await processor.start();
    await waitFor(() => sizes.reduce((a, b) => a + b, 0) >= COUNT, 60_000);
    await processor.stop();
    await admin.deleteTopics([backlogOutput]).catch(() => undefined);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(150);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(COUNT);
  });
  test("a transaction whose outputs exceed the broker's max.message.bytes per partition goes out in several requests", async () => {
    const big = uniqueName("test.proc.big");
    await admin.createTopic(big, 1);
    const processor = new TransactionalProcessor({
      connection,
      groupId: uniqueName("test-proc-big"),
      transactionalId: uniqueName("test-proc-big-tx"),
      inputTopics: [input],
      // 200 inputs x 20 KB to one partition: ~4 MB per transaction against the 1 MiB default limit.
      process: (batch) => batch.map((r) => ({ topic: big, key: r.key, value: `${r.value}:${"x".repeat(20_000)}` })),
      log,
      maxBatch: 200,
    });
    await processor.start();
    await waitFor(() => processor.committedBatches >= COUNT / 200, 60_000);
    const records = await readTopic(connection, big, { until: COUNT, idleMs: 3000 });
    await processor.stop();
    await admin.deleteTopics([big]).catch(() => undefined);
    expect(records.map((r) => Number(r.value!.split(":")[0])).sort((a, b) => a - b)).toEqual(Array.from({ length: COUNT }, (_, i) => i));
  });

  test("a partition's new owner starts after the previous owner's last transaction, even while that one is still being committed", async () => {
    const handover = uniqueName("test.proc.handover");
    const handoverOut = uniqueName("test.proc.handover.out");
    const groupId = uniqueName("test-proc-handover");
    await admin.createTopic(handover, 1);
    await admin.createTopic(handoverOut, 1);
    const producer = new ReliableProducer(connection, "test");
    await producer.send(Array.from({ length: 10 }, (_, i) => ({ topic: handover, key: "k", value: String(i) })));
    await producer.close();

    // The previous owner: reads 0-5, sends their outputs and commits offset 6 in a transaction,
    // leaves the group, and only then completes the transaction (EndTxn), as a member does when
    // it is revoked mid-commit.
    const previous = new Consumer({ ...baseClientOptions(connection, "handover-old"), groupId, autocommit: false, isolationLevel: FetchIsolationLevels.READ_COMMITTED, deserializers: stringDeserializers });
    const stream = await previous.consume({ topics: [handover], mode: MessagesStreamModes.EARLIEST, autocommit: false, maxWaitTime: 100 });
    const read: Message<string, string, string, string>[] = [];
    for await (const message of stream) {
      read.push(message as Message<string, string, string, string>);
      if (read.length === 6) break;
    }
    const zombie = new Producer({ ...baseClientOptions(connection, "handover-old-tx"), idempotent: true, acks: ProduceAcks.ALL, transactionalId: uniqueName("test-proc-handover-old"), producerId: -1n, producerEpoch: -1, serializers: stringSerializers, autocreateTopics: false });
    const pending = await zombie.beginTransaction();
    await pending.addConsumer(previous);
    await pending.send({ messages: read.map((m) => ({ topic: handoverOut, key: m.key, value: `old:${m.value}` })) });
    await pending.addOffset(read[5]!);
    await stream.close();
    await previous.close(true);

    const outputs: string[] = [];
    const processor = new TransactionalProcessor({
      connection,
      groupId,
      transactionalId: uniqueName("test-proc-handover-new"),
      inputTopics: [handover],
      process: (batch) => batch.map((r) => ({ topic: handoverOut, key: r.key, value: `new:${r.value}` })),
      onCommit: (records) => outputs.push(...records.map((r) => r.value as string)),
      log,
      maxBatch: 100,
    });
    await processor.start();
    await Bun.sleep(1500);
    await pending.commit();
    await zombie.close();
    await waitFor(() => outputs.length >= 4, 30_000);
    await processor.stop();

    const values = (await readTopic(connection, handoverOut, { until: 10, idleMs: 1000 })).map((r) => r.value);
    expect(values).toEqual([...[0, 1, 2, 3, 4, 5].map((i) => `old:${i}`), ...[6, 7, 8, 9].map((i) => `new:${i}`)]);
    await admin.deleteTopics([handover, handoverOut]).catch(() => undefined);
  });
});
