import { ConnectionPool, Consumer, FetchIsolationLevels, ListOffsetTimestamps, MessagesStreamModes, stringDeserializers } from "@platformatic/kafka";
import { baseClientOptions, type KafkaConnection } from "./connection.ts";
import { ContiguousBytes, fetchRound } from "./fetch-records.ts";
import { tpKey } from "./group-consumer.ts";
import { toConsumed, type ConsumedRecord } from "./processor.ts";

/** A read_committed consumer in a group of its own that commits nothing: reading never moves a worker's offsets. */
function throwawayConsumer(connection: KafkaConnection, role: string) {
  return new Consumer({
    ...baseClientOptions(connection, role),
    groupId: `${role}-${crypto.randomUUID()}`,
    deserializers: stringDeserializers,
    isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    autocommit: false,
  });
}

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
  const consumer = throwawayConsumer(connection, "reader");
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
        records.push(toConsumed(m));
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
  const consumer = throwawayConsumer(connection, "reader");
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
      stream.on("data", (m) => records.push(toConsumed(m)));
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

/**
 * The last `count` committed records of each partition of a topic (oldest first per partition),
 * read from the end offsets without joining any group that matters. For the DLQ browser.
 */
export async function readLast(connection: KafkaConnection, topic: string, count: number, timeoutMs = 3000): Promise<ConsumedRecord[]> {
  const consumer = throwawayConsumer(connection, "reader");
  try {
    const ends = (await consumer.listOffsets({ topics: [topic], isolationLevel: FetchIsolationLevels.READ_COMMITTED })).get(topic) ?? [];
    const starts = (await consumer.listOffsets({ topics: [topic], timestamp: ListOffsetTimestamps.EARLIEST })).get(topic) ?? [];
    // Transaction markers take offsets too: look twice as far back, keep the newest `count`.
    const span = BigInt(count) * 2n;
    const wanted = ends
      .map((end, partition) => {
        const earliest = starts[partition] ?? 0n;
        const from = end - span > earliest ? end - span : earliest;
        return { partition, from, end };
      })
      .filter((p) => p.end > p.from);
    if (wanted.length === 0) return [];
    const records: ConsumedRecord[] = [];
    const stream = await consumer.consume({
      topics: [topic],
      mode: MessagesStreamModes.MANUAL,
      offsets: wanted.map((p) => ({ topic, partition: p.partition, offset: p.from })),
      autocommit: false,
      maxWaitTime: 200,
    });
    stream.on("data", (m) => records.push(toConsumed(m)));
    // Transaction markers occupy offsets too: a partition is done once a record at or past
    // end - 1 arrived, or when nothing arrived for a while.
    const deadline = Date.now() + timeoutMs;
    let seen = 0;
    let lastChange = Date.now();
    const done = () => wanted.every((p) => records.some((r) => r.partition === p.partition && r.offset >= p.end - 1n));
    while (Date.now() < deadline && !done()) {
      if (records.length !== seen) [seen, lastChange] = [records.length, Date.now()];
      else if (seen > 0 && Date.now() - lastChange > 500) break;
      await Bun.sleep(20);
    }
    await stream.close();
    return wanted.flatMap((p) => records.filter((r) => r.partition === p.partition && r.offset < p.end).slice(-count));
  } finally {
    await consumer.close(true);
  }
}

/** Per restore fetch: large enough that a changelog comes back in a few round trips. */
const RESTORE_FETCH_BYTES = 16 << 20;
const RESTORE_RETRY_MS = 100;

/**
 * Everything committed in one partition, from its start to its last stable offset: restoring a
 * state changelog. Fetched and decoded as the lean consumer does (read_committed, no group): the
 * position moves past transaction markers and compacted gaps, so reaching the end is exact. A
 * message stream cannot tell: its last record is followed by the commit marker, which never
 * arrives, and waiting for a quiet second cost every restore a second per partition.
 */
export async function readPartition(connection: KafkaConnection, topic: string, partition: number, timeoutMs = 60_000): Promise<ConsumedRecord[]> {
  // Only for metadata and offset lookups: it never joins its group.
  const consumer = throwawayConsumer(connection, "restore");
  const pool = new ConnectionPool(`${connection.client_id}-restore`, { connectTimeout: connection.request_timeout_ms, requestTimeout: connection.request_timeout_ms });
  const bytes = new ContiguousBytes();
  try {
    const [starts, ends] = await Promise.all([
      consumer.listOffsets({ topics: [topic], timestamp: ListOffsetTimestamps.EARLIEST }),
      consumer.listOffsets({ topics: [topic], isolationLevel: FetchIsolationLevels.READ_COMMITTED }),
    ]);
    let position = starts.get(topic)?.[partition] ?? 0n;
    const end = ends.get(topic)?.[partition] ?? 0n;
    const records: ConsumedRecord[] = [];
    const deadline = Date.now() + timeoutMs;
    const key = tpKey(topic, partition);
    const limits = { maxWaitMs: 100, minBytes: 1, maxBytes: RESTORE_FETCH_BYTES, partitionMaxBytes: RESTORE_FETCH_BYTES };
    while (position < end) {
      if (Date.now() > deadline) throw new Error(`restoring ${topic}[${partition}] timed out at offset ${position} of ${end}`);
      const round = await fetchRound(consumer, pool, [{ topic, partition, offset: position }], limits, bytes, records);
      const next = round.advanced.get(key);
      // Deleted or compacted away below us meanwhile: what is left starts at the log start.
      const lost = round.outOfRange.get(key);
      if (lost) position = lost.logStartOffset;
      else if (next !== undefined) position = next;
      else {
        // A leader moving, or one still catching up: look it up again.
        consumer.clearMetadata();
        await Bun.sleep(RESTORE_RETRY_MS);
      }
    }
    // The stable end may have moved on while reading; the state is taken as of `end`.
    return records.filter((r) => r.offset < end);
  } finally {
    await pool.close().catch(() => undefined);
    await consumer.close(true);
  }
}
