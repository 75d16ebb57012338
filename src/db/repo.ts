import { and, desc, eq, isNull, lt, or, sql, type SQL } from "drizzle-orm";
import type { Db } from "./client.ts";
import { type Diff, diffObjects } from "./diff.ts";
import {
  type AlarmRuleRow,
  alarmRules,
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
  type Sink,
  sinks,
  type VersionedResource,
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
    readonly resourceType: VersionedResource = "pipeline",
  ) {
    super(`${resourceType.replace("_", " ")} ${resourceId} is at version ${actual}, expected ${expected}`);
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

export async function listConfigVersions(db: Db, resourceType: VersionedResource, resourceId: string) {
  return db
    .select()
    .from(configVersions)
    .where(and(eq(configVersions.resourceType, resourceType), eq(configVersions.resourceId, resourceId)))
    .orderBy(desc(configVersions.version));
}

export async function listGateways(db: Db): Promise<Gateway[]> {
  return db.select().from(gateways).orderBy(gateways.id);
}

/** How a versioned resource (alarm rules, sinks) is read and written; the history and audit are shared. */
interface VersionedTable<Row extends { id: string; version: number }, Definition extends Record<string, unknown>> {
  resourceType: Exclude<VersionedResource, "pipeline">;
  get(db: Db, id: string): Promise<Row | undefined>;
  /** The versioned part of a row: what config_versions stores and audit diffs cover. */
  definition(row: Definition): Definition;
  insert(db: Db, id: string, values: Definition & { version: number }): Promise<Row[]>;
  update(db: Db, id: string, values: Definition & { version: number }): Promise<Row[]>;
  remove(db: Db, id: string): Promise<unknown>;
}

export interface VersionedUpsertResult<Row> {
  row: Row;
  /** false when the input matched the stored row: nothing was written. */
  changed: boolean;
  changes: Diff;
}

const lockResource = (db: Db, resourceType: string, id: string) => db.execute(sql`select pg_advisory_xact_lock(hashtext(${`${resourceType}:${id}`}))`);

/**
 * Creates or replaces a row the way `upsertPipelineVersioned` does a pipeline: one transaction,
 * `version` bumped, a config_versions snapshot, a `<type>.create|update` audit row diffing old
 * against new; unchanged input is a no-op; `expectedVersion` (0 = must not exist) throws
 * VersionConflictError on a mismatch.
 */
async function upsertVersioned<Row extends Definition & { id: string; version: number }, Definition extends Record<string, unknown>>(
  db: Db,
  table: VersionedTable<Row, Definition>,
  id: string,
  input: Definition,
  actor: string,
  ip: string | null | undefined,
  opts: { comment?: string; expectedVersion?: number },
): Promise<VersionedUpsertResult<Row>> {
  const type = table.resourceType;
  return db.transaction(async (tx) => {
    await lockResource(tx, type, id);
    const old = await table.get(tx, id);
    if (opts.expectedVersion !== undefined && opts.expectedVersion !== (old?.version ?? 0)) {
      throw new VersionConflictError(id, opts.expectedVersion, old?.version ?? 0, type);
    }
    const next = table.definition(input);
    if (old && Object.keys(diffObjects(table.definition(old), next)).length === 0) return { row: old, changed: false, changes: {} };
    const version = (old?.version ?? 0) + 1;
    const [row] = old ? await table.update(tx, id, { ...next, version }) : await table.insert(tx, id, { ...next, version });
    if (!row) throw new Error(`${type} ${id}: write returned no row`);
    await tx.insert(configVersions).values({ resourceType: type, resourceId: row.id, version, config: next, createdBy: actor, comment: opts.comment ?? null });
    const changes = diffObjects(old ? { ...table.definition(old), version: old.version } : null, { ...next, version });
    await appendAudit(tx, { actor, action: `${type}.${old ? "update" : "create"}`, resourceType: type, resourceId: row.id, changes, ip: ip ?? null });
    return { row, changed: true, changes };
  });
}

/**
 * Deletes a row (its versions stay as history) with a `<type>.delete` audit row, in one
 * transaction. undefined: no such row. `expectedVersion` is checked under the same lock.
 */
async function deleteVersioned<Row extends Definition & { id: string; version: number }, Definition extends Record<string, unknown>>(
  db: Db,
  table: VersionedTable<Row, Definition>,
  id: string,
  actor: string,
  ip: string | null | undefined,
  opts: { expectedVersion?: number },
): Promise<Row | undefined> {
  const type = table.resourceType;
  return db.transaction(async (tx) => {
    await lockResource(tx, type, id);
    const old = await table.get(tx, id);
    if (!old) return undefined;
    if (opts.expectedVersion !== undefined && opts.expectedVersion !== old.version) throw new VersionConflictError(id, opts.expectedVersion, old.version, type);
    await table.remove(tx, id);
    const changes = diffObjects({ ...table.definition(old), version: old.version }, null);
    await appendAudit(tx, { actor, action: `${type}.delete`, resourceType: type, resourceId: id, changes, ip: ip ?? null });
    return old;
  });
}

export async function listAlarmRules(db: Db, opts: { gatewayId?: string } = {}): Promise<AlarmRuleRow[]> {
  const where = opts.gatewayId === undefined ? undefined : eq(alarmRules.gatewayId, opts.gatewayId);
  return db.select().from(alarmRules).where(where).orderBy(alarmRules.id);
}

export async function getAlarmRule(db: Db, id: string): Promise<AlarmRuleRow | undefined> {
  const [row] = await db.select().from(alarmRules).where(eq(alarmRules.id, id));
  return row;
}

export interface AlarmRuleInput {
  id: string;
  gatewayId: string;
  /** The rule as validated by `parseAlarmRule` (src/streams/alarms/rules.ts), `id` included. */
  rule: JsonObject;
}

const ALARM_RULES: VersionedTable<AlarmRuleRow, Pick<AlarmRuleRow, "gatewayId" | "rule">> = {
  resourceType: "alarm_rule",
  get: getAlarmRule,
  definition: (r) => ({ gatewayId: r.gatewayId, rule: r.rule }),
  insert: (db, id, values) => db.insert(alarmRules).values({ id, ...values }).returning(),
  update: (db, id, values) => db.update(alarmRules).set(values).where(eq(alarmRules.id, id)).returning(),
  remove: (db, id) => db.delete(alarmRules).where(eq(alarmRules.id, id)),
};

/** Creates or replaces an alarm rule, versioned and audited (`alarm_rule.create|update`); see upsertVersioned. */
export async function upsertAlarmRuleVersioned(
  db: Db,
  input: AlarmRuleInput,
  actor: string,
  ip?: string | null,
  opts: { comment?: string; expectedVersion?: number } = {},
): Promise<VersionedUpsertResult<AlarmRuleRow>> {
  return upsertVersioned(db, ALARM_RULES, input.id, input, actor, ip, opts);
}

/** Deletes an alarm rule (`alarm_rule.delete`; its versions stay as history); undefined: no such rule. */
export async function deleteAlarmRuleVersioned(db: Db, id: string, actor: string, ip?: string | null, opts: { expectedVersion?: number } = {}): Promise<AlarmRuleRow | undefined> {
  return deleteVersioned(db, ALARM_RULES, id, actor, ip, opts);
}

/** With `gatewayId`: that gateway's sinks and the ones bound to no single gateway. */
export async function listSinks(db: Db, opts: { gatewayId?: string } = {}): Promise<Sink[]> {
  const where = opts.gatewayId === undefined ? undefined : or(eq(sinks.gatewayId, opts.gatewayId), isNull(sinks.gatewayId));
  return db.select().from(sinks).where(where).orderBy(sinks.id);
}

export async function getSink(db: Db, id: string): Promise<Sink | undefined> {
  const [row] = await db.select().from(sinks).where(eq(sinks.id, id));
  return row;
}

export interface SinkInput {
  id: string;
  /** null: not bound to a single gateway. */
  gatewayId: string | null;
  type: string;
  name: string;
  enabled: boolean;
  /** The sink config as given (`sink_id` included), validated by `parseApplianceSink`; no defaults, secrets unresolved. */
  config: JsonObject;
}

const SINKS: VersionedTable<Sink, Pick<Sink, "gatewayId" | "type" | "name" | "enabled" | "config">> = {
  resourceType: "sink",
  get: getSink,
  definition: (s) => ({ gatewayId: s.gatewayId, type: s.type, name: s.name, enabled: s.enabled, config: s.config }),
  insert: (db, id, values) => db.insert(sinks).values({ id, ...values }).returning(),
  update: (db, id, values) => db.update(sinks).set(values).where(eq(sinks.id, id)).returning(),
  remove: (db, id) => db.delete(sinks).where(eq(sinks.id, id)),
};

/** Creates or replaces a sink, versioned and audited (`sink.create|update`); see upsertVersioned. */
export async function upsertSinkVersioned(
  db: Db,
  input: SinkInput,
  actor: string,
  ip?: string | null,
  opts: { comment?: string; expectedVersion?: number } = {},
): Promise<VersionedUpsertResult<Sink>> {
  return upsertVersioned(db, SINKS, input.id, input, actor, ip, opts);
}

/** Deletes a sink (`sink.delete`; its versions stay as history); undefined: no such sink. */
export async function deleteSinkVersioned(db: Db, id: string, actor: string, ip?: string | null, opts: { expectedVersion?: number } = {}): Promise<Sink | undefined> {
  return deleteVersioned(db, SINKS, id, actor, ip, opts);
}

/**
 * Stores `rules` for a gateway that has never had alarm rules in this DB (no version history), so a
 * rules file seeds a fresh DB once, and rules deleted through the API do not come back on the next
 * start. Returns how many were stored (0 when the gateway already had history).
 */
export async function importAlarmRulesOnce(db: Db, gatewayId: string, rules: (JsonObject & { id: string })[], actor: string): Promise<number> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`alarm_rules_import:${gatewayId}`}))`);
    const [history] = await tx
      .select({ id: configVersions.id })
      .from(configVersions)
      .where(and(eq(configVersions.resourceType, "alarm_rule"), sql`${configVersions.config}->>'gatewayId' = ${gatewayId}`))
      .limit(1);
    if (history) return 0;
    for (const rule of rules) {
      await upsertAlarmRuleVersioned(tx, { id: rule.id, gatewayId, rule }, actor, null, { comment: "imported from streams.alarm_rules_file" });
    }
    return rules.length;
  });
}
