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
   * Creates missing topics and sets drifted managed configs back to the catalogue's values.
   * Idempotent: a second run reports every topic unchanged.
   */
  async applyCatalogue(log: Logger, catalogue: readonly TopicSpec[] = TOPIC_CATALOGUE): Promise<TopicApplyResult[]> {
    const existing = new Set(await this.#admin.listTopics());
    const results: TopicApplyResult[] = [];
    for (const spec of catalogue.filter((t) => !existing.has(t.name))) {
      await this.#admin.createTopics({
        topics: [spec.name],
        partitions: spec.partitions,
        replicas: -1,
        configs: Object.entries(spec.configs).map(([name, value]) => ({ name, value })),
      });
      log.info({ topic: spec.name, partitions: spec.partitions, configs: spec.configs }, "topic created");
      results.push({ topic: spec.name, action: "created", drift: [] });
    }
    const present = catalogue.filter((t) => existing.has(t.name));
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
    return results;
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
