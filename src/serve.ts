import { mkdirSync } from "node:fs";
import type { ApplianceConfig } from "./config/schema.ts";
import { buildApp } from "./api/app.ts";
import { AlarmRulePublisher } from "./api/alarm-rules/publisher.ts";
import { AlarmRuleService } from "./api/alarm-rules/service.ts";
import { CommandOutcomeTail } from "./api/alarms/outcomes.ts";
import { AlarmProjector } from "./api/alarms/projector.ts";
import { AlarmService, dbAlarmSource } from "./api/alarms/service.ts";
import { SinkService } from "./api/sinks/service.ts";
import { uiRoutes } from "./api/ui.ts";
import { ApiError } from "./api/errors.ts";
import type { StreamStage } from "./api/topology/service.ts";
import { AuditRelay } from "./audit/relay.ts";
import { AuthService, loadOrCreateSecret } from "./auth/service.ts";
import { pingProbe, type ComponentHealth, type HealthProbe } from "./api/health/service.ts";
import { openDatabase, type ControlDb } from "./db/client.ts";
import { migrateDatabase } from "./db/migrate.ts";
import { ensureGateway, importAlarmRulesOnce, listPipelines, listSinks, upsertPipelineVersioned } from "./db/repo.ts";
import { checkDeclaredPipelines, PipelineCache, toRun } from "./supervisor/pipelines.ts";
import { Supervisor } from "./supervisor/supervisor.ts";
import { parseApplianceSinks, startApplianceSinks, type RunningSinks } from "./sinks/appliance.ts";
import { loadQualityRules, startStreamWorkers, WORKERS } from "./streams/run.ts";
import { KafkaAdmin } from "./kafka/admin.ts";
import { ReliableProducer } from "./kafka/producer.ts";
import { loadAlarmRulesFile, ruleId } from "./streams/alarms/rules.ts";
import { AGGREGATE_GROUP } from "./streams/aggregate/worker.ts";
import { ALARM_COMMANDS_TOPIC, ALARMS_GROUP } from "./streams/alarms/worker.ts";
import { SENDER_GROUP } from "./streams/alert-router/sender.ts";
import { DELIVERIES_TOPIC, ROUTER_GROUP } from "./streams/alert-router/worker.ts";
import { QUALITY_GROUP } from "./streams/quality/worker.ts";
import { loadRoutingConfigFile } from "./streams/alert-router/config.ts";
import type { Logger } from "./log/logger.ts";
import { createMetricsRegistry } from "./metrics/registry.ts";
import { startLive } from "./live/index.ts";

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

function currentDb(handle: ControlDbHandle) {
  const db = handle.current;
  if (!db) throw new ApiError(503, "control_db_unavailable", "the control DB is not reachable yet; see /api/v1/health");
  return db.db;
}

export interface RunningAppliance {
  url: string;
  supervisor: Supervisor;
  /** Resolves once the control DB is migrated and seeded (the admin user, declared pipelines). */
  ready: Promise<void>;
  stop(): Promise<void>;
}

const RUNNING_STATES = new Set(["running"]);

/** Past this many unread records a worker or sink is reported as falling behind. */
const LAG_DEGRADED_RECORDS = 100_000;

/** Unread records per consumer group of the workers and sinks this appliance runs. */
function consumerLagProbe(kafka: KafkaAdmin, stages: () => StreamStage[]): HealthProbe {
  return {
    name: "consumer_lag",
    critical: false,
    async check(): Promise<ComponentHealth> {
      const consumers = stages().flatMap(({ id, consumers }) => (consumers ?? []).map((consumer) => ({ stage: id, ...consumer })));
      const lags = await kafka.groupLags(consumers);
      const groups = consumers.map(({ stage, group }, i) => ({
        stage,
        group,
        lag: Number([...lags[i]!.values()].reduce((sum, n) => sum + n, 0n)),
        topics: Object.fromEntries([...lags[i]!].map(([topic, n]) => [topic, Number(n)])),
      }));
      const behind = groups.filter((g) => g.lag > LAG_DEGRADED_RECORDS).map((g) => g.stage);
      return { status: behind.length > 0 ? "degraded" : "ok", ...(behind.length > 0 ? { detail: `behind by over ${LAG_DEGRADED_RECORDS} records: ${behind.join(", ")}` } : {}), groups };
    },
  };
}

