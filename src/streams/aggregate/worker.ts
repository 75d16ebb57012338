import type { KafkaConnection } from "../../kafka/connection.ts";
import { TransactionalProcessor } from "../../kafka/processor.ts";
import type { OutgoingRecord } from "../../kafka/producer.ts";
import type { Logger } from "../../log/logger.ts";
import type { Reading } from "../../envelope/reading.ts";
import { topicNamespace, type TopicNamespace } from "../namespace.ts";
import {
  aggregate,
  createAggregatorState,
  restoreAggregatorFromChanges,
  takeAggregatorChanges,
  type AggregatorConfig,
  type AggregatorState,
} from "./windows.ts";

export const AGGREGATE_GROUP = "gateway-aggregate";
export const AGGREGATE_CHANGELOG = "_gateway.aggregate.changelog";
const INPUT = "telemetry.clean";

export interface AggregateWorkerOptions {
  connection: KafkaConnection;
  log: Logger;
  instanceId: string;
  config?: Partial<AggregatorConfig>;
  namespace?: TopicNamespace;
  maxBatch?: number;
}

/**
 * Event-time windows over telemetry.clean into telemetry.1s/10s/1min/1hour, exactly once: open
 * windows live in a compacted changelog written in the same transaction as the aggregates.
 */
export function createAggregateWorker(options: AggregateWorkerOptions): TransactionalProcessor {
  const ns = options.namespace ?? topicNamespace();
  const states = new Map<number, AggregatorState>();
  const changelog = ns.physical(AGGREGATE_CHANGELOG);
  return new TransactionalProcessor({
    connection: options.connection,
    groupId: ns.physical(AGGREGATE_GROUP),
    transactionalId: ns.physical(`${AGGREGATE_GROUP}-${options.instanceId}`),
    inputTopics: [ns.physical(INPUT)],
    log: options.log,
    ...(options.maxBatch ? { maxBatch: options.maxBatch } : {}),
    state: {
      changelogTopic: changelog,
      followsTopic: ns.physical(INPUT),
      restore: (partition, records) => states.set(partition, restoreAggregatorFromChanges(records, options.config)),
      drop: (partition) => states.delete(partition),
    },
    process(batch) {
      const outputs: OutgoingRecord[] = [];
      const touched = new Set<number>();
      for (const record of batch) {
        let state = states.get(record.partition);
        if (!state) {
          state = createAggregatorState(options.config);
          states.set(record.partition, state);
        }
        let reading: Reading;
        try {
          reading = JSON.parse(record.value ?? "") as Reading;
        } catch {
          // telemetry.clean is written by the validator only; an unparsable record there is a bug upstream, not data.
          options.log.error({ topic: record.topic, partition: record.partition, offset: String(record.offset) }, "unparsable record on telemetry.clean; skipped");
          continue;
        }
        for (const o of aggregate(state, reading)) outputs.push({ topic: ns.physical(o.topic), key: o.key, value: o.value });
        touched.add(record.partition);
      }
      for (const partition of touched) {
        // A null value is a tombstone (the serializer writes it as a null record value): compaction forgets the key.
        for (const e of takeAggregatorChanges(states.get(partition)!)) outputs.push({ topic: changelog, partition, key: e.key, value: e.value as string });
      }
      return outputs;
    },
  });
}
