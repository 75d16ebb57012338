import {
  Consumer,
  FetchIsolationLevels,
  MessagesStreamFallbackModes,
  MessagesStreamModes,
  stringDeserializers,
  type ConsumerGroupJoinPayload,
  type Message,
  type MessagesStream,
} from "@platformatic/kafka";
import { baseClientOptions, type KafkaConnection } from "./connection.ts";
import type { ConsumedRecord } from "./processor.ts";

export interface TopicPartition {
  topic: string;
  partition: number;
}

/** `offset` is the next offset to read, as Kafka commits it (last processed + 1). */
export interface TopicPartitionOffset extends TopicPartition {
  offset: bigint;
}

export interface PartitionLag extends TopicPartition {
  /** null when the group has no committed offset for the partition yet. */
  committed: bigint | null;
  end: bigint;
  lag: bigint;
}

export interface GroupConsumerOptions {
  connection: KafkaConnection;
  groupId: string;
  topics: string[];
  /** Client id suffix, for broker logs. */
  role: string;
  /** Where a partition without a committed offset starts. */
  startFrom: "earliest" | "latest";
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /**
   * Static membership (group.instance.id): a restarted instance with the same id takes its
   * partitions back at once instead of waiting for its previous session to expire.
   */
  instanceId?: string;
  /** Longest time the broker holds a fetch open waiting for records. */
  maxWaitMs?: number;
  /** Records fetched ahead of the handler while it is paused (the stream's buffer). */
  highWaterMark?: number;
}

export interface GroupConsumerHandlers {
  onRecord(record: ConsumedRecord): void;
  /** The whole assignment after each (re)join, before any record of a new partition is delivered. */
  onAssignment(assigned: TopicPartition[]): void;
  /** The stream broke (broker gone, fatal group error): close this consumer and create a new one. */
  onError(error: Error): void;
}

/** The consumer-group client, whatever its deserializers: what the helpers below need of it. */
type GroupClient = Pick<Consumer<unknown, unknown, unknown, unknown>, "commit" | "listOffsets" | "listCommittedOffsets">;

/**
 * Commits the given next-offsets for the partitions in `assigned` (tpKey set) and returns those:
 * offsets of partitions revoked meanwhile are left to their new owner.
 */
export async function commitOwned(consumer: GroupClient, assigned: Set<string>, offsets: TopicPartitionOffset[]): Promise<TopicPartitionOffset[]> {
  const owned = offsets.filter((o) => assigned.has(tpKey(o.topic, o.partition)));
  if (owned.length === 0) return [];
  await consumer.commit({ offsets: owned.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset, leaderEpoch: -1 })) });
  return owned;
}

/** Per topic, the partitions of `partitions`: the shape the client's group calls take. */
export function byTopic(partitions: TopicPartition[]): { topic: string; partitions: number[] }[] {
  const topics = [...new Set(partitions.map((tp) => tp.topic))];
  return topics.map((topic) => ({ topic, partitions: partitions.filter((tp) => tp.topic === topic).map((tp) => tp.partition) }));
}

/** Lag of each partition: end offset (read_committed) less the group's committed offset. */
export async function assignmentLag(consumer: GroupClient, assigned: TopicPartition[]): Promise<PartitionLag[]> {
  if (assigned.length === 0) return [];
  const groups = byTopic(assigned);
  const [ends, committed] = await Promise.all([
    consumer.listOffsets({ topics: groups.map((g) => g.topic), isolationLevel: FetchIsolationLevels.READ_COMMITTED }),
    consumer.listCommittedOffsets({ topics: groups }),
  ]);
  return assigned.map(({ topic, partition }) => {
    const end = ends.get(topic)?.[partition] ?? 0n;
    const c = committed.get(topic)?.[partition];
    const has = c !== undefined && c >= 0n;
    return { topic, partition, committed: has ? c : null, end, lag: has ? (end > c ? end - c : 0n) : end };
  });
}

const keyCache = new Map<string, string[]>();

/** `topic:partition`, interned: called per record on hot paths. */
export function tpKey(topic: string, partition: number): string {
  let keys = keyCache.get(topic);
  if (!keys) keyCache.set(topic, (keys = []));
  return (keys[partition] ??= `${topic}:${partition}`);
}

