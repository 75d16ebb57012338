import { topicSpec } from "../../kafka/catalogue.ts";
import type { KafkaConnection } from "../../kafka/connection.ts";
import type { ConsumedRecord } from "../../kafka/processor.ts";
import { readPartition } from "../../kafka/reader.ts";
import { tailTopics, type Tail } from "../../kafka/tail.ts";
import type { Logger } from "../../log/logger.ts";
import { backoffDelay } from "../../util/backoff.ts";
import { Sleeper } from "../../util/sleeper.ts";
import type { TopicNamespace } from "../namespace.ts";
import { ALARM_RULES_TOPIC, decodeRuleRecord } from "./rule-topic.ts";
import { alarmRuleSetOf, type AlarmRule, type AlarmRuleDefaults, type AlarmRuleSet } from "./rules.ts";

const LOAD_RETRY_BASE_MS = 1000;
const LOAD_RETRY_MAX_MS = 30_000;

export interface AlarmRuleFollower {
  /** The rule set as of the latest record applied; a new object after every change. */
  current(): AlarmRuleSet;
  /**
   * Reads the topic to its end once. true: loaded. false: Kafka did not answer; loading goes on in
   * the background and `loaded` settles when it succeeds.
   */
  start(): Promise<boolean>;
  readonly loaded: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Keeps an alarm rule set equal to the `_gateway.alarm_rules` topic: read to its end first, then
 * followed, so a rule created, changed or deleted through the API reaches a running evaluator
 * without a restart. Needs only Kafka, never the control DB.
 */
export function followAlarmRules(options: { connection: KafkaConnection; namespace: TopicNamespace; defaults: AlarmRuleDefaults; log: Logger }): AlarmRuleFollower {
  const topic = options.namespace.physical(ALARM_RULES_TOPIC);
  const log = options.log.child({ topic });
  const rules = new Map<string, AlarmRule>();
  /** Per partition, the highest offset applied: a re-read from the beginning (the tail's, after a reconnect) skips what is already in. */
  const appliedUpTo = new Map<number, bigint>();
  let set = alarmRuleSetOf(options.defaults, []);
  let stopped = false;
  /** Changes are logged one by one once the initial read is done; that read is logged as a count. */
  let following = false;
  let tail: Tail | undefined;
  const sleeper = new Sleeper();
  let markLoaded!: () => void;
  const loaded = new Promise<void>((resolve) => (markLoaded = resolve));

  const apply = (record: ConsumedRecord): boolean => {
    if (record.offset <= (appliedUpTo.get(record.partition) ?? -1n)) return false;
    appliedUpTo.set(record.partition, record.offset);
    const key = record.key ?? "";
    if (record.value === undefined || record.value === null) {
      if (rules.delete(key) && following) log.info({ rule_id: key }, "alarm rule removed");
      return true;
    }
    const decoded = decodeRuleRecord(key, record.value);
    if (!decoded.ok) {
      // The previous version (if any) stays in force: better a known rule than none.
      log.error({ rule_id: key, offset: String(record.offset), err: decoded.error }, "alarm rule record refused; the previous version stays");
      return false;
    }
    rules.set(key, decoded.rule);
    if (following) log.info({ rule_id: key, version: decoded.version }, "alarm rule applied");
    return true;
  };
  const rebuild = () => {
    set = alarmRuleSetOf(options.defaults, rules.values());
  };

  const loadOnce = async () => {
    const partitions = topicSpec(ALARM_RULES_TOPIC).partitions;
    for (let partition = 0; partition < partitions; partition++) {
      for (const record of await readPartition(options.connection, topic, partition)) apply(record);
    }
    rebuild();
    if (stopped) return;
    following = true;
    tail = tailTopics(
      options.connection,
      [topic],
      (record) => {
        if (apply(record)) rebuild();
      },
      log,
      "earliest",
    );
    log.info({ rules: rules.size }, "alarm rules loaded");
    markLoaded();
  };

  const keepLoading = async () => {
    for (let failures = 1; !stopped; failures++) {
      await sleeper.sleep(backoffDelay(failures, LOAD_RETRY_BASE_MS, LOAD_RETRY_MAX_MS));
      if (stopped) return;
      try {
        await loadOnce();
        return;
      } catch (error) {
        log.warn({ err: (error as Error).message, failures }, "alarm rules not loaded yet; retrying");
      }
    }
  };

  return {
    current: () => set,
    loaded,
    async start() {
      try {
        await loadOnce();
        return true;
      } catch (error) {
        log.warn({ err: (error as Error).message }, "alarm rules not loaded yet (is Kafka up, and `gateway topics apply` run?); retrying");
        void keepLoading();
        return false;
      }
    },
    async stop() {
      stopped = true;
      sleeper.wake();
      await tail?.stop();
    },
  };
}
