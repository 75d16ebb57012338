import {
  addOffsetsToTxnV4,
  addPartitionsToTxnV3,
  apiVersionsV3,
  Base,
  ConnectionPool,
  createAPI,
  endTxnV4,
  findCoordinatorV6,
  findErrorBy,
  initProducerIdV5,
  produceV11,
  ProduceAcks,
  ResponseError,
  txnOffsetCommitV4,
  type ClusterMetadata,
  type Connection,
  Writer,
  type Reader,
} from "@platformatic/kafka";
import { baseClientOptions, retriable, retryTransactional, transactionalRetryDelay, type KafkaConnection } from "./connection.ts";
import { partitionForKey } from "./partitioner.ts";
import type { OutgoingRecord } from "./producer.ts";
import { RecordBatchEncoder } from "./record-batch.ts";

/** Who the offsets are committed for, as a transactional offset commit must say (KIP-447). */
export interface OffsetsOwner {
  groupId: string;
  generationId: number;
  memberId: string;
  /** Node id of the group's coordinator. */
  coordinatorId: number;
}

export interface NextOffset {
  topic: string;
  partition: number;
  /** The offset of the next record to consume (the last processed + 1). */
  offset: bigint;
}

export interface TransactionalProducerOptions {
  connection: KafkaConnection;
  transactionalId: string;
  /**
   * Kafka's transaction protocol version (KIP-890). Default: 2 when the cluster has finalized
   * transaction.version 2 (Kafka 4.0 and later), else 1. Set only to test version 1 on a newer cluster.
   */
  transactionVersion?: 1 | 2;
}

/**
 * Bytes of keys, values and headers in one partition's record batch; the broker refuses a batch
 * above the topic's max.message.bytes (1 MiB by default), so a larger share of one transaction goes
 * out in further requests, each with the next batch of every partition that has one.
 */
const MAX_BATCH_PAYLOAD_BYTES = 768 * 1024;
/** Record framing (length, attributes, deltas, varints) on top of the payload, rounded up. */
const RECORD_OVERHEAD_BYTES = 32;
const TRANSACTION_COORDINATOR = 1;
const NO_PRODUCER_ID = -1n;
const NO_PRODUCER_EPOCH = -1;
const CLIENT_SOFTWARE = { name: "industrial-data-gateway", version: "1" };

interface PartitionBatch {
  topic: string;
  partition: number;
  batch: Buffer;
}

/** A produce request (v9+ layout) of record batches already encoded, one per partition. */
function produceRequest(transactionalId: string, timeoutMs: number, entries: PartitionBatch[]): Writer {
  return Writer.create()
    .appendString(transactionalId)
    .appendInt16(ProduceAcks.ALL)
    .appendInt32(timeoutMs)
    .appendArray([...Map.groupBy(entries, (e) => e.topic)], (w, [topic, list]) => {
      w.appendString(topic).appendArray(list, (w, { partition, batch }) => {
        w.appendInt32(partition).appendUnsignedVarInt(batch.length + 1).append(batch);
      });
    })
    .appendTaggedFields();
}

interface EndTxnV5Response {
  throttleTimeMs: number;
  errorCode: number;
  producerId: bigint;
  producerEpoch: number;
}

/** EndTxn v5 answers with the producer's next epoch: every transaction bumps it (KIP-890). */
function parseEndTxnV5(_correlationId: number, apiKey: number, apiVersion: number, reader: Reader): EndTxnV5Response {
  const response = { throttleTimeMs: reader.readInt32(), errorCode: reader.readInt16(), producerId: reader.readInt64(), producerEpoch: reader.readInt16() };
  reader.readTaggedFields();
  if (response.errorCode !== 0) throw new ResponseError(apiKey, apiVersion, { "/": [response.errorCode, null] }, response);
  return response;
}

export interface BrokerApiVersions {
  apiKey: number;
  minVersion: number;
  maxVersion: number;
}

/**
 * The highest version in [lowest, highest] the broker speaks. Each range is versions with the same
 * wire layout (the flexible one), which Kafka 2.8 and later speak for every request here.
 */
function pickVersion(broker: readonly BrokerApiVersions[], apiKey: number, name: string, lowest: number, highest: number): number {
  const api = broker.find((a) => a.apiKey === apiKey);
  const version = Math.min(highest, api?.maxVersion ?? -1);
  if (!api || version < lowest || version < api.minVersion) {
    throw new Error(`the Kafka cluster speaks ${name} ${api ? `v${api.minVersion}-${api.maxVersion}` : "in no version"}; the stream workers need v${lowest}-${highest} (Kafka 2.8 or later)`);
  }
  return version;
}

