import { Type, type Static } from "@sinclair/typebox";

/** IEC 61850-style quality codes from the seed's data quality layer. */
export const QUALITIES = ["GOOD", "SUSPECT", "BAD", "UNCERTAIN"] as const;
export type Quality = (typeof QUALITIES)[number];

export const CLASSIFICATIONS = ["TELEMETRY", "EVENT", "ALARM", "LOG"] as const;
export type Classification = (typeof CLASSIFICATIONS)[number];

/** Bumped when the envelope changes shape; carried in the `schema_id` header until a registry assigns ids. */
export const READING_SCHEMA_SUBJECT = "telemetry-reading";
export const READING_SCHEMA_VERSION = 1;

const IsoTime = Type.String({ format: "date-time", description: "ISO 8601 UTC, millisecond precision" });

export const ReadingSchema = Type.Object(
  {
    asset_id: Type.String({ minLength: 1, maxLength: 256 }),
    parameter: Type.String({ minLength: 1, maxLength: 256 }),
    value: Type.Union([Type.Number(), Type.Boolean(), Type.String(), Type.Null()], {
      description: "null when the read failed (quality BAD)",
    }),
    unit: Type.Optional(Type.String({ maxLength: 64 })),
    quality: Type.Union(QUALITIES.map((q) => Type.Literal(q))),
    classification: Type.Union(CLASSIFICATIONS.map((c) => Type.Literal(c))),
    timestamps: Type.Object({
      device_time: Type.Union([IsoTime, Type.Null()]),
      gateway_time: IsoTime,
      kafka_time: Type.Union([IsoTime, Type.Null()]),
      timezone: Type.Optional(Type.Literal("UTC")),
    }),
    clock_skew_ms: Type.Union([Type.Number(), Type.Null()]),
    metadata: Type.Object(
      {
        adapter_id: Type.String(),
        adapter_version: Type.String(),
        pipeline_id: Type.String(),
        hostname: Type.String(),
        time_source: Type.Optional(Type.Union([Type.Literal("device"), Type.Literal("gateway")])),
        status_text: Type.Optional(Type.String()),
        error: Type.Optional(Type.String()),
      },
      { additionalProperties: true },
    ),
  },
  { additionalProperties: true },
);
export type Reading = Static<typeof ReadingSchema>;

/** Kafka key: per-tag ordering needs every reading of one tag in one partition. */
export function readingKey(reading: Pick<Reading, "asset_id" | "parameter">): string {
  return `${reading.asset_id}/${reading.parameter}`;
}

export function readingHeaders(): Record<string, string> {
  return { schema_id: `${READING_SCHEMA_SUBJECT}:v${READING_SCHEMA_VERSION}`, content_type: "application/json" };
}
