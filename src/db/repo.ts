import { and, desc, eq, lt, sql, type SQL } from "drizzle-orm";
import type { Db } from "./client.ts";
import { type Diff, diffObjects } from "./diff.ts";
import {
  type AuditEntry,
  auditLog,
  configVersions,
  type Gateway,
  gateways,
  type JsonObject,
  type NewAuditEntry,
  type Pipeline,
  type PipelineRuntime,
  pipelines,
} from "./schema.ts";

// Every function takes `Db`; a transaction handle from `db.transaction(tx => …)` works as well.

export async function listPipelines(db: Db, opts: { gatewayId?: string } = {}): Promise<Pipeline[]> {
  const where = opts.gatewayId === undefined ? undefined : eq(pipelines.gatewayId, opts.gatewayId);
  return db.select().from(pipelines).where(where).orderBy(pipelines.id);
}

export async function getPipeline(db: Db, id: string): Promise<Pipeline | undefined> {
  const [row] = await db.select().from(pipelines).where(eq(pipelines.id, id));
  return row;
}

export interface PipelineInput {
  id: string;
  gatewayId: string;
  name: string;
  adapterType: string;
  /** The adapter CONFIG_JSON body. */
  config: JsonObject;
  /** Omitted: keep the stored value (column default on create). */
  enabled?: boolean;
  runtime?: PipelineRuntime;
  image?: string | null;
}

export class VersionConflictError extends Error {
  constructor(
    readonly resourceId: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`pipeline ${resourceId} is at version ${actual}, expected ${expected}`);
    this.name = "VersionConflictError";
  }
}

export interface UpsertResult {
  pipeline: Pipeline;
  /** false when the input matched the stored pipeline: nothing was written. */
  changed: boolean;
  changes: Diff;
}

/** The versioned part of a pipeline: what config_versions stores and audit diffs cover. */
const pipelineDefinition = (p: Omit<Pipeline, "version" | "createdAt" | "updatedAt">) => ({
  gatewayId: p.gatewayId,
  name: p.name,
  enabled: p.enabled,
  adapterType: p.adapterType,
  runtime: p.runtime,
  image: p.image,
  config: p.config,
});

/**
 * Creates or replaces a pipeline in one transaction: bumps `version`, snapshots the definition
 * into config_versions and appends a `pipeline.create` / `pipeline.update` audit row whose
 * `changes` diff old against new. Unchanged input is a no-op. Concurrent upserts of one id are
 * serialized with a transaction-scoped advisory lock. `expectedVersion` (0 = must not exist)
 * enables optimistic concurrency: a mismatch throws VersionConflictError.
 */
export async function upsertPipelineVersioned(
  db: Db,
  input: PipelineInput,
  actor: string,
  ip?: string | null,
  opts: { comment?: string; expectedVersion?: number } = {},
): Promise<UpsertResult> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`pipeline:${input.id}`}))`);
    const old = await getPipeline(tx, input.id);
    if (opts.expectedVersion !== undefined && opts.expectedVersion !== (old?.version ?? 0)) {
      throw new VersionConflictError(input.id, opts.expectedVersion, old?.version ?? 0);
    }
    const next = pipelineDefinition({
      ...input,
      enabled: input.enabled ?? old?.enabled ?? true,
      runtime: input.runtime ?? old?.runtime ?? "process",
      image: input.image === undefined ? (old?.image ?? null) : input.image,
    });
    if (old && Object.keys(diffObjects(pipelineDefinition(old), next)).length === 0) {
      return { pipeline: old, changed: false, changes: {} };
    }
    const version = (old?.version ?? 0) + 1;
    const [pipeline] = old
      ? await tx.update(pipelines).set({ ...next, version }).where(eq(pipelines.id, input.id)).returning()
      : await tx.insert(pipelines).values({ id: input.id, ...next, version }).returning();
    if (!pipeline) throw new Error(`pipeline ${input.id}: write returned no row`);
    await tx.insert(configVersions).values({
      resourceType: "pipeline",
      resourceId: pipeline.id,
      version,
      config: next,
      createdBy: actor,
      comment: opts.comment ?? null,
    });
    const changes = diffObjects(old ? { ...pipelineDefinition(old), version: old.version } : null, { ...next, version });
    await appendAudit(tx, {
      actor,
      action: old ? "pipeline.update" : "pipeline.create",
      resourceType: "pipeline",
      resourceId: pipeline.id,
      changes,
      ip: ip ?? null,
    });
    return { pipeline, changed: true, changes };
  });
}

/** Creates the gateway row if missing (name = id); updates `mode` if it differs. */
export async function ensureGateway(db: Db, id: string, mode: string): Promise<Gateway> {
  const [row] = await db
    .insert(gateways)
    .values({ id, name: id, mode })
    .onConflictDoUpdate({ target: gateways.id, set: { mode }, setWhere: sql`${gateways.mode} <> excluded.mode` })
    .returning();
  if (row) return row;
  const [existing] = await db.select().from(gateways).where(eq(gateways.id, id));
  if (!existing) throw new Error(`gateway ${id} vanished during ensureGateway`);
  return existing;
}

/** audit_log is append-only: there is deliberately no update or delete helper. */
export async function appendAudit(db: Db, entry: Omit<NewAuditEntry, "id">): Promise<AuditEntry> {
  const [row] = await db.insert(auditLog).values(entry).returning();
  if (!row) throw new Error("audit insert returned no row");
  return row;
}

export interface ListAuditOptions {
  resourceType?: string;
  resourceId?: string;
  /** Default 100, capped at 1000. */
  limit?: number;
  /** Cursor: an audit id (entries with smaller ids) or a time (entries strictly before it). */
  before?: number | Date;
}

/** Newest first (by id, which follows insertion order). */
export async function listAudit(db: Db, opts: ListAuditOptions = {}): Promise<AuditEntry[]> {
  const conditions: SQL[] = [];
  if (opts.resourceType !== undefined) conditions.push(eq(auditLog.resourceType, opts.resourceType));
  if (opts.resourceId !== undefined) conditions.push(eq(auditLog.resourceId, opts.resourceId));
  if (typeof opts.before === "number") conditions.push(lt(auditLog.id, opts.before));
  else if (opts.before instanceof Date) conditions.push(lt(auditLog.at, opts.before));
  const limit = Math.min(Math.max(Math.trunc(opts.limit ?? 100), 1), 1000);
  return db
    .select()
    .from(auditLog)
    .where(and(...conditions))
    .orderBy(desc(auditLog.id))
    .limit(limit);
}

/** Deletes a pipeline; its config_versions stay as history, and the removal is audited in the same transaction. */
export async function deletePipelineVersioned(db: Db, id: string, actor: string, ip?: string | null): Promise<Pipeline | undefined> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`pipeline:${id}`}))`);
    const old = await getPipeline(tx, id);
    if (!old) return undefined;
    await tx.delete(pipelines).where(eq(pipelines.id, id));
    await appendAudit(tx, {
      actor,
      action: "pipeline.delete",
      resourceType: "pipeline",
      resourceId: id,
      changes: diffObjects({ ...pipelineDefinition(old), version: old.version }, null),
      ip: ip ?? null,
    });
    return old;
  });
}

export async function listConfigVersions(db: Db, resourceType: "pipeline" | "gateway" | "sink", resourceId: string) {
  return db
    .select()
    .from(configVersions)
    .where(and(eq(configVersions.resourceType, resourceType), eq(configVersions.resourceId, resourceId)))
    .orderBy(desc(configVersions.version));
}

export async function listGateways(db: Db): Promise<Gateway[]> {
  return db.select().from(gateways).orderBy(gateways.id);
}
