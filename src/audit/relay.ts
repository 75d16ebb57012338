import { asc, gt } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { auditLog, type AuditEntry } from "../db/schema.ts";
import type { KafkaConnection } from "../kafka/connection.ts";
import { ReliableProducer } from "../kafka/producer.ts";
import { lastRecord } from "../kafka/reader.ts";
import type { Logger } from "../log/logger.ts";

export const AUDIT_TOPIC = "audit_trail";
const BATCH = 500;

/** The seed's audit event, plus the row id that makes the relay resumable. */
export function auditEvent(row: AuditEntry) {
  return {
    id: row.id,
    timestamp: row.at.toISOString(),
    user: row.actor,
    action: row.action,
    resource_type: row.resourceType,
    resource_id: row.resourceId,
    changes: row.changes,
    ip_address: row.ip,
  };
}

/**
 * Copies audit_log rows to the audit_trail topic (the DB table is the outbox). Where to resume
 * is read from the topic itself, the id of its last event, so nothing is sent twice after a
 * restart and nothing is missed while Kafka was down.
 */
export class AuditRelay {
  #lastId: number | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  #running: Promise<void> = Promise.resolve();
  readonly #producer: ReliableProducer;

  constructor(
    private readonly db: () => Db | undefined,
    private readonly connection: KafkaConnection,
    private readonly log: Logger,
    private readonly topic = AUDIT_TOPIC,
    private readonly intervalMs = 1000,
  ) {
    this.#producer = new ReliableProducer(connection, "audit-relay");
  }

  start(): void {
    const tick = async () => {
      this.#running = this.relayOnce().then(
        () => undefined,
        (error) => {
          this.#lastId = undefined;
          this.log.warn({ err: (error as Error).message }, "audit relay paused; retrying");
        },
      );
      await this.#running;
      if (!this.#stopped) this.#timer = setTimeout(tick, this.intervalMs);
    };
    void tick();
  }

  /** Sends every row not yet in the topic; returns how many were sent. */
  async relayOnce(): Promise<number> {
    const db = this.db();
    if (!db) return 0;
    if (this.#lastId === undefined) {
      const last = await lastRecord(this.connection, this.topic);
      this.#lastId = last?.value ? Number((JSON.parse(last.value) as { id: number }).id) : 0;
    }
    let sent = 0;
    for (;;) {
      const rows = await db.select().from(auditLog).where(gt(auditLog.id, this.#lastId)).orderBy(asc(auditLog.id)).limit(BATCH);
      if (rows.length === 0) return sent;
      await this.#producer.send(
        rows.map((row) => ({ topic: this.topic, key: `${row.resourceType}/${row.resourceId}`, value: JSON.stringify(auditEvent(row)), partition: 0 })),
      );
      this.#lastId = rows.at(-1)!.id;
      sent += rows.length;
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
    await this.#producer.close().catch(() => undefined);
  }
}
