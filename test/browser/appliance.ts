/**
 * A real appliance in-process for the browser tests and `make screenshots`: serve() on a fresh
 * data folder (PGlite), port 0, with the offshore-well plant simulated on Modbus TCP.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startModbusTcpSimulator, type ModbusTcpSimulator } from "../../adapters/modbus-tcp/simulator.ts";
import { loadPlantFile } from "../../adapters/modbus/plant.ts";
import type { Role } from "../../src/auth/permissions.ts";
import { loadApplianceConfig } from "../../src/config/load.ts";
import type { DeclaredPipeline } from "../../src/config/schema.ts";
import { KafkaAdmin } from "../../src/kafka/admin.ts";
import { createLogger } from "../../src/log/logger.ts";
import { serve, type RunningAppliance } from "../../src/serve.ts";

export const CHROMIUM = "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
export const ADMIN_PASSWORD = "admin password 1";
export const USER_PASSWORD = "correct horse battery";

export interface TestAppliance {
  url: string;
  appliance: RunningAppliance;
  simulator: ModbusTcpSimulator;
  /** The simulated wellhead RTU's Modbus TCP port. */
  modbusPort: number;
  stop(): Promise<void>;
}

export interface TestApplianceOptions {
  kafka: string;
  users?: Partial<Record<Role, string>>;
  pipelines?: (modbusPort: number) => DeclaredPipeline[];
  /** Stream workers (off by default: most UI tests need only the adapter and the live tail). */
  streams?: Record<string, unknown>;
  /** Unique per run when workers run: transactional ids and the read model's group derive from it. */
  gatewayId?: string;
}

export async function startTestAppliance(options: TestApplianceOptions): Promise<TestAppliance> {
  const dataDir = mkdtempSync(join(tmpdir(), "gw-ui-"));
  const simulator = await startModbusTcpSimulator({ basePort: 0, plant: loadPlantFile(join(import.meta.dir, "../../plants/offshore-well.yaml")) });
  const modbusPort = simulator.ports[0]!;
  const config = loadApplianceConfig({
    env: {},
    overrides: {
      gateway_id: options.gatewayId ?? "rig-alpha",
      data_dir: dataDir,
      http: { port: 0 },
      kafka: { bootstrap_servers: [options.kafka] },
      supervisor: { health_interval_ms: 1000, reconcile_interval_ms: 1000 },
      log: { level: "warn" },
      pipelines: options.pipelines?.(modbusPort) ?? [],
      streams: { enabled: false, ...options.streams },
    },
  });
  const admin = new KafkaAdmin(config.kafka);
  try {
    await admin.applyCatalogue(createLogger("test", "silent"));
  } finally {
    await admin.close();
  }
  const previous = process.env.GATEWAY_ADMIN_PASSWORD;
  process.env.GATEWAY_ADMIN_PASSWORD = ADMIN_PASSWORD;
  const appliance = await serve(config, createLogger("gateway", process.env.LOG_LEVEL ?? "warn"));
  try {
    await appliance.ready;
  } finally {
    if (previous === undefined) delete process.env.GATEWAY_ADMIN_PASSWORD;
    else process.env.GATEWAY_ADMIN_PASSWORD = previous;
  }
  // Users other than admin, created the way an Admin would: through the API.
  if (options.users && Object.keys(options.users).length > 0) {
    const token = await apiToken(appliance.url, "admin", ADMIN_PASSWORD);
    for (const [role, username] of Object.entries(options.users)) {
      const created = await fetch(`${appliance.url}/api/v1/users`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ username, password: USER_PASSWORD, role }),
      });
      if (created.status !== 201) throw new Error(`creating ${username}: ${created.status} ${await created.text()}`);
    }
  }
  return {
    url: appliance.url,
    appliance,
    simulator,
    modbusPort,
    async stop() {
      await appliance.stop();
      await simulator.stop();
      if (existsSync(dataDir)) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function apiToken(url: string, username: string, password: string): Promise<string> {
  const login = await fetch(`${url}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  if (login.status !== 200) throw new Error(`signing in as ${username}: ${login.status} ${await login.text()}`);
  return ((await login.json()) as { access_token: string }).access_token;
}
