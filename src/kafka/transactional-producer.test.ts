import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ConnectionPool, defaultPartitioner, findCoordinatorV6 } from "@platformatic/kafka";
import { KAFKA_BOOTSTRAP, kafkaConnection, kafkaUp, uniqueName } from "../../test/support/services.ts";
import { KafkaAdmin } from "./admin.ts";
import type { OutgoingRecord } from "./producer.ts";
import { cutIntoBatches, TransactionalProducer, transactionApis, type BrokerApiVersions, type OffsetsOwner } from "./transactional-producer.ts";

const PARTITIONS = 3;
const [host, port] = KAFKA_BOOTSTRAP.split(":") as [string, string];

/** What read_committed sees, through kcat (librdkafka): an independent consumer. "NULL" marks a null key or value. */
function kcatCommitted(topic: string, partition: number): string[] {
  const run = Bun.spawnSync(["kcat", "-b", KAFKA_BOOTSTRAP, "-C", "-t", topic, "-p", String(partition), "-o", "beginning", "-e", "-q", "-Z", "-X", "isolation.level=read_committed", "-f", "%k|%s|%h\n"]);
  if (run.exitCode !== 0) throw new Error(`kcat failed: ${run.stderr.toString()}`);
  return run.stdout.toString().split("\n").filter(Boolean);
}

async function groupCoordinator(groupId: string): Promise<number> {
  const pool = new ConnectionPool("test-find-coordinator");
  try {
    const connection = await pool.get({ host, port: Number(port) });
    return (await findCoordinatorV6.api.async(connection, 0, [groupId])).coordinators[0]!.nodeId;
  } finally {
    await pool.close();
  }
}

/** Kafka's default partitioner, as the client computes it: where every producer of ours puts a key. */
const partitionOf = (key: string) => defaultPartitioner({ topic: "t", key }, Buffer.from(key)) % PARTITIONS;

describe("record batches per partition", () => {
  const record = (bytes: number, key = "k") => ({ topic: "a", key, value: "v".repeat(bytes) });

  test("a partition's records go in batches of at most 768 KiB of payload, in order", () => {
    const records = Array.from({ length: 10 }, (_, i) => record(200_000, `k${i}`));
    const batches = cutIntoBatches(records);
    expect(batches.flat()).toEqual(records);
    for (const batch of batches) expect(batch.reduce((n, r) => n + r.value.length, 0)).toBeLessThanOrEqual(768 * 1024);
    expect(batches.length).toBe(4);
  });

  test("tombstones (null values) are sized as empty; a single oversized record is a batch of its own (the broker decides)", () => {
    const tombstone = { topic: "a", key: "k", value: null as unknown as string };
    expect(cutIntoBatches([tombstone, record(10)])).toEqual([[tombstone, record(10)]]);
    expect(cutIntoBatches([record(2_000_000)])).toEqual([[record(2_000_000)]]);
    expect(cutIntoBatches([])).toEqual([]);
  });
});

