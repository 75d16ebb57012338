import { Type, type Static } from "@sinclair/typebox";
import { S3Client } from "bun";
import type { FieldError } from "../../config/schema-errors.ts";
import { tpKey, type TopicPartition } from "../../kafka/group-consumer.ts";
import type { ConsumedRecord } from "../../kafka/processor.ts";
import type { Logger } from "../../log/logger.ts";
import {
  defineSink,
  describeError,
  SinkWriteError,
  timedTest,
  type SinkBatch,
  type SinkBatchItem,
  type SinkConfig,
  type SinkContext,
  type SinkWriter,
} from "../define.ts";
import { kindForTopic, mapRecord, PoisonRecord, type SinkKind, type SinkRow } from "../rows.ts";
import { resolveSecrets } from "../../config/secrets.ts";
import { encodeParquet } from "./parquet.ts";

export const S3ParquetTargetSchema = Type.Object(
  {
    endpoint: Type.Optional(
      Type.String({ pattern: "^https?://", description: "S3-compatible endpoint (MinIO, Ceph, moto…); absent: AWS S3 for the region" }),
    ),
    bucket: Type.String({ minLength: 3, maxLength: 63, pattern: "^[a-z0-9][a-z0-9.-]*[a-z0-9]$", description: "Bucket the files go to (must exist)" }),
    region: Type.String({ minLength: 1, maxLength: 64, default: "us-east-1", description: "Signing region" }),
    access_key_id: Type.String({ minLength: 1, description: "Access key id; `${secret:NAME}` placeholders are resolved at start" }),
    secret_access_key: Type.String({ minLength: 1, description: "Secret access key; use `${secret:NAME}`" }),
    session_token: Type.Optional(Type.String({ minLength: 1, description: "Temporary credentials' session token; `${secret:NAME}` allowed" })),
    virtual_hosted_style: Type.Boolean({ default: false, description: "bucket.host URLs instead of host/bucket paths (path style works with every S3-compatible store)" }),
    prefix: Type.String({
      maxLength: 512,
      pattern: "^([A-Za-z0-9!_.*'()=-]+/)*$",
      default: "",
      description: "Key prefix ending in / (e.g. `plant1/`); files go to <prefix>topic=<topic>/date=YYYY-MM-DD/hour=HH/",
    }),
    compression: Type.Union([Type.Literal("SNAPPY"), Type.Literal("UNCOMPRESSED")], { default: "SNAPPY", description: "Parquet page compression" }),
    row_group_rows: Type.Integer({ minimum: 1000, maximum: 10_000_000, default: 100_000, description: "Rows per Parquet row group" }),
    resume_scan_days: Type.Integer({
      minimum: 1,
      maximum: 3660,
      default: 7,
      description: "At (re)assignment, how many of the newest date= folders are listed to find the last offset already written per partition",
    }),
    request_timeout_ms: Type.Integer({ minimum: 1000, maximum: 600_000, default: 60_000, description: "Longest one upload or listing may take" }),
  },
  { additionalProperties: false },
);
export type S3ParquetTarget = Static<typeof S3ParquetTargetSchema>;

const PART = /(?:^|\/)part-(\d+)-(\d+)-(\d+)\.parquet$/;

/** `<prefix>topic=<topic>/date=YYYY-MM-DD/hour=HH/part-<partition>-<first>-<last>.parquet`, date and hour of `at` in UTC. */
export function objectKey(prefix: string, topic: string, partition: number, first: bigint, last: bigint, at: number): string {
  const iso = new Date(at).toISOString();
  return `${prefix}topic=${topic}/date=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}/part-${partition}-${first}-${last}.parquet`;
}

export function parseObjectKey(key: string): { partition: number; first: bigint; last: bigint } | undefined {
  const m = PART.exec(key);
  return m ? { partition: Number(m[1]), first: BigInt(m[2]!), last: BigInt(m[3]!) } : undefined;
}

const NETWORK = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EPIPE|ConnectionRefused|ConnectionClosed|FailedToOpenSocket|Unable to connect|socket/i;

