import { loadApplianceConfig } from "../config/load.ts";
import { MODES } from "../config/schema.ts";
import { createLogger } from "../log/logger.ts";
import { modbusRtuSimulateHelp, modbusRtuSimulateOptions, runModbusRtuSimulatorCommand } from "../../adapters/modbus-rtu/cli.ts";
import { runXBeeSimulatorCommand, xbeeSimulateHelp, xbeeSimulateOptions } from "../../adapters/xbee/cli.ts";
import { opcuaCommand, runOpcuaSimulatorCommand } from "../../adapters/opcua/cli.ts";
import { VERSION } from "../version.ts";
// Commands load what they need when they run (dynamic imports, which `bun build --compile` still
// bundles): an adapter process should not carry the HTTP server, the embedded DB or node-opcua.
import { choiceOption, defineCommand, intOption, UsageError, type CommandSpec } from "./command.ts";

export { VERSION };

const configOption = { config: { type: "string" as const } };
const configHelp = "appliance config YAML (default: $GATEWAY_CONFIG)";

function applianceConfig(values: Record<string, unknown>, overrides: Record<string, unknown> = {}) {
  return loadApplianceConfig({ file: values.config as string | undefined, overrides });
}

const serveCommand = defineCommand({
  name: "serve",
  summary: "Run the appliance: control API, web UI, adapter supervisor, stream workers and sinks.",
  usage: "serve [--mode standalone|edge|hub] [--port N] [--config FILE]",
  options: { ...configOption, mode: { type: "string" }, port: { type: "string" }, host: { type: "string" }, "data-dir": { type: "string" } },
  optionHelp: {
    config: configHelp,
    mode: "standalone (default), edge or hub",
    port: "HTTP port for the API and UI (default 8080)",
    host: "HTTP listen address (default 127.0.0.1)",
    "data-dir": "folder for the embedded DB and state",
  },
  async run({ values }) {
    const mode = choiceOption(values, "mode", MODES);
    const port = intOption(values, "port", 0, 65535);
    const http: Record<string, unknown> = {};
    if (port !== undefined) http.port = port;
    if (values.host) http.host = values.host;
    const config = applianceConfig(values, {
      ...(mode ? { mode } : {}),
      ...(Object.keys(http).length ? { http } : {}),
      ...(values["data-dir"] ? { data_dir: values["data-dir"] } : {}),
    });
    const log = createLogger("gateway", config.log.level);
    const { serve } = await import("../serve.ts");
    const appliance = await serve(config, log);
    console.log(`Gateway (${config.mode}) listening on ${appliance.url}`);
    await new Promise<void>((resolve) => {
      const shutdown = (signal: string) => {
        log.info({ signal }, "shutting down");
        appliance.stop().finally(resolve);
      };
      process.once("SIGTERM", () => shutdown("SIGTERM"));
      process.once("SIGINT", () => shutdown("SIGINT"));
    });
    return 0;
  },
});

const migrateCommand = defineCommand({
  name: "migrate",
  summary: "Apply control DB migrations (embedded PGlite, or PostgreSQL when DATABASE_URL is set).",
  usage: "migrate [--config FILE]",
  options: { ...configOption },
  optionHelp: { config: configHelp },
  async run({ values }) {
    const config = applianceConfig(values);
    const { openDatabase } = await import("../db/client.ts");
    const { migrateDatabase } = await import("../db/migrate.ts");
    const db = await openDatabase({ databaseUrl: config.database.url, dataDir: config.data_dir });
    try {
      const { applied } = await migrateDatabase(db);
      console.log(`control DB (${db.kind}): ${applied} migration(s) applied`);
    } finally {
      await db.close();
    }
    return 0;
  },
});

const topicsCommand = defineCommand({
  name: "topics",
  summary: "Create the topic catalogue's topics and correct drifted retention settings.",
  usage: "topics apply [--config FILE] [--bootstrap host:port,...]",
  options: { ...configOption, bootstrap: { type: "string" } },
  optionHelp: { config: configHelp, bootstrap: "Kafka brokers (default from config, 127.0.0.1:9092)" },
  positionals: { min: 1, max: 1 },
  async run({ values, positionals }) {
    if (positionals[0] !== "apply") throw new UsageError(`gateway topics: unknown action "${positionals[0]}" (expected: apply)`);
    const overrides = values.bootstrap ? { kafka: { bootstrap_servers: String(values.bootstrap).split(",") } } : {};
    const config = applianceConfig(values, overrides);
    const log = createLogger("topics", config.log.level);
    const { KafkaAdmin } = await import("../kafka/admin.ts");
    const admin = new KafkaAdmin(config.kafka);
    try {
      await admin.ping(10_000);
      const results = await admin.applyCatalogue(log);
      for (const r of results) {
        const drift = r.drift.map((d) => `${d.key}: ${d.actual} -> ${d.expected}`).join(", ");
        console.log(`${r.action.padEnd(9)} ${r.topic}${drift ? `  (${drift})` : ""}`);
      }
    } finally {
      await admin.close();
    }
    return 0;
  },
});

const adapterCommand = defineCommand({
  name: "adapter",
  summary: "Run one protocol adapter from CONFIG_JSON (base64 JSON in the environment); the supervisor starts these.",
  usage: "adapter",
  options: {},
  optionHelp: {},
  async run() {
    const { runAdapter } = await import("../adapter-runtime/run.ts");
    const { ADAPTERS } = await import("../adapters.ts");
    return runAdapter({ env: process.env, definitions: ADAPTERS });
  },
});

const SIMULATORS = ["modbus", "opcua", "modbus-rtu", "xbee"] as const;

