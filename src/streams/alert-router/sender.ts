import type { Registry } from "prom-client";
import type { KafkaConnection } from "../../kafka/connection.ts";
import { GroupBatchConsumer, tpKey, type TopicPartitionOffset } from "../../kafka/group-consumer.ts";
import type { ConsumedRecord } from "../../kafka/processor.ts";
import { ReliableProducer, type OutgoingRecord } from "../../kafka/producer.ts";
import { readPartition } from "../../kafka/reader.ts";
import type { Logger } from "../../log/logger.ts";
import { topicNamespace, type TopicNamespace } from "../namespace.ts";
import type { RetryPolicy, RoutingConfig } from "./config.ts";
import { createSender, type Sender, type SenderOptions } from "./providers.ts";
import { actionFor, type Delivery, type DeliveryOutcome } from "./routing.ts";
import type { Mailer } from "./smtp.ts";
import { counterOn, DELIVERED_TOPIC, DELIVERIES_TOPIC, OUTCOMES_TOPIC, type DeliveryJob, type OutcomeMessage } from "./worker.ts";
import { backoffDelay } from "../../util/backoff.ts";

const RECONNECT_BASE_MS = 1000;
const RECONNECT_MAX_MS = 30_000;

export const SENDER_GROUP = "gateway-alert-sender";
export const DEFAULT_RETRY_BUDGET_MS = 24 * 3_600_000;
const MAX_BATCH = 50;
const HIGH_WATER = 200;
const RETRY_WRITE_MS = 1000;

/** "HTTP 503: …" / "SMTP 451: …": the provider answered. Anything else ("unreachable", "SMTP ECONNECTION") never reached it. */
const ANSWERED = /^(HTTP|SMTP) \d{3}\b/;

const human = (ms: number) => (ms >= 3_600_000 ? `${+(ms / 3_600_000).toFixed(1)}h` : ms >= 60_000 ? `${+(ms / 60_000).toFixed(1)}min` : `${Math.round(ms / 1000)}s`);

/**
 * Retries are bounded by time, not only by count: a link that is down (the edge offline) never
 * exhausts `retry.max_attempts`; the delivery waits, backing off up to `max_backoff`, until the link
 * returns or `budgetMs` since the delivery was created has passed. A provider that answers with a
 * transient error (5xx, 429, SMTP 4xx) gets `max_attempts` as configured, within the same budget.
 */
export function retryWithinBudget(outcome: DeliveryOutcome, job: Pick<DeliveryJob, "attempt" | "created_at">, policy: RetryPolicy, budgetMs: number, now: number): DeliveryOutcome {
  if (outcome.status !== "retry") return outcome;
  const elapsed = now - Date.parse(job.created_at);
  const tries = `${job.attempt} attempt${job.attempt === 1 ? "" : "s"}`;
  if (!(elapsed < budgetMs)) return { status: "failed", reason: `gave up after ${tries} over ${human(elapsed)} (retry budget ${human(budgetMs)}): ${outcome.reason}` };
  if (ANSWERED.test(outcome.reason) && job.attempt >= policy.max_attempts) return { status: "failed", reason: `gave up after ${tries}: ${outcome.reason}` };
  return { ...outcome, after_ms: Math.max(0, Math.min(outcome.after_ms, budgetMs - elapsed)) };
}

export interface AlertSenderOptions {
  connection: KafkaConnection;
  config: RoutingConfig;
  log: Logger;
  instanceId: string;
  namespace?: TopicNamespace;
  metrics?: Registry;
  retryBudgetMs?: number;
  now?: () => number;
  fetch?: SenderOptions["fetch"];
  mailer?: Mailer;
}

interface Attempted {
  outcome: DeliveryOutcome;
  /** Delivered by this attempt (not already in the delivered log). */
  sent: boolean;
}

/**
 * Performs the router's delivery jobs: one attempt each (retries come back as new jobs from the
 * router, so backoff survives restarts), outcome reported on the outcomes topic. Delivered ids go to
 * a compacted topic before the job's offset is committed, and are read back whenever partitions are
 * assigned: a job replayed after a crash is reported delivered without being sent again.
 */
