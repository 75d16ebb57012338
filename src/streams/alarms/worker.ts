import type { Reading } from "../../envelope/reading.ts";
import { KafkaAdmin } from "../../kafka/admin.ts";
import type { KafkaConnection } from "../../kafka/connection.ts";
import { copartitionedAssigner, TransactionalProcessor } from "../../kafka/processor.ts";
import type { OutgoingRecord } from "../../kafka/producer.ts";
import type { Logger } from "../../log/logger.ts";
import { topicNamespace, type TopicNamespace } from "../namespace.ts";
import { applyAlarmCommand, createAlarmEngine, evaluateReading, restoreAlarmEngineFromChanges, takeAlarmEngineChanges, tickAlarmEngine, toAlarmRecord, type AlarmEngineState } from "./evaluator.ts";
import { ALARM_COMMAND_OUTCOMES_TOPIC, commandOutcome } from "./outcome.ts";
import { followAlarmRules } from "./rule-follower.ts";
import type { AlarmRuleDefaults, AlarmRuleSet } from "./rules.ts";

export const ALARMS_GROUP = "gateway-alarms";
export const ALARMS_CHANGELOG = "_gateway.alarms.changelog";
export const ALARM_COMMANDS_TOPIC = "alarms.commands";
const READINGS = "telemetry.clean";
const DEFAULT_TICK_MS = 1000;
/** While alarms.command_outcomes is missing (an upgrade without `gateway topics apply`), how often to look again. */
const OUTCOME_TOPIC_RECHECK_MS = 60_000;
/** How long an evaluator inside `gateway serve` waits for the first publish of the rules (the DB may be down). */
const RULES_PUBLISH_WAIT_MS = 15_000;

export interface AlarmWorkerOptions {
  connection: KafkaConnection;
  /** Set-wide settings (streams.alarm_rules_file); the rules themselves come from `_gateway.alarm_rules`. */
  ruleDefaults: AlarmRuleDefaults;
  /**
   * Settles when the control plane in the same process has first published the DB's rules. Waited for
   * (at most RULES_PUBLISH_WAIT_MS) before the topic is read: after an upgrade from rules in a file,
   * or at a first start, the topic is still empty, and evaluating with no rules would clear every open
   * alarm as "rule_removed" only to raise it again a moment later.
   */
  rulesPublished?: Promise<unknown> | undefined;
  log: Logger;
  instanceId: string;
  namespace?: TopicNamespace;
  maxBatch?: number;
  /** Wall clock for suppression expiry and pruning (evaluation itself runs on device time). */
  now?: () => number;
  tickMs?: number;
}

export interface AlarmWorker {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The alarm evaluator, exactly once: telemetry.clean and operator commands (alarms.commands, keyed
 * like the readings so a command reaches the partition that owns its alarm) → alarm transitions on
 * alarms.raw, with the engine state per tag in a compacted changelog written in the same
 * transaction. Every command's outcome (applied, or refused with the lifecycle's reason) goes to
 * alarms.command_outcomes in the same transaction. A tick on the wall clock ends timed suppressions
 * while no readings arrive.
 *
 * Rules follow the `_gateway.alarm_rules` topic while running: each batch is evaluated with the set
 * as it is then, and conditions of unchanged rules keep their state. Exactly-once covers the outputs
 * for the rules in force; a batch replayed after a crash uses the rules of the replay.
 */
export function createAlarmWorker(options: AlarmWorkerOptions): AlarmWorker {
  const ns = options.namespace ?? topicNamespace();
  const rules = followAlarmRules({ connection: options.connection, namespace: ns, defaults: options.ruleDefaults, log: options.log });
  // Auto-creation is off: writing outcomes to a topic that is not there would fail every transaction
  // with a command in it, and stall evaluation. Until the topic exists, outcomes are not reported
  // (the API then answers 202) and the rest works as before.
  const outcomeTopic = { present: false, timer: undefined as ReturnType<typeof setTimeout> | undefined };
  const checkOutcomeTopic = async () => {
    const admin = new KafkaAdmin(options.connection);
    try {
      outcomeTopic.present = (await admin.listTopics()).includes(ns.physical(ALARM_COMMAND_OUTCOMES_TOPIC));
      if (!outcomeTopic.present) options.log.warn({ topic: ns.physical(ALARM_COMMAND_OUTCOMES_TOPIC) }, "command outcome topic missing (run gateway topics apply): operators' commands apply, but the API cannot report their outcome");
    } catch (error) {
      options.log.warn({ err: (error as Error).message }, "cannot list topics; command outcomes not reported for now");
    } finally {
      await admin.close().catch(() => undefined);
    }
    if (!outcomeTopic.present && !stopped) outcomeTopic.timer = setTimeout(() => void checkOutcomeTopic(), OUTCOME_TOPIC_RECHECK_MS);
  };
  const processor = createProcessor(options, ns, rules.current, () => outcomeTopic.present);
  let stopped = false;
  let processorStart: Promise<void> | undefined;
  const startProcessor = () => {
    if (!stopped) processorStart = processor.start();
    return processorStart;
  };
  return {
    async start() {
      if (options.rulesPublished) await settledWithin(options.rulesPublished, RULES_PUBLISH_WAIT_MS);
      if (stopped) return;
      await checkOutcomeTopic();
      // Evaluating before the rules are in would clear every open alarm as "rule_removed".
      if (await rules.start()) await startProcessor();
      else void rules.loaded.then(startProcessor);
    },
    async stop() {
      stopped = true;
      clearTimeout(outcomeTopic.timer);
      await rules.stop();
      if (!processorStart) return;
      await processorStart;
      await processor.stop();
    },
  };
}

