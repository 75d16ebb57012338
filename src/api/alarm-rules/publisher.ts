import type { Db } from "../../db/client.ts";
import { listAlarmRules } from "../../db/repo.ts";
import { topicSpec } from "../../kafka/catalogue.ts";
import type { KafkaConnection } from "../../kafka/connection.ts";
import { ReliableProducer } from "../../kafka/producer.ts";
import { readPartition } from "../../kafka/reader.ts";
import type { Logger } from "../../log/logger.ts";
import { topicNamespace, type TopicNamespace } from "../../streams/namespace.ts";
import { ALARM_RULES_TOPIC, applyRuleTopicRecord, ruleRecordValue, ruleTopicChanges } from "../../streams/alarms/rule-topic.ts";
import type { AlarmRule } from "../../streams/alarms/rules.ts";

const DEFAULT_INTERVAL_MS = 30_000;

/**
 * Makes the `_gateway.alarm_rules` topic hold exactly this gateway's alarm rules from the control DB
 * (records of other gateways on the same broker are left alone).
 * The DB is the truth and the topic a copy for the evaluators, which never need the DB: on start the
 * topic is read and only the differences are sent (new or changed rules, tombstones for rules gone),
 * after every API change at once, and periodically, so a change made while Kafka was down arrives
 * once it is back. The periodic sync reads the topic again, so a record written by anyone else (a
 * tombstone by hand, an older gateway version) is corrected too.
 */
export class AlarmRulePublisher {
  /** key → value as the topic holds it; undefined until read, and again after a failure. */
  #published: Map<string, string> | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  readonly #producer: ReliableProducer;
  readonly #topic: string;

  constructor(
    private readonly options: {
      db: () => Db | undefined;
      connection: KafkaConnection;
      gatewayId: string;
      log: Logger;
      namespace?: TopicNamespace;
      intervalMs?: number;
    },
  ) {
    this.#producer = new ReliableProducer(options.connection, "alarm-rules-publisher");
    this.#topic = (options.namespace ?? topicNamespace()).physical(ALARM_RULES_TOPIC);
  }

  start(): void {
    const tick = async () => {
      await this.syncNow({ rereadTopic: true });
      if (!this.#stopped) this.#timer = setTimeout(tick, this.options.intervalMs ?? DEFAULT_INTERVAL_MS);
    };
    void tick();
  }

  /** One sync after those already queued; failures are logged and left to the next sync. Resolves to the records sent. */
  syncNow(options: { rereadTopic?: boolean } = {}): Promise<number> {
    const run = this.#chain.then(() => {
      if (options.rereadTopic) this.#published = undefined;
      return this.#syncOnce().catch((error) => {
        this.#published = undefined;
        this.options.log.warn({ topic: this.#topic, err: (error as Error).message }, "alarm rules not published yet; retrying");
        return 0;
      });
    });
    this.#chain = run;
    return run;
  }

  async #syncOnce(): Promise<number> {
    const db = this.options.db();
    if (!db || this.#stopped) return 0;
    const desired = new Map((await listAlarmRules(db, { gatewayId: this.options.gatewayId })).map((row) => [row.id, ruleRecordValue(this.options.gatewayId, row.rule as AlarmRule & { id: string }, row.version)]));
    this.#published ??= await this.#readTopic();
    const changes = ruleTopicChanges(this.#published, desired);
    if (changes.length === 0) return 0;
    // A null value is a tombstone (the serializer writes it as a null record value).
    await this.#producer.send(changes.map((c) => ({ topic: this.#topic, key: c.key, value: c.value as string })));
    for (const change of changes) applyRuleTopicRecord(this.#published, change, this.options.gatewayId);
    this.options.log.info({ topic: this.#topic, sent: changes.length, rules: desired.size }, "alarm rules published");
    return changes.length;
  }

  async #readTopic(): Promise<Map<string, string>> {
    const latest = new Map<string, string>();
    for (let partition = 0; partition < topicSpec(ALARM_RULES_TOPIC).partitions; partition++) {
      for (const record of await readPartition(this.options.connection, this.#topic, partition)) {
        applyRuleTopicRecord(latest, { key: record.key ?? "", value: record.value ?? null }, this.options.gatewayId);
      }
    }
    return latest;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#chain;
    await this.#producer.close().catch(() => undefined);
  }
}
