import type { KafkaConnection } from "../../kafka/connection.ts";
import { TransactionalProcessor, type ConsumedRecord } from "../../kafka/processor.ts";
import type { OutgoingRecord } from "../../kafka/producer.ts";
import type { Logger } from "../../log/logger.ts";
import { createLedgerState, recordOutcome, restoreLedgerFromChanges, takeLedgerChanges, upgradeLedgerRecord, type LedgerState } from "../completeness/ledger.ts";
import { topicNamespace, type TopicNamespace } from "../namespace.ts";
import type { RuleSet } from "./rules.ts";
import { createValidatorState, restoreStateFromChanges, stateRecord, takeStateChanges, validate, type ValidatorState } from "./validator.ts";

export const QUALITY_GROUP = "gateway-quality";
export const QUALITY_CHANGELOG = "_gateway.quality.changelog";
export const QUALITY_INPUTS = ["telemetry.raw", "events.raw", "alarms.raw"] as const;
const STATEFUL_INPUT = "telemetry.raw";
/**
 * The validator and the ledger share one changelog, one record per key and batch: the JSON array
 * [validator state, ledger state], either null where that part holds nothing for the key. Records
 * written before that had one record per part, keyed with these prefixes; they are still read.
 */
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

interface ChangelogEntry {
  key: string;
  value: string | null;
}

/** The records to restore a partition from: each key's last one, in the order those were written. */
function latestPerKey(records: ConsumedRecord[]): Map<string, string | null> {
  const latest = new Map<string, string | null>();
  for (const { key, value } of records) {
    if (key === undefined) continue;
    latest.delete(key);
    latest.set(key, value ?? null);
  }
  return latest;
}

/** Split changelog records into the validator's and the ledger's, each in write order. */
function splitChangelog(records: ConsumedRecord[]): { validator: ChangelogEntry[]; ledger: ChangelogEntry[] } {
  const validator: ChangelogEntry[] = [];
  const ledger: ChangelogEntry[] = [];
  for (const [key, value] of latestPerKey(records)) {
    if (key.startsWith(VALIDATOR_PREFIX)) validator.push({ key: key.slice(VALIDATOR_PREFIX.length), value });
    else if (key.startsWith(LEDGER_PREFIX)) ledger.push({ key: key.slice(LEDGER_PREFIX.length), value: value === null ? null : upgradeLedgerRecord(value) });
    else {
      const [v, l] = value === null ? [null, null] : (JSON.parse(value) as [unknown, unknown]);
      validator.push({ key, value: v === null ? null : JSON.stringify(v) });
      ledger.push({ key, value: l === null ? null : JSON.stringify(l) });
    }
  }
  return { validator, ledger };
}

/** One record per key either part changed, holding both parts' whole state: compaction keeps only the last. */
function takeChanges(state: PartitionState): ChangelogEntry[] {
  const validator = new Map(takeStateChanges(state.validator).map((e) => [e.key, e.value]));
  for (const key of validator.keys()) state.ledger.timeline.dirty.add(key);
  const entries: ChangelogEntry[] = [];
  for (const { key, value } of takeLedgerChanges(state.ledger)) {
    entries.push({ key, value: `[${validator.get(key) ?? stateRecord(state.validator, key)},${value}]` });
    validator.delete(key);
  }
  for (const [key, value] of validator) entries.push({ key, value: `[${value},null]` });
  return entries;
}

/** The worker's logic without Kafka: per-partition state, restored from and written to the changelog. */
export interface QualityBatches {
  /** Outputs of one batch in input order, then the changelog records of the state it changed. */
  process(batch: ConsumedRecord[]): OutgoingRecord[];
  /**
   * The same, letting the event loop run every YIELD_EVERY records, so the previous batch's
   * transaction (its responses, its next requests) moves on while this batch is processed.
   */
  processYielding(batch: ConsumedRecord[]): Promise<OutgoingRecord[]>;
  restore(partition: number, records: ConsumedRecord[]): void;
  drop(partition: number): void;
}

/** ~10 ms of validation at a time (see processYielding). */
const YIELD_EVERY = 500;
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

interface BatchRun {
  outputs: OutgoingRecord[];
  touched: Set<number>;
  at: Date;
}

export function qualityBatches(rules: RuleSet, ns: TopicNamespace, now: () => Date): QualityBatches {
  const states = new Map<number, PartitionState>();
  /** events.raw and alarms.raw are validated without per-key state; this one is never persisted. */
  const stateless = createValidatorState();
  const changelog = ns.physical(QUALITY_CHANGELOG);
  const begin = (): BatchRun => ({ outputs: [], touched: new Set(), at: now() });
  const step = (run: BatchRun, record: ConsumedRecord) => {
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
      rules,
      run.at,
    );
    const produced = state && result.outcome ? [...result.outputs, ...recordOutcome(state.ledger, result.outcome)] : result.outputs;
    for (const o of produced) run.outputs.push({ topic: ns.physical(o.topic), key: o.key, value: o.value });
    if (stateful) run.touched.add(record.partition);
  };
  const finish = ({ outputs, touched }: BatchRun): OutgoingRecord[] => {
    for (const partition of touched) {
      for (const { key, value } of takeChanges(states.get(partition)!)) outputs.push({ topic: changelog, partition, key, value: value as string });
    }
    stateless.tags.clear();
    stateless.dirty.clear();
    return outputs;
  };
  return {
    restore(partition, records) {
      const { validator, ledger } = splitChangelog(records);
      states.set(partition, { validator: restoreStateFromChanges(validator), ledger: restoreLedgerFromChanges(ledger) });
    },
    drop: (partition) => states.delete(partition),
    process(batch) {
      const run = begin();
      for (const record of batch) step(run, record);
      return finish(run);
    },
    async processYielding(batch) {
      const run = begin();
      for (let i = 0; i < batch.length; i++) {
        step(run, batch[i]!);
        if (i % YIELD_EVERY === YIELD_EVERY - 1) await nextTurn();
      }
      return finish(run);
    },
  };
}

/**
 * The quality validator and completeness ledger as one exactly-once worker: raw → clean / DLQ /
 * events, with per-tag state (last value, last time, dedup window, ledger windows) kept in a
 * compacted changelog written in the same transaction.
 */
export function createQualityWorker(options: QualityWorkerOptions): TransactionalProcessor {
  const ns = options.namespace ?? topicNamespace();
  const batches = qualityBatches(options.rules, ns, options.now ?? (() => new Date()));
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
      restore: batches.restore,
      drop: batches.drop,
    },
    process: batches.processYielding,
  });
}