/** Sinks that are starting or whose target is down make the appliance degraded, not unhealthy. */
function sinksProbe(sinks: RunningSinks): HealthProbe {
  return {
    name: "sinks",
    critical: false,
    async check(): Promise<ComponentHealth> {
      const states = sinks.states();
      const troubled = states.filter((s) => s.state !== "running" && s.state !== "paused").map((s) => `${s.id} ${s.state}`);
      return { status: troubled.length > 0 ? "degraded" : "ok", ...(troubled.length > 0 ? { detail: troubled.join(", ") } : {}), sinks: states };
    },
  };
}

function adaptersProbe(supervisor: Supervisor): HealthProbe {
  return {
    name: "adapters",
    critical: false,
    async check(): Promise<ComponentHealth> {
      const pipelines = supervisor.status();
      const allRunning = pipelines.every((p) => RUNNING_STATES.has(p.state));
      return { status: allRunning ? "ok" : "degraded", pipelines };
    },
  };
}

/** Writes file-declared pipelines into the control DB (versioned and audited like API edits). */
async function seedDeclaredPipelines(db: ControlDb, config: ApplianceConfig, log: Logger): Promise<void> {
  await ensureGateway(db.db, config.gateway_id, config.mode);
  for (const declared of config.pipelines) {
    const result = await upsertPipelineVersioned(
      db.db,
      {
        id: declared.id,
        gatewayId: config.gateway_id,
        name: declared.name ?? declared.id,
        adapterType: String(declared.adapter.protocol ?? "docker"),
        config: declared.adapter,
        enabled: declared.enabled,
        runtime: declared.runtime,
        image: declared.image ?? null,
      },
      "config-file",
    );
    if (result.changed) log.info({ pipeline_id: declared.id, version: result.pipeline.version }, "pipeline from config file stored");
  }
}

/**
 * The rules of streams.alarm_rules_file seed the control DB once: only while this gateway has never
 * had alarm rules there. From then on the API owns them, so a rule deleted through it stays deleted.
 */
async function importAlarmRulesFile(db: ControlDb, config: ApplianceConfig, log: Logger): Promise<void> {
  const file = config.streams.alarm_rules_file;
  if (!file) return;
  const rules = loadAlarmRulesFile(file).rules.map((rule) => ({ ...rule, id: ruleId(rule) }));
  const imported = await importAlarmRulesOnce(db.db, config.gateway_id, rules, "config-file");
  if (imported > 0) log.info({ file, rules: imported }, "alarm rules imported from the rules file into the control DB");
  else log.info({ file }, "alarm rules are managed in the control DB; the rules file's rules were not imported again");
}

/**
 * Keeps the supervisor equal to the enabled pipelines of this gateway. A DB outage leaves the
 * running adapters alone: the data plane does not depend on the control plane.
 */