/** Waits until `promise` settles (either way) or `ms` pass, whichever is first, leaving no timer behind. */
async function settledWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([promise.catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

function createProcessor(options: AlarmWorkerOptions, ns: TopicNamespace, currentRules: () => AlarmRuleSet, reportOutcomes: () => boolean): TransactionalProcessor {
  const now = options.now ?? Date.now;
  const engines = new Map<number, AlarmEngineState>();
  const changelog = ns.physical(ALARMS_CHANGELOG);
  const outcomes = ns.physical(ALARM_COMMAND_OUTCOMES_TOPIC);
  const engineOf = (partition: number) => {
    let engine = engines.get(partition);
    if (!engine) engines.set(partition, (engine = createAlarmEngine()));
    return engine;
  };

  return new TransactionalProcessor({
    connection: options.connection,
    groupId: ns.physical(ALARMS_GROUP),
    transactionalId: ns.physical(`${ALARMS_GROUP}-${options.instanceId}`),
    inputTopics: [ns.physical(READINGS), ns.physical(ALARM_COMMANDS_TOPIC)],
    // Commands must be handled by the member holding the state of the same partition of readings.
    partitionAssigner: copartitionedAssigner,
    log: options.log,
    tickMs: options.tickMs ?? DEFAULT_TICK_MS,
    ...(options.maxBatch ? { maxBatch: options.maxBatch } : {}),
    state: {
      changelogTopic: changelog,
      followsTopic: ns.physical(READINGS),
      restore: (partition, records) => engines.set(partition, restoreAlarmEngineFromChanges(records.map((r) => ({ key: r.key ?? "", value: r.value ?? null })))),
      drop: (partition) => engines.delete(partition),
    },
    process(batch) {
      const outputs: OutgoingRecord[] = [];
      const emit = (events: Parameters<typeof toAlarmRecord>[0][]) => {
        for (const e of events) {
          const r = toAlarmRecord(e);
          outputs.push({ topic: ns.physical(r.topic), key: r.key, value: r.value });
        }
      };
      for (const record of batch) {
        const engine = engineOf(record.partition);
        let body: unknown;
        try {
          body = JSON.parse(record.value ?? "");
        } catch {
          options.log.error({ topic: record.topic, partition: record.partition, offset: String(record.offset) }, "unparsable record; skipped");
          continue;
        }
        if (ns.logical(record.topic) === READINGS) {
          try {
            emit(evaluateReading(engine, body as Reading, currentRules()));
          } catch (error) {
            // telemetry.clean is schema-checked upstream; one bad record must not stop the partition (replaying it would fail again).
            options.log.error({ err: (error as Error).message, partition: record.partition, offset: String(record.offset) }, "reading not evaluated; skipped");
          }
          continue;
        }
        const result = applyAlarmCommand(engine, body);
        // The API checked the transition against the read model; a refusal here is a race (cleared or
        // acknowledged meanwhile) or a stale command. Either way its outcome goes out in this transaction,
        // for the API waiting on it and for the audit trail.
        if (result.error) options.log.warn({ ...result.error, key: record.key }, "alarm command refused");
        emit(result.events);
        if (reportOutcomes()) outputs.push({ topic: outcomes, ...(record.key ? { key: record.key } : {}), value: JSON.stringify(commandOutcome(body, result)) });
      }
      const at = now();
      for (const [partition, engine] of [...engines].sort(([a], [b]) => a - b)) {
        emit(tickAlarmEngine(engine, at));
        // A null value is a tombstone (the serializer writes it as a null record value): compaction forgets the tag.
        for (const c of takeAlarmEngineChanges(engine)) outputs.push({ topic: changelog, partition, key: c.key, value: c.value as string });
      }
      return outputs;
    },
  });
}