export class AlertSender {
  readonly #o: AlertSenderOptions;
  readonly #ns: TopicNamespace;
  readonly #now: () => number;
  readonly #budget: number;
  readonly #sender: Sender;
  readonly #attempts;
  #producer: ReliableProducer | undefined;
  #consumer: GroupBatchConsumer | undefined;
  #queue: ConsumedRecord[] = [];
  /** Highest offset handled per partition: a rejoin replays from the committed offset. */
  #seen = new Map<string, bigint>();
  #delivered = new Set<string>();
  #ready: Promise<void> = Promise.resolve();
  #draining: Promise<void> | undefined;
  #stopped = false;
  #failures = 0;
  #unrecorded: { record: OutgoingRecord; resolve: (ok: boolean) => void }[] = [];
  #recording = false;

  constructor(options: AlertSenderOptions) {
    this.#o = options;
    this.#ns = options.namespace ?? topicNamespace();
    this.#now = options.now ?? Date.now;
    this.#budget = options.retryBudgetMs ?? DEFAULT_RETRY_BUDGET_MS;
    // No attempt limit inside: retryWithinBudget decides when to give up.
    this.#sender = createSender({
      retry: { ...options.config.retry, max_attempts: Number.POSITIVE_INFINITY },
      timeout_ms: options.config.http_timeout_ms,
      now: this.#now,
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.mailer ? { mailer: options.mailer } : {}),
    });
    this.#attempts = options.metrics && counterOn(options.metrics, "gateway_alert_delivery_attempts_total", "Alert delivery attempts by provider and outcome", ["action_type", "outcome"]);
  }

  async start(): Promise<void> {
    this.#producer = new ReliableProducer(this.#o.connection, `alert-sender-${this.#o.instanceId}`);
    // Kafka not there yet: keep trying in the background rather than holding up the caller.
    await this.#open().catch((error) => void this.#reopen(error as Error));
  }

  async #open(): Promise<void> {
    const consumer = new GroupBatchConsumer({
      connection: this.#o.connection,
      groupId: this.#ns.physical(SENDER_GROUP),
      topics: [this.#ns.physical(DELIVERIES_TOPIC)],
      role: "alert-sender",
      startFrom: "earliest",
      instanceId: this.#ns.physical(`${SENDER_GROUP}-${this.#o.instanceId}`),
    });
    this.#consumer = consumer;
    await consumer.start({
      // Another instance may have delivered meanwhile (it held these partitions): read its ids first.
      onAssignment: () => (this.#ready = this.#loadDelivered()),
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
    this.#o.log.warn({ err: error.message, retry_in_ms: delay }, "alert sender consumer failed; reopening");
    const old = this.#consumer;
    this.#consumer = undefined;
    this.#queue = [];
    await old?.close();
    await Bun.sleep(delay);
    if (!this.#stopped) await this.#open().catch((e) => this.#reopen(e as Error));
  }

  async #loadDelivered(): Promise<void> {
    for (;;) {
      try {
        const records = await readPartition(this.#o.connection, this.#ns.physical(DELIVERED_TOPIC), 0);
        for (const r of records) if (r.key && r.value) this.#delivered.add(r.key);
        return;
      } catch (error) {
        if (this.#stopped) return;
        this.#o.log.warn({ err: (error as Error).message }, "cannot read the delivered log yet; retrying");
        await Bun.sleep(RETRY_WRITE_MS);
      }
    }
  }

  #kick(): void {
    this.#draining ??= this.#drain().finally(() => {
      this.#draining = undefined;
      if (this.#queue.length > 0 && !this.#stopped) this.#kick();
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0 && !this.#stopped) {
      await this.#ready;
      const consumer = this.#consumer;
      const batch = this.#queue.splice(0, MAX_BATCH);
      const fresh = batch.filter((r) => r.offset > (this.#seen.get(tpKey(r.topic, r.partition)) ?? -1n));
      if (fresh.length > 0 && consumer) {
        const done = await this.#handle(fresh);
        if (!done) return;
        const next = new Map<string, TopicPartitionOffset>();
        for (const r of fresh) {
          this.#seen.set(tpKey(r.topic, r.partition), r.offset);
          next.set(tpKey(r.topic, r.partition), { topic: r.topic, partition: r.partition, offset: r.offset + 1n });
        }
        // A failed commit (rebalance) only means the new owner sees these again and finds them in the delivered log.
        await consumer.commit([...next.values()]).catch((error) => this.#o.log.warn({ err: (error as Error).message }, "alert sender commit failed"));
      }
      if (consumer?.paused && this.#queue.length < HIGH_WATER / 2) consumer.resume();
    }
  }

  /**
   * Attempts a batch (different deliveries in parallel, repeats of one in order). Each delivered id
   * is made durable the moment its attempt succeeds, not with the batch: a slow provider in the same
   * batch must not widen the window in which a crash would send a delivery twice. Outcomes follow.
   */
  async #handle(records: ConsumedRecord[]): Promise<boolean> {
    const groups = new Map<string, DeliveryJob[]>();
    for (const r of records) {
      try {
        const job = JSON.parse(r.value ?? "") as DeliveryJob;
        groups.set(job.delivery_id, [...(groups.get(job.delivery_id) ?? []), job]);
      } catch {
        this.#o.log.error({ offset: String(r.offset) }, "unparsable delivery job; skipped");
      }
    }
    const at = () => new Date(this.#now()).toISOString();
    const results = await Promise.all(
      [...groups.values()].map(async (jobs) => {
        const out: OutcomeMessage[] = [];
        for (const job of jobs) {
          const { outcome, sent } = await this.#attempt(job);
          if (sent && !(await this.#recordDelivered({ topic: this.#ns.physical(DELIVERED_TOPIC), key: job.delivery_id, value: JSON.stringify({ delivered_at: at(), attempt: job.attempt }), partition: 0 }))) return null;
          out.push({ delivery_id: job.delivery_id, attempt: job.attempt, outcome, at: at() });
        }
        return out;
      }),
    );
    if (results.includes(null)) return false;
    return this.#write(results.flat().map((m) => ({ topic: this.#ns.physical(OUTCOMES_TOPIC), key: m!.delivery_id, value: JSON.stringify(m), partition: 0 })));
  }

  /**
   * Delivered ids that complete together share one produce request, so a burst of deliveries is
   * recorded in about one round trip rather than one after another.
   */
  #recordDelivered(record: OutgoingRecord): Promise<boolean> {
    return new Promise((resolve) => {
      this.#unrecorded.push({ record, resolve });
      if (this.#recording) return;
      this.#recording = true;
      void (async () => {
        while (this.#unrecorded.length > 0) {
          const batch = this.#unrecorded.splice(0);
          const ok = await this.#write(batch.map((b) => b.record));
          for (const b of batch) b.resolve(ok);
        }
        this.#recording = false;
      })();
    });
  }

  /** Written before the offsets are committed; a local broker briefly away is waited for. false = stopped meanwhile. */
  async #write(records: OutgoingRecord[]): Promise<boolean> {
    for (;;) {
      try {
        await this.#producer!.send(records);
        return true;
      } catch (error) {
        if (this.#stopped) return false;
        this.#o.log.warn({ err: (error as Error).message }, "cannot record delivery results yet; retrying");
        await Bun.sleep(RETRY_WRITE_MS);
      }
    }
  }

  async #attempt(job: DeliveryJob): Promise<Attempted> {
    const action = actionFor(this.#o.config, job.action_ref);
    if (!action) return { outcome: { status: "failed", reason: `${job.action_ref} is no longer in the routing config` }, sent: false };
    if (this.#delivered.has(job.delivery_id)) return { outcome: { status: "delivered", detail: "already delivered" }, sent: false };
    let outcome: DeliveryOutcome;
    try {
      outcome = await this.#sender.attempt({ ...job, action } as Delivery);
    } catch (error) {
      outcome = { status: "failed", reason: (error as Error).message };
    }
    outcome = retryWithinBudget(outcome, job, this.#o.config.retry, this.#budget, this.#now());
    this.#attempts?.inc({ action_type: action.type, outcome: outcome.status });
    const log = { delivery_id: job.delivery_id, action_ref: job.action_ref, type: action.type, attempt: job.attempt, kind: job.kind, ...(job.kind === "alarm" ? { event: job.event, alarm_id: job.alarm.alarm_id } : {}) };
    if (outcome.status === "delivered") {
      this.#delivered.add(job.delivery_id);
      this.#o.log.info(log, "alert delivered");
      return { outcome, sent: true };
    }
    if (outcome.status === "retry") this.#o.log.warn({ ...log, reason: outcome.reason, retry_in_ms: outcome.after_ms }, "alert delivery will be retried");
    else this.#o.log.error({ ...log, reason: outcome.reason }, "alert delivery failed; dead-lettered");
    return { outcome, sent: false };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#draining;
    await this.#consumer?.close();
    await this.#producer?.close().catch(() => undefined);
    await this.#sender.close();
  }
}

export function createAlertSender(options: AlertSenderOptions): AlertSender {
  return new AlertSender(options);
}
