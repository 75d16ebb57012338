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
}

export type ErrorType = "connection" | "timeout" | "protocol" | "decode" | "config";

export interface AdapterContext {
  log: Logger;
  /** Hands samples to the publisher; never blocks the protocol loop. */
  emit(samples: Sample[]): void;
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
