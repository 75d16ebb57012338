import type { ApplianceConfig } from "../../config/schema.ts";
import { ConfigError, schemaErrors } from "../../config/schema-errors.ts";
import type { Db } from "../../db/client.ts";
import { deleteSinkVersioned, getSink, listConfigVersions, listSinks, upsertSinkVersioned } from "../../db/repo.ts";
import type { JsonObject, Sink } from "../../db/schema.ts";
import type { Logger } from "../../log/logger.ts";
import { parseApplianceSink } from "../../sinks/appliance.ts";
import type { ConnectionTestResult, SinkConfig } from "../../sinks/define.ts";
import { sinkDefinition } from "../../sinks/registry.ts";
import { invalid, notFound } from "../errors.ts";
import { versionConflictAnswer } from "../etag.ts";
import type { Page } from "../pipelines/service.ts";
import { type SinkBody, SinkBodySchema } from "./model.ts";

/** The API's view of a sink: what a GET returns under `config` is exactly what a PUT takes. */
export interface SinkView {
  id: string;
  /** null: not bound to a single gateway. */
  gateway_id: string | null;
  type: string;
  name: string;
  enabled: boolean;
  version: number;
  config: JsonObject;
  created_at: string;
  updated_at: string;
}

export function toSinkView(row: Sink): SinkView {
  return {
    id: row.id,
    gateway_id: row.gatewayId,
    type: row.type,
    name: row.name,
    enabled: row.enabled,
    version: row.version,
    config: row.config,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

/** The parser names paths inside the sink config; the body nests it under `config`. */
const underConfig = (error: ConfigError) => invalid(error.fieldErrors.map((e) => ({ path: e.path === "(root)" ? "config" : `config.${e.path}`, message: e.message })));

interface ValidatedSink {
  id: string;
  type: string;
  name: string;
  enabled: boolean;
  /** As given (sink_id filled in from the URL): no defaults, `${secret:...}` unresolved, so a GET shows what was sent. */
  config: JsonObject;
  parsed: SinkConfig;
}

/**
 * Sinks of this gateway and sinks bound to none, versioned and audited like alarm rules. `changed`
 * runs after every stored change, for whatever runs the sinks to follow; it must not wait.
 */
export class SinkService {
  constructor(
    private readonly db: () => Db,
    private readonly appliance: Pick<ApplianceConfig, "gateway_id" | "kafka">,
    private readonly log: Logger,
    private readonly changed: () => void = () => {},
  ) {}

  private visible(row: Sink): boolean {
    return row.gatewayId === null || row.gatewayId === this.appliance.gateway_id;
  }

  async list(limit: number, offset: number): Promise<Page<SinkView>> {
    const all = await listSinks(this.db(), { gatewayId: this.appliance.gateway_id });
    return { items: all.slice(offset, offset + limit).map(toSinkView), total: all.length, limit, offset };
  }

  private async row(id: string): Promise<Sink> {
    const row = await getSink(this.db(), id);
    if (!row || !this.visible(row)) throw notFound(`sink ${id}`);
    return row;
  }

  async get(id: string): Promise<SinkView> {
    return toSinkView(await this.row(id));
  }

  /**
   * The same checks as a sink in the appliance config's `sinks:`; 422 names every failing path.
   * `urlId` is the id of a PUT: a config without a sink_id takes it, one with another is refused.
   */
  validate(body: unknown, urlId?: string): ValidatedSink {
    const envelope = schemaErrors(SinkBodySchema, body);
    if (envelope.length > 0) throw invalid(envelope);
    const { name, enabled, config: given } = body as SinkBody;
    const config = { ...given } as JsonObject;
    if (urlId !== undefined) {
      if (config.sink_id !== undefined && config.sink_id !== urlId) {
        throw invalid([{ path: "config.sink_id", message: `expected ${JSON.stringify(urlId)} (the id in the URL), got ${JSON.stringify(config.sink_id)}` }]);
      }
      config.sink_id = urlId;
    }
    try {
      const { config: parsed } = parseApplianceSink(config, this.appliance.kafka);
      return { id: parsed.sink_id, type: parsed.type, name: name ?? parsed.sink_id, enabled: enabled ?? true, config, parsed };
    } catch (error) {
      if (error instanceof ConfigError) throw underConfig(error);
      throw error;
    }
  }

  /** Creates (expectedVersion 0) or replaces a sink; see `validate` for `urlId`. */
  async save(body: unknown, actor: string, ip: string | null, options: { expectedVersion?: number; urlId?: string }): Promise<SinkView> {
    const { urlId, expectedVersion } = options;
    const sink = this.validate(body, urlId);
    const existing = await getSink(this.db(), sink.id);
    // A sink of another gateway is not this API's to overwrite.
    if (urlId !== undefined && existing && !this.visible(existing)) throw notFound(`sink ${sink.id}`);
    try {
      const result = await upsertSinkVersioned(
        this.db(),
        // A sink shared by every gateway stays shared when one of them edits it.
        { id: sink.id, gatewayId: existing ? existing.gatewayId : this.appliance.gateway_id, type: sink.type, name: sink.name, enabled: sink.enabled, config: sink.config },
        actor,
        ip,
        expectedVersion === undefined ? {} : { expectedVersion },
      );
      if (result.changed) this.changed();
      return toSinkView(result.row);
    } catch (error) {
      throw versionConflictAnswer(error, `sink ${sink.id}`, expectedVersion === 0);
    }
  }

  async remove(id: string, actor: string, ip: string | null, expectedVersion?: number): Promise<void> {
    await this.row(id);
    try {
      const removed = await deleteSinkVersioned(this.db(), id, actor, ip, expectedVersion === undefined ? {} : { expectedVersion });
      if (!removed) throw notFound(`sink ${id}`);
    } catch (error) {
      throw versionConflictAnswer(error, `sink ${id}`, false);
    }
    this.changed();
  }

  async versions(id: string) {
    await this.row(id);
    return (await listConfigVersions(this.db(), "sink", id)).map((v) => {
      const { name, enabled, config } = v.config as { name: string; enabled: boolean; config: JsonObject };
      return { version: v.version, name, enabled, config, created_by: v.createdBy, created_at: v.createdAt.toISOString(), comment: v.comment };
    });
  }

  /** The stored sink's target, reached once without writing; a target that is down is `ok: false`, not an error. */
  async testStored(id: string): Promise<ConnectionTestResult> {
    const row = await this.row(id);
    return this.connectionTest(this.validate({ config: row.config }).parsed);
  }

  /** The same for a body that is not saved: validated first, so a bad one is a 422. */
  async testUnsaved(body: unknown): Promise<ConnectionTestResult> {
    return this.connectionTest(this.validate(body).parsed);
  }

  private connectionTest(sink: SinkConfig): Promise<ConnectionTestResult> {
    // Parsed, so its type is one the registry knows; connectionTest never throws.
    const definition = sinkDefinition(sink.type)!;
    return definition.connectionTest(sink.target, this.log.child({ sink: sink.sink_id, connection_test: true }));
  }
}
