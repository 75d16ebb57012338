import type { TObject } from "@sinclair/typebox";
import { ConfigError, parseWithSchema } from "../config/schema-errors.ts";
import type { SinkConfig, SinkDefinition } from "./define.ts";
import { httpSink } from "./http/sink.ts";
import { postgresSink, timescaledbSink } from "./postgres/sink.ts";
import { s3ParquetSink } from "./s3-parquet/sink.ts";

/** Every sink the gateway ships, one line each. */
export const SINKS: readonly SinkDefinition<TObject>[] = [
  postgresSink as unknown as SinkDefinition<TObject>,
  timescaledbSink as unknown as SinkDefinition<TObject>,
  httpSink as unknown as SinkDefinition<TObject>,
  s3ParquetSink as unknown as SinkDefinition<TObject>,
];

export function sinkDefinition(type: string): SinkDefinition<TObject> | undefined {
  return SINKS.find((s) => s.type === type);
}

/**
 * Validates a sink config against its type's schema (defaults applied), then the type's own
 * checks; throws ConfigError naming each field path.
 */
export function parseSinkConfig(input: unknown, source = "sink config"): { definition: SinkDefinition<TObject>; config: SinkConfig } {
  const type = (input as { type?: unknown } | null)?.type;
  const definition = typeof type === "string" ? sinkDefinition(type) : undefined;
  if (!definition) {
    throw new ConfigError(source, [{ path: "type", message: `expected one of ${SINKS.map((s) => JSON.stringify(s.type)).join(", ")}, got ${JSON.stringify(type) ?? "nothing"}` }]);
  }
  const config = parseWithSchema(definition.configSchema, input, source) as unknown as SinkConfig;
  const errors = definition.validate?.(config) ?? [];
  if (errors.length > 0) throw new ConfigError(source, errors);
  return { definition, config };
}
