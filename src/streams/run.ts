import { readFileSync } from "node:fs";
import type { KafkaConnection } from "../kafka/connection.ts";
import type { TransactionalProcessor } from "../kafka/processor.ts";
import type { Logger } from "../log/logger.ts";
import { createAggregateWorker } from "./aggregate/worker.ts";
import { topicNamespace } from "./namespace.ts";
import { loadRules } from "./quality/rules.ts";
import { createQualityWorker } from "./quality/worker.ts";

export const WORKERS = ["quality", "aggregate"] as const;
export type WorkerName = (typeof WORKERS)[number];

export interface StreamWorkersOptions {
  connection: KafkaConnection;
  log: Logger;
  workers: readonly WorkerName[];
  instanceId: string;
  rulesFile?: string | undefined;
  topicPrefix?: string;
}

export function loadQualityRules(file: string | undefined) {
  return loadRules(file ? readFileSync(file, "utf8") : {}, file ?? "quality rules");
}

/** Starts the requested workers; each is its own consumer group, so they scale out independently. */
export async function startStreamWorkers(options: StreamWorkersOptions): Promise<{ stop(): Promise<void> }> {
  const namespace = topicNamespace(options.topicPrefix ?? "");
  const processors: TransactionalProcessor[] = [];
  for (const name of options.workers) {
    const log = options.log.child({ worker: name });
    const processor =
      name === "quality"
        ? createQualityWorker({ connection: options.connection, rules: loadQualityRules(options.rulesFile), log, instanceId: options.instanceId, namespace })
        : createAggregateWorker({ connection: options.connection, log, instanceId: options.instanceId, namespace });
    await processor.start();
    processors.push(processor);
    log.info({ instance: options.instanceId, prefix: options.topicPrefix ?? "" }, "stream worker started");
  }
  return {
    async stop() {
      await Promise.all(processors.map((p) => p.stop()));
    },
  };
}