/**
 * A consumer-group member with manual commits (the alarm projector and the alert sender; sinks use
 * LeanGroupConsumer, same contract, own fetches): records come in read_committed order per
 * partition, nothing is committed unless `commit` is called (after the write is durable), and
 * `pause` stops fetching (the stream's buffer holds at most `highWaterMark` records meanwhile).
 *
 * After a rejoin the stream restarts every assigned partition from its committed offset, so records
 * already delivered can arrive again: callers drop offsets they have seen (per partition, offsets only grow).
 */
export class GroupBatchConsumer {
  readonly #options: GroupConsumerOptions;
  #consumer: Consumer<string, string, string, string> | undefined;
  #stream: MessagesStream<string, string, string, string> | undefined;
  #assigned = new Set<string>();
  #paused = false;

  constructor(options: GroupConsumerOptions) {
    this.#options = options;
  }

  async start(handlers: GroupConsumerHandlers): Promise<void> {
    const o = this.#options;
    const consumer = new Consumer({
      ...baseClientOptions(o.connection, o.role),
      groupId: o.groupId,
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
      autocommit: false,
      deserializers: stringDeserializers,
      sessionTimeout: o.sessionTimeoutMs ?? 10_000,
      heartbeatInterval: o.heartbeatIntervalMs ?? 1000,
      ...(o.instanceId ? { groupInstanceId: o.instanceId } : {}),
    });
    this.#consumer = consumer;
    consumer.on("consumer:group:join", (payload: ConsumerGroupJoinPayload) => {
      const assigned = (payload.assignments ?? []).flatMap((a) => a.partitions.map((partition) => ({ topic: a.topic, partition })));
      this.#assigned = new Set(assigned.map((tp) => tpKey(tp.topic, tp.partition)));
      handlers.onAssignment(assigned);
    });
    const stream = await consumer.consume({
      topics: o.topics,
      mode: MessagesStreamModes.COMMITTED,
      fallbackMode: o.startFrom === "latest" ? MessagesStreamFallbackModes.LATEST : MessagesStreamFallbackModes.EARLIEST,
      autocommit: false,
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
      maxWaitTime: o.maxWaitMs ?? 200,
      highWaterMark: o.highWaterMark ?? 1024,
    });
    this.#stream = stream;
    stream.on("data", (m: Message<string, string, string, string>) => {
      // A fetch issued before a revocation can still answer: its records belong to the new owner.
      if (!this.#assigned.has(tpKey(m.topic, m.partition))) return;
      // A Message has every ConsumedRecord field; handing it over as is saves a copy per record.
      handlers.onRecord(m);
    });
    stream.on("error", (error: Error) => handlers.onError(error));
    if (this.#paused) stream.pause();
  }

  get assignments(): TopicPartition[] {
    return [...this.#assigned].map((key) => {
      const at = key.lastIndexOf(":");
      return { topic: key.slice(0, at), partition: Number(key.slice(at + 1)) };
    });
  }

  isAssigned(topic: string, partition: number): boolean {
    return this.#assigned.has(tpKey(topic, partition));
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** Stops fetching; records already buffered by the stream stay there until `resume`. */
  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#stream?.pause();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#stream?.resume();
  }

  /**
   * Commits the given next-offsets for the partitions this member still owns and returns those.
   * Offsets of partitions revoked meanwhile are left to their new owner.
   */
  async commit(offsets: TopicPartitionOffset[]): Promise<TopicPartitionOffset[]> {
    return this.#consumer ? commitOwned(this.#consumer, this.#assigned, offsets) : [];
  }

  /** Lag of each assigned partition: end offset (read_committed) less the group's committed offset. */
  async lag(): Promise<PartitionLag[]> {
    return this.#consumer ? assignmentLag(this.#consumer, this.assignments) : [];
  }

  /** Leaves the group (the partitions go to the other members at once). */
  async close(): Promise<void> {
    const stream = this.#stream;
    const consumer = this.#consumer;
    this.#stream = undefined;
    this.#consumer = undefined;
    this.#assigned.clear();
    await stream?.close().catch(() => undefined);
    await consumer?.close(true).catch(() => undefined);
  }
}
