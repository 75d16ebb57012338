import { sql } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import type { NewAlarmRow } from "../../db/schema.ts";
import type { KafkaConnection } from "../../kafka/connection.ts";
import { GroupBatchConsumer, tpKey, type TopicPartitionOffset } from "../../kafka/group-consumer.ts";
import type { ConsumedRecord } from "../../kafka/processor.ts";
import type { Logger } from "../../log/logger.ts";
import type { AlarmEvent } from "../../streams/alarms/lifecycle.ts";
import { topicNamespace, type TopicNamespace } from "../../streams/namespace.ts";
import { rowOf, upsertAlarmRows } from "./service.ts";
import { backoffDelay } from "../../util/backoff.ts";

const RECONNECT_BASE_MS = 1000;
const RECONNECT_MAX_MS = 30_000;

export const PROJECTOR_GROUP = "gateway-alarms-projector";
const SOURCE = "alarms.clean";
const MAX_BATCH = 500;
const HIGH_WATER = 2000;
const RETRY_MS = 1000;

export interface AlarmProjectorOptions {
  connection: KafkaConnection;
  /** undefined while the control DB is not reachable: the projector waits (Kafka keeps the records). */
  db: () => Db | undefined;
  log: Logger;
  /** Each appliance keeps its own read model, so its own group. */
  gatewayId: string;
  namespace?: TopicNamespace;
}

/**
 * alarms.clean → the `alarms` table. A plain consumer group, not a transaction: offsets are
 * committed after the upsert, and the upsert is idempotent (a row only moves to a higher
 * `sequence`), so a replay after a crash or a rebalance writes nothing new.
 */
export class AlarmProjector {
  readonly #o: AlarmProjectorOptions;
  readonly #ns: TopicNamespace;
  #consumer: GroupBatchConsumer | undefined;
  #queue: ConsumedRecord[] = [];
  #seen = new Map<string, bigint>();
  #draining: Promise<void> | undefined;
  #stopped = false;
  #failures = 0;

  constructor(options: AlarmProjectorOptions) {
    this.#o = options;
    this.#ns = options.namespace ?? topicNamespace();
  }

  async start(): Promise<void> {
    // Kafka not there yet: keep trying in the background rather than holding up the caller.
    await this.#open().catch((error) => void this.#reopen(error as Error));
  }

  async #open(): Promise<void> {
    const consumer = new GroupBatchConsumer({
      connection: this.#o.connection,
      groupId: this.#ns.physical(`${PROJECTOR_GROUP}.${this.#o.gatewayId}`),
      topics: [this.#ns.physical(SOURCE)],
      role: "alarms-projector",
      startFrom: "earliest",
    });
    this.#consumer = consumer;
    await consumer.start({
      onAssignment: () => undefined,
      onRecord: (record) => {
        this.#queue.push(record);
        if (this.#queue.length >= HIGH_WATER) consumer.pause();
        this.#kick();
      },
      onError: (error) => void this.#reopen(error),
    });
    this.#failures = 0;
  }

  async #reopen(error: Error): Promise<void> {
    if (this.#stopped) return;
    // Backs off while Kafka (or the topic) is missing, so a broker that is away does not fill the log.
    const delay = backoffDelay(++this.#failures, RECONNECT_BASE_MS, RECONNECT_MAX_MS);
    this.#o.log.warn({ err: error.message, retry_in_ms: delay }, "alarm projector consumer failed; reopening");
    const old = this.#consumer;
    this.#consumer = undefined;
    this.#queue = [];
    await old?.close();
    await Bun.sleep(delay);
    if (!this.#stopped) await this.#open().catch((e) => this.#reopen(e as Error));
  }


  #kick(): void {
    this.#draining ??= this.#drain().finally(() => {
      this.#draining = undefined;
      if (this.#queue.length > 0 && !this.#stopped) this.#kick();
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0 && !this.#stopped) {
      const consumer = this.#consumer;
      const batch = this.#queue.splice(0, MAX_BATCH).filter((r) => r.offset > (this.#seen.get(tpKey(r.topic, r.partition)) ?? -1n));
      const rows: NewAlarmRow[] = [];
      for (const r of batch) {
        try {
          const row = rowOf(JSON.parse(r.value ?? "") as AlarmEvent);
          if (row) rows.push(row);
        } catch {
          this.#o.log.error({ partition: r.partition, offset: String(r.offset) }, "unparsable record on alarms.clean; skipped");
        }
      }
      if (!(await this.#store(rows))) return;
      const next = new Map<string, TopicPartitionOffset>();
      for (const r of batch) {
        this.#seen.set(tpKey(r.topic, r.partition), r.offset);
        next.set(tpKey(r.topic, r.partition), { topic: r.topic, partition: r.partition, offset: r.offset + 1n });
      }
      await consumer?.commit([...next.values()]).catch((error) => this.#o.log.warn({ err: (error as Error).message }, "alarm projector commit failed; the records will be replayed (idempotently)"));
      if (consumer?.paused && this.#queue.length < HIGH_WATER / 2) consumer.resume();
    }
  }

  /**
   * The control DB may be away (restart, hub link): the batch is held until it is back. A DB that
   * answers but refuses rows has been given a bad record: those rows are logged and skipped, one by
   * one, rather than blocking every alarm behind them. false = stopped meanwhile.
   */
  async #store(rows: NewAlarmRow[]): Promise<boolean> {
    for (;;) {
      const db = this.#o.db();
      try {
        if (!db) throw new Error("control DB not connected yet");
        await upsertAlarmRows(db, rows);
        return true;
      } catch (error) {
        if (this.#stopped) return false;
        const reachable = db ? await db.execute(sql`select 1`).then(() => true, () => false) : false;
        if (reachable && rows.length > 0) {
          for (const row of rows) {
            await upsertAlarmRows(db!, [row]).catch((e) => this.#o.log.error({ err: (e as Error).message, alarm_id: row.alarmId, sequence: row.sequence }, "alarm record refused by the read model; skipped"));
          }
          return true;
        }
        this.#o.log.warn({ err: (error as Error).message }, "alarm read model not updated yet; retrying");
        await Bun.sleep(RETRY_MS);
      }
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#draining;
    await this.#consumer?.close();
  }
}
