import { hostname } from "node:os";
import { Counter, Gauge, Histogram } from "prom-client";
import { ConfigError } from "../config/schema-errors.ts";
import { readingHeaders, readingKey, type Reading } from "../envelope/reading.ts";
import { connectionFromBootstrap } from "../kafka/connection.ts";
import { ReliableProducer, type OutgoingRecord } from "../kafka/producer.ts";
import { createLogger, type Logger } from "../log/logger.ts";
import { createMetricsRegistry } from "../metrics/registry.ts";
import type { AdapterDefinition, ErrorType, RawRecord, Sample } from "../registry.ts";
import { decodeConfigJson, parseAdapterConfig, type CommonAdapterConfig } from "./config.ts";
import { HealthTracker } from "./health.ts";
import { Publisher, type RecordSender } from "./publisher.ts";

/** The supervisor gives an adapter this long after SIGTERM; we keep a margin under it. */
export const SHUTDOWN_BUDGET_MS = 10_000;
const FLUSH_BUDGET_MS = 8_000;

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_BAD_CONFIG = 2;

export function toReading(sample: Sample, config: CommonAdapterConfig, version: string, host: string, now: Date): Reading {
  const deviceTime = sample.device_time.toISOString();
  return {
    asset_id: sample.asset_id,
    parameter: sample.parameter,
    value: sample.value,
    ...(sample.unit === undefined ? {} : { unit: sample.unit }),
    quality: sample.quality,
    classification: config.output.classification,
    timestamps: { device_time: deviceTime, gateway_time: now.toISOString(), kafka_time: null },
    clock_skew_ms: now.getTime() - sample.device_time.getTime(),
    metadata: {
      ...sample.metadata,
      adapter_id: config.adapter_id,
      adapter_version: version,
      pipeline_id: config.pipeline_id,
      hostname: host,
      time_source: sample.time_source,
      ...(sample.status_text === undefined ? {} : { status_text: sample.status_text }),
      ...(sample.error === undefined ? {} : { error: sample.error }),
    },
  };
}

export interface RunAdapterOptions {
  env: Record<string, string | undefined>;
  definitions: readonly AdapterDefinition[];
  /** Replaced in tests that need a sender other than Kafka; production always uses Kafka. */
  sender?: RecordSender;
  signal?: AbortSignal;
}

function findDefinition(definitions: readonly AdapterDefinition[], raw: unknown): AdapterDefinition {
  const protocol = (raw as { protocol?: unknown })?.protocol;
  const definition = definitions.find((d) => d.protocol === protocol);
  if (!definition) {
    throw new ConfigError("CONFIG_JSON", [
      { path: "protocol", message: `expected one of ${definitions.map((d) => JSON.stringify(d.protocol)).join(", ")}, got ${JSON.stringify(protocol)}` },
    ]);
  }
  return definition;
}

/** `gateway adapter`: the seed's adapter contract around one protocol implementation. */
export async function runAdapter(options: RunAdapterOptions): Promise<number> {
  const bootLog = createLogger("adapter");
  let definition: AdapterDefinition;
  let config: CommonAdapterConfig;
  try {
    const raw = decodeConfigJson(options.env.CONFIG_JSON);
    definition = findDefinition(options.definitions, raw);
    config = parseAdapterConfig(definition.configSchema, raw, definition.validate) as CommonAdapterConfig;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    bootLog.error({ errors: error.fieldErrors }, error.message);
    console.error(error.message);
    return EXIT_BAD_CONFIG;
  }
  const log = bootLog.child({ pipeline_id: config.pipeline_id, adapter_id: config.adapter_id, protocol: definition.protocol });
  return new AdapterProcess(definition, config, log, options).run();
}

class AdapterProcess {
  readonly #registry;
  readonly #readings: Counter<string>;
  readonly #errors: Counter<string>;
  readonly #dropped: Counter<string>;
  readonly #sent: Counter<string>;
  readonly #raw: Counter<string>;
  readonly #buffered: Gauge<string>;
  readonly #latency: Histogram<string>;
  readonly #tracker: HealthTracker;
  readonly #publisher: Publisher;
  readonly #producer: ReliableProducer | undefined;
  readonly #host = hostname();
  #readTotal = 0;
  #sentTotal = 0;
  #droppedTotal = 0;
  #rawTotal = 0;
  #rawSentTotal = 0;
  /** Records from emitRaw, told apart from readings when Kafka acknowledges a batch. */
  readonly #rawRecords = new WeakSet<OutgoingRecord>();

