/**
 * Control DB suite, run against both drivers:
 *  - PGlite in a temp dir, always;
 *  - PostgreSQL when TEST_DATABASE_URL is set (e.g. postgres://gateway:gateway@127.0.0.1:5432/gateway_test).
 *    Each run creates and drops its own `gw_test_*` databases, so the role needs CREATEDB.
 *    Unset: skipped (reason in the suite name); unset with CI set: fails.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq, sql } from "drizzle-orm";
import { readMigrationFiles } from "drizzle-orm/migrator";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import type { PgliteDatabase } from "drizzle-orm/pglite";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import type { PostgresJsDatabase } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { type ControlDb, type Db, openDatabase } from "./client.ts";
import { embeddedMigrations, migrateDatabase } from "./migrate.ts";
import {
  appendAudit,
  deleteAlarmRuleVersioned,
  ensureGateway,
  getAlarmRule,
  getPipeline,
  importAlarmRulesOnce,
  listAlarmRules,
  listAudit,
  listPipelines,
  type PipelineInput,
  upsertAlarmRuleVersioned,
  upsertPipelineVersioned,
  VersionConflictError,
} from "./repo.ts";
import { alarmRules, auditLog, configVersions, gateways, pipelines, schemas, sinks, users } from "./schema.ts";

const MIGRATIONS_FOLDER = join(import.meta.dir, "../../migrations");
const PG_URL = process.env.TEST_DATABASE_URL;

/** Opens fresh, empty databases for one driver and cleans all of them up afterwards. */
interface Driver {
  fresh(): Promise<ControlDb>;
  cleanup(): Promise<void>;
}