describe("request versions", () => {
  const broker = (max: Record<number, number>): BrokerApiVersions[] => Object.entries(max).map(([apiKey, maxVersion]) => ({ apiKey: Number(apiKey), minVersion: 0, maxVersion }));
  // Produce 0, FindCoordinator 10, InitProducerId 22, AddPartitionsToTxn 24, AddOffsetsToTxn 25, EndTxn 26, TxnOffsetCommit 28.
  const kafka41 = broker({ 0: 13, 10: 6, 22: 6, 24: 5, 25: 4, 26: 5, 28: 5 });
  const firstFlexible = broker({ 0: 9, 10: 4, 22: 4, 24: 3, 25: 3, 26: 3, 28: 3 });
  const versionsOf = (apis: ReturnType<typeof transactionApis>) => Object.fromEntries(Object.entries(apis).map(([name, api]) => [name, api?.version]));

  test("transaction version 2 takes the versions that carry it", () => {
    expect(versionsOf(transactionApis(kafka41, 2))).toEqual({ findCoordinator: 6, initProducerId: 5, produce: 12, txnOffsetCommit: 5, endTxn: undefined, endTxnBumpingEpoch: 5, addPartitionsToTxn: undefined, addOffsetsToTxn: undefined });
  });

  test("transaction version 1 stays below them, on a new cluster and on one whose newest versions are the first flexible ones", () => {
    expect(versionsOf(transactionApis(kafka41, 1))).toEqual({ findCoordinator: 6, initProducerId: 5, produce: 11, txnOffsetCommit: 4, endTxn: 4, endTxnBumpingEpoch: undefined, addPartitionsToTxn: 3, addOffsetsToTxn: 4 });
    expect(versionsOf(transactionApis(firstFlexible, 1))).toEqual({ findCoordinator: 4, initProducerId: 4, produce: 9, txnOffsetCommit: 3, endTxn: 3, endTxnBumpingEpoch: undefined, addPartitionsToTxn: 3, addOffsetsToTxn: 3 });
  });

  test("a cluster too old is refused, naming the request and the Kafka version needed", () => {
    expect(() => transactionApis(broker({ 0: 8, 10: 3, 22: 2, 24: 2, 25: 2, 26: 2, 28: 3 }), 1)).toThrow("the Kafka cluster speaks FindCoordinator v0-3; the stream workers need v4-6 (Kafka 2.8 or later)");
    expect(() => transactionApis(firstFlexible, 2)).toThrow("Produce v0-9; the stream workers need v12-12");
    expect(() => transactionApis(broker({ 10: 6 }), 1)).toThrow("InitProducerId in no version");
  });
});

describe.skipIf(!kafkaUp)("transaction version", () => {
  test("is 2 on a cluster that finalized transaction.version 2 (Kafka 4 by default)", async () => {
    const producer = new TransactionalProducer({ connection: kafkaConnection(), transactionalId: uniqueName("test-txp-detect") });
    await producer.ready();
    expect(producer.transactionVersion).toBe(2);
    expect(producer.producerId).toBeGreaterThanOrEqual(0n);
    await producer.close();
  });
});

