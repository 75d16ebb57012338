/**
 * Control DB schema (drizzle pg-core). Source of truth for `migrations/`:
 * after editing, run
 *   bunx drizzle-kit generate --name <change> && bun scripts/gen-migrations-index.ts
 * (never hand-edit files in migrations/).
 */
import { sql } from "drizzle-orm";
import {
  type AnyPgColumn,
  bigserial,
  boolean,
  check,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  serial,
  text,
  timestamp,
  unique,
  uuid,
} from "drizzle-orm/pg-core";
import type { Diff } from "./diff.ts";

export type JsonObject = Record<string, unknown>;
export type PipelineRuntime = "process" | "docker";
export const VERSIONED_RESOURCES = ["pipeline", "gateway", "sink", "alarm_rule"] as const;
export type VersionedResource = (typeof VERSIONED_RESOURCES)[number];
export type UserRole = "Operator" | "Engineer" | "Admin" | "Copilot";
export type UserKind = "human" | "service";

const tstz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });
const createdAt = () => tstz("created_at").notNull().defaultNow();
const updatedAt = () =>
  tstz("updated_at")
    .notNull()
    .defaultNow()
    .$onUpdate(() => new Date());
const inList = (column: AnyPgColumn, values: readonly string[]) =>
  sql`${column} in (${sql.raw(values.map((v) => `'${v}'`).join(", "))})`;

export const gateways = pgTable("gateways", {
  id: text("id").primaryKey(), // e.g. "gateway-rig-alpha"
  name: text("name").notNull(),
  mode: text("mode").notNull(),
  status: text("status").notNull().default("unknown"),
  lastSeenAt: tstz("last_seen_at"),
  /** Config version the gateway reports as applied. */
  appliedConfigVersion: integer("applied_config_version"),
  /** Last status document reported by the gateway itself. */
  reportedStatus: jsonb("reported_status").$type<JsonObject>(),
  certificate: text("certificate"),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
});

export const pipelines = pgTable(
  "pipelines",
  {
    id: text("id").primaryKey(), // = pipeline_id
    gatewayId: text("gateway_id")
      .notNull()
      .references(() => gateways.id),
    name: text("name").notNull(),
    enabled: boolean("enabled").notNull().default(true),
    adapterType: text("adapter_type").notNull(),
    runtime: text("runtime").$type<PipelineRuntime>().notNull().default("process"),
    image: text("image"),
    /** The adapter CONFIG_JSON body. */
    config: jsonb("config").$type<JsonObject>().notNull().default({}),
    version: integer("version").notNull().default(1),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("pipelines_gateway_id_idx").on(t.gatewayId),
    check("pipelines_runtime_check", inList(t.runtime, ["process", "docker"])),
  ],
);

export const adapters = pgTable("adapters", {
  name: text("name").primaryKey(),
  version: text("version").notNull(),
  protocolType: text("protocol_type").notNull(),
  image: text("image"),
  description: text("description").notNull().default(""),
  configSchema: jsonb("config_schema").$type<JsonObject>().notNull().default({}),
  stability: text("stability").notNull().default("experimental"),
});

export const sinks = pgTable(
  "sinks",
  {
    id: text("id").primaryKey(),
    /** null = not bound to a single gateway. */
    gatewayId: text("gateway_id").references(() => gateways.id),
    type: text("type").notNull(),
    name: text("name").notNull(),
    enabled: boolean("enabled").notNull().default(true),
    config: jsonb("config").$type<JsonObject>().notNull().default({}),
    version: integer("version").notNull().default(1),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("sinks_gateway_id_idx").on(t.gatewayId)],
);

/** Append-only: repo.ts has no update/delete path for this table. */
export const auditLog = pgTable(
  "audit_log",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    at: tstz("at").notNull().defaultNow(),
    actor: text("actor").notNull(),
    action: text("action").notNull(), // e.g. "pipeline.update"
    resourceType: text("resource_type").notNull(),
    resourceId: text("resource_id").notNull(),
    changes: jsonb("changes").$type<Diff>(),
    ip: text("ip"),
  },
  (t) => [
    index("audit_log_at_idx").on(t.at),
    index("audit_log_resource_idx").on(t.resourceType, t.resourceId, t.id),
  ],
);

export const schemas = pgTable(
  "schemas",
  {
    id: serial("id").primaryKey(),
    subject: text("subject").notNull(),
    version: integer("version").notNull(),
    definition: jsonb("definition").$type<JsonObject>().notNull(),
    createdAt: createdAt(),
  },
  (t) => [unique("schemas_subject_version_unique").on(t.subject, t.version)],
);

