import type { ApplianceConfig, DeclaredPipeline } from "../../config/schema.ts";
import { ADAPTERS } from "../../adapters.ts";
import { parseAdapterConfig } from "../../adapter-runtime/config.ts";
import type { Db } from "../../db/client.ts";
import { deletePipelineVersioned, getPipeline, listConfigVersions, listPipelines, upsertPipelineVersioned } from "../../db/repo.ts";
import type { Pipeline } from "../../db/schema.ts";
import type { Logger } from "../../log/logger.ts";
import type { Sample } from "../../registry.ts";
import { completeAdapterConfig, validateAdapterConfig } from "../../supervisor/pipelines.ts";
import { ApiError, invalid, notFound } from "../errors.ts";
import { versionConflictAnswer } from "../etag.ts";

/** The API's view of a pipeline: the config file's shape plus bookkeeping. */
export interface PipelineView extends DeclaredPipeline {
  gateway_id: string;
  version: number;
  created_at: string;
  updated_at: string;
}

export function toView(p: Pipeline): PipelineView {
  return {
    id: p.id,
    name: p.name,
    enabled: p.enabled,
    runtime: p.runtime,
    ...(p.image ? { image: p.image } : {}),
    adapter: p.config,
    gateway_id: p.gatewayId,
    version: p.version,
    created_at: p.createdAt.toISOString(),
    updated_at: p.updatedAt.toISOString(),
  };
}

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

const CONNECTION_TEST_TIMEOUT_MS = 10_000;

export class PipelineService {
  constructor(
    private readonly db: () => Db,
    private readonly appliance: ApplianceConfig,
    private readonly log: Logger,
  ) {}

  async list(limit: number, offset: number): Promise<Page<PipelineView>> {
    const all = await listPipelines(this.db(), { gatewayId: this.appliance.gateway_id });
    return { items: all.slice(offset, offset + limit).map(toView), total: all.length, limit, offset };
  }

  async get(id: string): Promise<PipelineView> {
    const pipeline = await getPipeline(this.db(), id);
    if (!pipeline || pipeline.gatewayId !== this.appliance.gateway_id) throw notFound(`pipeline ${id}`);
    return toView(pipeline);
  }

  /** Same validation as the config file: the adapter's own schema, with every failing path. */
  validate(body: DeclaredPipeline): void {
    if (body.runtime === "docker") {
      if (!body.image) throw invalid([{ path: "image", message: "required when runtime is docker" }]);
      return;
    }
    const errors = validateAdapterConfig(completeAdapterConfig(body.id, body.adapter, this.appliance), "adapter");
    if (errors.length > 0) throw invalid(errors);
  }

  async save(body: DeclaredPipeline, actor: string, ip: string | null, expectedVersion?: number): Promise<{ view: PipelineView; created: boolean }> {
    this.validate(body);
    try {
      const result = await upsertPipelineVersioned(
        this.db(),
        {
          id: body.id,
          gatewayId: this.appliance.gateway_id,
          name: body.name ?? body.id,
          adapterType: String(body.adapter.protocol ?? "docker"),
          config: body.adapter,
          enabled: body.enabled,
          runtime: body.runtime,
          image: body.image ?? null,
        },
        actor,
        ip,
        expectedVersion === undefined ? {} : { expectedVersion },
      );
      return { view: toView(result.pipeline), created: result.pipeline.version === 1 && result.changed };
    } catch (error) {
      throw versionConflictAnswer(error, `pipeline ${body.id}`, expectedVersion === 0);
    }
  }

  async remove(id: string, actor: string, ip: string | null, expectedVersion?: number): Promise<void> {
    const current = await this.get(id);
    if (expectedVersion !== undefined && expectedVersion !== current.version) {
      throw new ApiError(412, "version_conflict", `pipeline ${id} is at version ${current.version}, not ${expectedVersion}`);
    }
    await deletePipelineVersioned(this.db(), id, actor, ip);
  }

  async versions(id: string) {
    await this.get(id);
    return (await listConfigVersions(this.db(), "pipeline", id)).map((v) => ({
      version: v.version,
      config: v.config,
      created_by: v.createdBy,
      created_at: v.createdAt.toISOString(),
      comment: v.comment,
    }));
  }

  /** Reads once with the adapter's connection test; nothing is saved or published. */
  async connectionTest(body: DeclaredPipeline): Promise<{ ok: boolean; readings: Sample[]; error?: string }> {
    this.validate(body);
    const raw = completeAdapterConfig(body.id, body.adapter, this.appliance);
    const definition = ADAPTERS.find((d) => d.protocol === raw.protocol);
    if (!definition?.connectionTest) throw new ApiError(400, "not_supported", `adapter ${String(raw.protocol)} has no connection test`);
    const config = parseAdapterConfig(definition.configSchema, raw, definition.validate);
    try {
      const readings = await Promise.race([
        definition.connectionTest(config, this.log.child({ pipeline_id: body.id, connection_test: true })),
        Bun.sleep(CONNECTION_TEST_TIMEOUT_MS).then(() => {
          throw new Error(`no answer within ${CONNECTION_TEST_TIMEOUT_MS} ms`);
        }),
      ]);
      const failed = readings.length > 0 && readings.every((r) => r.quality === "BAD");
      return { ok: readings.length > 0 && !failed, readings, ...(failed ? { error: readings[0]!.error ?? "read failed" } : {}) };
    } catch (error) {
      return { ok: false, readings: [], error: (error as Error).message };
    }
  }
}
