import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AlarmRuleService } from "../../src/api/alarm-rules/service.ts";
import { buildApp } from "../../src/api/app.ts";
import { SinkService } from "../../src/api/sinks/service.ts";
import { uiRoutes } from "../../src/api/ui.ts";
import type { Role } from "../../src/auth/permissions.ts";
import { AuthService, loadOrCreateSecret } from "../../src/auth/service.ts";
import { loadApplianceConfig } from "../../src/config/load.ts";
import { openDatabase } from "../../src/db/client.ts";
import { migrateDatabase } from "../../src/db/migrate.ts";
import { ensureGateway } from "../../src/db/repo.ts";
import { createLogger } from "../../src/log/logger.ts";
import { createMetricsRegistry } from "../../src/metrics/registry.ts";
import { Supervisor } from "../../src/supervisor/supervisor.ts";

export const TEST_PASSWORD = "correct horse battery";

/** The API over a fresh migrated control DB (PGlite, or PostgreSQL via databaseUrl), without a listener: tests call app.handle(). */
export async function testApp(options: { databaseUrl?: string; bodyLimit?: number; alarmRulesChanged?: () => void; sinksChanged?: () => void } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), "gw-api-"));
  const config = loadApplianceConfig({ env: {}, overrides: { data_dir: dataDir, http: { body_limit_bytes: options.bodyLimit ?? 1024 * 1024 } } });
  const controlDb = await openDatabase({ databaseUrl: options.databaseUrl, dataDir });
  await migrateDatabase(controlDb);
  await ensureGateway(controlDb.db, config.gateway_id, config.mode);
  const log = createLogger("test", "silent");
  const auth = new AuthService(() => controlDb.db, loadOrCreateSecret(dataDir));
  const supervisor = new Supervisor({ log });
  const db = () => controlDb.db;
  // The web UI too, so the RBAC matrix covers its pages (no Kafka tail here: live views are empty).
  const sinks = new SinkService(db, config, log, options.sinksChanged);
  const extend = uiRoutes({ config, auth, db, supervisor, probes: [], log, sinkService: sinks });
  const alarmRules = new AlarmRuleService(db, config.gateway_id, options.alarmRulesChanged);
  const app = buildApp({ config, probes: [], metrics: createMetricsRegistry(), auth, db, supervisor, log, extend, alarmRules, sinks });
  const tokens = {} as Record<Role, string>;
  for (const role of ["Operator", "Engineer", "Admin", "Copilot"] as Role[]) {
    await auth.createUser(role.toLowerCase(), TEST_PASSWORD, role);
    tokens[role] = (await auth.login(role.toLowerCase(), TEST_PASSWORD)).access_token;
  }
  const request = (method: string, path: string, init: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) =>
    app.handle(
      new Request(`http://localhost${path}`, {
        method,
        headers: {
          ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
          ...(init.body === undefined ? {} : { "content-type": "application/json", "content-length": String(Buffer.byteLength(typeof init.body === "string" ? init.body : JSON.stringify(init.body))) }),
          ...init.headers,
        },
        ...(init.body === undefined ? {} : { body: typeof init.body === "string" ? init.body : JSON.stringify(init.body) }),
      }),
    );
  /** As an Engineer unless a token is given; the parts of the answer API tests look at. */
  const call = async (method: string, path: string, init: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) => {
    const response = await request(method, path, { token: tokens.Engineer, ...init });
    const text = await response.text();
    return { status: response.status, etag: response.headers.get("etag"), location: response.headers.get("location"), body: text ? JSON.parse(text) : null };
  };
  return { app, auth, tokens, request, call, config, db: controlDb, close: () => controlDb.close() };
}
