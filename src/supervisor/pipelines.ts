import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseAdapterConfig } from "../adapter-runtime/config.ts";
import { ADAPTERS } from "../adapters.ts";
import { ConfigError, type FieldError } from "../config/schema-errors.ts";
import type { ApplianceConfig, DeclaredPipeline } from "../config/schema.ts";
import type { Pipeline } from "../db/schema.ts";
import type { PipelineRun } from "./plan.ts";

/** Fills what the appliance knows (ids, its own Kafka) into an adapter body before validation. */
export function completeAdapterConfig(pipelineId: string, body: Record<string, unknown>, appliance: ApplianceConfig): Record<string, unknown> {
  const output = (body.output ?? {}) as Record<string, unknown>;
  return {
    ...body,
    pipeline_id: body.pipeline_id ?? pipelineId,
    adapter_id: body.adapter_id ?? `${String(body.protocol ?? "adapter")}-${pipelineId}`,
    output: { kafka_bootstrap: appliance.kafka.bootstrap_servers.join(","), ...output },
  };
}

/** Validates an adapter body with its protocol's schema; errors are prefixed with `path`. */
export function validateAdapterConfig(body: Record<string, unknown>, path: string): FieldError[] {
  const definition = ADAPTERS.find((d) => d.protocol === body.protocol);
  if (!definition) {
    return [{ path: `${path}.protocol`, message: `expected one of ${ADAPTERS.map((d) => JSON.stringify(d.protocol)).join(", ")}, got ${JSON.stringify(body.protocol)}` }];
  }
  try {
    parseAdapterConfig(definition.configSchema, body, definition.validate);
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.fieldErrors.map((e) => ({ path: `${path}.${e.path}`, message: e.message }));
  }
}

export function checkDeclaredPipelines(declared: DeclaredPipeline[], appliance: ApplianceConfig): void {
  const errors = declared.flatMap((p, i) =>
    p.runtime === "docker" ? [] : validateAdapterConfig(completeAdapterConfig(p.id, p.adapter, appliance), `pipelines[${i}].adapter`),
  );
  if (errors.length > 0) throw new ConfigError("appliance config", errors);
}

export function toRun(pipeline: Pick<Pipeline, "id" | "runtime" | "image" | "config">, appliance: ApplianceConfig): PipelineRun {
  return {
    pipeline_id: pipeline.id,
    runtime: pipeline.runtime,
    image: pipeline.image,
    config: completeAdapterConfig(pipeline.id, pipeline.config, appliance),
  };
}

/**
 * The last applied pipeline set, kept in the data folder so adapters start after a reboot even
 * while the control DB is unreachable (edge-first: collection never waits for the control plane).
 */
export class PipelineCache {
  readonly #file: string;
  constructor(dataDir: string) {
    this.#file = join(dataDir, "applied-pipelines.json");
  }

  read(): PipelineRun[] | undefined {
    if (!existsSync(this.#file)) return undefined;
    try {
      return JSON.parse(readFileSync(this.#file, "utf8")) as PipelineRun[];
    } catch {
      return undefined;
    }
  }

  write(runs: PipelineRun[]): void {
    const tmp = `${this.#file}.tmp`;
    writeFileSync(tmp, JSON.stringify(runs));
    renameSync(tmp, this.#file);
  }
}
