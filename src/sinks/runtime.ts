import type { Registry } from "prom-client";
import { KafkaAdmin } from "../kafka/admin.ts";
import { connectionFromBootstrap } from "../kafka/connection.ts";
import { tpKey, type TopicPartition, type TopicPartitionOffset } from "../kafka/group-consumer.ts";
import { LeanGroupConsumer } from "../kafka/lean-consumer.ts";
import type { ConsumedRecord } from "../kafka/processor.ts";
import { ReliableProducer, type OutgoingRecord } from "../kafka/producer.ts";
import type { Logger } from "../log/logger.ts";
import { backoffDelay } from "../util/backoff.ts";
import { describeError, errorKind, type SinkBatch, type SinkBatchItem, type SinkBatchRange, type SinkConfig, type SinkWriter } from "./define.ts";
import { SinkMetrics } from "./metrics.ts";
import { PoisonRecord } from "./rows.ts";

export type DlqReason = "malformed_json" | "unmappable" | "rejected" | "retries_exhausted";

interface DlqEntry {
  record: ConsumedRecord;
  reason: DlqReason;
  error: string;
  attempts: number;
}

/** The DLQ record: enough to see why, and the original bytes to re-drive it unchanged. */
export interface SinkDlqValue {
  reason: DlqReason;
  error: string;
  sink_id: string;
  sink_type: string;
  attempts: number;
  raw_base64: string | null;
  source_topic: string;
  source_partition: number;
  /** int64 as a string. */
  source_offset: string;
  source_key: string | null;
  source_timestamp: string;
  failed_at: string;
}

export interface SinkRuntimeOptions {
  config: SinkConfig;
  writer: SinkWriter;
  log: Logger;
  metrics: Registry;
  /** Test seam: runs after a batch is durable (and its DLQ records sent), before its offsets are committed. */
  hooks?: { afterWrite?(batch: SinkBatch<unknown>): void | Promise<void> };
  /** How long `stop` keeps trying to write what is pending before giving up on it (it is not committed then). */
  drainTimeoutMs?: number;
}

export interface SinkStatus {
  sink_id: string;
  state: "starting" | "running" | "paused" | "target_down" | "stopping" | "stopped";
  assigned: TopicPartition[];
  pending: number;
  rows_written: number;
  dlq_records: number;
  last_error: string | null;
}

class Aborted extends Error {}

interface Prepared {
  epoch: number;
  started: number;
  /** Next offset to commit per partition: every record taken, written, skipped or dead-lettered. */
  handled: Map<string, TopicPartitionOffset>;
  items: SinkBatchItem<unknown>[];
  dead: DlqEntry[];
}

const RESTART_DELAY_MS = 1000;

/** The consumer group a sink's instances share. */
export const sinkGroupId = (config: Pick<SinkConfig, "sink_id" | "kafka">): string => config.kafka.group_id ?? `sink-${config.sink_id}`;

/**
 * Runs one sink: a consumer-group member that batches records by size and time, writes each batch
 * through the sink's idempotent writer, and commits the batch's offsets only once the write is
 * durable. So a crash re-delivers and never loses, and the idempotent write makes the re-delivery
 * harmless.
 *
 * - Poison records (can't be parsed or mapped) go to the DLQ one by one; the rest of the batch goes on.
 * - A batch the target rejects is bisected so only the offending records reach the DLQ.
 * - Other failures are retried with backoff. Between attempts the target is probed: while it is down
 *   consumption is paused (nothing more is fetched; at most one batch plus the stream's buffer is
 *   held) and the wait doesn't count against `retry.max_attempts`. A batch that keeps failing while
 *   the target is up goes to the DLQ with the last error once the budget is spent.
 * - Rebalance: records of revoked partitions that were not written yet are dropped (their new owner
 *   reads them from the committed offset); commits only cover partitions still assigned.
 */
