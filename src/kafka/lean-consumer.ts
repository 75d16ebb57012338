import { ConnectionPool, Consumer, FetchIsolationLevels, ListOffsetTimestamps, type ConsumerGroupJoinPayload, type GroupPartitionsAssigner } from "@platformatic/kafka";
import { baseClientOptions } from "./connection.ts";
import { ContiguousBytes, fetchRound } from "./fetch-records.ts";
import { assignmentLag, byTopic, commitOwned, tpKey, type GroupConsumerHandlers, type GroupConsumerOptions, type PartitionLag, type TopicPartition, type TopicPartitionOffset } from "./group-consumer.ts";
import type { ConsumedRecord } from "./processor.ts";

/** Per partition and per fetch: ~3,000 readings, a few batches' worth without holding much while paused. */
const PARTITION_MAX_BYTES = 1 << 20;
const FETCH_MAX_BYTES = 8 << 20;
const LEADER_RETRY_MS = 200;
/**
 * After a fetch that brought records, the next one waits for this many bytes or BUSY_MAX_WAIT_MS,
 * whichever comes first; after an empty one it returns on the first record. A steady stream then
 * arrives in ~50 fetches a second instead of one per produce request: at 10,000 readings/s the
 * validator used 37-41 % of a core instead of 45-47 %, and p99 raw -> clean was lower too. The
 * stream workers take what one fetch brings as one transaction, so this wait is their batching
 * (see the processor's onRecord); 64 KiB is ~20 ms of readings at that rate
 * (BENCHMARKS.md). A backlog fills every fetch at once, and an idle consumer keeps its long poll.
 */
const BUSY_MIN_BYTES = 64 << 10;
const BUSY_MAX_WAIT_MS = 20;

/** GroupBatchConsumer's options but the stream's buffer: here the fetch sizes bound what is held. */
export interface LeanGroupConsumerOptions extends Omit<GroupConsumerOptions, "highWaterMark"> {
  /** Bytes per partition in one fetch (default 1 MiB). */
  partitionMaxBytes?: number;
  /** Bytes per fetch (default 8 MiB). */
  fetchMaxBytes?: number;
  /** How the group spreads partitions over members; default: the client's round robin. */
  partitionAssigner?: GroupPartitionsAssigner;
}

/** Who this member is in the group, as a transactional offset commit must say (KIP-447). */
export interface GroupMembership {
  groupId: string;
  memberId: string;
  generationId: number;
  coordinatorId: number;
}

/**
 * The same consumer-group member as GroupBatchConsumer (manual commits of next-offsets for owned
 * partitions, read_committed, pause, lag, static membership, leave on close), with its own fetch
 * loop instead of the client's MessagesStream: Fetch requests on a connection pool of their own (so
 * heartbeats and commits never queue behind a long poll), record batches decoded straight into
 * ConsumedRecords (fetch-records.ts). The client still runs the group: join, heartbeats, rebalances,
 * commits, offset lookups.
 *
 * After each (re)join every assigned partition is fetched again from its committed offset (or
 * `startFrom` when it has none), so records already delivered can arrive again: callers drop offsets
 * they have seen. One fetch answer at a time is held: it is delivered record by record until the
 * caller pauses, and the next fetch goes out only once it is all delivered and the member is not paused.
 */
export class LeanGroupConsumer {
  readonly #options: LeanGroupConsumerOptions;
  #consumer: Consumer | undefined;
  #pool: ConnectionPool | undefined;
  #handlers: GroupConsumerHandlers | undefined;
  #assignment: TopicPartition[] = [];
  #assigned = new Set<string>();
  /** Next offset to fetch per assigned partition; missing until read from the group's committed offsets. */
  #positions = new Map<string, bigint>();
  /** Bumped by every join and by close: answers to fetches and lookups of an older generation are dropped. */
  #generation = 0;
  #buffer: ConsumedRecord[] = [];
  #delivered = 0;
  #paused = false;
  #closed = false;
  /** The latest fetch brought records (see BUSY_MIN_BYTES). */
  #busy = false;
  #wake: (() => void) | undefined;
  #loop: Promise<void> = Promise.resolve();
  readonly #bytes = new ContiguousBytes();

