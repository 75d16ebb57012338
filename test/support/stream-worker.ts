#!/usr/bin/env bun
/**
 * Child process for kill tests of the alarm and alert workers: like `gateway worker`, plus the rule
 * files those workers need (the CLI passes only the quality rules).
 *
 *   bun test/support/stream-worker.ts <worker,worker…> --topic-prefix P --instance I
 *   env: ALARM_RULES_FILE (set-wide settings; rules come from the topic), ALERT_RULES_FILE, ALERT_RETRY_BUDGET_MS, GATEWAY_KAFKA__BOOTSTRAP_SERVERS, LOG_LEVEL
 */
import { parseArgs } from "node:util";
import { connectionFromBootstrap } from "../../src/kafka/connection.ts";
import { createLogger } from "../../src/log/logger.ts";
import { startStreamWorkers, WORKERS, type WorkerName } from "../../src/streams/run.ts";

const { values, positionals } = parseArgs({ options: { "topic-prefix": { type: "string" }, instance: { type: "string" } }, allowPositionals: true });
const workers = (positionals[0] ?? "").split(",").filter(Boolean) as WorkerName[];
const unknown = workers.filter((w) => !WORKERS.includes(w));
if (workers.length === 0 || unknown.length > 0) throw new Error(`usage: stream-worker.ts <${WORKERS.join("|")},…> (unknown: ${unknown.join(", ")})`);
const env = process.env;
const running = await startStreamWorkers({
  connection: connectionFromBootstrap(env.GATEWAY_KAFKA__BOOTSTRAP_SERVERS ?? "127.0.0.1:9092", `test-${values.instance ?? "w"}`),
  log: createLogger("worker", env.LOG_LEVEL ?? "warn"),
  workers,
  instanceId: values.instance ?? "w1",
  topicPrefix: values["topic-prefix"] ?? "",
  alarmRulesFile: env.ALARM_RULES_FILE,
  alertRulesFile: env.ALERT_RULES_FILE,
  alertRetryBudgetMs: env.ALERT_RETRY_BUDGET_MS ? Number(env.ALERT_RETRY_BUDGET_MS) : undefined,
});
await new Promise<void>((resolve) => {
  process.once("SIGTERM", resolve);
  process.once("SIGINT", resolve);
});
await running.stop();
process.exit(0);
