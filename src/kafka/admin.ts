import {
  Admin,
  ConfigResourceTypes,
  FetchIsolationLevels,
  IncrementalAlterConfigOperationTypes,
  ListOffsetTimestamps,
} from "@platformatic/kafka";
import type { Logger } from "../log/logger.ts";
import { configDrift, TOPIC_CATALOGUE, type TopicDrift, type TopicSpec } from "./catalogue.ts";
import { baseClientOptions, type KafkaConnection } from "./connection.ts";

export interface TopicApplyResult {
  topic: string;
  action: "created" | "corrected" | "unchanged";
  drift: TopicDrift[];
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class KafkaAdmin {
  readonly #admin: Admin;
  readonly #bootstrap: string;

  constructor(connection: KafkaConnection) {
    this.#admin = new Admin({ ...baseClientOptions(connection, "admin"), retries: 0 });
    this.#bootstrap = connection.bootstrap_servers.join(",");
  }

  /** Resolves when a broker answers a metadata request; the reason names the brokers when it does not. */
  async ping(timeoutMs = 3000): Promise<void> {
    try {
      await withTimeout(this.#admin.metadata({ topics: [], forceUpdate: true }), timeoutMs, "metadata request");
    } catch (error) {
      throw new Error(`Kafka unreachable at ${this.#bootstrap}: ${(error as Error).message}`);
    }
  }

  listTopics(): Promise<string[]> {
    return this.#admin.listTopics();
  }

  async topicConfigs(topics: string[]): Promise<Map<string, Record<string, string | null | undefined>>> {
    const described = await this.#admin.describeConfigs({
      resources: topics.map((name) => ({ resourceType: ConfigResourceTypes.TOPIC, resourceName: name })),
    });
    return new Map(
      described.map((d) => [d.resourceName, Object.fromEntries(d.configs.map((c) => [c.name, c.value]))]),
    );
  }

  async partitionCounts(topics: string[]): Promise<Map<string, number>> {
    const metadata = await this.#admin.metadata({ topics, forceUpdate: true });
    return new Map([...metadata.topics].map(([name, topic]) => [name, topic.partitionsCount]));
  }

  /**
   * Creates missing topics and sets drifted managed configs back to the catalogue's values, then
   * waits until the broker reports what it applied, so that a second run reports every topic unchanged.
   */
  async applyCatalogue(log: Logger, catalogue: readonly TopicSpec[] = TOPIC_CATALOGUE): Promise<TopicApplyResult[]> {
    const existing = new Set(await this.#admin.listTopics());
    const results: TopicApplyResult[] = [];
    const present = catalogue.filter((t) => existing.has(t.name));
    for (const spec of catalogue.filter((t) => !existing.has(t.name))) {
      try {
        await this.createTopic(spec.name, spec.partitions, spec.configs);
      } catch (error) {
        // Another apply (a second appliance, a test) may have created it since we listed.
        if (!(await this.#admin.listTopics()).includes(spec.name)) throw error;
        present.push(spec);
        continue;
      }
      log.info({ topic: spec.name, partitions: spec.partitions, configs: spec.configs }, "topic created");
      results.push({ topic: spec.name, action: "created", drift: [] });
    }
    const actual = present.length > 0 ? await this.topicConfigs(present.map((t) => t.name)) : new Map();
    for (const spec of present) {
      const drift = configDrift(spec, actual.get(spec.name) ?? {});
      if (drift.length === 0) {
        results.push({ topic: spec.name, action: "unchanged", drift });
        continue;
      }
      await this.#admin.incrementalAlterConfigs({
        resources: [
          {
            resourceType: ConfigResourceTypes.TOPIC,
            resourceName: spec.name,
            configs: drift.map((d) => ({
              name: d.key,
              configOperation: IncrementalAlterConfigOperationTypes.SET,
              value: d.expected,
            })),
          },
        ],
      });
      log.warn({ topic: spec.name, drift }, "topic config drifted from the catalogue; corrected");
      results.push({ topic: spec.name, action: "corrected", drift });
    }
    const changed = new Set(results.filter((r) => r.action !== "unchanged").map((r) => r.topic));
    await this.#awaitCatalogueVisible(catalogue.filter((t) => changed.has(t.name)));
    return results;
  }

  /**
   * A broker answers CreateTopics and IncrementalAlterConfigs once the controller has committed them;
   * its own metadata (what DescribeConfigs reads) catches up a moment later.
   */
  async #awaitCatalogueVisible(specs: readonly TopicSpec[], timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let pending = [...specs];
    let lastProblem = "";
    while (pending.length > 0) {
      try {
        const actual = await this.topicConfigs(pending.map((t) => t.name));
        pending = pending.filter((spec) => configDrift(spec, actual.get(spec.name) ?? {}).length > 0);
        lastProblem = pending.map((t) => t.name).join(", ");
      } catch (error) {
        lastProblem = (error as Error).message;
      }
      if (pending.length === 0) return;
      if (Date.now() > deadline) {
        throw new Error(`topic configs applied but not reported by the broker within ${timeoutMs} ms: ${lastProblem}`);
      }
      await Bun.sleep(100);
    }
  }