for (const version of [2, 1] as const) {
  describe.skipIf(!kafkaUp)(`transactional producer, transaction version ${version}`, () => {
    const connection = kafkaConnection();
    const admin = new KafkaAdmin(connection);
    const topic = uniqueName(`test.txp${version}`);
    const transactionalId = uniqueName(`test-txp${version}`);
    let producer: TransactionalProducer;

    beforeAll(async () => {
      await admin.createTopic(topic, PARTITIONS);
      producer = new TransactionalProducer({ connection, transactionalId, transactionVersion: version });
    });
    afterAll(async () => {
      await producer.close();
      await admin.deleteTopics([topic]).catch(() => undefined);
      await admin.close();
    });

    const all = () => [0, 1, 2].flatMap((p) => kcatCommitted(topic, p));

    test("committed records are read back as sent: keyed ones on the default partitioner's partition, explicit partitions kept, tombstones, headers, UTF-8", async () => {
      const records: OutgoingRecord[] = [
        { topic, key: "asset-1/temp", value: '{"v":1}' },
        { topic, key: "asset-2/temp", value: '{"v":2}', headers: { source: "modbus" } },
        { topic, key: "ünï/温度", value: '{"unit":"°C"}' },
        { topic, key: "gone", value: null as unknown as string, partition: 2 },
        { topic, key: "pinned", value: "p0", partition: 0 },
      ];
      await producer.send(records);
      await producer.commit();
      expect(kcatCommitted(topic, partitionOf("asset-1/temp"))).toContain('asset-1/temp|{"v":1}|');
      expect(kcatCommitted(topic, partitionOf("asset-2/temp"))).toContain('asset-2/temp|{"v":2}|source=modbus');
      expect(kcatCommitted(topic, partitionOf("ünï/温度"))).toContain('ünï/温度|{"unit":"°C"}|');
      expect(kcatCommitted(topic, 2)).toContain("gone|NULL|");
      expect(kcatCommitted(topic, 0)).toContain("pinned|p0|");
      expect(producer.transactionVersion).toBe(version);
    });

    test("an aborted transaction's records are never read; the next transactions go on (new epochs and sequences)", async () => {
      const before = all().length;
      await producer.send([{ topic, key: "aborted", value: "x" }]);
      await producer.abort();
      for (let i = 0; i < 20; i++) {
        await producer.send([{ topic, key: `after-${i % 4}`, value: String(i) }]);
        await producer.commit();
      }
      const read = all();
      expect(read.filter((line) => line.startsWith("aborted|"))).toEqual([]);
      expect(read.length).toBe(before + 20);
      for (let k = 0; k < 4; k++) {
        const values = kcatCommitted(topic, partitionOf(`after-${k}`)).filter((l) => l.startsWith(`after-${k}|`)).map((l) => Number(l.split("|")[1]));
        expect(values).toEqual([0, 1, 2, 3, 4].map((n) => n * 4 + k));
      }
    });

    test("a transaction larger than one batch may be goes out in several requests, in order", async () => {
      const pinned = Array.from({ length: 60 }, (_, i) => ({ topic, key: "big", value: `${i}:${"x".repeat(50_000)}`, partition: 1 }));
      await producer.send(pinned);
      await producer.commit();
      const values = kcatCommitted(topic, 1)
        .filter((l) => l.startsWith("big|"))
        .map((l) => Number(l.split("|")[1]!.split(":")[0]));
      expect(values).toEqual(Array.from({ length: 60 }, (_, i) => i));
    });

    test("offsets sent in a transaction count only once it commits", async () => {
      const groupId = uniqueName(`test-txp${version}-group`);
      const owner: OffsetsOwner = { groupId, generationId: -1, memberId: "", coordinatorId: await groupCoordinator(groupId) };
      await producer.send([{ topic, key: "o", value: "1" }]);
      await producer.sendOffsets(owner, [{ topic, partition: 0, offset: 5n }]);
      await producer.abort();
      expect(await admin.stableCommittedOffsets(groupId, [{ topic, partition: 0 }])).toEqual(new Map());
      await producer.send([{ topic, key: "o", value: "2" }]);
      await producer.sendOffsets(owner, [{ topic, partition: 0, offset: 7n }, { topic, partition: 2, offset: 1n }]);
      await producer.commit();
      expect(await admin.stableCommittedOffsets(groupId, [{ topic, partition: 0 }, { topic, partition: 2 }])).toEqual(
        new Map([
          [`${topic}:0`, 7n],
          [`${topic}:2`, 1n],
        ]),
      );
    });

    test("a new producer with the same transactional id aborts what the old one left open and fences it", async () => {
      const fencedId = uniqueName(`test-txp${version}-fence`);
      const old = new TransactionalProducer({ connection, transactionalId: fencedId, transactionVersion: version });
      await old.send([{ topic, key: "zombie", value: "left open", partition: 0 }]);
      const successor = new TransactionalProducer({ connection, transactionalId: fencedId, transactionVersion: version });
      await successor.ready();
      await expect(old.commit()).rejects.toThrow();
      // A failed EndTxn leaves the transaction open on this side: abort() is sent (and refused,
      // fenced), where a silent success would let the next transaction join the unfinished one.
      await expect(old.abort()).rejects.toThrow();
      await successor.send([{ topic, key: "successor", value: "ok", partition: 0 }]);
      await successor.commit();
      const read = kcatCommitted(topic, 0);
      expect(read.filter((l) => l.startsWith("zombie|"))).toEqual([]);
      expect(read).toContain("successor|ok|");
      await old.close();
      await successor.close();
    });

    test("a transaction whose send failed before reaching a leader (unknown topic) aborts cleanly, and the next one commits", async () => {
      await expect(producer.send([{ topic: uniqueName("test.no-such-topic"), key: "k", value: "v" }])).rejects.toThrow("Unknown topic");
      await producer.abort();
      await producer.send([{ topic, key: "after-failure", value: "ok", partition: 2 }]);
      await producer.commit();
      expect(kcatCommitted(topic, 2)).toContain("after-failure|ok|");
    });

    test("a transaction with nothing sent ends without a request", async () => {
      const idle = new TransactionalProducer({ connection, transactionalId: uniqueName("test-txp-idle"), transactionVersion: version });
      await idle.commit();
      await idle.abort();
      expect(idle.producerId).toBe(-1n);
      await idle.close();
    });
  });
}