/**
 * The requests of transaction version 1 or 2, each at the highest version both sides speak. Version 2
 * needs the versions that carry its semantics: produce v12 and TxnOffsetCommit v5 (v11 and v4 on the
 * wire) also add their partitions to the transaction, and EndTxn v5 bumps the epoch.
 */
export function transactionApis(broker: readonly BrokerApiVersions[], version: 1 | 2) {
  const v = (apiKey: number, name: string, lowest: number, highest: number) => pickVersion(broker, apiKey, name, lowest, highest);
  return {
    findCoordinator: createAPI(10, v(10, "FindCoordinator", 4, 6), findCoordinatorV6.createRequest, findCoordinatorV6.parseResponse),
    initProducerId: createAPI(22, v(22, "InitProducerId", 3, 5), initProducerIdV5.createRequest, initProducerIdV5.parseResponse),
    produce: createAPI(0, version === 2 ? v(0, "Produce", 12, 12) : v(0, "Produce", 9, 11), produceRequest, produceV11.parseResponse),
    txnOffsetCommit: createAPI(28, version === 2 ? v(28, "TxnOffsetCommit", 5, 5) : v(28, "TxnOffsetCommit", 3, 4), txnOffsetCommitV4.createRequest, txnOffsetCommitV4.parseResponse),
    endTxn: version === 2 ? undefined : createAPI(26, v(26, "EndTxn", 3, 4), endTxnV4.createRequest, endTxnV4.parseResponse),
    endTxnBumpingEpoch: version === 2 ? createAPI(26, v(26, "EndTxn", 5, 5), endTxnV4.createRequest, parseEndTxnV5) : undefined,
    addPartitionsToTxn: version === 2 ? undefined : createAPI(24, v(24, "AddPartitionsToTxn", 3, 3), addPartitionsToTxnV3.createRequest, addPartitionsToTxnV3.parseResponse),
    addOffsetsToTxn: version === 2 ? undefined : createAPI(25, v(25, "AddOffsetsToTxn", 3, 4), addOffsetsToTxnV4.createRequest, addOffsetsToTxnV4.parseResponse),
  };
}

type TransactionApis = ReturnType<typeof transactionApis>;

/** Payload bytes of a record, as MAX_BATCH_PAYLOAD_BYTES counts them; a tombstone's value counts as empty. */
function recordBytes(record: OutgoingRecord): number {
  let bytes = RECORD_OVERHEAD_BYTES + (record.value == null ? 0 : Buffer.byteLength(record.value)) + (record.key == null ? 0 : Buffer.byteLength(record.key));
  if (record.headers) for (const name in record.headers) bytes += Buffer.byteLength(name) + Buffer.byteLength(record.headers[name]!);
  return bytes;
}