  constructor(
    private readonly definition: AdapterDefinition,
    private readonly config: CommonAdapterConfig,
    private readonly log: Logger,
    private readonly options: RunAdapterOptions,
  ) {
    const labels = { pipeline_id: config.pipeline_id };
    this.#registry = createMetricsRegistry({ adapter_id: config.adapter_id, protocol: definition.protocol });
    const registers = [this.#registry];
    this.#readings = new Counter({ name: "adapter_readings_total", help: "Total readings processed", labelNames: ["pipeline_id"], registers });
    this.#errors = new Counter({ name: "adapter_errors_total", help: "Total errors", labelNames: ["pipeline_id", "type"], registers });
    this.#dropped = new Counter({ name: "adapter_dropped_total", help: "Readings dropped because the buffer was full while Kafka was unreachable", labelNames: ["pipeline_id"], registers });
    this.#sent = new Counter({ name: "adapter_kafka_records_total", help: "Readings acknowledged by Kafka (acks=all)", labelNames: ["pipeline_id"], registers });
    this.#raw = new Counter({
      name: "adapter_raw_records_total",
      help: "Records other than readings (dead letters) handed to the publisher, by topic",
      labelNames: ["pipeline_id", "topic"],
      registers,
    });
    this.#buffered = new Gauge({ name: "adapter_buffered_records", help: "Readings waiting for Kafka", labelNames: ["pipeline_id"], registers });
    this.#latency = new Histogram({
      name: "adapter_read_latency_seconds",
      help: "Device read round-trip time",
      labelNames: ["pipeline_id", "device"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    for (const type of ["connection", "timeout", "protocol", "decode", "kafka", "buffer_overflow"]) this.#errors.inc({ ...labels, type }, 0);
    this.#readings.inc(labels, 0);
    this.#dropped.inc(labels, 0);
    const heartbeatTimeout = definition.heartbeatTimeoutMs?.(config) ?? Math.max(30_000, config.poll_interval_ms * 5);
    this.#tracker = new HealthTracker(heartbeatTimeout);
    this.#producer = options.sender ? undefined : new ReliableProducer(connectionFromBootstrap(config.output.kafka_bootstrap, config.adapter_id), "adapter");
    this.#publisher = new Publisher(options.sender ?? this.#producer!, {
      maxRecords: config.buffer.max_records,
      maxBatch: config.buffer.max_batch,
      lingerMs: config.buffer.linger_ms,
    }, {
      sent: (n, batch) => {
        const raw = this.#rawTotal > 0 ? batch.reduce((count, r) => count + (this.#rawRecords.has(r) ? 1 : 0), 0) : 0;
        this.#rawSentTotal += raw;
        this.#sentTotal += n - raw;
        this.#sent.inc(labels, n - raw);
        this.#buffered.set(labels, this.#publisher.buffered);
      },
      dropped: (n, reason) => {
        this.#droppedTotal += n;
        this.#dropped.inc(labels, n);
        this.#errors.inc({ ...labels, type: "buffer_overflow" }, 1);
        this.#tracker.error();
        this.log.error({ dropped: n, dropped_total: this.#droppedTotal, reason }, "readings dropped");
      },
      kafkaState: (state, error) => {
        this.#tracker.kafka = state;
        if (state === "down") {
          this.#errors.inc({ ...labels, type: "kafka" });
          this.log.warn({ err: (error as Error)?.message, buffered: this.#publisher.buffered }, "Kafka unreachable; buffering readings");
        } else {
          this.log.info({ buffered: this.#publisher.buffered }, "Kafka connection ok");
        }
      },
    });
  }

  #emit(samples: Sample[]): void {
    if (samples.length === 0) return;
    this.#publisher.push(this.#readingRecords(samples));
    this.#buffered.set({ pipeline_id: this.config.pipeline_id }, this.#publisher.buffered);
  }

  #emitAndConfirm(samples: Sample[]): Promise<void> {
    if (samples.length === 0) return Promise.resolve();
    const confirmed = this.#publisher.pushAndConfirm(this.#readingRecords(samples));
    this.#buffered.set({ pipeline_id: this.config.pipeline_id }, this.#publisher.buffered);
    return confirmed;
  }

  /** Envelopes and counts readings about to be handed to the publisher. */
  #readingRecords(samples: Sample[]): OutgoingRecord[] {
    const now = new Date();
    const records: OutgoingRecord[] = samples.map((s) => {
      const reading = toReading(s, this.config, this.definition.version, this.#host, now);
      return { topic: this.config.output.topic, key: readingKey(reading), value: JSON.stringify(reading), headers: readingHeaders() };
    });
    this.#readTotal += samples.length;
    this.#readings.inc({ pipeline_id: this.config.pipeline_id }, samples.length);
    this.#tracker.readings(samples.length);
    return records;
  }

  #emitRaw(raw: RawRecord[]): Promise<void> {
    const records: OutgoingRecord[] = raw.map((r) => ({ topic: r.topic, value: r.value, ...(r.key === undefined ? {} : { key: r.key }), ...(r.headers ? { headers: r.headers } : {}) }));
    for (const r of records) {
      this.#rawRecords.add(r);
      this.#raw.inc({ pipeline_id: this.config.pipeline_id, topic: r.topic });
    }
    this.#rawTotal += records.length;
    const confirmed = this.#publisher.pushAndConfirm(records);
    this.#buffered.set({ pipeline_id: this.config.pipeline_id }, this.#publisher.buffered);
    return confirmed;
  }

  #serveHealth() {
    return Bun.serve({
      hostname: this.config.health.host,
      port: this.config.health.port,
      fetch: async (request) => {
        const { pathname } = new URL(request.url);
        if (pathname === "/health") {
          const body = this.#tracker.body(this.#publisher.buffered, this.#droppedTotal);
          return Response.json(body, { status: body.status === "unhealthy" ? 503 : 200 });
        }
        if (pathname === "/metrics") {
          return new Response(await this.#registry.metrics(), { headers: { "content-type": this.#registry.contentType } });
        }
        return new Response("not found", { status: 404 });
      },
    });
  }

  async run(): Promise<number> {
    const server = this.#serveHealth();
    this.log.info({ health_port: server.port, topic: this.config.output.topic }, "adapter starting");
    const instance = this.definition.create(this.config, {
      log: this.log,
      emit: (samples) => this.#emit(samples),
      emitAndConfirm: (samples) => this.#emitAndConfirm(samples),
      emitRaw: (records) => this.#emitRaw(records),
      recordError: (type: ErrorType, source: string, error: unknown) => {
        this.#errors.inc({ pipeline_id: this.config.pipeline_id, type });
        this.#tracker.error();
        this.log.warn({ type, source, err: (error as Error)?.message ?? String(error) }, "read error");
      },
      readLatency: this.#latency,
      heartbeat: () => this.#tracker.heartbeat(),
    });
    const stopRequested = new Promise<string>((resolve) => {
      process.once("SIGTERM", () => resolve("SIGTERM"));
      process.once("SIGINT", () => resolve("SIGINT"));
      this.options.signal?.addEventListener("abort", () => resolve("abort"), { once: true });
    });
    await instance.start();
    const signal = await stopRequested;
    const hardStop = setTimeout(() => {
      this.log.error({ budget_ms: SHUTDOWN_BUDGET_MS }, "shutdown budget exceeded; exiting");
      process.exit(EXIT_FAILURE);
    }, SHUTDOWN_BUDGET_MS);
    this.log.info({ signal }, "stopping: no new reads, flushing to Kafka");
    await instance.stop();
    const flushed = await this.#publisher.flush(FLUSH_BUDGET_MS);
    this.#publisher.close();
    await this.#producer?.close().catch(() => undefined);
    server.stop(true);
    clearTimeout(hardStop);
    const summary = {
      readings_total: this.#readTotal,
      sent_total: this.#sentTotal,
      dropped_total: this.#droppedTotal,
      unsent: this.#publisher.buffered,
      ...(this.#rawTotal > 0 ? { raw_total: this.#rawTotal, raw_sent_total: this.#rawSentTotal } : {}),
    };
    if (flushed) this.log.info(summary, "adapter stopped");
    else this.log.error(summary, "adapter stopped with readings not acknowledged by Kafka");
    return flushed ? EXIT_OK : EXIT_FAILURE;
  }
}
