import { Consumer, FetchIsolationLevels, MessagesStreamModes, stringDeserializers } from "@platformatic/kafka";
import { baseClientOptions, type KafkaConnection } from "./connection.ts";
import type { ConsumedRecord } from "./processor.ts";

export interface ReadOptions {
  /** Stop once this many records have been read. */
  until?: number;
  /** Stop when no record arrived for this long. */
  idleMs?: number;
  timeoutMs?: number;
}

/**
 * Reads a topic from the beginning with read_committed isolation, outside any consumer group
 * offsets that matter (a throwaway group). For tests, the tag explorer and tools.
 */
export async function readTopic(connection: KafkaConnection, topic: string, options: ReadOptions = {}): Promise<ConsumedRecord[]> {
  const { until = Infinity, idleMs = 1500, timeoutMs = 30_000 } = options;
  const consumer = new Consumer({
    ...baseClientOptions(connection, "reader"),
    groupId: `reader-${crypto.randomUUID()}`,
    deserializers: stringDeserializers,
    isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    autocommit: false,
  });
  const records: ConsumedRecord[] = [];
  try {
    const stream = await consumer.consume({
      topics: [topic],
      mode: MessagesStreamModes.EARLIEST,
      autocommit: false,
      maxWaitTime: 200,
    });
    const deadline = Date.now() + timeoutMs;
    let lastArrival = Date.now();
    await new Promise<void>((resolve, reject) => {
      const check = setInterval(() => {
        if (records.length >= until || Date.now() > deadline || Date.now() - lastArrival > idleMs) finish();
      }, 50);
      const finish = () => {
        clearInterval(check);
        resolve();
      };
      stream.on("data", (m) => {
        lastArrival = Date.now();
        records.push({ topic: m.topic, partition: m.partition, offset: m.offset, key: m.key, value: m.value, headers: m.headers, timestamp: m.timestamp });
      });
      stream.on("error", (e) => {
        clearInterval(check);
        reject(e);
      });
    });
    await stream.close();
  } finally {
    await consumer.close(true);
  }
  return records;
}

/** The last committed record of one partition, or undefined when it is empty. */
export async function lastRecord(connection: KafkaConnection, topic: string, partition = 0): Promise<ConsumedRecord | undefined> {
  const consumer = new Consumer({
    ...baseClientOptions(connection, "reader"),
    groupId: `reader-${crypto.randomUUID()}`,
    deserializers: stringDeserializers,
    isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    autocommit: false,
  });
  try {
    const offsets = await consumer.listOffsets({ topics: [topic], isolationLevel: FetchIsolationLevels.READ_COMMITTED });
    const end = offsets.get(topic)?.[partition] ?? 0n;
    if (end === 0n) return undefined;
    // Transaction markers occupy offsets too, so step back until a record shows up.
    for (let back = 1n; back <= 16n && end - back >= 0n; back *= 2n) {
      const records: ConsumedRecord[] = [];
      const stream = await consumer.consume({
        topics: [topic],
        mode: MessagesStreamModes.MANUAL,
        offsets: [{ topic, partition, offset: end - back }],
        autocommit: false,
        maxWaitTime: 200,
      });
      const deadline = Date.now() + 2000;
      stream.on("data", (m) => records.push({ topic: m.topic, partition: m.partition, offset: m.offset, key: m.key, value: m.value, headers: m.headers, timestamp: m.timestamp }));
      while (Date.now() < deadline && !records.some((r) => r.offset >= end - 1n)) await Bun.sleep(20);
      await stream.close();
      const last = records.filter((r) => r.partition === partition).at(-1);
      if (last) return last;
    }
    return undefined;
  } finally {
    await consumer.close(true);
  }
}