/** One partition's records in order, cut into batches within MAX_BATCH_PAYLOAD_BYTES. */
export function cutIntoBatches(records: OutgoingRecord[]): OutgoingRecord[][] {
  const batches: OutgoingRecord[][] = [];
  let batch: OutgoingRecord[] = [];
  let bytes = 0;
  for (const record of records) {
    const size = recordBytes(record);
    if (bytes + size > MAX_BATCH_PAYLOAD_BYTES && batch.length > 0) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(record);
    bytes += size;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

/**
 * A transactional producer that speaks Kafka's transaction protocol itself, for the stream workers'
 * consume-transform-produce. On a cluster with transaction version 2 (KIP-890, Kafka 4.0+) a
 * transaction is produce requests and one offset commit, sent at once, then EndTxn: two round trips
 * where the client's producer makes four in turn (AddOffsetsToTxn, AddPartitionsToTxn, produce, EndTxn);
 * the produce and the offset commit add their partitions to the transaction themselves. On an older
 * cluster it sends AddPartitionsToTxn and AddOffsetsToTxn first, as version 1 requires. Records are
 * encoded straight into record batches (record-batch.ts), partitioned as every producer of ours does.
 *
 * A transaction begins with its first send or offset commit and ends with commit() or abort(); one
 * with nothing sent ends without a request. Any failure inside a transaction leaves it to be aborted.
 * The first request (or ready()) registers the transactional id, which fences an earlier producer
 * with the same id and aborts what it left open.
 */
export class TransactionalProducer {
  readonly #options: TransactionalProducerOptions;
  readonly #metadata: Base;
  readonly #pool: ConnectionPool;
  readonly #encoder = new RecordBatchEncoder();
  readonly #keyScratch = Buffer.allocUnsafe(4096);
  #ready: Promise<void> | undefined;
  #apis: TransactionApis | undefined;
  #coordinatorId: number | undefined;
  #version: 1 | 2 = 2;
  #producerId = NO_PRODUCER_ID;
  #producerEpoch = NO_PRODUCER_EPOCH;
  /** Next sequence number per "topic:partition"; starts again at 0 with every new epoch. */
  #sequences = new Map<string, number>();
  /** Something of the current transaction was sent (so it may exist on the broker) and it has not ended. */
  #open = false;
  /** Version 1: "topic:partition" already added to the current transaction, and groups whose offsets are. */
  #addedPartitions = new Set<string>();
  #addedGroups = new Set<string>();
  #roundRobin = 0;

  constructor(options: TransactionalProducerOptions) {
    this.#options = options;
    const { connection, transactionalId } = options;
    this.#metadata = new Base(baseClientOptions(connection, `${transactionalId}-producer`));
    this.#pool = new ConnectionPool(`${connection.client_id}-${transactionalId}-producer`, { connectTimeout: connection.request_timeout_ms, requestTimeout: connection.request_timeout_ms });
  }

  get producerId(): bigint {
    return this.#producerId;
  }

  get producerEpoch(): number {
    return this.#producerEpoch;
  }

  get transactionVersion(): 1 | 2 {
    return this.#version;
  }

  /** Registers the transactional id (once): fences an earlier producer with it. */
  ready(): Promise<void> {
    this.#ready ??= this.#register().catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  /** Produces records in the current transaction; resolves once every in-sync replica has them (acks=all). */
  async send(records: readonly OutgoingRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.ready();
    this.#open = true;
    const metadata = await this.#topicsMetadata(records);
    const byPartition = this.#partition(records, metadata);
    if (this.#version === 1) await this.#addPartitions([...byPartition.keys()]);
    const cut = [...byPartition].map(([key, partitionRecords]) => ({ key, batches: cutIntoBatches(partitionRecords) }));
    for (let round = 0; ; round++) {
      const entries: PartitionBatch[] = [];
      for (const { key, batches } of cut) {
        const records = batches[round];
        if (!records) continue;
        const [topic, partition] = splitKey(key);
        entries.push({ topic, partition, batch: this.#encode(key, records) });
      }
      if (entries.length === 0) return;
      await this.#produce(entries, metadata);
    }
  }

  /** Commits the consumer group's offsets in the current transaction (they count only if it commits). */
  async sendOffsets(owner: OffsetsOwner, offsets: readonly NextOffset[]): Promise<void> {
    if (offsets.length === 0) return;
    await this.ready();
    this.#open = true;
    const { transactionalId } = this.#options;
    if (this.#version === 1 && !this.#addedGroups.has(owner.groupId)) {
      await this.#withCoordinator((connection) => this.#apis!.addOffsetsToTxn!.async(connection, transactionalId, this.#producerId, this.#producerEpoch, owner.groupId));
      this.#addedGroups.add(owner.groupId);
    }
    const topics = [...Map.groupBy(offsets, (o) => o.topic)].map(([name, list]) => ({
      name,
      partitions: list.map((o) => ({ partitionIndex: o.partition, committedOffset: o.offset, committedLeaderEpoch: -1, committedMetadata: null })),
    }));
    const api = this.#apis!.txnOffsetCommit;
    await this.#retrying(async () => {
      const metadata = await this.#metadata.metadata({ topics: [] });
      const coordinator = metadata.brokers.get(owner.coordinatorId);
      if (!coordinator) throw new Error(`group coordinator ${owner.coordinatorId} is not in the cluster metadata`);
      const connection = await this.#pool.get(coordinator);
      await api.async(connection, transactionalId, owner.groupId, this.#producerId, this.#producerEpoch, owner.generationId, owner.memberId, null, topics);
    });
  }

  commit(): Promise<void> {
    return this.#end(true);
  }

  abort(): Promise<void> {
    return this.#end(false);
  }

  async close(): Promise<void> {
    await this.#pool.close().catch(() => undefined);
    await this.#metadata.close().catch(() => undefined);
  }

  async #register(): Promise<void> {
    const { transactionalId, connection: settings } = this.#options;
    const versions = await this.#retrying(async () => {
      const metadata = await this.#metadata.metadata({ topics: [] });
      const connection = await this.#pool.getFirstAvailable([...metadata.brokers.values()]);
      return apiVersionsV3.api.async(connection, CLIENT_SOFTWARE.name, CLIENT_SOFTWARE.version);
    });
    const finalized = (versions.finalizedFeatures ?? []).find((f) => f.name === "transaction.version")?.maxVersionLevel ?? 0;
    this.#version = this.#options.transactionVersion ?? (finalized >= 2 ? 2 : 1);
    this.#apis = transactionApis(versions.apiKeys, this.#version);
    await this.#findCoordinator();
    // "No previous producer" (-1/-1): the broker then fences whoever had this id and aborts its open
    // transaction. The transaction timeout is the request timeout: a member that died mid-transaction
    // holds its partitions' readers back no longer than that (its successor in the group waits for
    // the transaction to be decided before it starts).
    const identity = await this.#withCoordinator((connection) => this.#apis!.initProducerId.async(connection, transactionalId, settings.request_timeout_ms, NO_PRODUCER_ID, NO_PRODUCER_EPOCH));
    this.#newEpoch(identity.producerId, identity.producerEpoch);
  }

  /**
   * Ends the transaction. If EndTxn fails, the transaction stays open here, so that the caller's
   * abort() is sent: taking it for ended would let the next transaction's requests join it (the
   * epoch is the same), and a batch the caller replays would then commit twice.
   */
  async #end(commit: boolean): Promise<void> {
    if (!this.#open) return;
    const { transactionalId, connection: settings } = this.#options;
    // Version 1 produces only to partitions the coordinator has added: none added, nothing to end.
    // Version 2 ends (and on abort bumps the epoch of) a transaction the broker may not know.
    if (this.#version === 1 && this.#addedPartitions.size === 0 && this.#addedGroups.size === 0) {
      this.#ended();
      return;
    }
    if (this.#version === 2) {
      const next = await this.#withCoordinator((connection) => this.#apis!.endTxnBumpingEpoch!.async(connection, transactionalId, this.#producerId, this.#producerEpoch, commit));
      this.#ended();
      this.#newEpoch(next.producerId, next.producerEpoch);
      return;
    }
    await this.#withCoordinator((connection) => this.#apis!.endTxn!.async(connection, transactionalId, this.#producerId, this.#producerEpoch, commit));
    this.#ended();
    if (commit) return;
    // Version 1 keeps the epoch across transactions. After an abort a produce that failed may have
    // left a partition's sequence unknown, so the epoch is bumped (KIP-360) and sequences start over.
    const identity = await this.#withCoordinator((connection) => this.#apis!.initProducerId.async(connection, transactionalId, settings.request_timeout_ms, this.#producerId, this.#producerEpoch));
    this.#newEpoch(identity.producerId, identity.producerEpoch);
  }

  #ended(): void {
    this.#open = false;
    this.#addedPartitions.clear();
    this.#addedGroups.clear();
  }

  #newEpoch(producerId: bigint, producerEpoch: number): void {
    this.#producerId = producerId;
    this.#producerEpoch = producerEpoch;
    this.#sequences.clear();
  }

  async #findCoordinator(): Promise<void> {
    const { transactionalId } = this.#options;
    await this.#retrying(async () => {
      const metadata = await this.#metadata.metadata({ topics: [] });
      const connection = await this.#pool.getFirstAvailable([...metadata.brokers.values()]);
      const response = await this.#apis!.findCoordinator.async(connection, TRANSACTION_COORDINATOR, [transactionalId]);
      this.#coordinatorId = response.coordinators[0]!.nodeId;
    });
  }

  /** A request to the transaction coordinator, retried (on a coordinator found again when it moved). */
  #withCoordinator<T>(request: (connection: Connection) => Promise<T>): Promise<T> {
    return this.#retrying(async () => {
      if (this.#coordinatorId === undefined) await this.#findCoordinator();
      const metadata = await this.#metadata.metadata({ topics: [] });
      const coordinator = metadata.brokers.get(this.#coordinatorId!);
      if (!coordinator) {
        this.#coordinatorId = undefined;
        throw new Error(`transaction coordinator is not in the cluster metadata`);
      }
      try {
        return await request(await this.#pool.get(coordinator));
      } catch (error) {
        if (findErrorBy(error as Error, "apiId", "NOT_COORDINATOR") || findErrorBy(error as Error, "apiId", "COORDINATOR_NOT_AVAILABLE")) this.#coordinatorId = undefined;
        throw error;
      }
    });
  }

  /** Retried as the client retries (a brief refusal after a few ms, see transactionalRetryDelay), up to the request timeout; the last error is thrown. */
  async #retrying<T>(attempt: () => Promise<T>): Promise<T> {
    const started = performance.now();
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (error) {
        if (!retryTransactional(n, performance.now() - started, this.#options.connection.request_timeout_ms, error)) throw error;
        await Bun.sleep(transactionalRetryDelay(n, error as Error));
      }
    }
  }

  async #topicsMetadata(records: readonly OutgoingRecord[]): Promise<ClusterMetadata> {
    const topics = new Set<string>();
    let previous: string | undefined;
    for (const record of records) {
      if (record.topic === previous) continue;
      previous = record.topic;
      topics.add(record.topic);
    }
    return this.#retrying(() => this.#metadata.metadata({ topics: [...topics], autocreateTopics: false }));
  }

  /**
   * Records per "topic:partition", in order: an explicit partition, else Kafka's default partitioner
   * on the key (partitioner.ts), else round robin.
   */
  #partition(records: readonly OutgoingRecord[], metadata: ClusterMetadata): Map<string, OutgoingRecord[]> {
    return Map.groupBy(records, (record) => {
      const count = metadata.topics.get(record.topic)!.partitionsCount;
      if (record.partition !== undefined) return `${record.topic}:${record.partition % count}`;
      if (record.key != null) return `${record.topic}:${this.#keyPartition(record.key, count)}`;
      return `${record.topic}:${(this.#roundRobin++ & 0x7fffffff) % count}`;
    });
  }

  #keyPartition(key: string, count: number): number {
    if (key.length * 3 > this.#keyScratch.length) return partitionForKey(Buffer.from(key), count);
    return partitionForKey(this.#keyScratch.subarray(0, this.#keyScratch.write(key)), count);
  }

  #encode(key: string, records: OutgoingRecord[]): Buffer {
    const baseSequence = this.#sequences.get(key) ?? 0;
    this.#sequences.set(key, baseSequence + records.length);
    return this.#encoder.encode(records, { producerId: this.#producerId, producerEpoch: this.#producerEpoch, baseSequence, transactional: true }, BigInt(Date.now()));
  }

  async #addPartitions(keys: string[]): Promise<void> {
    const fresh = keys.filter((key) => !this.#addedPartitions.has(key));
    if (fresh.length === 0) return;
    const byTopic = Map.groupBy(fresh.map(splitKey), ([topic]) => topic);
    const topics = [...byTopic].map(([name, pairs]) => ({ name, partitions: pairs.map(([, partition]) => partition) }));
    const transaction = { transactionalId: this.#options.transactionalId, producerId: this.#producerId, producerEpoch: this.#producerEpoch, verifyOnly: false, topics };
    await this.#withCoordinator((connection) => this.#apis!.addPartitionsToTxn!.async(connection, [transaction]));
    for (const key of fresh) this.#addedPartitions.add(key);
  }

  /**
   * The batches (one per partition) in one produce request per partition leader. What failed is sent
   * again, to the leaders the refreshed metadata names when a leader moved: the same batches with the
   * same sequences, which the broker deduplicates if it had them already.
   */
  async #produce(entries: PartitionBatch[], sendMetadata: ClusterMetadata): Promise<void> {
    const api = this.#apis!.produce;
    const { transactionalId, connection: settings } = this.#options;
    let pending = entries;
    let refresh: boolean | undefined;
    await this.#retrying(async () => {
      // The first attempt goes by the metadata the records were partitioned with.
      const metadata = refresh === undefined ? sendMetadata : await this.#metadata.metadata({ topics: [...new Set(pending.map((e) => e.topic))], forceUpdate: refresh });
      const byLeader = Map.groupBy(pending, (entry) => metadata.topics.get(entry.topic)!.partitions[entry.partition]!.leader);
      const failed: PartitionBatch[] = [];
      const errors: unknown[] = [];
      await Promise.all(
        [...byLeader].map(async ([leader, list]) => {
          try {
            const broker = metadata.brokers.get(leader);
            if (!broker) throw new Error(`partition leader ${leader} is not in the cluster metadata`);
            await api.async(await this.#pool.get(broker), transactionalId, settings.request_timeout_ms, list);
          } catch (error) {
            failed.push(...list);
            errors.push(error);
          }
        }),
      );
      if (errors.length === 0) return;
      pending = failed;
      refresh = errors.some((error) => findErrorBy(error as Error, "hasStaleMetadata", true));
      throw errors.find((error) => !retriable(error)) ?? errors[0];
    });
  }
}

function splitKey(key: string): [string, number] {
  const at = key.lastIndexOf(":");
  return [key.slice(0, at), Number(key.slice(at + 1))];
}
