import { Type, type Static, type TObject, type TSchema } from "@sinclair/typebox";
import { ConfigError, parseWithSchema, type FieldError } from "../config/schema-errors.ts";
import { CLASSIFICATIONS } from "../envelope/reading.ts";

export const OutputSchema = Type.Object(
  {
    kafka_bootstrap: Type.String({
      pattern: "^[^:\\s,]+:\\d+(,[^:\\s,]+:\\d+)*$",
      default: "127.0.0.1:9092",
      description: "Comma-separated Kafka brokers",
    }),
    topic: Type.String({ minLength: 1, default: "telemetry.raw", description: "Topic the readings are written to" }),
    classification: Type.Union(CLASSIFICATIONS.map((c) => Type.Literal(c)), { default: "TELEMETRY" }),
    asset_id: Type.String({ minLength: 1, description: "Asset the readings belong to, unless a device overrides it" }),
    schema_registry: Type.Optional(Type.String({ description: "Schema registry URL (reserved; ids go in headers)" })),
  },
  { additionalProperties: false },
);

export const RetryPolicySchema = Type.Object(
  {
    max_retries: Type.Integer({ minimum: 0, maximum: 100, default: 3, description: "Retries of a failed device read" }),
    backoff_ms: Type.Integer({ minimum: 10, maximum: 600_000, default: 1000, description: "First reconnect delay; doubles up to 60 s" }),
  },
  { additionalProperties: false, default: {} },
);

export const BufferSchema = Type.Object(
  {
    max_records: Type.Integer({
      minimum: 100,
      maximum: 10_000_000,
      default: 200_000,
      description: "Readings held in memory while Kafka is unreachable; past this the oldest are dropped and counted",
    }),
    max_batch: Type.Integer({ minimum: 1, maximum: 100_000, default: 2000 }),
    linger_ms: Type.Integer({ minimum: 0, maximum: 10_000, default: 20, description: "Wait to fill a batch" }),
  },
  { additionalProperties: false, default: {} },
);

export const HealthSchema = Type.Object(
  {
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 0, description: "0 picks a free port, reported in the log" }),
    host: Type.String({ default: "127.0.0.1" }),
  },
  { additionalProperties: false, default: {} },
);

/** The seed's CONFIG_JSON, with the protocol's own `source` and `mapping`. */
export function adapterConfigSchema<S extends TSchema, M extends TSchema>(protocol: string, source: S, mapping: M) {
  return Type.Object(
    {
      pipeline_id: Type.String({ minLength: 1, maxLength: 128, pattern: "^[A-Za-z0-9._-]+$" }),
      adapter_id: Type.String({ minLength: 1, maxLength: 128 }),
      protocol: Type.Literal(protocol),
      source,
      mapping,
      output: OutputSchema,
      poll_interval_ms: Type.Integer({ minimum: 10, maximum: 86_400_000, default: 1000 }),
      retry_policy: RetryPolicySchema,
      buffer: BufferSchema,
      health: HealthSchema,
    },
    { additionalProperties: false },
  );
}

export type CommonAdapterConfig = Static<ReturnType<typeof adapterConfigSchema<TSchema, TSchema>>>;

/** CONFIG_JSON is base64 of JSON (the seed's contract); plain JSON is accepted for hand testing. */
export function decodeConfigJson(raw: string | undefined): unknown {
  if (!raw) throw new ConfigError("CONFIG_JSON", [{ path: "(env)", message: "CONFIG_JSON is not set" }]);
  const trimmed = raw.trim();
  const bytes = trimmed.startsWith("{") ? Buffer.from(trimmed) : Buffer.from(trimmed, "base64");
  const text = Buffer.from(isGzip(bytes) ? Bun.gunzipSync(bytes) : bytes).toString("utf8");
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ConfigError("CONFIG_JSON", [{ path: "(json)", message: `not valid JSON (base64 of a JSON object expected): ${(error as Error).message}` }]);
  }
}

const GZIP_MAGIC = [0x1f, 0x8b];
const isGzip = (bytes: Uint8Array) => bytes[0] === GZIP_MAGIC[0] && bytes[1] === GZIP_MAGIC[1];

/**
 * Linux caps one environment variable at 128 KiB; a 10,000-node OPC UA map is far larger. Big
 * configs are gzipped before base64 (decodeConfigJson recognises the gzip header), small ones stay
 * plain base64 JSON as the seed's contract shows.
 */
const GZIP_ABOVE_BYTES = 64 * 1024;

export function encodeConfigJson(config: unknown): string {
  const json = Buffer.from(JSON.stringify(config));
  return (json.length > GZIP_ABOVE_BYTES ? Buffer.from(Bun.gzipSync(json)) : json).toString("base64");
}

export function parseAdapterConfig<S extends TObject>(
  schema: S,
  input: unknown,
  semanticCheck?: (config: Static<S>) => FieldError[],
): Static<S> {
  const config = parseWithSchema(schema, input, "CONFIG_JSON");
  const errors = semanticCheck?.(config) ?? [];
  if (errors.length > 0) throw new ConfigError("CONFIG_JSON", errors);
  return config;
}
