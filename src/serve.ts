import { mkdirSync } from "node:fs";
import type { ApplianceConfig } from "./config/schema.ts";
import { buildApp } from "./api/app.ts";
import { pingProbe, type HealthProbe } from "./api/health/service.ts";
import { openDatabase, type ControlDb } from "./db/client.ts";
import { migrateDatabase } from "./db/migrate.ts";
import { KafkaAdmin } from "./kafka/admin.ts";
import type { Logger } from "./log/logger.ts";
import { createMetricsRegistry } from "./metrics/registry.ts";

const DB_RETRY_MS = 5000;

/**
 * The control DB may be down when we start (a PostgreSQL restart, a hub DB on another host).
 * The appliance keeps serving health (503) and keeps trying, instead of exiting: the data plane
 * must not depend on the control plane being up.
 */
class ControlDbHandle {
  #db: ControlDb | undefined;
  #lastError = "not connected yet";

  constructor(
    private readonly config: ApplianceConfig,
    private readonly log: Logger,
  ) {}

  get current(): ControlDb | undefined {
    return this.#db;
  }

  async connect(): Promise<void> {
    while (!this.#db) {
      try {
        const db = await openDatabase({ databaseUrl: this.config.database.url, dataDir: this.config.data_dir });
        await db.ping();
        const { applied } = await migrateDatabase(db);
        this.#db = db;
        this.log.info({ kind: db.kind, migrationsApplied: applied }, "control DB ready");
      } catch (error) {
        this.#lastError = (error as Error).message;
        this.log.error({ err: this.#lastError, retryInMs: DB_RETRY_MS }, "control DB unavailable; retrying");
        await Bun.sleep(DB_RETRY_MS);
      }
    }
  }

  async ping(): Promise<void> {
    if (!this.#db) throw new Error(this.#lastError);
    try {
      await this.#db.ping();
    } catch (error) {
      this.#lastError = (error as Error).message;
      this.log.error({ err: this.#lastError }, "control DB health check failed");
      throw error;
    }
  }
}

export interface RunningAppliance {
  url: string;
  stop(): Promise<void>;
}

export async function serve(config: ApplianceConfig, log: Logger): Promise<RunningAppliance> {
  mkdirSync(config.data_dir, { recursive: true });
  const metrics = createMetricsRegistry({ gateway_id: config.gateway_id });
  const controlDb = new ControlDbHandle(config, log);
  const kafka = new KafkaAdmin(config.kafka);
  const probes: HealthProbe[] = [
    pingProbe("kafka", true, () => kafka.ping()),
    pingProbe("control_db", true, () => controlDb.ping()),
  ];
  const dbReady = controlDb.connect();
  const app = buildApp({ config, probes, metrics }).listen({ hostname: config.http.host, port: config.http.port });
  const url = `http://${config.http.host}:${app.server!.port}`;
  log.info({ url, mode: config.mode, gatewayId: config.gateway_id }, "gateway serving");
  return {
    url,
    async stop() {
      await app.stop();
      await kafka.close().catch(() => undefined);
      await Promise.race([dbReady, Bun.sleep(100)]);
      await controlDb.current?.close();
    },
  };
}
