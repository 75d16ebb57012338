/**
 * Counters behind the seed's /health body. Pure apart from the clock, which is injected so the
 * status rules are testable.
 */
export type AdapterStatus = "healthy" | "degraded" | "unhealthy";

export interface AdapterHealthBody {
  status: AdapterStatus;
  last_reading_at: string | null;
  readings_per_sec: number;
  errors_last_minute: number;
  kafka_connection: "ok" | "down" | "connecting";
  buffered_records: number;
  dropped_total: number;
}

const RATE_WINDOW_MS = 10_000;
const ERROR_WINDOW_MS = 60_000;

export class HealthTracker {
  #readingTimes: Array<[number, number]> = [];
  #errorTimes: number[] = [];
  #lastReadingAt: number | null = null;
  #lastHeartbeat: number;
  kafka: AdapterHealthBody["kafka_connection"] = "connecting";

  constructor(
    private readonly heartbeatTimeoutMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#lastHeartbeat = now();
  }

  readings(count: number): void {
    const t = this.now();
    this.#lastReadingAt = t;
    this.#readingTimes.push([t, count]);
  }

  error(): void {
    this.#errorTimes.push(this.now());
  }

  heartbeat(): void {
    this.#lastHeartbeat = this.now();
  }

  #prune(t: number): void {
    while (this.#readingTimes.length && this.#readingTimes[0]![0] < t - RATE_WINDOW_MS) this.#readingTimes.shift();
    while (this.#errorTimes.length && this.#errorTimes[0]! < t - ERROR_WINDOW_MS) this.#errorTimes.shift();
  }

  /**
   * unhealthy: the main loop stalled (a restart helps). degraded: devices failing or Kafka down
   * (a restart does not help, so the supervisor leaves it running and shows it).
   */
  body(buffered: number, dropped: number): AdapterHealthBody {
    const t = this.now();
    this.#prune(t);
    const readings = this.#readingTimes.reduce((sum, [, n]) => sum + n, 0);
    const errors = this.#errorTimes.length;
    const stalled = t - this.#lastHeartbeat > this.heartbeatTimeoutMs;
    const status: AdapterStatus = stalled ? "unhealthy" : errors > 0 || this.kafka !== "ok" ? "degraded" : "healthy";
    return {
      status,
      last_reading_at: this.#lastReadingAt === null ? null : new Date(this.#lastReadingAt).toISOString(),
      readings_per_sec: Math.round((readings / (RATE_WINDOW_MS / 1000)) * 10) / 10,
      errors_last_minute: errors,
      kafka_connection: this.kafka,
      buffered_records: buffered,
      dropped_total: dropped,
    };
  }
}
