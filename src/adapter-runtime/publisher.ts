import type { OutgoingRecord } from "../kafka/producer.ts";

export interface RecordSender {
  send(records: OutgoingRecord[]): Promise<void>;
}

export interface PublisherOptions {
  maxRecords: number;
  maxBatch: number;
  lingerMs: number;
}

export interface PublisherEvents {
  /** `records` is the batch Kafka just acknowledged (for callers that count kinds of record apart). */
  sent(count: number, records: readonly OutgoingRecord[]): void;
  /** Records dropped because the buffer was full: counted and logged, never silent. */
  dropped(count: number, reason: string): void;
  kafkaState(state: "ok" | "down", error?: unknown): void;
}

/** One `pushAndConfirm` call: settles when all of its records are acknowledged, or at the first one lost. */
interface Confirmation {
  remaining: number;
  resolve(): void;
  reject(error: Error): void;
}

/** Why a confirmation failed: its records were dropped, or the publisher closed with them unsent. */
export class NotConfirmedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotConfirmedError";
  }
}

const RETRY_START_MS = 200;
const RETRY_MAX_MS = 5000;

/**
 * A bounded in-memory queue in front of Kafka. One batch is in flight at a time, so records of a
 * tag reach Kafka in the order they were read. While Kafka is unreachable the batch is retried
 * with backoff and new records queue up to `maxRecords`; past that the oldest are dropped, because
 * the newest readings are the ones an operator needs when the link returns.
 */
export class Publisher {
  #queue: OutgoingRecord[] = [];
  #head = 0;
  #inFlight: Promise<void> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inFlightCount = 0;
  #retryDelay = RETRY_START_MS;
  #kafkaOk = false;
  #closed = false;
  /** Records whose acknowledgement someone awaits (pushAndConfirm); empty on the plain `push` path. */
  readonly #confirmations = new Map<OutgoingRecord, Confirmation>();

  constructor(
    private readonly sender: RecordSender,
    private readonly options: PublisherOptions,
    private readonly events: PublisherEvents,
  ) {}

  get buffered(): number {
    return this.#queue.length - this.#head;
  }

  push(records: OutgoingRecord[]): void {
    for (const r of records) this.#queue.push(r);
    const overflow = this.buffered - this.options.maxRecords;
    if (overflow > 0) {
      const reason = `buffer full (${this.options.maxRecords} records): Kafka unreachable or not keeping up`;
      // The batch being sent stays whole: dropping from it would count records that do reach Kafka.
      if (this.#inFlightCount > 0) {
        const removed = this.#queue.splice(this.#head + this.#inFlightCount, overflow);
        if (this.#confirmations.size > 0) this.#fail(removed, reason);
      } else {
        if (this.#confirmations.size > 0) this.#fail(this.#queue.slice(this.#head, this.#head + overflow), reason);
        this.#head += overflow;
      }
      this.events.dropped(overflow, reason);
      this.#compact();
    }
    this.#schedule(this.buffered >= this.options.maxBatch ? 0 : this.options.lingerMs);
  }

  /**
   * `push`, plus a promise that resolves once Kafka has acknowledged every one of `records`
   * (the sender's acks=all), so a caller can acknowledge its own source only then. It rejects
   * with NotConfirmedError as soon as one of them is dropped (buffer full) or the publisher is
   * closed with it unsent. Records must be fresh objects (they are tracked by identity). The
   * promise is marked handled: ignoring it never raises an unhandled rejection.
   */
  pushAndConfirm(records: OutgoingRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    if (this.#closed) {
      const closed = Promise.reject(new NotConfirmedError("publisher closed"));
      closed.catch(() => undefined);
      return closed;
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    promise.catch(() => undefined);
    const confirmation: Confirmation = { remaining: records.length, resolve, reject };
    for (const r of records) this.#confirmations.set(r, confirmation);
    this.push(records);
    return promise;
  }

  #fail(records: readonly OutgoingRecord[], reason: string): void {
    for (const r of records) {
      const confirmation = this.#confirmations.get(r);
      if (!confirmation) continue;
      this.#confirmations.delete(r);
      confirmation.reject(new NotConfirmedError(`not written to Kafka: ${reason}`));
    }
  }

  #confirm(records: readonly OutgoingRecord[]): void {
    for (const r of records) {
      const confirmation = this.#confirmations.get(r);
      if (!confirmation) continue;
      this.#confirmations.delete(r);
      if (--confirmation.remaining === 0) confirmation.resolve();
    }
  }

  #schedule(delay: number): void {
    if (this.#closed || this.#inFlight || this.#timer || this.buffered === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#inFlight = this.#sendOne().finally(() => {
        this.#inFlight = undefined;
        this.#schedule(this.buffered >= this.options.maxBatch ? 0 : this.options.lingerMs);
      });
    }, delay);
  }

  async #sendOne(): Promise<void> {
    const batch = this.#queue.slice(this.#head, this.#head + this.options.maxBatch);
    this.#inFlightCount = batch.length;
    try {
      await this.sender.send(batch);
    } catch (error) {
      this.#inFlightCount = 0;
      if (this.#kafkaOk || this.#retryDelay === RETRY_START_MS) this.events.kafkaState("down", error);
      this.#kafkaOk = false;
      await Bun.sleep(this.#retryDelay);
      this.#retryDelay = Math.min(this.#retryDelay * 2, RETRY_MAX_MS);
      return;
    }
    this.#head += batch.length;
    this.#inFlightCount = 0;
    this.#compact();
    this.#retryDelay = RETRY_START_MS;
    if (!this.#kafkaOk) this.events.kafkaState("ok");
    this.#kafkaOk = true;
    if (this.#confirmations.size > 0) this.#confirm(batch);
    this.events.sent(batch.length, batch);
  }

  #compact(): void {
    if (this.#head > 10_000 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Stops retrying; what is still queued stays counted in `buffered`, and its confirmations fail. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#confirmations.size > 0) this.#fail([...this.#confirmations.keys()], "publisher closed before Kafka acknowledged");
  }

  /** Sends everything queued; false when the deadline passed first (what is left is reported). */
  async flush(deadlineMs: number): Promise<boolean> {
    const deadline = Date.now() + deadlineMs;
    while (this.buffered > 0 || this.#inFlight) {
      if (Date.now() > deadline) return false;
      if (this.#timer) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
      this.#schedule(0);
      await Promise.race([this.#inFlight ?? Bun.sleep(5), Bun.sleep(Math.max(0, deadline - Date.now()))]);
    }
    return true;
  }
}