/** Network failures and auth/bucket problems wait (nothing a batch can fix); other errors are retried and counted. */
export function classifyS3Error(error: unknown): SinkWriteError {
  if (error instanceof SinkWriteError) return error;
  const message = describeError(error);
  const e = error as { code?: unknown; name?: unknown };
  const code = String(e.code ?? "");
  if (NETWORK.test(code) || NETWORK.test(message)) return new SinkWriteError("unavailable", message, { cause: error });
  if (/AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|NoSuchBucket|ExpiredToken|SlowDown|ServiceUnavailable/i.test(`${code} ${message}`)) {
    return new SinkWriteError("unavailable", message, { cause: error });
  }
  return new SinkWriteError("transient", message, { cause: error });
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`${what}: no answer within ${ms} ms`), { code: "ETIMEDOUT" })), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export function s3Client(target: S3ParquetTarget): S3Client {
  return new S3Client({
    bucket: target.bucket,
    region: target.region,
    accessKeyId: resolveSecrets(target.access_key_id),
    secretAccessKey: resolveSecrets(target.secret_access_key),
    ...(target.session_token ? { sessionToken: resolveSecrets(target.session_token) } : {}),
    ...(target.endpoint ? { endpoint: target.endpoint } : {}),
    virtualHostedStyle: target.virtual_hosted_style,
  });
}

/** Every key under `prefix` (or the common prefixes, with a delimiter), across pages. */
async function listAll(client: S3Client, prefix: string, delimiter?: string): Promise<{ keys: string[]; prefixes: string[] }> {
  const keys: string[] = [];
  const prefixes: string[] = [];
  let continuationToken: string | undefined;
  do {
    const page = await client.list({ prefix, maxKeys: 1000, ...(delimiter ? { delimiter } : {}), ...(continuationToken ? { continuationToken } : {}) });
    for (const o of page.contents ?? []) keys.push(o.key);
    for (const p of page.commonPrefixes ?? []) prefixes.push(p.prefix);
    continuationToken = page.isTruncated ? page.nextContinuationToken : undefined;
  } while (continuationToken);
  return { keys, prefixes };
}

/**
 * One Parquet file per topic-partition per batch, named by its offset range, so writing the same
 * batch again overwrites the same object. A re-delivered batch after a crash could have other
 * boundaries, so on (re)assignment the sink lists what is already in the bucket and the runtime
 * skips records up to the highest offset found: a file uploaded but not committed before a crash
 * is never followed by an overlapping one.
 */
export class S3ParquetWriter implements SinkWriter<SinkRow> {
  readonly #client: S3Client;
  readonly #target: S3ParquetTarget;
  readonly #kinds: Record<string, SinkKind>;
  readonly #log: Logger;
  filesWritten = 0;

  constructor(target: S3ParquetTarget, topicKinds: Record<string, SinkKind>, context: SinkContext) {
    this.#target = target;
    this.#kinds = topicKinds;
    this.#log = context.log;
    this.#client = s3Client(target);
  }