function pgliteDriver(): Driver {
  const opened: ControlDb[] = [];
  const dirs: string[] = [];
  return {
    async fresh() {
      const dataDir = mkdtempSync(join(tmpdir(), "gw-db-test-"));
      dirs.push(dataDir);
      const cdb = await openDatabase({ dataDir });
      opened.push(cdb);
      return cdb;
    },
    async cleanup() {
      await Promise.all(opened.map((c) => c.close()));
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
}

function postgresDriver(adminUrl: string): Driver {
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  const opened: ControlDb[] = [];
  const names: string[] = [];
  return {
    async fresh() {
      const name = `gw_test_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
      try {
        await admin.unsafe(`create database "${name}"`);
      } catch (err) {
        throw new Error(`cannot create test database (the TEST_DATABASE_URL role needs CREATEDB): ${(err as Error).message}`);
      }
      names.push(name);
      const url = new URL(adminUrl);
      url.pathname = `/${name}`;
      const cdb = await openDatabase({ databaseUrl: url.toString(), dataDir: "/nonexistent" });
      opened.push(cdb);
      return cdb;
    },
    async cleanup() {
      await Promise.all(opened.map((c) => c.close()));
      for (const name of names) await admin.unsafe(`drop database if exists "${name}" with (force)`);
      await admin.end();
    },
  };
}

/** drizzle's own folder-based migrator for the driver behind `cdb`. */
async function migrateFromFolder(cdb: ControlDb): Promise<void> {
  const config = { migrationsFolder: MIGRATIONS_FOLDER };
  if (cdb.kind === "pglite") await migratePglite(cdb.db as PgliteDatabase<never>, config);
  else await migratePostgres(cdb.db as PostgresJsDatabase<never>, config);
}

async function migrationRows(db: Db) {
  const rows = await db.execute(sql`select hash, created_at::text as created_at from drizzle.__drizzle_migrations order by id`);
  return (Array.isArray(rows) ? rows : (rows as { rows: unknown[] }).rows) as { hash: string; created_at: string }[];
}

/** SQLSTATE of a failed query (drizzle wraps driver errors; the driver error is the cause). */
async function sqlState(query: { execute(): Promise<unknown> }): Promise<string | undefined> {
  const err = await query.execute().then(() => undefined, (e: unknown) => e);
  return (err as { cause?: { code?: string } } | undefined)?.cause?.code;
}

const input = (over: Partial<PipelineInput> = {}): PipelineInput => ({
  id: "pl-press-1",
  gatewayId: "gateway-rig-alpha",
  name: "Press line 1",
  adapterType: "modbus-tcp",
  config: { plc: { host: "10.0.0.5", port: 502 }, registers: [{ addr: 40001, tag: "temp" }], note: "ünïcødé ✓" },
  ...over,
});

function controlDbSuite(makeDriver: () => Driver) {
  let driver: Driver;
  let cdb: ControlDb;
  let db: Db;

  test("migrates an empty database; a second run applies nothing", async () => {
    driver = makeDriver();
    cdb = await driver.fresh();
    db = cdb.db;
    await cdb.ping();
    expect(await migrateDatabase(cdb)).toEqual({ applied: embeddedMigrations().length });
    expect(await migrateDatabase(cdb)).toEqual({ applied: 0 });
    for (const table of [gateways, pipelines, sinks, auditLog, schemas, configVersions, users, alarmRules]) {
      expect(await db.$count(table)).toBe(0);
    }
  });

  test("embedded migrations leave the same bookkeeping as drizzle's folder migrator", async () => {
    const viaFolder = await driver.fresh();
    await migrateFromFolder(viaFolder);
    expect(await migrationRows(viaFolder.db)).toEqual(await migrationRows(db));
    expect(await migrateDatabase(viaFolder)).toEqual({ applied: 0 });
    expect((await migrationRows(db)).map((r) => r.hash)).toEqual(embeddedMigrations().map((m) => m.hash));
  });

  test("CRUD round trip", async () => {
    const gw = await ensureGateway(db, "gateway-rig-alpha", "edge");
    expect(gw).toMatchObject({ id: "gateway-rig-alpha", name: "gateway-rig-alpha", mode: "edge", status: "unknown" });
    expect(gw.createdAt).toBeInstanceOf(Date);
    expect((await ensureGateway(db, "gateway-rig-alpha", "edge")).updatedAt).toEqual(gw.updatedAt);
    expect((await ensureGateway(db, "gateway-rig-alpha", "central")).mode).toBe("central");
    await ensureGateway(db, "gateway-rig-beta", "edge");

    await db.insert(pipelines).values([
      { ...input(), version: 1 },
      { ...input({ id: "pl-beta", gatewayId: "gateway-rig-beta", runtime: "docker", image: "ghcr.io/x/opcua:1" }) },
    ]);
    const got = await getPipeline(db, "pl-press-1");
    expect(got).toMatchObject({ ...input(), enabled: true, runtime: "process", image: null, version: 1 });
    expect(got?.config).toEqual(input().config); // jsonb round trip, unicode intact
    expect((await listPipelines(db)).map((p) => p.id)).toEqual(["pl-beta", "pl-press-1"]);
    expect((await listPipelines(db, { gatewayId: "gateway-rig-beta" })).map((p) => p.id)).toEqual(["pl-beta"]);

    const [updated] = await db.update(pipelines).set({ enabled: false }).where(eq(pipelines.id, "pl-beta")).returning();
    expect(updated?.enabled).toBe(false);
    expect(updated!.updatedAt.getTime()).toBeGreaterThanOrEqual(updated!.createdAt.getTime());

    expect(await sqlState(db.insert(pipelines).values(input({ id: "pl-orphan", gatewayId: "nope" })))).toBe("23503"); // FK
    expect(await sqlState(db.insert(pipelines).values({ ...input({ id: "pl-bad" }), runtime: "vm" as "docker" }))).toBe("23514"); // check

    await db.delete(pipelines).where(eq(pipelines.id, "pl-beta"));
    expect(await getPipeline(db, "pl-beta")).toBeUndefined();

    const [user] = await db.insert(users).values({ username: "ops", passwordHash: "x", role: "Operator" }).returning();
    expect(user).toMatchObject({ username: "ops", kind: "human", disabled: false, tokenHash: null });
    expect(user?.id).toMatch(/^[0-9a-f-]{36}$/);
    await db.insert(schemas).values({ subject: "press.telemetry", version: 1, definition: { type: "record" } });
    expect(await sqlState(db.insert(schemas).values({ subject: "press.telemetry", version: 1, definition: {} }))).toBe("23505"); // unique
  });

  test("versioned upsert writes pipeline, config_versions and audit diff in one transaction", async () => {
    await db.delete(pipelines).where(eq(pipelines.id, "pl-press-1"));
    const created = await upsertPipelineVersioned(db, input(), "alice", "10.1.1.1", { comment: "initial" });
    expect(created).toMatchObject({ changed: true, pipeline: { id: "pl-press-1", version: 1 } });
    expect(created.changes.version).toEqual({ old: undefined, new: 1 });

    const next = input({ config: { ...input().config, plc: { host: "10.0.0.6", port: 502 } } });
    const updated = await upsertPipelineVersioned(db, next, "bob", null, { expectedVersion: 1 });
    expect(updated.pipeline.version).toBe(2);
    expect(updated.changes).toEqual({ "config.plc.host": { old: "10.0.0.5", new: "10.0.0.6" }, version: { old: 1, new: 2 } });

    const noop = await upsertPipelineVersioned(db, next, "bob");
    expect(noop).toMatchObject({ changed: false, changes: {}, pipeline: { version: 2 } });

    const versions = await db
      .select()
      .from(configVersions)
      .where(eq(configVersions.resourceId, "pl-press-1"))
      .orderBy(configVersions.version);
    expect(versions.map((v) => [v.resourceType, v.version, v.createdBy, v.comment])).toEqual([
      ["pipeline", 1, "alice", "initial"],
      ["pipeline", 2, "bob", null],
    ]);
    expect(versions[1]?.config).toMatchObject({ adapterType: "modbus-tcp", config: next.config, enabled: true });

    const audit = await listAudit(db, { resourceType: "pipeline", resourceId: "pl-press-1" });
    expect(audit.map((a) => [a.action, a.actor, a.ip])).toEqual([
      ["pipeline.update", "bob", null],
      ["pipeline.create", "alice", "10.1.1.1"],
    ]);
    expect(audit[0]?.changes).toEqual({ "config.plc.host": { old: "10.0.0.5", new: "10.0.0.6" }, version: { old: 1, new: 2 } });
    expect(audit[1]?.changes?.["config"]).toEqual({ new: input().config }); // old: undefined is dropped by JSON

    // optimistic concurrency
    await expect(upsertPipelineVersioned(db, input({ name: "x" }), "eve", null, { expectedVersion: 1 })).rejects.toBeInstanceOf(
      VersionConflictError,
    );
    // a failure after the pipeline write rolls everything back
    await db.insert(configVersions).values({ resourceType: "pipeline", resourceId: "pl-press-1", version: 3, config: {}, createdBy: "x" });
    await expect(upsertPipelineVersioned(db, input({ name: "renamed" }), "carol")).rejects.toThrow();
    expect(await getPipeline(db, "pl-press-1")).toMatchObject({ version: 2, name: "Press line 1" });
    expect(await listAudit(db, { resourceId: "pl-press-1" })).toHaveLength(2);
  });

  test("concurrent upserts of one pipeline serialize into distinct versions", async () => {
    const results = await Promise.all(
      [1, 2, 3, 4].map((n) => upsertPipelineVersioned(db, input({ id: "pl-race", config: { n } }), `user${n}`)),
    );
    expect(results.map((r) => r.pipeline.version).sort()).toEqual([1, 2, 3, 4]);
    const audit = await listAudit(db, { resourceId: "pl-race" });
    expect(audit.map((a) => a.action)).toEqual(["pipeline.update", "pipeline.update", "pipeline.update", "pipeline.create"]);
    expect(await db.$count(configVersions, eq(configVersions.resourceId, "pl-race"))).toBe(4);
  });

  const overpressure = (over: Record<string, unknown> = {}) => ({ id: "well_pressure", asset_id: "well_*", parameter: "pressure", enabled: true, high: { value: 200, type: "overpressure" }, ...over });

  test("alarm rules: versioned upsert, no-op, If-Match conflict, audited delete; config_versions takes alarm_rule and still refuses unknown types", async () => {
    const created = await upsertAlarmRuleVersioned(db, { id: "well_pressure", gatewayId: "gateway-rig-alpha", rule: overpressure() }, "alice", "10.1.1.1");
    expect(created).toMatchObject({ changed: true, row: { id: "well_pressure", gatewayId: "gateway-rig-alpha", version: 1, rule: overpressure() } });
    const raised = overpressure({ high: { value: 210, type: "overpressure" } });
    const updated = await upsertAlarmRuleVersioned(db, { id: "well_pressure", gatewayId: "gateway-rig-alpha", rule: raised }, "bob", null, { expectedVersion: 1 });
    expect(updated.changes).toEqual({ "rule.high.value": { old: 200, new: 210 }, version: { old: 1, new: 2 } });
    expect(await upsertAlarmRuleVersioned(db, { id: "well_pressure", gatewayId: "gateway-rig-alpha", rule: raised }, "bob")).toMatchObject({ changed: false, row: { version: 2 } });
    await expect(upsertAlarmRuleVersioned(db, { id: "well_pressure", gatewayId: "gateway-rig-alpha", rule: overpressure() }, "eve", null, { expectedVersion: 1 })).rejects.toThrow(
      "alarm rule well_pressure is at version 2, expected 1",
    );
    await expect(deleteAlarmRuleVersioned(db, "well_pressure", "eve", null, { expectedVersion: 1 })).rejects.toBeInstanceOf(VersionConflictError);
    expect((await listAlarmRules(db, { gatewayId: "gateway-rig-alpha" })).map((r) => r.id)).toEqual(["well_pressure"]);
    expect(await listAlarmRules(db, { gatewayId: "gateway-rig-beta" })).toEqual([]);
    expect(await sqlState(db.insert(alarmRules).values({ id: "orphan", gatewayId: "nope", rule: {} }))).toBe("23503"); // FK

    expect(await deleteAlarmRuleVersioned(db, "well_pressure", "carol", "10.2.2.2", { expectedVersion: 2 })).toMatchObject({ version: 2 });
    expect(await getAlarmRule(db, "well_pressure")).toBeUndefined();
    expect(await deleteAlarmRuleVersioned(db, "well_pressure", "carol")).toBeUndefined();

    const versions = await db.select().from(configVersions).where(eq(configVersions.resourceType, "alarm_rule")).orderBy(configVersions.version);
    expect(versions.map((v) => [v.resourceId, v.version, v.createdBy])).toEqual([
      ["well_pressure", 1, "alice"],
      ["well_pressure", 2, "bob"],
    ]);
    expect(versions[1]?.config).toEqual({ gatewayId: "gateway-rig-alpha", rule: raised });
    const audit = await listAudit(db, { resourceType: "alarm_rule", resourceId: "well_pressure" });
    expect(audit.map((a) => [a.action, a.actor, a.ip])).toEqual([
      ["alarm_rule.delete", "carol", "10.2.2.2"],
      ["alarm_rule.update", "bob", null],
      ["alarm_rule.create", "alice", "10.1.1.1"],
    ]);
    expect(audit[0]?.changes).toMatchObject({ rule: { old: raised }, version: { old: 2 } });
    expect(await sqlState(db.insert(configVersions).values({ resourceType: "dashboard" as "pipeline", resourceId: "x", version: 1, config: {}, createdBy: "x" }))).toBe("23514"); // check
  });

  test("alarm rules from a file seed a gateway once: not over rules it has, not again after they were deleted", async () => {
    await ensureGateway(db, "gateway-seed", "edge");
    const fileRules = [overpressure({ id: "a" }), overpressure({ id: "b" })];
    expect(await importAlarmRulesOnce(db, "gateway-seed", fileRules, "config-file")).toBe(2);
    expect((await listAlarmRules(db, { gatewayId: "gateway-seed" })).map((r) => [r.id, r.version])).toEqual([
      ["a", 1],
      ["b", 1],
    ]);
    expect(await importAlarmRulesOnce(db, "gateway-seed", [overpressure({ id: "c" })], "config-file")).toBe(0);
    await deleteAlarmRuleVersioned(db, "a", "alice");
    await deleteAlarmRuleVersioned(db, "b", "alice");
    expect(await importAlarmRulesOnce(db, "gateway-seed", fileRules, "config-file")).toBe(0);
    expect(await listAlarmRules(db, { gatewayId: "gateway-seed" })).toEqual([]);
    // Another gateway's history does not count.
    await ensureGateway(db, "gateway-seed-2", "edge");
    expect(await importAlarmRulesOnce(db, "gateway-seed-2", [overpressure({ id: "z" })], "config-file")).toBe(1);
    expect((await listAudit(db, { resourceId: "z" })).map((a) => [a.action, a.actor])).toEqual([["alarm_rule.create", "config-file"]]);
  });

  test("audit log: append, filter, limit, cursor", async () => {
    const a = await appendAudit(db, { actor: "sys", action: "gateway.start", resourceType: "gateway", resourceId: "gateway-rig-alpha" });
    const b = await appendAudit(db, {
      actor: "sys",
      action: "gateway.stop",
      resourceType: "gateway",
      resourceId: "gateway-rig-alpha",
      changes: { status: { old: "up", new: "down" } },
      ip: "::1",
    });
    expect(b.id).toBeGreaterThan(a.id);
    expect(a.at).toBeInstanceOf(Date);
    expect((await listAudit(db, { resourceType: "gateway" })).map((e) => e.action)).toEqual(["gateway.stop", "gateway.start"]);
    expect((await listAudit(db, { resourceType: "gateway", limit: 1 })).map((e) => e.id)).toEqual([b.id]);
    expect((await listAudit(db, { resourceType: "gateway", before: b.id })).map((e) => e.id)).toEqual([a.id]);
    expect(await listAudit(db, { before: new Date(0) })).toEqual([]);
    expect((await listAudit(db)).length).toBeGreaterThan(2);
  });

  afterAll(async () => {
    await driver?.cleanup();
  });
}

describe("control DB on PGlite", () => controlDbSuite(pgliteDriver));

describe.skipIf(!PG_URL)(
  `control DB on PostgreSQL${PG_URL ? "" : " (skipped: TEST_DATABASE_URL is not set)"}`,
  () => controlDbSuite(() => postgresDriver(PG_URL!)),
);

if (!PG_URL && process.env.CI) {
  test("PostgreSQL variant must run in CI", () => {
    throw new Error("CI is set but TEST_DATABASE_URL is not: the control DB suite must also run against PostgreSQL");
  });
}

describe("ping", () => {
  test("fails fast with a clear message when PostgreSQL is unreachable, without unhandled errors", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    process.on("uncaughtException", onUnhandled);
    const cdb = await openDatabase({ databaseUrl: "postgres://gateway:gateway@127.0.0.1:1/gateway_test", dataDir: "/nonexistent" });
    try {
      for (let i = 0; i < 2; i++) {
        const started = performance.now();
        await expect(cdb.ping()).rejects.toThrow(/^control DB unreachable at 127\.0\.0\.1:1: .*ECONNREFUSED/);
        expect(performance.now() - started).toBeLessThan(6000);
      }
      await Bun.sleep(200);
    } finally {
      await cdb.close();
      process.off("unhandledRejection", onUnhandled);
      process.off("uncaughtException", onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });
});
