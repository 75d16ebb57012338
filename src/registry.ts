import type { Static, TObject } from "@sinclair/typebox";
import type { Histogram } from "prom-client";
import type { FieldError } from "./config/schema-errors.ts";
import type { Quality } from "./envelope/reading.ts";
import type { Logger } from "./log/logger.ts";

export type Stability = "stable" | "beta" | "experimental";

/** What a protocol reads; the runtime turns it into the seed's envelope. */
export interface Sample {
  asset_id: string;
  parameter: string;
  value: number | boolean | string | null;
  unit?: string;
  quality: Quality;
  /** The device's own timestamp, or the sample time when the device has no clock (time_source: gateway). */
  device_time: Date;
  time_source: "device" | "gateway";
  status_text?: string;
  error?: string;
  /** Extra protocol facts for the envelope's metadata (e.g. OPC UA server_time); never overrides the runtime's own keys. */
  metadata?: Record<string, string>;
}

export type ErrorType = "connection" | "timeout" | "protocol" | "decode" | "config";

/** A Kafka record written as given, outside the reading envelope: dead letters and other side records. */
export interface RawRecord {
  topic: string;
  key?: string;
  value: string;
  headers?: Record<string, string>;
}

export interface AdapterContext {
  log: Logger;
  /** Hands samples to the publisher; never blocks the protocol loop. */
  emit(samples: Sample[]): void;
  /**
   * `emit`, plus a promise that resolves once Kafka has acknowledged every one of these readings
   * (acks=all): for sources that acknowledge a message only after Kafka has it (MQTT QoS 1/2).
   * Rejects when one of them is dropped (buffer full) or the adapter stops with it unsent. The
   * promise is already handled, so ignoring it is safe. Optional so that hand-made contexts
   * (connection tests) need not provide it; the runtime always does.
   */
  emitAndConfirm?(samples: Sample[]): Promise<void>;
  /**
   * Writes records as given (own topic, key, value, headers), in order with the readings, through
   * the same bounded buffer: dead letters for `dlq.invalid_telemetry`. Counted apart from readings
   * (`adapter_raw_records_total{topic}`). Resolves/rejects like `emitAndConfirm`.
   */
  emitRaw?(records: RawRecord[]): Promise<void>;
  recordError(type: ErrorType, source: string, error: unknown): void;
  readLatency: Histogram<string>;
  /** Called by the adapter's main loop on every cycle; a loop that stops calling it is reported unhealthy. */
  heartbeat(): void;
}

export interface AdapterInstance {
  start(): Promise<void>;
  /** Stop reading; resolves when no read is in flight, so every read sample has been emitted. */
  stop(): Promise<void>;
}

export interface AdapterDefinition<S extends TObject = TObject> {
  /** The `protocol` value in CONFIG_JSON. */
  protocol: string;
  version: string;
  stability: Stability;
  description: string;
  configSchema: S;
  /** Checks a schema cannot express (address syntax, read-size limits), each naming its field path. */
  validate?(config: Static<S>): FieldError[];
  create(config: Static<S>, context: AdapterContext): AdapterInstance;
  /** Reads once, without publishing: the UI's "Test connection". */
  connectionTest?(config: Static<S>, log: Logger): Promise<Sample[]>;
  /** Longest time a healthy main loop may go without a heartbeat. */
  heartbeatTimeoutMs?(config: Static<S>): number;
}

export function defineAdapter<S extends TObject>(definition: AdapterDefinition<S>): AdapterDefinition<S> {
  return definition;
}