export class SinkRuntime {
  readonly #config: SinkConfig;
  readonly #writer: SinkWriter;
  readonly #log: Logger;
  readonly #metrics: SinkMetrics;
  readonly #hooks: SinkRuntimeOptions["hooks"];
  readonly #drainTimeoutMs: number;
  readonly #sink: string;
  #consumer: LeanGroupConsumer | undefined;
  #producer: ReliableProducer | undefined;

  #pending: ConsumedRecord[] = [];
  /** When the oldest pending record arrived: the batch's age for max_wait_ms. */
  #pendingSince = 0;
  /** Highest offset received per partition: a rejoin re-delivers from the committed offset. */
  #seen = new Map<string, bigint>();
  /** Highest offset per partition known durable in the target; records up to it are not written again. */
  #durable = new Map<string, bigint>();
  /** Next offsets to commit, per partition, once a commit succeeds. */
  #toCommit = new Map<string, TopicPartitionOffset>();
  #assigned = new Set<string>();
  /** Resolves when durable offsets of newly assigned partitions are known. */
  #ready: Promise<void> = Promise.resolve();
  /** Bumped when the consumer is replaced: a flush begun under an older one commits nothing. */
  #epoch = 0;

  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Set while a write is in flight: wakes the flush loop as soon as the next batch is full. */
  #batchFull: (() => void) | undefined;
  /** Offset commits, one after the other, off the write path: the next batch is written meanwhile. */
  #commits: Promise<void> = Promise.resolve();
  #lagTimer: ReturnType<typeof setInterval> | undefined;
  #running = false;
  #runDone: Promise<void> = Promise.resolve();
  #draining = false;
  #stopping = false;
  #abort = false;
  #stopped = false;
  #restarting = false;
  #targetDown = false;
  /** Wakes every backoff sleep early when the sink stops for good. */
  readonly #wakers = new Set<() => void>();
  #rowsWritten = 0;
  #dlqRecords = 0;
  #lastError: string | null = null;
  #started = false;

  constructor(options: SinkRuntimeOptions) {
    this.#config = options.config;
    this.#writer = options.writer;
    this.#log = options.log.child({ sink: options.config.sink_id });
    this.#hooks = options.hooks;
    this.#drainTimeoutMs = options.drainTimeoutMs ?? 15_000;
    this.#sink = options.config.sink_id;
    this.#metrics = new SinkMetrics(options.metrics, this.#sink);
  }

