import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** Several sinks may share one registry: each metric is created once and labelled by sink id. */
function getOrCreate<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

export class SinkMetrics {
  readonly lag: Gauge<"sink" | "topic" | "partition">;
  readonly rows: Counter<"sink" | "topic">;
  readonly skipped: Counter<"sink">;
  readonly dlq: Counter<"sink" | "reason">;
  readonly errors: Counter<"sink" | "kind">;
  readonly batches: Counter<"sink">;
  readonly writeSeconds: Histogram<"sink">;
  readonly paused: Gauge<"sink">;
  readonly targetUp: Gauge<"sink">;
  readonly pending: Gauge<"sink">;

  constructor(registry: Registry, readonly sink: string) {
    const registers = [registry];
    this.lag = getOrCreate(registry, "sink_consumer_lag", () =>
      new Gauge({ name: "sink_consumer_lag", help: "Records between the group's committed offset and the end of each assigned partition", labelNames: ["sink", "topic", "partition"], registers }),
    );
    this.rows = getOrCreate(registry, "sink_rows_written_total", () =>
      new Counter({ name: "sink_rows_written_total", help: "Rows durably written to the target (rate() gives rows/s)", labelNames: ["sink", "topic"], registers }),
    );
    this.skipped = getOrCreate(registry, "sink_records_skipped_total", () =>
      new Counter({ name: "sink_records_skipped_total", help: "Re-delivered records found already durable in the target and not written again", labelNames: ["sink"], registers }),
    );
    this.dlq = getOrCreate(registry, "sink_dlq_records_total", () =>
      new Counter({ name: "sink_dlq_records_total", help: "Records sent to the DLQ, by reason", labelNames: ["sink", "reason"], registers }),
    );
    this.errors = getOrCreate(registry, "sink_errors_total", () =>
      new Counter({
        name: "sink_errors_total",
        help: "Errors by kind: rejected, unavailable, transient (writes), poison (mapping), commit, consumer, dlq",
        labelNames: ["sink", "kind"],
        registers,
      }),
    );
    this.batches = getOrCreate(registry, "sink_batches_total", () =>
      new Counter({ name: "sink_batches_total", help: "Batches written and committed", labelNames: ["sink"], registers }),
    );
    this.writeSeconds = getOrCreate(registry, "sink_batch_write_seconds", () =>
      new Histogram({
        name: "sink_batch_write_seconds",
        help: "Time to write one batch durably, retries included",
        labelNames: ["sink"],
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
        registers,
      }),
    );
    this.paused = getOrCreate(registry, "sink_paused", () =>
      new Gauge({ name: "sink_paused", help: "1 while consumption is paused (batch full or target down)", labelNames: ["sink"], registers }),
    );
    this.targetUp = getOrCreate(registry, "sink_target_up", () =>
      new Gauge({ name: "sink_target_up", help: "0 while the target is unreachable", labelNames: ["sink"], registers }),
    );
    this.pending = getOrCreate(registry, "sink_pending_records", () =>
      new Gauge({ name: "sink_pending_records", help: "Records consumed and not yet written", labelNames: ["sink"], registers }),
    );
    this.targetUp.set({ sink }, 1);
    this.paused.set({ sink }, 0);
    this.pending.set({ sink }, 0);
  }
}