  constructor(options: LeanGroupConsumerOptions) {
    this.#options = options;
  }

  async start(handlers: GroupConsumerHandlers): Promise<void> {
    const o = this.#options;
    const base = baseClientOptions(o.connection, o.role);
    const consumer = new Consumer({
      ...base,
      groupId: o.groupId,
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
      autocommit: false,
      sessionTimeout: o.sessionTimeoutMs ?? 10_000,
      heartbeatInterval: o.heartbeatIntervalMs ?? 1000,
      ...(o.instanceId ? { groupInstanceId: o.instanceId } : {}),
      ...(o.partitionAssigner ? { partitionAssigner: o.partitionAssigner } : {}),
    });
    this.#consumer = consumer;
    this.#handlers = handlers;
    consumer.on("consumer:group:join", (payload: ConsumerGroupJoinPayload) => this.#onJoin(payload));
    // A rejoin the client could not complete: the membership is gone, the caller starts a new consumer.
    consumer.on("error", (error: Error) => this.#fail(error));
    for (const topic of o.topics) consumer.topics.track(topic);
    this.#pool = new ConnectionPool(`${base.clientId}-fetch`, { connectTimeout: base.timeout, requestTimeout: base.timeout + (o.maxWaitMs ?? 200) });
    await consumer.joinGroup({});
    this.#loop = this.#run();
  }

  #onJoin(payload: ConsumerGroupJoinPayload): void {
    this.#assignment = (payload.assignments ?? []).flatMap((a) => a.partitions.map((partition) => ({ topic: a.topic, partition })));
    this.#assigned = new Set(this.#assignment.map((tp) => tpKey(tp.topic, tp.partition)));
    this.#generation++;
    this.#positions.clear();
    this.#buffer = [];
    this.#delivered = 0;
    this.#handlers?.onAssignment(this.#assignment);
    this.#kick();
  }

  #fail(error: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#generation++;
    this.#kick();
    this.#handlers?.onError(error);
  }

