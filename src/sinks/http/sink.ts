import { Type, type Static } from "@sinclair/typebox";
import type { FieldError } from "../../config/schema-errors.ts";
import { tpKey } from "../../kafka/group-consumer.ts";
import type { ConsumedRecord } from "../../kafka/processor.ts";
import { defineSink, describeError, SinkWriteError, timedTest, type SinkBatch, type SinkContext, type SinkWriter } from "../define.ts";
import { PoisonRecord } from "../rows.ts";
import { hasSecretPlaceholder, resolveSecrets } from "../../config/secrets.ts";

export const HttpTargetSchema = Type.Object(
  {
    url: Type.String({ pattern: "^https?://", maxLength: 2048, description: "Endpoint the batches are sent to" }),
    method: Type.Union([Type.Literal("POST"), Type.Literal("PUT")], { default: "POST", description: "HTTP method of each request" }),
    format: Type.Union([Type.Literal("json_array"), Type.Literal("ndjson")], {
      default: "json_array",
      description: "json_array: one JSON array per request; ndjson: one JSON object per line (application/x-ndjson)",
    }),
    auth: Type.Optional(
      Type.Object(
        {
          header: Type.String({ minLength: 1, maxLength: 128, pattern: "^[A-Za-z0-9-]+$", default: "Authorization", description: "Header carrying the credential" }),
          value: Type.String({ minLength: 1, description: "Header value, normally with a secret: `Bearer ${secret:CLOUD_API_TOKEN}`" }),
        },
        { additionalProperties: false },
      ),
    ),
    headers: Type.Record(Type.String({ pattern: "^[A-Za-z0-9-]+$" }), Type.String(), {
      default: {},
      description: "Extra headers sent with every request; values may hold `${secret:NAME}`",
    }),
    include_source: Type.Boolean({
      default: true,
      description: "Add `_kafka: {topic, partition, offset}` to each element, a per-record key a receiver can deduplicate on",
    }),
    timeout_ms: Type.Integer({ minimum: 100, maximum: 600_000, default: 10_000, description: "A request without an answer by then is retried" }),
    health_url: Type.Optional(
      Type.String({ pattern: "^https?://", maxLength: 2048, description: "Probed (GET) between retries and by Test connection; default: HEAD on `url`" }),
    ),
  },
  { additionalProperties: false },
);
export type HttpTarget = Static<typeof HttpTargetSchema>;

export interface HttpRow {
  /** The element as sent: the record's JSON object (with `_kafka` when include_source). */
  json: string;
}

/** `<topic>:<partition>:<first>-<last>`: the same records always get the same key. */
export function idempotencyKey(topic: string, partition: number, first: bigint, last: bigint): string {
  return `${topic}:${partition}:${first}-${last}`;
}

/**
 * 2xx: written. 408 and 5xx: retried (probe decides whether the target is down or just failing
 * this batch). 429: target overloaded, wait. 401/403/407: credentials, not the batch's fault,
 * wait for a fix rather than dead-lettering everything. Other 4xx: rejected, so the runtime
 * bisects the batch and dead-letters only the records the server refuses (413 shrinks batches).
 */
export function classifyStatus(status: number, body: string): SinkWriteError | undefined {
  if (status >= 200 && status < 300) return undefined;
  const message = `HTTP ${status}${body ? `: ${body.slice(0, 300)}` : ""}`;
  if (status === 429 || status === 401 || status === 403 || status === 407) return new SinkWriteError("unavailable", message);
  if (status === 408 || status >= 500) return new SinkWriteError("transient", message);
  return new SinkWriteError("rejected", message);
}

function isConnectionRefused(error: unknown): boolean {
  const code = String((error as { code?: unknown }).code ?? "");
  return /ECONNREFUSED|ConnectionRefused|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|FailedToOpenSocket/i.test(`${code} ${describeError(error)}`);
}

export class HttpWriter implements SinkWriter<HttpRow> {
  readonly #target: HttpTarget;
  readonly #headers: Record<string, string>;
  requests = 0;

