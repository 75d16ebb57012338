import { Type, type Static, type TObject } from "@sinclair/typebox";
import type { FieldError } from "../config/schema-errors.ts";
import type { TopicPartition } from "../kafka/group-consumer.ts";
import type { ConsumedRecord } from "../kafka/processor.ts";
import type { Logger } from "../log/logger.ts";
import type { Stability } from "../registry.ts";
import { SINK_KINDS } from "./rows.ts";

export type { Stability };

// ---------------------------------------------------------------------------------------------------
// What a sink implements
// ---------------------------------------------------------------------------------------------------

export interface SinkBatchRange extends TopicPartition {
  first: bigint;
  last: bigint;
  /** Records of the partition in the batch (offsets can have gaps: transaction markers, compaction). */
  count: number;
}

export interface SinkBatchItem<R> {
  record: ConsumedRecord;
  row: R;
}

/** Rows in consumption order (per partition in offset order), with the offset range of each partition. */
export interface SinkBatch<R> {
  items: SinkBatchItem<R>[];
  ranges: SinkBatchRange[];
}

/**
 * - `rejected`: the target refused these rows and will again (HTTP 4xx, a constraint the rows break).
 *   The runtime bisects the batch so only the offending records go to the DLQ.
 * - `unavailable`: the target is down or overloaded (connection refused, 5xx, 429, timeouts).
 *   Consumption pauses and the batch is retried until the target is back; never sent to the DLQ.
 * - `transient` (any other error): retried with backoff; past the retry budget, to the DLQ.
 */
export type SinkErrorKind = "rejected" | "unavailable" | "transient";

export class SinkWriteError extends Error {
  constructor(
    readonly kind: SinkErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "SinkWriteError";
  }
}

export function errorKind(error: unknown): SinkErrorKind {
  return error instanceof SinkWriteError ? error.kind : "transient";
}

export interface SinkWriter<R = unknown> {
  /** One record to its row. Throwing (PoisonRecord or anything) sends that record alone to the DLQ. */
  map(record: ConsumedRecord): R;
  /**
   * Writes the batch; resolves only once it is durable. Must be idempotent: after a crash or a
   * rebalance the same records arrive again, possibly in batches with other boundaries.
   */
  write(batch: SinkBatch<R>): Promise<void>;
  /**
   * For targets where a re-delivered batch would not overwrite what was written before (files
   * named by offset range): the highest offset per partition (`topic:partition` → offset) already
   * durable in the target. Records up to it are skipped on (re)assignment.
   */
  durableOffsets?(partitions: TopicPartition[]): Promise<Map<string, bigint>>;
  /** Cheap reachability check used between retries: resolves when the target is up. */
  probe(): Promise<void>;
  close(): Promise<void>;
}

export interface SinkContext {
  log: Logger;
  /** Sink instance id, for names the sink creates (staging tables, client ids). */
  sinkId: string;
}

export interface ConnectionTestResult {
  ok: boolean;
  /** What was reached (server version, bucket, status), or why not. */
  detail: string;
  elapsed_ms: number;
}

// ---------------------------------------------------------------------------------------------------
// Configuration common to every sink
// ---------------------------------------------------------------------------------------------------

const TopicName = Type.String({ minLength: 1, maxLength: 249, pattern: "^[A-Za-z0-9._-]+$" });

export const SinkKafkaSchema = Type.Object(
  {
    bootstrap: Type.String({
      pattern: "^[^:\\s,]+:\\d+(,[^:\\s,]+:\\d+)*$",
      default: "127.0.0.1:9092",
      description: "Comma-separated Kafka brokers",
    }),
    topics: Type.Array(TopicName, { minItems: 1, maxItems: 64, uniqueItems: true, description: "Topics this sink consumes" }),
    group_id: Type.Optional(
      Type.String({ minLength: 1, maxLength: 255, description: "Consumer group; default `sink-<sink_id>`. Instances sharing it share the partitions" }),
    ),
    instance_id: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 255,
        description: "Static group membership: a restarted instance with the same id gets its partitions back without waiting for its old session to expire",
      }),
    ),
    start_from: Type.Union([Type.Literal("earliest"), Type.Literal("latest")], {
      default: "earliest",
      description: "Where a partition the group has never committed starts",
    }),
    session_timeout_ms: Type.Integer({
      minimum: 6000,
      maximum: 300_000,
      default: 10_000,
      description: "A member silent this long is dropped and its partitions reassigned",
    }),
    topic_kinds: Type.Record(TopicName, Type.Union(SINK_KINDS.map((k) => Type.Literal(k))), {
      default: {},
      description: "Row kind per topic where the name does not tell it (telemetry.raw/clean → telemetry, telemetry.1s… → aggregate, events.* → event, alarms.* → alarm)",
    }),
    lag_interval_ms: Type.Integer({ minimum: 500, maximum: 600_000, default: 10_000, description: "How often consumer lag is measured for the metrics" }),
  },
  { additionalProperties: false },
);