const simulateCommand = defineCommand({
  name: "simulate",
  summary: "Run a simulated device that follows a plant file's deterministic waveforms (demo, tests, benchmarks).",
  usage: "simulate modbus|opcua --port N --plant FILE [--host ADDR] | simulate modbus-rtu|xbee --device PATH --plant FILE [--baud N] [--parity P] [--noise RATE]",
  options: { port: { type: "string" }, plant: { type: "string" }, host: { type: "string" }, ...modbusRtuSimulateOptions, ...xbeeSimulateOptions },
  optionHelp: {
    port: "base TCP port; a device listens on port + its port_offset",
    plant: "plant file (YAML), e.g. plants/offshore-well.yaml",
    host: "listen address (default 127.0.0.1)",
    ...modbusRtuSimulateHelp,
    ...xbeeSimulateHelp,
  },
  positionals: { min: 1, max: 1 },
  async run({ values, positionals }) {
    if (!SIMULATORS.includes(positionals[0] as (typeof SIMULATORS)[number])) {
      throw new UsageError(`gateway simulate: unknown device "${positionals[0]}" (expected one of ${SIMULATORS.join(", ")})`);
    }
    if (positionals[0] === "opcua") return runOpcuaSimulatorCommand(values);
    if (positionals[0] === "modbus-rtu") return runModbusRtuSimulatorCommand(values);
    if (positionals[0] === "xbee") return runXBeeSimulatorCommand(values);
    if (!values.plant) throw new UsageError("gateway simulate: --plant FILE is required");
    const port = intOption(values, "port", 0, 65535) ?? 5020;
    const { loadPlantFile } = await import("../../adapters/modbus/plant.ts");
    const { startModbusTcpSimulator } = await import("../../adapters/modbus-tcp/simulator.ts");
    const plant = loadPlantFile(String(values.plant));
    const simulator = await startModbusTcpSimulator({ host: (values.host as string) ?? "127.0.0.1", basePort: port, plant });
    const log = createLogger("simulator");
    log.info({ plant: plant.name, ports: simulator.ports, devices: plant.devices.length }, "Modbus TCP simulator listening");
    await new Promise<void>((resolve) => {
      process.once("SIGTERM", resolve);
      process.once("SIGINT", resolve);
    });
    await simulator.stop();
    return 0;
  },
});

const workerCommand = defineCommand({
  name: "worker",
  summary: "Run stream workers (quality validator + completeness ledger, aggregator, alarm evaluator, alert router and sender) on their own, e.g. to scale out; the alarm evaluator takes its rules from the _gateway.alarm_rules topic.",
  usage: "worker <name>|all [--instance ID] [--rules FILE] [--topic-prefix P] [--config FILE]",
  options: { ...configOption, instance: { type: "string" }, rules: { type: "string" }, "topic-prefix": { type: "string" } },
  optionHelp: {
    config: configHelp,
    instance: "stable id of this worker instance (fences its own unfinished transactions after a restart)",
    rules: "quality rules YAML (range, rate of change, expected interval)",
    "topic-prefix": "prefix of every topic name (side-by-side deployments and tests)",
  },
  positionals: { min: 1, max: 1 },
  async run({ values, positionals }) {
    const which = positionals[0]!;
    const { startStreamWorkers, WORKERS } = await import("../streams/run.ts");
    type WorkerName = (typeof WORKERS)[number];
    if (which !== "all" && !WORKERS.includes(which as WorkerName)) {
      throw new UsageError(`gateway worker: unknown worker "${which}" (expected one of ${[...WORKERS, "all"].join(", ")})`);
    }
    const config = applianceConfig(values);
    const log = createLogger("worker", config.log.level);
    const workers = await startStreamWorkers({
      connection: config.kafka,
      log,
      workers: which === "all" ? WORKERS : [which as WorkerName],
      instanceId: (values.instance as string | undefined) ?? config.gateway_id,
      rulesFile: (values.rules as string | undefined) ?? config.streams.quality_rules_file,
      alarmRulesFile: config.streams.alarm_rules_file,
      alertRulesFile: config.streams.alert_rules_file,
      alertSecretsDir: config.streams.alert_secrets_dir,
      alertRetryBudgetMs: config.streams.alert_retry_budget_ms,
      topicPrefix: (values["topic-prefix"] as string | undefined) ?? "",
    });
    await new Promise<void>((resolve) => {
      process.once("SIGTERM", resolve);
      process.once("SIGINT", resolve);
    });
    await workers.stop();
    return 0;
  },
});

const sinkCommand = defineCommand({
  name: "sink",
  summary: "Run one sink (postgres, cloud-api, s3-parquet) from SINK_CONFIG_JSON or a config file, as a Kafka consumer group.",
  usage: "sink [--config FILE]",
  options: { config: { type: "string" } },
  optionHelp: { config: "sink config (JSON or YAML-free JSON); default: $SINK_CONFIG_JSON" },
  async run() {
    const { runSinkProcess } = await import("../sinks/run-sink.ts");
    await runSinkProcess();
    return new Promise<number>(() => {});
  },
});

const versionCommand = defineCommand({
  name: "version",
  summary: "Print the gateway version.",
  usage: "version",
  options: {},
  optionHelp: {},
  async run() {
    console.log(`gateway ${VERSION} (bun ${Bun.version})`);
    return 0;
  },
});

export const COMMANDS: CommandSpec[] = [serveCommand, adapterCommand, workerCommand, sinkCommand, simulateCommand, opcuaCommand, migrateCommand, topicsCommand, versionCommand] as CommandSpec[];