  constructor(target: HttpTarget, _context: SinkContext) {
    this.#target = target;
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(target.headers)) headers[name] = resolveSecrets(value);
    if (target.auth) headers[target.auth.header] = resolveSecrets(target.auth.value);
    this.#headers = headers;
  }

  map(record: ConsumedRecord): HttpRow {
    if (record.value === undefined || record.value === null) throw new PoisonRecord("malformed_json", "record has no value (tombstone)");
    let parsed: unknown;
    try {
      parsed = JSON.parse(record.value);
    } catch (error) {
      throw new PoisonRecord("malformed_json", `not JSON: ${(error as Error).message}`);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new PoisonRecord("malformed_json", "not a JSON object");
    if (!this.#target.include_source) return { json: JSON.stringify(parsed) };
    const element = { ...(parsed as Record<string, unknown>), _kafka: { topic: record.topic, partition: record.partition, offset: String(record.offset) } };
    return { json: JSON.stringify(element) };
  }

  /** One request per partition, so each carries one offset range and one Idempotency-Key. */
  async write(batch: SinkBatch<HttpRow>): Promise<void> {
    const groups = new Map<string, string[]>();
    for (const { record, row } of batch.items) {
      const k = tpKey(record.topic, record.partition);
      const group = groups.get(k) ?? [];
      group.push(row.json);
      groups.set(k, group);
    }
    for (const range of batch.ranges) {
      const elements = groups.get(tpKey(range.topic, range.partition));
      if (!elements || elements.length === 0) continue;
      const ndjson = this.#target.format === "ndjson";
      const body = ndjson ? `${elements.join("\n")}\n` : `[${elements.join(",")}]`;
      await this.#send(body, {
        "Content-Type": ndjson ? "application/x-ndjson" : "application/json",
        "Idempotency-Key": idempotencyKey(range.topic, range.partition, range.first, range.last),
        "X-Kafka-Topic": range.topic,
        "X-Kafka-Partition": String(range.partition),
        "X-Kafka-First-Offset": String(range.first),
        "X-Kafka-Last-Offset": String(range.last),
        "X-Record-Count": String(elements.length),
      });
    }
  }

  async #send(body: string, headers: Record<string, string>): Promise<void> {
    this.requests++;
    let response: Response;
    try {
      response = await fetch(this.#target.url, {
        method: this.#target.method,
        headers: { ...this.#headers, ...headers },
        body,
        signal: AbortSignal.timeout(this.#target.timeout_ms),
      });
    } catch (error) {
      const message = describeError(error);
      throw new SinkWriteError(isConnectionRefused(error) ? "unavailable" : "transient", message, { cause: error });
    }
    const text = response.ok ? "" : await response.text().catch(() => "");
    if (response.ok) await response.arrayBuffer().catch(() => undefined);
    const failure = classifyStatus(response.status, text);
    if (failure) throw failure;
  }

  async probe(): Promise<void> {
    const status = await probeStatus(this.#target, this.#headers);
    if (status >= 500 || status === 429 || status === 408) throw new SinkWriteError("unavailable", `HTTP ${status}`);
  }

  async close(): Promise<void> {}
}

/** Any answer below 500 (except 408/429) means the server is there. */
async function probeStatus(target: HttpTarget, headers: Record<string, string>): Promise<number> {
  const response = await fetch(target.health_url ?? target.url, {
    method: target.health_url ? "GET" : "HEAD",
    headers,
    signal: AbortSignal.timeout(Math.min(target.timeout_ms, 5000)),
  });
  await response.arrayBuffer().catch(() => undefined);
  return response.status;
}

function validate(config: { target: HttpTarget }): FieldError[] {
  const errors: FieldError[] = [];
  if (hasSecretPlaceholder(config.target.url)) errors.push({ path: "target.url", message: "put secrets in auth.value or headers, not in the URL" });
  return errors;
}

export const httpSink = defineSink({
  type: "cloud-api",
  version: "1.0.0",
  stability: "beta",
  description: "POSTs batches as a JSON array or NDJSON to an HTTP endpoint, with an Idempotency-Key per partition offset range",
  targetSchema: HttpTargetSchema,
  batchDefaults: { max_rows: 1000, max_wait_ms: 1000 },
  validate,
  async create(config, context) {
    return new HttpWriter(config.target, context) as SinkWriter;
  },
  connectionTest: (target) =>
    timedTest(async () => {
      const headers: Record<string, string> = {};
      if (target.auth) headers[target.auth.header] = resolveSecrets(target.auth.value);
      const status = await probeStatus(target, headers);
      if (status >= 500 || status === 429 || status === 408) throw new Error(`${target.health_url ?? target.url} answered HTTP ${status}`);
      return `${target.health_url ?? target.url} answered HTTP ${status}`;
    }, 10_000),
});
