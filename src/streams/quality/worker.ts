import type { KafkaConnection } from "../../kafka/connection.ts";
import { TransactionalProcessor, type ConsumedRecord } from "../../kafka/processor.ts";
import type { OutgoingRecord } from "../../kafka/producer.ts";
import type { Logger } from "../../log/logger.ts";
import { createLedgerState, recordOutcome, restoreLedgerFromChanges, takeLedgerChanges, type LedgerState } from "../completeness/ledger.ts";
import { topicNamespace, type TopicNamespace } from "../namespace.ts";
import type { RuleSet } from "./rules.ts";
import { createValidatorState, restoreStateFromChanges, takeStateChanges, validate, type ValidatorState } from "./validator.ts";

export const QUALITY_GROUP = "gateway-quality";
export const QUALITY_CHANGELOG = "_gateway.quality.changelog";
export const QUALITY_INPUTS = ["telemetry.raw", "events.raw", "alarms.raw"] as const;
const STATEFUL_INPUT = "telemetry.raw";
/** The validator and the ledger share one changelog; a prefix tells their records apart. */
const VALIDATOR_PREFIX = "v|";
const LEDGER_PREFIX = "l|";

interface PartitionState {
  validator: ValidatorState;
  ledger: LedgerState;
}

export interface QualityWorkerOptions {
  connection: KafkaConnection;
  rules: RuleSet;
  log: Logger;
  /** Stable per appliance and worker slot: a restarted instance fences its own unfinished transactions. */
  instanceId: string;
  namespace?: TopicNamespace;
  maxBatch?: number;
  now?: () => Date;
}

const withPrefix = (prefix: string, records: ConsumedRecord[]) =>
  records.filter((r) => r.key?.startsWith(prefix)).map((r) => ({ key: r.key!.slice(prefix.length), value: r.value ?? null }));

/**
 * The quality validator and completeness ledger as one exactly-once worker: raw → clean / DLQ /
 * events, with per-tag state (last value, last time, dedup window, ledger windows) kept in a
 * compacted changelog written in the same transaction.
 */
export function createQualityWorker(options: QualityWorkerOptions): TransactionalProcessor {
  const ns = options.namespace ?? topicNamespace();
  const now = options.now ?? (() => new Date());
  const states = new Map<number, PartitionState>();
  /** events.raw and alarms.raw are validated without per-key state; this one is never persisted. */
  const stateless = createValidatorState();

  return new TransactionalProcessor({
    connection: options.connection,
    groupId: ns.physical(QUALITY_GROUP),
    transactionalId: ns.physical(`${QUALITY_GROUP}-${options.instanceId}`),
    inputTopics: QUALITY_INPUTS.map((t) => ns.physical(t)),
    log: options.log,
    ...(options.maxBatch ? { maxBatch: options.maxBatch } : {}),
    state: {
      changelogTopic: ns.physical(QUALITY_CHANGELOG),
      followsTopic: ns.physical(STATEFUL_INPUT),
      restore(partition, records) {
        states.set(partition, {
          validator: restoreStateFromChanges(withPrefix(VALIDATOR_PREFIX, records)),
          ledger: restoreLedgerFromChanges(withPrefix(LEDGER_PREFIX, records)),
        });
      },
      drop: (partition) => states.delete(partition),
    },
    process(batch) {
      const outputs: OutgoingRecord[] = [];
      const touched = new Set<number>();
      const at = now();
      for (const record of batch) {
        const topic = ns.logical(record.topic);
        const stateful = topic === STATEFUL_INPUT;
        let state = stateful ? states.get(record.partition) : undefined;
        if (stateful && !state) {
          state = { validator: createValidatorState(), ledger: createLedgerState() };
          states.set(record.partition, state);
        }
        const result = validate(
          state?.validator ?? stateless,
          { topic, key: record.key, value: record.value ?? "", partition: record.partition, offset: record.offset, timestamp: record.timestamp },
          options.rules,
          at,
        );
        const produced = state && result.outcome ? [...result.outputs, ...recordOutcome(state.ledger, result.outcome)] : result.outputs;
        for (const o of produced) outputs.push({ topic: ns.physical(o.topic), key: o.key, value: o.value });
        if (stateful) touched.add(record.partition);
      }
      for (const partition of touched) {
        const state = states.get(partition)!;
        const changelog = ns.physical(QUALITY_CHANGELOG);
        for (const e of takeStateChanges(state.validator)) outputs.push({ topic: changelog, partition, key: VALIDATOR_PREFIX + e.key, value: e.value });
        for (const e of takeLedgerChanges(state.ledger)) outputs.push({ topic: changelog, partition, key: LEDGER_PREFIX + e.key, value: e.value });
      }
      stateless.tags.clear();
      stateless.dirty.clear();
      return outputs;
    },
  });
}
