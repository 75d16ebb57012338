import { readFileSync } from "node:fs";
import type { Registry } from "prom-client";
import type { KafkaConnection } from "../kafka/connection.ts";
import type { Logger } from "../log/logger.ts";
import { createAggregateWorker } from "./aggregate/worker.ts";
import { alarmRuleDefaultsOf, loadAlarmRules, loadAlarmRulesFile } from "./alarms/rules.ts";
import { createAlarmWorker } from "./alarms/worker.ts";
import { loadRoutingConfigFile } from "./alert-router/config.ts";
import { createAlertSender } from "./alert-router/sender.ts";
import { createAlertRouterWorker } from "./alert-router/worker.ts";
import { topicNamespace } from "./namespace.ts";
import { loadRules } from "./quality/rules.ts";
import { createQualityWorker } from "./quality/worker.ts";

export const WORKERS = ["quality", "aggregate", "alarms", "alert-router", "alert-sender"] as const;
export type WorkerName = (typeof WORKERS)[number];

export interface StreamWorkersOptions {
  connection: KafkaConnection;
  log: Logger;
  workers: readonly WorkerName[];
  instanceId: string;
  rulesFile?: string | undefined;
  topicPrefix?: string;
  /** Alarm rules YAML: the evaluator takes its set-wide settings from it (the rules come from the control DB, over Kafka). */
  alarmRulesFile?: string | undefined;
  /** `gateway serve`: its first publish of the control DB's alarm rules (see AlarmWorkerOptions.rulesPublished). */
  alarmRulesPublished?: Promise<unknown>;
  /** Alert routing YAML; without it neither the router nor the sender is started. */
  alertRulesFile?: string | undefined;
  alertSecretsDir?: string | undefined;
  alertRetryBudgetMs?: number | undefined;
  metrics?: Registry | undefined;
}

export function loadQualityRules(file: string | undefined) {
  return loadRules(file ? readFileSync(file, "utf8") : {}, file ?? "quality rules");
}

interface Running {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the requested workers; each is its own consumer group, so they scale out independently. */
export async function startStreamWorkers(options: StreamWorkersOptions): Promise<{ stop(): Promise<void> }> {
  const namespace = topicNamespace(options.topicPrefix ?? "");
  const running: Running[] = [];
  const common = { connection: options.connection, instanceId: options.instanceId, namespace };
  // Config errors surface here, before anything starts, with the file and path named.
  const routing = options.alertRulesFile ? loadRoutingConfigFile(options.alertRulesFile, { secrets_dir: options.alertSecretsDir }) : undefined;
  const alarmRuleDefaults = alarmRuleDefaultsOf(options.alarmRulesFile ? loadAlarmRulesFile(options.alarmRulesFile) : loadAlarmRules({}));
  for (const name of options.workers) {
    const log = options.log.child({ worker: name });
    let worker: Running;
    if (name === "quality") worker = createQualityWorker({ ...common, rules: loadQualityRules(options.rulesFile), log });
    else if (name === "aggregate") worker = createAggregateWorker({ ...common, log });
    else if (name === "alarms") worker = createAlarmWorker({ ...common, ruleDefaults: alarmRuleDefaults, rulesPublished: options.alarmRulesPublished, log });
    else {
      if (!routing) {
        log.info("no streams.alert_rules_file: alert routing not started");
        continue;
      }
      worker =
        name === "alert-router"
          ? createAlertRouterWorker({ ...common, config: routing, log, metrics: options.metrics })
          : createAlertSender({ ...common, config: routing, log, metrics: options.metrics, retryBudgetMs: options.alertRetryBudgetMs });
    }
    await worker.start();
    running.push(worker);
    log.info({ instance: options.instanceId, prefix: options.topicPrefix ?? "" }, "stream worker started");
  }
  return {
    async stop() {
      await Promise.all(running.map((p) => p.stop()));
    },
  };
}