export const configVersions = pgTable(
  "config_versions",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    resourceType: text("resource_type").$type<VersionedResource>().notNull(),
    resourceId: text("resource_id").notNull(),
    version: integer("version").notNull(),
    config: jsonb("config").$type<JsonObject>().notNull(),
    createdBy: text("created_by").notNull(),
    createdAt: createdAt(),
    comment: text("comment"),
  },
  (t) => [
    unique("config_versions_resource_version_unique").on(t.resourceType, t.resourceId, t.version),
    check("config_versions_resource_type_check", inList(t.resourceType, VERSIONED_RESOURCES)),
  ],
);

/**
 * Alarm rules of a gateway (src/streams/alarms/rules.ts, `AlarmRuleSchema`), versioned and audited like
 * pipelines. The control plane publishes them to the compacted `_gateway.alarm_rules` topic, which is
 * what evaluators read: they keep running while this DB is away.
 */
export const alarmRules = pgTable(
  "alarm_rules",
  {
    id: text("id").primaryKey(), // = the rule's id
    gatewayId: text("gateway_id")
      .notNull()
      .references(() => gateways.id),
    /** The rule as the API and the rules file write it, `id` included. */
    rule: jsonb("rule").$type<JsonObject>().notNull(),
    version: integer("version").notNull().default(1),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("alarm_rules_gateway_id_idx").on(t.gatewayId)],
);

export const users = pgTable(
  "users",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    username: text("username").notNull().unique(),
    passwordHash: text("password_hash").notNull(),
    role: text("role").$type<UserRole>().notNull(),
    kind: text("kind").$type<UserKind>().notNull().default("human"),
    tokenHash: text("token_hash").unique(),
    disabled: boolean("disabled").notNull().default(false),
    createdAt: createdAt(),
    lastLoginAt: tstz("last_login_at"),
  },
  (t) => [
    check("users_role_check", inList(t.role, ["Operator", "Engineer", "Admin", "Copilot"])),
    check("users_kind_check", inList(t.kind, ["human", "service"])),
  ],
);

/**
 * Read model of alarms.clean (src/api/alarms/projector.ts): one row per alarm, the latest transition
 * wins by `sequence`. The engine's state in Kafka is the truth; this table is for listing and for
 * checking an operator's action before it is sent.
 */
export const alarms = pgTable(
  "alarms",
  {
    alarmId: text("alarm_id").primaryKey(),
    assetId: text("asset_id").notNull(),
    parameter: text("parameter").notNull(),
    type: text("type").notNull(),
    severity: text("severity").notNull(),
    state: text("state").notNull(),
    raisedAt: tstz("raised_at").notNull(),
    ackedAt: tstz("acked_at"),
    ackedBy: text("acked_by"),
    clearedAt: tstz("cleared_at"),
    suppressedUntil: tstz("suppressed_until"),
    suppressedBy: text("suppressed_by"),
    message: text("message").notNull().default(""),
    value: jsonb("value").$type<number | string | boolean | null>(),
    threshold: doublePrecision("threshold"),
    unit: text("unit"),
    sequence: integer("sequence").notNull(),
    /** The latest alarms.clean record as received: what lifecycle checks run against. */
    lastEvent: jsonb("last_event").$type<JsonObject>().notNull(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("alarms_state_raised_idx").on(t.state, t.raisedAt),
    index("alarms_asset_idx").on(t.assetId, t.raisedAt),
    index("alarms_raised_idx").on(t.raisedAt),
  ],
);

export type Gateway = typeof gateways.$inferSelect;
export type Pipeline = typeof pipelines.$inferSelect;
export type NewPipeline = typeof pipelines.$inferInsert;
export type Adapter = typeof adapters.$inferSelect;
export type Sink = typeof sinks.$inferSelect;
export type AuditEntry = typeof auditLog.$inferSelect;
export type NewAuditEntry = typeof auditLog.$inferInsert;
export type SchemaRow = typeof schemas.$inferSelect;
export type ConfigVersion = typeof configVersions.$inferSelect;
export type User = typeof users.$inferSelect;
export type AlarmRuleRow = typeof alarmRules.$inferSelect;
export type AlarmRow = typeof alarms.$inferSelect;
export type NewAlarmRow = typeof alarms.$inferInsert;
