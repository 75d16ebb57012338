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
import { sinkGroupId, type SinkRuntime } from "./runtime.ts";

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

/** A sink stored in the control DB (created through /api/v1/sinks). */
export interface StoredSink {
  id: string;
  enabled: boolean;
  version: number;
  config: Record<string, unknown>;
}

export interface SinkSources {
  /** The sinks of the config file: always run. */
  file: readonly ApplianceSink[];
  /**
   * This gateway's sinks in the control DB, read every `intervalMs` and on reconcileNow().
   * undefined (or a throw) while the DB is unavailable: what runs keeps running.
   */
  stored?: { load(): Promise<readonly StoredSink[] | undefined>; intervalMs: number };
  kafka: KafkaConnection;
}

/** A sink this appliance runs, as the Sinks page shows it. */
export interface RunningSinkState {
  id: string;
  type: string;
  /** "config file", or the stored version ("v3"). */
  revision: string;
  topics: string[];
  state: string;
}

export interface RunningSinks {
  /** One topology stage per sink: the topics it reads, and its state now. */
  stages(): StreamStage[];
  states(): RunningSinkState[];
  /** Reads the stored sinks now and starts, restarts (new version) or stops sinks to match. */
  reconcileNow(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * One sink the appliance runs. It keeps trying to start while it cannot (its DLQ topic missing,
 * Kafka not up): the appliance serves meanwhile, and the log says why.
 */
class ManagedSink {
  readonly #sleeper = new Sleeper();
  #runtime: SinkRuntime | undefined;
  #stopped = false;
  readonly #starting: Promise<void>;

  constructor(
    readonly sink: ApplianceSink,
    /** What it was started from ("config file", or the stored version): a change restarts it. */
    readonly revision: string,
    options: { log: Logger; metrics: Registry },
  ) {
    this.#starting = this.#keepStarting(options);
  }

  async #keepStarting(options: { log: Logger; metrics: Registry }): Promise<void> {
    const log = options.log.child({ component: "sink", sink: this.sink.config.sink_id });
    for (let failures = 0; !this.#stopped; failures++) {
      if (failures > 0) await this.#sleeper.sleep(backoffDelay(failures, START_RETRY_BASE_MS, START_RETRY_MAX_MS));
      if (this.#stopped) return;
      try {
        const runtime = await startSink(this.sink.input, options);
        if (this.#stopped) await runtime.stop();
        else this.#runtime = runtime;
        return;
      } catch (error) {
        log.error({ err: (error as Error).message, failures: failures + 1 }, "sink not started; retrying");
      }
    }
  }

  get state(): string {
    return this.#runtime?.status().state ?? "starting";
  }

  stage(): StreamStage {
    const { config } = this.sink;
    return {
      id: `sink:${config.sink_id}`,
      label: `${config.type} sink ${config.sink_id}`,
      inputs: config.kafka.topics,
      outputs: [],
      status: this.state,
      consumers: [{ group: sinkGroupId(config), topics: config.kafka.topics }],
    };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#sleeper.wake();
    await this.#starting;
    await this.#runtime?.stop();
  }
}

/**
 * Runs the sinks of the config file, and those stored in the control DB, reconciled like the
 * pipelines: a stored sink added or enabled starts, one changed restarts with its new config, one
 * deleted or disabled stops (its pending batch written and committed first). A stored sink named
 * like a sink of the file is not run: the file's stays. A stored config that no longer validates
 * (a sink type's schema changed) is logged with its fields and not run.
 */
export function startApplianceSinks(sources: SinkSources, options: { log: Logger; metrics: Registry }): RunningSinks {
  const log = options.log.child({ component: "sinks" });
  const running = new Map<string, ManagedSink>();
  const refused = new Map<string, string>();
  let stored: readonly StoredSink[] = [];
  let stopped = false;
  let reconciling: Promise<void> = Promise.resolve();
  let timer: ReturnType<typeof setInterval> | undefined;

  const desired = () => {
    const wanted = new Map<string, { sink: ApplianceSink; revision: string }>();
    for (const sink of sources.file) wanted.set(sink.config.sink_id, { sink, revision: "config file" });
    for (const row of stored) {
      if (!row.enabled) continue;
      const revision = `v${row.version}`;
      const firstSeen = refused.get(row.id) !== revision;
      if (wanted.has(row.id)) {
        if (firstSeen) log.warn({ sink: row.id }, "a stored sink has the sink_id of a sink in the config file; the file's runs");
        refused.set(row.id, revision);
        continue;
      }
      try {
        wanted.set(row.id, { sink: parseApplianceSink({ ...row.config, sink_id: row.id }, sources.kafka, `stored sink ${row.id}`), revision });
        refused.delete(row.id);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        if (firstSeen) log.error({ sink: row.id, version: row.version, errors: error.fieldErrors }, "stored sink config is invalid; not run");
        refused.set(row.id, revision);
      }
    }
    return wanted;
  };

  const apply = async () => {
    const wanted = desired();
    const retiring = [...running].filter(([id, managed]) => wanted.get(id)?.revision !== managed.revision);
    for (const [id] of retiring) running.delete(id);
    await Promise.all(retiring.map(([, managed]) => managed.stop()));
    if (stopped) return;
    for (const [id, { sink, revision }] of wanted) {
      if (running.has(id)) continue;
      running.set(id, new ManagedSink(sink, revision, options));
      log.info({ sink: id, type: sink.config.type, from: revision }, "sink starting");
    }
  };

  const reconcileNow = () => {
    reconciling = reconciling.then(async () => {
      if (stopped) return;
      if (sources.stored) {
        try {
          stored = (await sources.stored.load()) ?? stored;
        } catch (error) {
          log.warn({ err: (error as Error).message }, "stored sinks not read; the running ones go on");
        }
      }
      await apply();
    });
    return reconciling;
  };

  void reconcileNow();
  if (sources.stored) timer = setInterval(() => void reconcileNow(), sources.stored.intervalMs);
  return {
    stages: () => [...running.values()].map((managed) => managed.stage()),
    states: () =>
      [...running.values()].map(({ sink: { config }, revision, state }) => ({ id: config.sink_id, type: config.type, revision, topics: config.kafka.topics, state })),
    reconcileNow,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await reconciling;
      await Promise.all([...running.values()].map((managed) => managed.stop()));
      running.clear();
    },
  };
}
