import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { kafkaConnection, kafkaUp, uniqueName } from "../../test/support/services.ts";
import { createLogger } from "../log/logger.ts";
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
});