export function sinkBatchSchema(defaults: { max_rows: number; max_wait_ms: number }) {
  return Type.Object(
    {
      max_rows: Type.Integer({ minimum: 1, maximum: 1_000_000, default: defaults.max_rows, description: "A batch is written once it holds this many records" }),
      max_wait_ms: Type.Integer({
        minimum: 10,
        maximum: 3_600_000,
        default: defaults.max_wait_ms,
        description: "…or this long after its first record arrived, whichever comes first",
      }),
    },
    { additionalProperties: false, default: {} },
  );
}

export const SinkRetrySchema = Type.Object(
  {
    max_attempts: Type.Integer({
      minimum: 1,
      maximum: 100,
      default: 5,
      description: "Attempts at a batch the target is up for but fails, before it goes to the DLQ (outages are waited out, not counted)",
    }),
    backoff_ms: Type.Integer({ minimum: 10, maximum: 60_000, default: 500, description: "First retry delay; doubles per attempt" }),
    max_backoff_ms: Type.Integer({ minimum: 100, maximum: 600_000, default: 30_000, description: "Longest retry delay, also while waiting out an outage" }),
  },
  { additionalProperties: false, default: {} },
);

export const SinkDlqSchema = Type.Object(
  {
    topic: Type.String({
      minLength: 1,
      maxLength: 249,
      pattern: "^[A-Za-z0-9._-]+$",
      default: "dlq.sinks",
      description: "Where records that can't be mapped or written go, one DLQ record per source record, with the reason",
    }),
  },
  { additionalProperties: false, default: {} },
);

export const SinkHealthSchema = Type.Object(
  {
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 0, description: "/health and /metrics; 0 picks a free port, reported in the log" }),
    host: Type.String({ default: "127.0.0.1", description: "Interface the endpoint listens on" }),
  },
  { additionalProperties: false },
);

export function sinkConfigSchema<T extends TObject>(type: string, target: T, batchDefaults: { max_rows: number; max_wait_ms: number }) {
  return Type.Object(
    {
      sink_id: Type.String({ minLength: 1, maxLength: 128, pattern: "^[A-Za-z0-9._-]+$", description: "Names this sink instance in metrics, logs and the default group id" }),
      type: Type.Literal(type),
      kafka: SinkKafkaSchema,
      batch: sinkBatchSchema(batchDefaults),
      retry: SinkRetrySchema,
      dlq: SinkDlqSchema,
      health: Type.Optional(SinkHealthSchema),
      target,
    },
    { additionalProperties: false },
  );
}

export type SinkCommonConfig = Static<ReturnType<typeof sinkConfigSchema<TObject>>>;
export type SinkConfig<T extends TObject = TObject> = Omit<SinkCommonConfig, "target" | "type"> & { type: string; target: Static<T> };

// ---------------------------------------------------------------------------------------------------
// defineSink
// ---------------------------------------------------------------------------------------------------

export interface SinkDefinitionInput<T extends TObject> {
  /** The `type` value in the sink config. */
  type: string;
  version: string;
  stability: Stability;
  description: string;
  /** The `target` section: where and how to write. */
  targetSchema: T;
  batchDefaults: { max_rows: number; max_wait_ms: number };
  /** Checks a schema cannot express, each naming its field path. */
  validate?(config: SinkConfig<T>): FieldError[];
  create(config: SinkConfig<T>, context: SinkContext): Promise<SinkWriter>;
  /** Reaches the target once without writing data: the UI's "Test connection". Never throws. */
  connectionTest(target: Static<T>, log: Logger): Promise<ConnectionTestResult>;
}

export interface SinkDefinition<T extends TObject = TObject> extends SinkDefinitionInput<T> {
  /** The whole config: common sections plus `target`. */
  configSchema: ReturnType<typeof sinkConfigSchema<T>>;
}

export function defineSink<T extends TObject>(definition: SinkDefinitionInput<T>): SinkDefinition<T> {
  return { ...definition, configSchema: sinkConfigSchema(definition.type, definition.targetSchema, definition.batchDefaults) };
}

/** Runs a probe with a deadline and reports it the way connectionTest does. */
export async function timedTest(what: () => Promise<string>, timeoutMs = 5000): Promise<ConnectionTestResult> {
  const started = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const detail = await Promise.race([
      what(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ok: true, detail, elapsed_ms: Math.round(performance.now() - started) };
  } catch (error) {
    return { ok: false, detail: describeError(error), elapsed_ms: Math.round(performance.now() - started) };
  } finally {
    clearTimeout(timer);
  }
}

export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && !error.message.includes(code) ? `${code} ${error.message}` : error.message;
}