  async createTopic(name: string, partitions: number, configs: Record<string, string> = {}): Promise<void> {
    await this.#admin.createTopics({
      topics: [name],
      partitions,
      replicas: -1,
      configs: Object.entries(configs).map(([n, value]) => ({ name: n, value })),
    });
  }

  async deleteTopics(names: string[]): Promise<void> {
    if (names.length > 0) await this.#admin.deleteTopics({ topics: names });
  }

  async setTopicConfig(topic: string, key: string, value: string): Promise<void> {
    await this.#admin.incrementalAlterConfigs({
      resources: [
        {
          resourceType: ConfigResourceTypes.TOPIC,
          resourceName: topic,
          configs: [{ name: key, configOperation: IncrementalAlterConfigOperationTypes.SET, value }],
        },
      ],
    });
  }

  /**
   * The group's committed offsets ("topic:partition" -> next offset to read; absent when none), once
   * no transaction that commits offsets for them is pending (OffsetFetch require_stable). A pending
   * one makes the broker answer UNSTABLE_OFFSET_COMMIT, so this asks again until it is decided:
   * committed by its producer, aborted, or timed out by the broker.
   */
  async stableCommittedOffsets(groupId: string, partitions: { topic: string; partition: number }[], timeoutMs = 90_000): Promise<Map<string, bigint>> {
    const byTopic = new Map<string, number[]>();
    for (const { topic, partition } of partitions) byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition]);
    const request = {
      groups: [{ groupId, topics: [...byTopic].map(([name, partitionIndexes]) => ({ name, partitionIndexes })) }],
      requireStable: true,
    };
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const groups = await this.#admin.listConsumerGroupOffsets(request);
        const out = new Map<string, bigint>();
        for (const t of groups[0]?.topics ?? []) {
          for (const p of t.partitions) if (p.committedOffset >= 0n) out.set(`${t.name}:${p.partitionIndex}`, p.committedOffset);
        }
        return out;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`committed offsets of group ${groupId} not stable within ${timeoutMs} ms: ${(error as Error).message}`);
        await Bun.sleep(50);
      }
    }
  }

  /**
   * Records each consumer group has yet to read, per topic: end offsets (read_committed) less its
   * committed offsets, a partition it never committed counting from 0. Topics that do not exist are
   * left out. One request of each kind for all the groups, so a health check stays cheap.
   */
  async groupLags(consumers: readonly { group: string; topics: readonly string[] }[]): Promise<Map<string, bigint>[]> {
    if (consumers.length === 0) return [];
    const existing = new Set(await this.listTopics());
    const present = [...new Set(consumers.flatMap((c) => c.topics))].filter((t) => existing.has(t));
    if (present.length === 0) return consumers.map(() => new Map());
    const counts = await this.partitionCounts(present);
    const partitionsOf = (topic: string) => Array.from({ length: counts.get(topic) ?? 0 }, (_, i) => i);
    const listed = await this.#admin.listOffsets({
      topics: present.map((name) => ({ name, partitions: partitionsOf(name).map((partitionIndex) => ({ partitionIndex, timestamp: ListOffsetTimestamps.LATEST })) })),
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    });
    const groups = await this.#admin.listConsumerGroupOffsets({
      groups: consumers.map((c) => ({ groupId: c.group, topics: c.topics.filter((t) => existing.has(t)).map((name) => ({ name, partitionIndexes: partitionsOf(name) })) })),
      requireStable: false,
    });
    return consumers.map((consumer) => {
      const committed = new Map<string, bigint>();
      for (const t of groups.find((g) => g.groupId === consumer.group)?.topics ?? []) {
        for (const p of t.partitions) if (p.committedOffset >= 0n) committed.set(`${t.name}:${p.partitionIndex}`, p.committedOffset);
      }
      const lag = new Map<string, bigint>();
      for (const t of listed) {
        if (!consumer.topics.includes(t.name)) continue;
        lag.set(t.name, t.partitions.reduce((sum, p) => sum + p.offset - (committed.get(`${t.name}:${p.partitionIndex}`) ?? 0n), 0n));
      }
      return lag;
    });
  }

  /** Offsets after the last record of each partition (the high watermark), for lag and tests. */
  async endOffsets(topic: string): Promise<Map<number, bigint>> {
    const counts = await this.partitionCounts([topic]);
    const partitions = Array.from({ length: counts.get(topic) ?? 0 }, (_, partitionIndex) => ({
      partitionIndex,
      timestamp: ListOffsetTimestamps.LATEST,
    }));
    const listed = await this.#admin.listOffsets({
      topics: [{ name: topic, partitions }],
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    });
    return new Map(listed.flatMap((t) => t.partitions.map((p) => [p.partitionIndex, p.offset] as const)));
  }

  close(): Promise<void> {
    return this.#admin.close();
  }
}