  get #maxRows(): number {
    return this.#config.batch.max_rows;
  }

  get #maxWait(): number {
    return this.#config.batch.max_wait_ms;
  }

  get #connection() {
    return connectionFromBootstrap(this.#config.kafka.bootstrap, `sink-${this.#sink}`);
  }

  async start(): Promise<void> {
    await this.#checkDlqTopic();
    this.#producer = new ReliableProducer(this.#connection, "dlq");
    try {
      await this.#openConsumer();
    } catch (error) {
      // Kafka not reachable yet: keep trying in the background, like the workers.
      void this.#restartConsumer(`start failed: ${describeError(error)}`);
    }
    this.#started = true;
    this.#lagTimer = setInterval(() => void this.#measureLag(), this.#config.kafka.lag_interval_ms);
    this.#log.info({ type: this.#config.type, topics: this.#config.kafka.topics, group: this.groupId }, "sink started");
  }

  /** A missing DLQ topic would stall the first poison record's batch forever (topics are never auto-created). */
  async #checkDlqTopic(): Promise<void> {
    const admin = new KafkaAdmin(this.#connection);
    let topics: string[];
    try {
      topics = await admin.listTopics();
    } catch (error) {
      this.#log.warn({ err: describeError(error) }, "can't list topics to check the DLQ topic; going on");
      return;
    } finally {
      await admin.close().catch(() => undefined);
    }
    if (!topics.includes(this.#config.dlq.topic)) {
      throw new Error(`DLQ topic "${this.#config.dlq.topic}" does not exist: create it (or run \`gateway topics apply\` once it is in the catalogue) or set dlq.topic`);
    }
  }

  get groupId(): string {
    return sinkGroupId(this.#config);
  }

  async #openConsumer(): Promise<void> {
    const kafka = this.#config.kafka;
    const consumer = new LeanGroupConsumer({
      connection: this.#connection,
      groupId: this.groupId,
      topics: kafka.topics,
      role: "consumer",
      startFrom: kafka.start_from,
      sessionTimeoutMs: kafka.session_timeout_ms,
      heartbeatIntervalMs: Math.max(500, Math.floor(kafka.session_timeout_ms / 6)),
      ...(kafka.instance_id ? { instanceId: kafka.instance_id } : {}),
    });
    this.#consumer = consumer;
    if (this.#targetDown || this.#pending.length >= this.#maxRows) consumer.pause();
    await consumer.start({
      onRecord: (record) => this.#onRecord(record),
      onAssignment: (assigned) => this.#onAssignment(assigned),
      onError: (error) => void this.#restartConsumer(`consumer stream failed: ${error.message}`),
    });
  }

  // ------------------------------------------------------------------------------------------------
  // Consumption
  // ------------------------------------------------------------------------------------------------

  #onAssignment(assigned: TopicPartition[]): void {
    const next = new Set(assigned.map((tp) => tpKey(tp.topic, tp.partition)));
    const revoked = [...this.#assigned].filter((k) => !next.has(k));
    const added = assigned.filter((tp) => !this.#assigned.has(tpKey(tp.topic, tp.partition)));
    this.#assigned = next;
    if (revoked.length > 0) {
      const gone = new Set(revoked);
      this.#pending = this.#pending.filter((r) => !gone.has(tpKey(r.topic, r.partition)));
      for (const k of revoked) {
        this.#seen.delete(k);
        this.#durable.delete(k);
        this.#toCommit.delete(k);
        const [topic, partition] = splitKey(k);
        this.#metrics.lag.remove({ sink: this.#sink, topic, partition: String(partition) });
      }
    }
    this.#log.info({ assigned: assigned.map((tp) => tpKey(tp.topic, tp.partition)), revoked }, "partitions assigned");
    if (added.length > 0 && this.#writer.durableOffsets) {
      const lookup = this.#lookupDurable(added);
      this.#ready = this.#ready.then(() => lookup);
    }
    this.#metrics.pending.set({ sink: this.#sink }, this.#pending.length);
  }

  /** Retried until it answers (or the sink stops): writing without it could duplicate files. */
  async #lookupDurable(partitions: TopicPartition[]): Promise<void> {
    for (let failures = 0; ; failures++) {
      try {
        const found = await this.#writer.durableOffsets!(partitions);
        for (const [k, offset] of found) {
          if (!this.#assigned.has(k)) continue;
          const known = this.#durable.get(k);
          if (known === undefined || offset > known) this.#durable.set(k, offset);
        }
        if (found.size > 0) this.#log.info({ durable: Object.fromEntries([...found].map(([k, o]) => [k, String(o)])) }, "resuming after offsets already in the target");
        return;
      } catch (error) {
        if (this.#abort) throw new Aborted();
        this.#lastError = describeError(error);
        this.#metrics.errors.inc({ sink: this.#sink, kind: "unavailable" });
        this.#log.warn({ err: this.#lastError }, "can't read durable offsets from the target; retrying");
        await this.#sleep(backoffDelay(failures + 1, this.#config.retry.backoff_ms, this.#config.retry.max_backoff_ms));
      }
    }
  }

  #onRecord(record: ConsumedRecord): void {
    if (this.#stopping) return;
    const k = tpKey(record.topic, record.partition);
    const seen = this.#seen.get(k);
    if (seen !== undefined && record.offset <= seen) return;
    this.#seen.set(k, record.offset);
    if (this.#pending.push(record) === 1) this.#pendingSince = Date.now();
    if (this.#pending.length >= this.#maxRows) {
      // A batch is waiting: fetch no more until it is taken.
      this.#setPaused(true);
      const full = this.#batchFull;
      this.#batchFull = undefined;
      full?.();
      this.#trigger(0);
    } else if (!this.#timer && !this.#running) {
      this.#trigger(this.#maxWait - (Date.now() - this.#pendingSince));
    }
  }

  #setPaused(paused: boolean): void {
    const consumer = this.#consumer;
    if (!consumer) return;
    if (paused) consumer.pause();
    else consumer.resume();
    this.#metrics.paused.set({ sink: this.#sink }, consumer.paused ? 1 : 0);
  }

  #trigger(delay: number): void {
    if (this.#running || this.#stopped) return;
    if (this.#timer) {
      if (delay > 0) return;
      clearTimeout(this.#timer);
    }
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#runDone = this.#run();
      },
      Math.max(0, delay),
    );
  }

  #due(): boolean {
    if (this.#pending.length === 0) return false;
    return this.#draining || this.#pending.length >= this.#maxRows || Date.now() - this.#pendingSince >= this.#maxWait;
  }

  /**
   * Writes batches while one is due. Two stages overlap: the next batch is taken and mapped as soon
   * as it is full, while the previous one is being written; writes themselves stay one at a time,
   * in order. A batch that is due only by age waits for the write in flight.
   */
  async #run(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    let inflight: Promise<void> | undefined;
    try {
      while (!this.#abort) {
        if (!this.#due()) {
          if (!inflight) break;
          const full = await Promise.race([inflight.then(() => false), this.#untilFull()]);
          if (!full) inflight = undefined;
          continue;
        }
        const prepared = await this.#prepare();
        if (inflight) await inflight;
        inflight = this.#complete(prepared);
        inflight.catch(() => undefined); // awaited below or on the next turn
      }
      if (inflight) await inflight;
    } catch (error) {
      if (!(error instanceof Aborted)) {
        this.#lastError = describeError(error);
        this.#log.error({ err: this.#lastError }, "sink flush failed; restarting the consumer from committed offsets");
        void this.#restartConsumer(`flush failed: ${this.#lastError}`);
      }
    } finally {
      this.#running = false;
      this.#batchFull = undefined;
    }
    if (this.#stopping) return;
    if (!this.#targetDown && this.#pending.length < this.#maxRows) this.#setPaused(false);
    if (this.#pending.length > 0) this.#trigger(this.#due() ? 0 : this.#maxWait - (Date.now() - this.#pendingSince));
  }

  #untilFull(): Promise<boolean> {
    if (this.#pending.length >= this.#maxRows) return Promise.resolve(true);
    return new Promise((resolve) => (this.#batchFull = () => resolve(true)));
  }

  // ------------------------------------------------------------------------------------------------
  // One batch
  // ------------------------------------------------------------------------------------------------

  /** Takes up to a batch of pending records and maps them; poison records are set aside for the DLQ. */
  async #prepare(): Promise<Prepared> {
    const epoch = this.#epoch;
    const taken = this.#pending.length <= this.#maxRows ? this.#pending : this.#pending.slice(0, this.#maxRows);
    this.#pending = this.#pending.length <= this.#maxRows ? [] : this.#pending.slice(this.#maxRows);
    // What is left started arriving while this batch filled; its wait counts from now.
    if (this.#pending.length > 0) this.#pendingSince = Date.now();
    this.#metrics.pending.set({ sink: this.#sink }, this.#pending.length);
    // The next batch may be fetched while this one is written, unless the target is down.
    if (!this.#targetDown && !this.#stopping && this.#pending.length < this.#maxRows) this.#setPaused(false);
    await this.#ready;

    const started = performance.now();
    const last = new Map<string, ConsumedRecord>();
    const items: SinkBatchItem<unknown>[] = [];
    const dead: DlqEntry[] = [];
    let skipped = 0;
    for (const record of taken) {
      const k = tpKey(record.topic, record.partition);
      if (!this.#assigned.has(k)) continue; // revoked meanwhile: the new owner has it
      last.set(k, record);
      const durable = this.#durable.get(k);
      if (durable !== undefined && record.offset <= durable) {
        skipped++;
        continue;
      }
      try {
        items.push({ record, row: this.#writer.map(record) });
      } catch (error) {
        this.#metrics.errors.inc({ sink: this.#sink, kind: "poison" });
        dead.push({ record, reason: error instanceof PoisonRecord ? error.reason : "unmappable", error: describeError(error), attempts: 0 });
      }
    }
    const handled = new Map<string, TopicPartitionOffset>();
    for (const [k, record] of last) handled.set(k, { topic: record.topic, partition: record.partition, offset: record.offset + 1n });
    if (skipped > 0) this.#metrics.skipped.inc({ sink: this.#sink }, skipped);
    return { epoch, started, handled, items, dead };
  }

  /** Writes a prepared batch (retrying, isolating rejected records), sends its DLQ records, then commits its offsets. */
  async #complete({ epoch, started, handled, items, dead }: Prepared): Promise<void> {
    const whole = toBatch(items);
    const written = await this.#writeIsolating(items, dead, whole);
    await this.#sendToDlq(dead);
    const batch = written === items ? whole : toBatch(written);
    await this.#hooks?.afterWrite?.(batch);

    for (const range of batch.ranges) {
      const k = tpKey(range.topic, range.partition);
      if (!this.#assigned.has(k)) continue;
      const known = this.#durable.get(k);
      if (known === undefined || range.last > known) this.#durable.set(k, range.last);
    }
    const perTopic = new Map<string, number>();
    for (const range of batch.ranges) perTopic.set(range.topic, (perTopic.get(range.topic) ?? 0) + range.count);
    for (const [topic, n] of perTopic) this.#metrics.rows.inc({ sink: this.#sink, topic }, n);
    this.#rowsWritten += written.length;
    this.#metrics.writeSeconds.observe({ sink: this.#sink }, (performance.now() - started) / 1000);
    this.#metrics.batches.inc({ sink: this.#sink });

    if (epoch !== this.#epoch) return; // the consumer was replaced: it restarts from committed offsets
    for (const [k, next] of handled) {
      const queued = this.#toCommit.get(k);
      if (!queued || next.offset > queued.offset) this.#toCommit.set(k, next);
    }
    this.#commits = this.#commits.then(() => this.#commit());
  }

  async #commit(): Promise<void> {
    const consumer = this.#consumer;
    if (!consumer || this.#toCommit.size === 0) return;
    const offsets = [...this.#toCommit.values()];
    try {
      await consumer.commit(offsets);
      for (const o of offsets) {
        const k = tpKey(o.topic, o.partition);
        if (this.#toCommit.get(k) === o) this.#toCommit.delete(k);
      }
    } catch (error) {
      // Kept for the next batch; if none comes, a restart re-delivers them and the write is idempotent.
      this.#metrics.errors.inc({ sink: this.#sink, kind: "commit" });
      this.#log.warn({ err: describeError(error) }, "offset commit failed; retried with the next batch");
    }
  }

  /** Writes `items`; returns what was written. Rejected records are isolated by bisection into `dead`. */
  async #writeIsolating(items: SinkBatchItem<unknown>[], dead: DlqEntry[], batch = toBatch(items)): Promise<SinkBatchItem<unknown>[]> {
    if (items.length === 0) return items;
    const outcome = await this.#attempt(batch);
    if (outcome.ok) return items;
    if (outcome.exhausted || items.length === 1) {
      const reason: DlqReason = outcome.exhausted ? "retries_exhausted" : "rejected";
      for (const item of items) dead.push({ record: item.record, reason, error: outcome.error, attempts: outcome.attempts });
      return [];
    }
    const half = Math.ceil(items.length / 2);
    const left = await this.#writeIsolating(items.slice(0, half), dead);
    const right = await this.#writeIsolating(items.slice(half), dead);
    return [...left, ...right];
  }

  async #attempt(batch: SinkBatch<unknown>): Promise<{ ok: true } | { ok: false; exhausted: boolean; error: string; attempts: number }> {
    const items = batch.items;
    const { max_attempts, backoff_ms, max_backoff_ms } = this.#config.retry;
    let counted = 0;
    let outage = 0;
    for (;;) {
      if (this.#abort) throw new Aborted();
      try {
        await this.#writer.write(batch);
        this.#setTargetDown(false);
        return { ok: true };
      } catch (error) {
        const kind = errorKind(error);
        const message = describeError(error);
        this.#lastError = message;
        this.#metrics.errors.inc({ sink: this.#sink, kind });
        if (kind === "rejected") {
          this.#log.warn({ rows: items.length, err: message }, "target rejected the batch");
          return { ok: false, exhausted: false, error: message, attempts: counted + 1 };
        }
        // Down, or up and failing this batch? Only the second spends the retry budget.
        const down = kind === "unavailable" || !(await this.#probe());
        if (down) {
          outage++;
          if (!this.#targetDown) this.#log.warn({ err: message }, "target unavailable; consumption paused until it is back");
          this.#setTargetDown(true);
          await this.#sleep(backoffDelay(outage, backoff_ms, max_backoff_ms));
          continue;
        }
        counted++;
        if (counted >= max_attempts) {
          this.#log.error({ rows: items.length, attempts: counted, err: message }, "retry budget spent; batch goes to the DLQ");
          return { ok: false, exhausted: true, error: message, attempts: counted };
        }
        this.#log.warn({ attempt: counted, err: message }, "batch write failed; retrying");
        await this.#sleep(backoffDelay(counted, backoff_ms, max_backoff_ms));
      }
    }
  }

  async #probe(): Promise<boolean> {
    try {
      await this.#writer.probe();
      return true;
    } catch {
      return false;
    }
  }

  #setTargetDown(down: boolean): void {
    if (this.#targetDown === down) return;
    this.#targetDown = down;
    this.#metrics.targetUp.set({ sink: this.#sink }, down ? 0 : 1);
    if (down) this.#setPaused(true);
    else this.#log.info("target reachable again; consumption resumes");
  }

  async #sendToDlq(entries: DlqEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const topic = this.#config.dlq.topic;
    const failedAt = new Date().toISOString();
    const records: OutgoingRecord[] = entries.map((e) => {
      const value: SinkDlqValue = {
        reason: e.reason,
        error: e.error,
        sink_id: this.#sink,
        sink_type: this.#config.type,
        attempts: e.attempts,
        raw_base64: e.record.value === undefined ? null : Buffer.from(e.record.value).toString("base64"),
        source_topic: e.record.topic,
        source_partition: e.record.partition,
        source_offset: String(e.record.offset),
        source_key: e.record.key ?? null,
        source_timestamp: new Date(Number(e.record.timestamp)).toISOString(),
        failed_at: failedAt,
      };
      return { topic, key: e.record.key ?? `${e.record.topic}/${e.record.partition}`, value: JSON.stringify(value), headers: { content_type: "application/json" } };
    });
    for (let failures = 0; ; failures++) {
      if (this.#abort) throw new Aborted();
      try {
        await this.#producer!.send(records);
        break;
      } catch (error) {
        this.#metrics.errors.inc({ sink: this.#sink, kind: "dlq" });
        this.#log.warn({ topic, err: describeError(error) }, "DLQ write failed; retrying (the batch is not committed before it succeeds)");
        await this.#sleep(backoffDelay(failures + 1, this.#config.retry.backoff_ms, this.#config.retry.max_backoff_ms));
      }
    }
    for (const e of entries) this.#metrics.dlq.inc({ sink: this.#sink, reason: e.reason });
    this.#dlqRecords += entries.length;
    this.#log.warn({ topic, records: entries.length, reasons: [...new Set(entries.map((e) => e.reason))] }, "records sent to the DLQ");
  }

  /** Sleeps, unless the sink is stopping for good. */
  #sleep(ms: number): Promise<void> {
    if (this.#abort) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wakers.add(wake);
    });
  }

  // ------------------------------------------------------------------------------------------------
  // Lifecycle
  // ------------------------------------------------------------------------------------------------

  async #restartConsumer(reason: string): Promise<void> {
    if (this.#restarting || this.#stopping) return;
    this.#restarting = true;
    this.#metrics.errors.inc({ sink: this.#sink, kind: "consumer" });
    this.#log.warn({ reason }, "sink consumer restarting from committed offsets");
    try {
      this.#epoch++;
      const old = this.#consumer;
      this.#consumer = undefined;
      await old?.close();
      this.#pending = [];
      this.#seen.clear();
      this.#toCommit.clear();
      this.#durable.clear();
      this.#assigned.clear();
      this.#ready = Promise.resolve();
      for (;;) {
        await Bun.sleep(RESTART_DELAY_MS);
        if (this.#stopping) return;
        try {
          await this.#openConsumer();
          break;
        } catch (error) {
          this.#log.warn({ err: describeError(error) }, "sink consumer restart failed; retrying");
        }
      }
    } finally {
      this.#restarting = false;
    }
  }

  async #measureLag(): Promise<void> {
    const consumer = this.#consumer;
    if (!consumer || this.#stopping) return;
    try {
      for (const p of await consumer.lag()) this.#metrics.lag.set({ sink: this.#sink, topic: p.topic, partition: String(p.partition) }, Number(p.lag));
    } catch (error) {
      this.#log.debug({ err: describeError(error) }, "lag measurement failed");
    }
  }

  status(): SinkStatus {
    const consumer = this.#consumer;
    const state: SinkStatus["state"] = this.#stopped
      ? "stopped"
      : this.#stopping
        ? "stopping"
        : !this.#started
          ? "starting"
          : this.#targetDown
            ? "target_down"
            : consumer?.paused
              ? "paused"
              : "running";
    return {
      sink_id: this.#sink,
      state,
      assigned: consumer?.assignments ?? [],
      pending: this.#pending.length,
      rows_written: this.#rowsWritten,
      dlq_records: this.#dlqRecords,
      last_error: this.#lastError,
    };
  }

  /**
   * Graceful: fetches nothing more, writes and commits what is pending (for up to the drain
   * timeout; a target still down by then keeps it uncommitted for the next owner), then leaves the
   * group so the partitions move to the other members at once.
   */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    clearInterval(this.#lagTimer);
    this.#setPaused(true);
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const deadline = setTimeout(() => {
      this.#abort = true;
      for (const wake of [...this.#wakers]) wake();
    }, this.#drainTimeoutMs);
    try {
      await this.#runDone;
      this.#draining = true;
      if (!this.#abort && this.#pending.length > 0) await this.#run();
    } catch (error) {
      this.#log.warn({ err: describeError(error) }, "drain on stop failed");
    } finally {
      clearTimeout(deadline);
    }
    if (this.#pending.length > 0) this.#log.warn({ records: this.#pending.length }, "stopping with records not written; they stay uncommitted");
    await this.#commits;
    this.#stopped = true;
    this.#abort = true;
    for (const wake of [...this.#wakers]) wake();
    await this.#consumer?.close();
    this.#consumer = undefined;
    await this.#producer?.close().catch(() => undefined);
    await this.#writer.close().catch(() => undefined);
    this.#log.info({ rows_written: this.#rowsWritten, dlq_records: this.#dlqRecords }, "sink stopped");
  }
}

function splitKey(k: string): [string, number] {
  const at = k.lastIndexOf(":");
  return [k.slice(0, at), Number(k.slice(at + 1))];
}

/** Ranges per partition, in first-seen order; items keep consumption order. */
export function toBatch<R>(items: SinkBatchItem<R>[]): SinkBatch<R> {
  const ranges: SinkBatchRange[] = [];
  const byTopic = new Map<string, SinkBatchRange[]>();
  for (const { record } of items) {
    let partitions = byTopic.get(record.topic);
    if (!partitions) byTopic.set(record.topic, (partitions = []));
    const range = partitions[record.partition];
    if (!range) {
      const created = { topic: record.topic, partition: record.partition, first: record.offset, last: record.offset, count: 1 };
      partitions[record.partition] = created;
      ranges.push(created);
    } else {
      range.count++;
      if (record.offset < range.first) range.first = record.offset;
      if (record.offset > range.last) range.last = record.offset;
    }
  }
  return { items, ranges };
}