  #kick(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      if (this.#delivered < this.#buffer.length) this.#deliver();
      if (this.#paused || this.#delivered < this.#buffer.length || this.#assignment.length === 0) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
        continue;
      }
      const generation = this.#generation;
      try {
        await this.#fetch(generation);
      } catch (error) {
        // An error of a generation replaced meanwhile (rebalance, close) concerns fetches nobody waits for.
        if (generation === this.#generation) this.#fail(error instanceof Error ? error : new Error(String(error)));
      }
    }
  }

  #deliver(): void {
    const buffer = this.#buffer;
    const handlers = this.#handlers!;
    while (this.#delivered < buffer.length && !this.#paused) handlers.onRecord(buffer[this.#delivered++]!);
    if (this.#delivered === buffer.length) {
      this.#buffer = [];
      this.#delivered = 0;
    }
  }

  /** One Fetch per leader, for every assigned partition; the records go to the buffer. */
  async #fetch(generation: number): Promise<void> {
    const consumer = this.#consumer!;
    if (this.#assignment.some((tp) => !this.#positions.has(tpKey(tp.topic, tp.partition)))) await this.#loadPositions(generation);
    if (generation !== this.#generation) return;
    const longPoll = this.#options.maxWaitMs ?? 200;
    const limits = {
      maxWaitMs: this.#busy ? Math.min(BUSY_MAX_WAIT_MS, longPoll) : longPoll,
      minBytes: this.#busy ? BUSY_MIN_BYTES : 1,
      maxBytes: this.#options.fetchMaxBytes ?? FETCH_MAX_BYTES,
      partitionMaxBytes: this.#options.partitionMaxBytes ?? PARTITION_MAX_BYTES,
    };
    const positions = this.#assignment.map(({ topic, partition }) => ({ topic, partition, offset: this.#positions.get(tpKey(topic, partition))! }));
    const records: ConsumedRecord[] = [];
    const round = await fetchRound(consumer, this.#pool!, positions, limits, this.#bytes, records);
    // Answers of a generation replaced meanwhile (rebalance, close) are dropped.
    if (generation !== this.#generation) return;
    for (const [key, next] of round.advanced) this.#positions.set(key, next);
    for (const [key, lost] of round.outOfRange) this.#positions.set(key, this.#options.startFrom === "latest" ? lost.highWatermark : lost.logStartOffset);
    this.#buffer = records;
    this.#busy = records.length > 0;
    this.#delivered = 0;
    if (round.leaderChanged) {
      consumer.clearMetadata();
      await Bun.sleep(LEADER_RETRY_MS);
    }
  }

  /** Committed offsets of the partitions without a position; `startFrom` for those the group never committed. */
  async #loadPositions(generation: number): Promise<void> {
    const consumer = this.#consumer!;
    const missing = this.#assignment.filter((tp) => !this.#positions.has(tpKey(tp.topic, tp.partition)));
    const committed = await consumer.listCommittedOffsets({ topics: byTopic(missing) });
    const fresh = missing.filter((tp) => (committed.get(tp.topic)?.[tp.partition] ?? -1n) < 0n);
    const fallback =
      fresh.length === 0
        ? new Map<string, bigint[]>()
        : await consumer.listOffsets({
            topics: [...new Set(fresh.map((tp) => tp.topic))],
            timestamp: this.#options.startFrom === "latest" ? ListOffsetTimestamps.LATEST : ListOffsetTimestamps.EARLIEST,
            isolationLevel: FetchIsolationLevels.READ_COMMITTED,
          });
    if (generation !== this.#generation) return;
    for (const { topic, partition } of missing) {
      const c = committed.get(topic)?.[partition] ?? -1n;
      const offset = c >= 0n ? c : fallback.get(topic)?.[partition];
      if (offset === undefined) throw new Error(`no committed or ${this.#options.startFrom} offset for ${tpKey(topic, partition)}`);
      this.#positions.set(tpKey(topic, partition), offset);
    }
  }

  get assignments(): TopicPartition[] {
    return [...this.#assignment];
  }

  /** As of now; read it in onAssignment for the membership the records delivered after it were fetched under. */
  get membership(): GroupMembership | undefined {
    const consumer = this.#consumer;
    if (!consumer?.memberId || consumer.coordinatorId === null) return undefined;
    return { groupId: consumer.groupId, memberId: consumer.memberId, generationId: consumer.generationId, coordinatorId: consumer.coordinatorId };
  }

  isAssigned(topic: string, partition: number): boolean {
    return this.#assigned.has(tpKey(topic, partition));
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** Stops delivering and fetching; the rest of the current fetch answer waits for `resume`. */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#kick();
  }

  async commit(offsets: TopicPartitionOffset[]): Promise<TopicPartitionOffset[]> {
    return this.#consumer ? commitOwned(this.#consumer, this.#assigned, offsets) : [];
  }

  async lag(): Promise<PartitionLag[]> {
    return this.#consumer ? assignmentLag(this.#consumer, this.#assignment) : [];
  }

  /** Leaves the group (the partitions go to the other members at once). */
  async close(): Promise<void> {
    const consumer = this.#consumer;
    const pool = this.#pool;
    this.#consumer = undefined;
    this.#pool = undefined;
    this.#closed = true;
    this.#generation++;
    this.#assignment = [];
    this.#assigned = new Set();
    this.#kick();
    await consumer?.close(true).catch(() => undefined);
    await pool?.close().catch(() => undefined);
    await this.#loop;
  }
}
