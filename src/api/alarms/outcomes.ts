import type { KafkaConnection } from "../../kafka/connection.ts";
import { tailTopics, type Tail } from "../../kafka/tail.ts";
import type { Logger } from "../../log/logger.ts";
import { ALARM_COMMAND_OUTCOMES_TOPIC, decodeCommandOutcome, type CommandOutcome } from "../../streams/alarms/outcome.ts";
import { topicNamespace, type TopicNamespace } from "../../streams/namespace.ts";

/** After the API stopped waiting (202), how long an outcome still counts as "late" and is reported. */
export const LATE_OUTCOME_WINDOW_MS = 3_600_000;
/** Commands watched at once (waiting or late); the oldest late ones are forgotten beyond this. */
const MAX_WATCHED = 10_000;

/** One command being watched: its outcome when it comes, and what to do with one that comes late. */
export interface OutcomeWatch {
  /** Settles with the outcome; never rejects. */
  readonly outcome: Promise<CommandOutcome>;
  /** The caller stops waiting: an outcome arriving within LATE_OUTCOME_WINDOW_MS goes to `onLate`. */
  release(): void;
  /** The command was never sent: forget it. */
  cancel(): void;
}

/** What AlarmService needs: register a command id before sending it, then wait on it. */
export interface OutcomeSource {
  /** True once the tail has its positions: an outcome produced from then on is seen. */
  ready(): boolean;
  watch(commandId: string, onLate?: (outcome: CommandOutcome) => void): OutcomeWatch;
}

interface Entry {
  resolve: (o: CommandOutcome) => void;
  onLate: ((o: CommandOutcome) => void) | undefined;
  /** undefined while someone waits; set on release(). */
  lateUntil: number | undefined;
}

/**
 * Matches outcomes to the commands this process sent, by command id. Pure bookkeeping; the Kafka
 * tail (CommandOutcomeTail) or a test feeds it through `deliver`.
 */
export class OutcomeRegistry implements OutcomeSource {
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;
  #ready: () => boolean;

  constructor(options: { now?: () => number; ready?: () => boolean } = {}) {
    this.#now = options.now ?? Date.now;
    this.#ready = options.ready ?? (() => true);
  }

  ready(): boolean {
    return this.#ready();
  }

  /** For subclasses that learn readiness later. */
  protected setReady(ready: () => boolean): void {
    this.#ready = ready;
  }

  get size(): number {
    return this.#entries.size;
  }

  watch(commandId: string, onLate?: (outcome: CommandOutcome) => void): OutcomeWatch {
    this.#prune();
    let resolve!: (o: CommandOutcome) => void;
    const outcome = new Promise<CommandOutcome>((r) => (resolve = r));
    this.#entries.set(commandId, { resolve, onLate, lateUntil: undefined });
    return {
      outcome,
      release: () => {
        const entry = this.#entries.get(commandId);
        if (!entry) return;
        // Re-inserted so the map stays ordered by lateUntil (pruning walks from the front).
        this.#entries.delete(commandId);
        if (entry.onLate) this.#entries.set(commandId, { ...entry, lateUntil: this.#now() + LATE_OUTCOME_WINDOW_MS });
      },
      cancel: () => void this.#entries.delete(commandId),
    };
  }

  /** An outcome off the topic: settles its waiter, or reports it late, or is ignored (not ours). */
  deliver(outcome: CommandOutcome): void {
    if (!outcome.command_id) return;
    const entry = this.#entries.get(outcome.command_id);
    if (!entry) return;
    this.#entries.delete(outcome.command_id);
    if (entry.lateUntil === undefined) entry.resolve(outcome);
    else if (entry.lateUntil >= this.#now()) entry.onLate?.(outcome);
  }

  #prune(): void {
    const now = this.#now();
    for (const [id, entry] of this.#entries) {
      if (entry.lateUntil === undefined) continue; // still waited on (bounded by the wait itself)
      if (entry.lateUntil >= now && this.#entries.size < MAX_WATCHED) break;
      this.#entries.delete(id);
    }
  }
}

export interface CommandOutcomeTailOptions {
  connection: KafkaConnection;
  log: Logger;
  namespace?: TopicNamespace;
  tail?: typeof tailTopics;
}

/**
 * One tail of alarms.command_outcomes per API process, from its end: every waiting request is
 * answered from it, none opens a consumer of its own. Kafka down only means requests answer 202.
 */
export class CommandOutcomeTail extends OutcomeRegistry {
  readonly #o: CommandOutcomeTailOptions;
  #tail: Tail | undefined;
  #ready = false;

  constructor(options: CommandOutcomeTailOptions) {
    super();
    this.#o = options;
    this.setReady(() => this.#ready);
  }

  start(): void {
    const topic = (this.#o.namespace ?? topicNamespace()).physical(ALARM_COMMAND_OUTCOMES_TOPIC);
    this.#tail = (this.#o.tail ?? tailTopics)(
      this.#o.connection,
      [topic],
      (record) => {
        const outcome = decodeCommandOutcome(record.value);
        if (outcome) this.deliver(outcome);
      },
      this.#o.log,
      "latest",
      () => {
        if (!this.#ready) this.#o.log.info({ topic }, "following alarm command outcomes");
        this.#ready = true;
      },
    );
  }

  /** Resolves once the tail has its positions, or after `timeoutMs` (false then). For tests and start-up. */
  async whenReady(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#ready && Date.now() < deadline) await Bun.sleep(50);
    return this.#ready;
  }

  async stop(): Promise<void> {
    await this.#tail?.stop();
    this.#tail = undefined;
    this.#ready = false;
  }
}