function startReconciler(controlDb: ControlDbHandle, supervisor: Supervisor, config: ApplianceConfig, log: Logger) {
  const cache = new PipelineCache(config.data_dir);
  const cached = cache.read();
  if (cached) void supervisor.apply(cached);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let lastError = "";
  const reconcile = async () => {
    const db = controlDb.current;
    if (!db) return;
    try {
      const pipelines = await listPipelines(db.db, { gatewayId: config.gateway_id });
      const runs = pipelines.filter((p) => p.enabled).map((p) => toRun(p, config));
      await supervisor.apply(runs);
      cache.write(runs);
      lastError = "";
    } catch (error) {
      const message = (error as Error).message;
      if (message !== lastError) log.error({ err: message }, "cannot read pipelines; adapters keep running with the last config");
      lastError = message;
    }
  };
  // One chain and one timer: a save in the UI asking for a reconcile during a periodic one queues
  // behind it instead of starting a second loop.
  let chain: Promise<void> = Promise.resolve();
  const runNow = (): Promise<void> => {
    clearTimeout(timer);
    chain = chain.then(reconcile).finally(() => {
      if (!stopped) {
        clearTimeout(timer);
        timer = setTimeout(() => void runNow(), config.supervisor.reconcile_interval_ms);
      }
    });
    return chain;
  };
  void runNow();
  return {
    reconcileNow: runNow,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/** The workers this appliance runs, as topology stages: which topics each reads and writes. */
export function workerStages(config: ApplianceConfig): StreamStage[] {
  const qualityInputs = ["telemetry.raw", "events.raw", "alarms.raw"];
  const stages: StreamStage[] = [
    {
      id: "worker:quality",
      label: "Quality validator",
      inputs: qualityInputs,
      outputs: ["telemetry.clean", "events.clean", "alarms.clean", "dlq.invalid_telemetry", "telemetry.completeness"],
      consumers: [{ group: QUALITY_GROUP, topics: qualityInputs }],
    },
    {
      id: "worker:aggregate",
      label: "Aggregator",
      inputs: ["telemetry.clean"],
      outputs: ["telemetry.1s", "telemetry.10s", "telemetry.1min", "telemetry.1hour"],
      consumers: [{ group: AGGREGATE_GROUP, topics: ["telemetry.clean"] }],
    },
    {
      id: "worker:alarms",
      label: "Alarm evaluator",
      inputs: ["telemetry.clean", "alarms.commands", "_gateway.alarm_rules"],
      outputs: ["alarms.raw", "alarms.command_outcomes"],
      // The rules topic is followed outside the group.
      consumers: [{ group: ALARMS_GROUP, topics: ["telemetry.clean", "alarms.commands"] }],
    },
  ];
  if (config.streams.alert_rules_file) {
    stages.push({
      id: "worker:alert-router",
      label: "Alert router",
      inputs: ["alarms.clean"],
      outputs: ["dlq.alert_deliveries"],
      // The router's delivery jobs wait for its sender in an internal topic: a sender that falls
      // behind (a provider down, retries piling up) shows as that group's lag.
      consumers: [
        { group: ROUTER_GROUP, topics: ["alarms.clean"] },
        { group: SENDER_GROUP, topics: [DELIVERIES_TOPIC] },
      ],
    });
  }
  return stages;
}

export async function serve(config: ApplianceConfig, log: Logger): Promise<RunningAppliance> {
  checkDeclaredPipelines(config.pipelines, config);
  const sinkConfigs = parseApplianceSinks(config.sinks, config.kafka);
  mkdirSync(config.data_dir, { recursive: true });
  const metrics = createMetricsRegistry({ gateway_id: config.gateway_id });
  const controlDb = new ControlDbHandle(config, log);
  const kafka = new KafkaAdmin(config.kafka);
  const supervisor = new Supervisor({ log, metrics, timing: { healthIntervalMs: config.supervisor.health_interval_ms } });
  const probes: HealthProbe[] = [
    pingProbe("kafka", true, () => kafka.ping()),
    pingProbe("control_db", true, () => controlDb.ping()),
    adaptersProbe(supervisor),
  ];
  const auth = new AuthService(() => currentDb(controlDb), loadOrCreateSecret(config.data_dir));
  const dbReady = controlDb.connect().then(async () => {
    await auth.bootstrapAdmin(process.env.GATEWAY_ADMIN_PASSWORD, log);
    await seedDeclaredPipelines(controlDb.current!, config, log);
    await importAlarmRulesFile(controlDb.current!, config, log);
  });
  // Rules reach the evaluators over Kafka, so evaluation goes on while this process or its DB is down.
  const alarmRulePublisher = new AlarmRulePublisher({ db: () => controlDb.current?.db, connection: config.kafka, gatewayId: config.gateway_id, log: log.child({ component: "alarm-rules" }) });
  alarmRulePublisher.start();
  // Failures of dbReady are logged where it is awaited below; the evaluator only waits on this.
  const alarmRulesPublished = dbReady.then(() => alarmRulePublisher.syncNow()).catch(() => 0);
  const reconciler = startReconciler(controlDb, supervisor, config, log);
  const streamsEnabled = config.streams.enabled ?? config.mode !== "edge";
  if (streamsEnabled) {
    // Rule files fail the start with their path and field named, not later in a background worker.
    loadQualityRules(config.streams.quality_rules_file);
    if (config.streams.alarm_rules_file) loadAlarmRulesFile(config.streams.alarm_rules_file);
    if (config.streams.alert_rules_file) loadRoutingConfigFile(config.streams.alert_rules_file, { secrets_dir: config.streams.alert_secrets_dir });
  }
  // Workers need no control DB: they start as soon as Kafka answers, and retry until it does.
  const streams = streamsEnabled
    ? startStreamWorkers({
        connection: config.kafka,
        log,
        workers: WORKERS,
        instanceId: config.gateway_id,
        rulesFile: config.streams.quality_rules_file,
        alarmRulesFile: config.streams.alarm_rules_file,
        alarmRulesPublished,
        alertRulesFile: config.streams.alert_rules_file,
        alertSecretsDir: config.streams.alert_secrets_dir,
        alertRetryBudgetMs: config.streams.alert_retry_budget_ms,
        metrics,
      })
    : Promise.resolve(undefined);
  streams.catch((error) => log.error({ err: (error as Error).message }, "stream workers failed to start"));
  const sinks = startApplianceSinks(
    {
      file: sinkConfigs,
      kafka: config.kafka,
      // Sinks created through /api/v1/sinks. While the DB is unavailable the running ones go on.
      stored: { load: async () => (controlDb.current ? listSinks(controlDb.current.db, { gatewayId: config.gateway_id }) : undefined), intervalMs: config.supervisor.reconcile_interval_ms },
    },
    { log, metrics },
  );
  void dbReady.then(() => sinks.reconcileNow()).catch(() => undefined);
  probes.push(sinksProbe(sinks));
  const auditRelay = new AuditRelay(() => controlDb.current?.db, config.kafka, log);
  auditRelay.start();
  void dbReady.then(() => reconciler.reconcileNow()).catch((error) => log.error({ err: (error as Error).message }, "storing declared pipelines failed"));
  // The web UI's live views (tag explorer, rates, DLQ, alarms) follow Kafka on their own.
  const live = startLive({ connection: config.kafka, listTopics: () => kafka.listTopics(), log: log.child({ component: "live" }) });
  const db = () => currentDb(controlDb);
  // Alarms: alarms.clean → the `alarms` table (read model), and operator commands → alarms.commands.
  const alarmProjector = new AlarmProjector({ connection: config.kafka, db: () => controlDb.current?.db, log: log.child({ component: "alarms-projector" }), gatewayId: config.gateway_id });
  void alarmProjector.start();
  const commandProducer = new ReliableProducer(config.kafka, "alarm-commands");
  // The evaluator's answer to each command: one tail for every request of this process.
  const commandOutcomes = new CommandOutcomeTail({ connection: config.kafka, log: log.child({ component: "alarm-command-outcomes" }) });
  commandOutcomes.start();
  const alarms = new AlarmService({
    db,
    log,
    outcomes: commandOutcomes,
    waitMs: config.http.alarm_command_wait_ms,
    publisher: { publish: (key, command) => commandProducer.send([{ topic: ALARM_COMMANDS_TOPIC, key, value: JSON.stringify(command) }]) },
  });
  const stages = () => [...(streamsEnabled ? workerStages(config) : []), ...sinks.stages()];
  probes.push(consumerLagProbe(kafka, stages));
  // The alarm page reads and acts on the engine's read model; the live tail only feeds tags and rates.
  const sinkService = new SinkService(db, config, log, () => void sinks.reconcileNow());
  const extend = uiRoutes({
    config,
    auth,
    db,
    supervisor,
    probes,
    log,
    stages,
    runningSinks: () => sinks.states(),
    sinkService,
    live: { ...live, alarms: dbAlarmSource(alarms) },
    reconcileNow: () => reconciler.reconcileNow(),
  });
  const alarmRules = new AlarmRuleService(db, config.gateway_id, () => void alarmRulePublisher.syncNow());
  const app = buildApp({ config, probes, metrics, auth, db, supervisor, log, extend, alarms, alarmRules, sinks: sinkService, stages }).listen({ hostname: config.http.host, port: config.http.port });
  const url = `http://${config.http.host}:${app.server!.port}`;
  log.info({ url, mode: config.mode, gatewayId: config.gateway_id }, "gateway serving");
  return {
    url,
    supervisor,
    ready: dbReady,
    async stop() {
      reconciler.stop();
      await live.stop();
      await supervisor.stop();
      await auditRelay.stop();
      await alarmProjector.stop();
      await alarmRulePublisher.stop();
      await commandProducer.close().catch(() => undefined);
      await commandOutcomes.stop();
      await (await streams.catch(() => undefined))?.stop();
      await sinks.stop();
      await app.stop();
      await kafka.close().catch(() => undefined);
      await Promise.race([dbReady, Bun.sleep(100)]);
      await controlDb.current?.close();
    },
  };
}
