/**
 * The sinks `gateway serve` runs beside its stream workers (config `sinks:`): each is the runtime
 * `gateway sink` runs, from the same config, with its metrics on the appliance's /metrics.
 */
import type { Registry } from "prom-client";
import type { StreamStage } from "../api/topology/service.ts";
import type { KafkaConnection } from "../config/schema.ts";
import { ConfigError, type FieldError } from "../config/schema-errors.ts";
import type { Logger } from "../log/logger.ts";
import { backoffDelay } from "../util/backoff.ts";
import { Sleeper } from "../util/sleeper.ts";
import type { SinkConfig } from "./define.ts";
import { parseSinkConfig } from "./registry.ts";
import { startSink } from "./run-sink.ts";
import type { SinkRuntime } from "./runtime.ts";

const START_RETRY_BASE_MS = 1000;
const START_RETRY_MAX_MS = 30_000;

export interface ApplianceSink {
  /** The config as given, with the appliance's brokers where it names none. */
  input: Record<string, unknown>;
  config: SinkConfig;
}

/** One sink's config as the appliance runs it: its own brokers, else the appliance's. Throws ConfigError naming each field. */
export function parseApplianceSink(given: Record<string, unknown>, kafka: KafkaConnection, source = "sink config"): ApplianceSink {
  const ownKafka = (given.kafka ?? {}) as Record<string, unknown>;
  const input = { ...given, kafka: { bootstrap: kafka.bootstrap_servers.join(","), ...ownKafka } };
  return { input, config: parseSinkConfig(input, source).config };
}

/**
 * Checks every sink of the appliance config before anything starts, so a bad one fails the start
 * with its field named (`sinks[1].target.url: ...`) instead of failing later in the background.
 */
export function parseApplianceSinks(inputs: readonly Record<string, unknown>[], kafka: KafkaConnection): ApplianceSink[] {
  const errors: FieldError[] = [];
  const sinks: ApplianceSink[] = [];
  const firstWithId = new Map<string, number>();
  inputs.forEach((given, index) => {
    try {
      const { input, config } = parseApplianceSink(given, kafka);
      const other = firstWithId.get(config.sink_id);
      if (other === undefined) firstWithId.set(config.sink_id, index);
      else errors.push({ path: `sinks[${index}].sink_id`, message: `"${config.sink_id}" is the sink_id of sinks[${other}] too; each sink needs its own` });
      sinks.push({ input, config });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      for (const e of error.fieldErrors) errors.push({ path: `sinks[${index}].${e.path}`, message: e.message });
    }
  });
  if (errors.length > 0) throw new ConfigError("sinks", errors);
  return sinks;
}

export interface RunningSinks {
  /** One topology stage per sink: the topics it reads, and its state now. */
  stages(): StreamStage[];
  stop(): Promise<void>;
}

/**
 * Starts each sink, and keeps trying one that cannot start yet (its DLQ topic missing, Kafka not
 * up): the appliance serves meanwhile, and the log says why.
 */
export function startApplianceSinks(sinks: readonly ApplianceSink[], options: { log: Logger; metrics: Registry }): RunningSinks {
  const runtimes = new Map<string, SinkRuntime>();
  const sleepers = sinks.map(() => new Sleeper());
  let stopped = false;
  const keepStarting = async ({ input, config }: ApplianceSink, index: number) => {
    const sleeper = sleepers[index]!;
    const log = options.log.child({ component: "sink", sink: config.sink_id });
    for (let failures = 0; !stopped; failures++) {
      if (failures > 0) await sleeper.sleep(backoffDelay(failures, START_RETRY_BASE_MS, START_RETRY_MAX_MS));
      if (stopped) return;
      try {
        const runtime = await startSink(input, { log: options.log, metrics: options.metrics });
        if (stopped) await runtime.stop();
        else runtimes.set(config.sink_id, runtime);
        return;
      } catch (error) {
        log.error({ err: (error as Error).message, failures: failures + 1 }, "sink not started; retrying");
      }
    }
  };
  const starting = Promise.all(sinks.map(keepStarting));
  return {
    stages: () =>
      sinks.map(({ config }) => ({
        id: `sink:${config.sink_id}`,
        label: `${config.type} sink ${config.sink_id}`,
        inputs: config.kafka.topics,
        outputs: [],
        status: runtimes.get(config.sink_id)?.status().state ?? "starting",
      })),
    async stop() {
      stopped = true;
      for (const sleeper of sleepers) sleeper.wake();
      await starting;
      await Promise.all([...runtimes.values()].map((runtime) => runtime.stop()));
    },
  };
}