  map(record: ConsumedRecord): SinkRow {
    const kind = kindForTopic(record.topic, this.#kinds);
    if (!kind) throw new PoisonRecord("unmappable", `no row kind for topic ${record.topic} (set kafka.topic_kinds)`);
    return mapRecord(record, kind);
  }

  async write(batch: SinkBatch<SinkRow>): Promise<void> {
    const groups = new Map<string, SinkBatchItem<SinkRow>[]>();
    for (const item of batch.items) {
      const k = tpKey(item.record.topic, item.record.partition);
      const group = groups.get(k) ?? [];
      group.push(item);
      groups.set(k, group);
    }
    for (const range of batch.ranges) {
      const items = groups.get(tpKey(range.topic, range.partition));
      if (!items || items.length === 0) continue;
      const first = items[0]!;
      // The date/hour folder is the Kafka timestamp of the file's first record: ingestion time,
      // monotonic enough per partition to find the newest files at resume, unlike device time.
      const key = objectKey(this.#target.prefix, range.topic, range.partition, range.first, range.last, Number(first.record.timestamp));
      const body = encodeParquet(first.row.kind, items, { codec: this.#target.compression, rowGroupRows: this.#target.row_group_rows });
      try {
        await withTimeout(this.#client.write(key, body, { type: "application/vnd.apache.parquet" }), this.#target.request_timeout_ms, `upload ${key}`);
      } catch (error) {
        throw classifyS3Error(error);
      }
      this.filesWritten++;
      this.#log.debug({ key, rows: items.length, bytes: body.byteLength }, "parquet file uploaded");
    }
  }

  /**
   * Highest offset already in the bucket per assigned partition. Lists the topic's date folders
   * (one entry per day), then the newest ones' keys until each partition was found and one older
   * day (Kafka timestamps of one partition may step back a little across midnight) was checked too.
   */
  async durableOffsets(partitions: TopicPartition[]): Promise<Map<string, bigint>> {
    const found = new Map<string, bigint>();
    const byTopic = new Map<string, Set<number>>();
    for (const tp of partitions) byTopic.set(tp.topic, (byTopic.get(tp.topic) ?? new Set()).add(tp.partition));
    try {
      for (const [topic, wanted] of byTopic) {
        const base = `${this.#target.prefix}topic=${topic}/`;
        const { prefixes } = await withTimeout(listAll(this.#client, base, "/"), this.#target.request_timeout_ms, `list ${base}`);
        const dates = prefixes.filter((p) => /date=\d{4}-\d{2}-\d{2}\/$/.test(p)).sort().reverse().slice(0, this.#target.resume_scan_days);
        const foundAt = new Map<number, number>();
        for (let i = 0; i < dates.length; i++) {
          const open = [...wanted].filter((p) => !foundAt.has(p) || foundAt.get(p)! >= i - 1);
          if (open.length === 0) break;
          const { keys } = await withTimeout(listAll(this.#client, dates[i]!), this.#target.request_timeout_ms, `list ${dates[i]}`);
          for (const key of keys) {
            const part = parseObjectKey(key);
            if (!part || !wanted.has(part.partition)) continue;
            const k = tpKey(topic, part.partition);
            if (!foundAt.has(part.partition)) foundAt.set(part.partition, i);
            const known = found.get(k);
            if (known === undefined || part.last > known) found.set(k, part.last);
          }
        }
      }
    } catch (error) {
      throw classifyS3Error(error);
    }
    return found;
  }

  async probe(): Promise<void> {
    try {
      await withTimeout(this.#client.list({ maxKeys: 1, prefix: this.#target.prefix }), 5000, "probe");
    } catch (error) {
      throw classifyS3Error(error);
    }
  }

  async close(): Promise<void> {}
}

function validateKinds(config: SinkConfig<typeof S3ParquetTargetSchema>): FieldError[] {
  return config.kafka.topics
    .map((topic, i) => ({ topic, i }))
    .filter(({ topic }) => !kindForTopic(topic, config.kafka.topic_kinds))
    .map(({ topic, i }) => ({ path: `kafka.topics[${i}]`, message: `no row kind for topic "${topic}": add it to kafka.topic_kinds` }));
}

export const s3ParquetSink = defineSink({
  type: "s3-parquet",
  version: "1.0.0",
  stability: "beta",
  description: "Batches to Parquet files on S3 or any S3-compatible store, partitioned by topic/date/hour, named by offset range",
  targetSchema: S3ParquetTargetSchema,
  batchDefaults: { max_rows: 500_000, max_wait_ms: 300_000 },
  validate: validateKinds,
  async create(config, context) {
    return new S3ParquetWriter(config.target, config.kafka.topic_kinds, context) as SinkWriter;
  },
  connectionTest: (target) =>
    timedTest(async () => {
      const client = s3Client(target);
      const page = await client.list({ maxKeys: 1, prefix: target.prefix });
      return `bucket ${target.bucket} reachable${target.endpoint ? ` at ${target.endpoint}` : ""}; ${page.keyCount ?? 0 ? "has objects" : "no objects"} under "${target.prefix}"`;
    }, 10_000),
});

export { describeError };
