import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AlarmService, type AlarmServiceOptions } from "../../src/api/alarms/service.ts";
import { buildApp } from "../../src/api/app.ts";
import type { Role } from "../../src/auth/permissions.ts";
import { AuthService, loadOrCreateSecret } from "../../src/auth/service.ts";
import { loadApplianceConfig } from "../../src/config/load.ts";
import { openDatabase } from "../../src/db/client.ts";
import { migrateDatabase } from "../../src/db/migrate.ts";
import { ensureGateway } from "../../src/db/repo.ts";
import { createLogger } from "../../src/log/logger.ts";
import { createMetricsRegistry } from "../../src/metrics/registry.ts";
import { Supervisor } from "../../src/supervisor/supervisor.ts";

const PASSWORD = "correct horse battery";

/** A fresh database on the PostgreSQL server of `adminUrl` (the role needs CREATEDB). */
export async function freshPostgres(adminUrl: string): Promise<string> {
  const { default: postgres } = await import("postgres");
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  const name = `gw_alarms_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`;
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * The API over a fresh migrated control DB (PGlite, or PostgreSQL via databaseUrl) with the alarm
 * service wired as the test wants it (publisher, wait). Tests call `request`; no listener.
 */
export async function alarmsTestApp(options: { databaseUrl?: string; service?: Omit<AlarmServiceOptions, "db" | "log"> } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), "gw-alarms-"));
  const config = loadApplianceConfig({ env: {}, overrides: { data_dir: dataDir } });
  const controlDb = await openDatabase({ databaseUrl: options.databaseUrl, dataDir });
  await migrateDatabase(controlDb);
  await ensureGateway(controlDb.db, config.gateway_id, config.mode);
  const log = createLogger("test", "silent");
  const auth = new AuthService(() => controlDb.db, loadOrCreateSecret(dataDir));
  const db = () => controlDb.db;
  const alarms = new AlarmService({ db, log, ...options.service });
  const app = buildApp({ config, probes: [], metrics: createMetricsRegistry(), auth, db, supervisor: new Supervisor({ log }), log, alarms });
  const tokens = {} as Record<Role, string>;
  for (const role of ["Operator", "Engineer", "Admin", "Copilot"] as Role[]) {
    await auth.createUser(role.toLowerCase(), PASSWORD, role);
    tokens[role] = (await auth.login(role.toLowerCase(), PASSWORD)).access_token;
  }
  const request = async (method: string, path: string, init: { token?: string; body?: unknown } = {}) => {
    const response = await app.handle(
      new Request(`http://localhost${path}`, {
        method,
        headers: { ...(init.token ? { authorization: `Bearer ${init.token}` } : {}), ...(init.body === undefined ? {} : { "content-type": "application/json" }) },
        ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      }),
    );
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, any>) : null };
  };
  return { app, alarms, tokens, request, db: controlDb, close: () => controlDb.close() };
}
