import type { AdapterContext, ErrorType, Sample } from "../../src/registry.ts";
import { backoffDelay } from "../../src/util/backoff.ts";
import { decodeField, isFiniteReading } from "./codec.ts";
import type { CompiledField, CompiledUnit, Workarounds } from "./mapping.ts";
import { splitResponse, type ReadRequest } from "./plan.ts";
import { Sleeper } from "../../src/util/sleeper.ts";

export type ReadErrorKind = "timeout" | "connection" | "protocol";

export class ModbusReadError extends Error {
  constructor(
    readonly kind: ReadErrorKind,
    message: string,
    readonly exceptionCode?: number,
  ) {
    super(message);
    this.name = "ModbusReadError";
  }
}

/** What the poller needs from a wire: TCP and RTU differ only here. */
export interface ModbusTransport {
  readonly name: string;
  readonly isOpen: boolean;
  connect(): Promise<void>;
  close(): Promise<void>;
  read(request: ReadRequest, timeoutMs: number): Promise<number[] | boolean[]>;
}

export interface PollerOptions {
  pollIntervalMs: number;
  timeoutMs: number;
  maxRetries: number;
  backoffMs: number;
  maxBackoffMs: number;
  workarounds: Workarounds;
}

interface UnitState {
  unit: CompiledUnit;
  failing: boolean;
  failures: number;
  retryAt: number;
  /** Reads the device rejects while its other reads succeed (e.g. one unmapped address). */
  failingRequests: Set<ReadRequest>;
}

const ERROR_TYPE: Record<ReadErrorKind, ErrorType> = { timeout: "timeout", connection: "connection", protocol: "protocol" };

/**
 * Polls the units behind one connection. Each connection has its own loop, so a dead device
 * delays only the units that share its wire; a dead unit is backed off so that it does not eat
 * its neighbours' poll time. A failure is reported once as BAD quality per tag, then counted.
 */
export class ConnectionPoller {
  readonly #units: UnitState[];
  #running = false;
  #loop: Promise<void> | undefined;
  #connectFailures = 0;
  readonly #sleeper = new Sleeper();

  constructor(
    private readonly transport: ModbusTransport,
    units: CompiledUnit[],
    private readonly options: PollerOptions,
    private readonly context: AdapterContext,
  ) {
    this.#units = units.map((unit) => ({ unit, failing: false, failures: 0, retryAt: 0, failingRequests: new Set() }));
  }

  start(): void {
    this.#running = true;
    this.#loop = this.#run();
  }

  /** Resolves after the cycle in flight has emitted its samples. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#sleeper.wake();
    await this.#loop;
    await this.transport.close().catch(() => undefined);
  }

  /** One cycle without the loop: the connection test. */
  async pollOnce(): Promise<void> {
    this.#running = true;
    try {
      this.context.emit(await this.#cycle());
    } finally {
      this.#running = false;
      await this.transport.close().catch(() => undefined);
    }
  }

  async #sleep(ms: number): Promise<void> {
    if (this.#running) await this.#sleeper.sleep(ms);
  }

  async #run(): Promise<void> {
    let nextCycle = Date.now();
    while (this.#running) {
      const samples = await this.#cycle();
      this.context.emit(samples);
      this.context.heartbeat();
      if (this.options.workarounds.close_connection_after_poll) await this.transport.close().catch(() => undefined);
      nextCycle += this.options.pollIntervalMs;
      const now = Date.now();
      // A cycle that overran skips the missed ticks instead of bursting to catch up.
      if (nextCycle < now) nextCycle = now + this.options.pollIntervalMs - ((now - nextCycle) % this.options.pollIntervalMs);
      await this.#sleep(nextCycle - now);
    }
  }

  async #ensureConnected(samples: Sample[]): Promise<boolean> {
    if (this.transport.isOpen) return true;
    try {
      await this.transport.connect();
      this.#connectFailures = 0;
      if (this.options.workarounds.pause_after_connect_ms > 0) await Bun.sleep(this.options.workarounds.pause_after_connect_ms);
      this.context.log.info({ device: this.transport.name }, "connected");
      return true;
    } catch (error) {
      this.#connectFailures++;
      this.context.recordError("connection", this.transport.name, error);
      for (const state of this.#units) this.#markFailing(state, samples, `connect to ${this.transport.name} failed: ${(error as Error).message}`);
      await this.#sleep(backoffDelay(this.#connectFailures, this.options.backoffMs, this.options.maxBackoffMs) - this.options.pollIntervalMs);
      return false;
    }
  }

  async #cycle(): Promise<Sample[]> {
    const samples: Sample[] = [];
    if (!(await this.#ensureConnected(samples))) return samples;
    for (const state of this.#units) {
      if (!this.#running && samples.length > 0) break;
      if (state.failing && Date.now() < state.retryAt) continue;
      const outcome = await this.#pollUnit(state, samples);
      if (outcome === "connection-lost") {
        for (const other of this.#units) if (other !== state) this.#markFailing(other, samples, `connection to ${this.transport.name} lost`);
        break;
      }
    }
    return samples;
  }

  async #pollUnit(state: UnitState, samples: Sample[]): Promise<"ok" | "failed" | "connection-lost"> {
    const unitSamples: Sample[] = [];
    const failed: Array<[ReadRequest, ModbusReadError]> = [];
    for (const [index, request] of state.unit.requests.entries()) {
      if (index > 0 && this.options.workarounds.pause_between_requests_ms > 0) await Bun.sleep(this.options.workarounds.pause_between_requests_ms);
      const result = await this.#readWithRetries(request);
      if (result instanceof ModbusReadError) {
        failed.push([request, result]);
        if (result.kind === "connection") break;
        continue;
      }
      state.failingRequests.delete(request);
      this.#decode(state.unit, request, result, new Date(), unitSamples);
    }
    const lost = failed.find(([, error]) => error.kind === "connection");
    if (lost) {
      this.#markFailing(state, samples, lost[1].message);
      await this.transport.close().catch(() => undefined);
      return "connection-lost";
    }
    if (unitSamples.length === 0 && failed.length > 0) {
      this.#markFailing(state, samples, failed[0]![1].message);
      return "failed";
    }
    if (state.failing) this.context.log.info({ device: this.transport.name, unit_id: state.unit.unitId }, "device responding again");
    state.failing = false;
    state.failures = 0;
    for (const [request, error] of failed) this.#markRequestFailing(state, request, unitSamples, error.message);
    samples.push(...unitSamples);
    return "ok";
  }

  /** A read the device keeps rejecting reports BAD for its fields once, like a dead unit does. */
  #markRequestFailing(state: UnitState, request: ReadRequest, samples: Sample[], reason: string): void {
    if (state.failingRequests.has(request)) return;
    state.failingRequests.add(request);
    const fields = request.fields.map((slice) => state.unit.fields.get(slice.id)!);
    samples.push(...this.#badSamples(state.unit, fields, reason));
  }

  #badSamples(unit: CompiledUnit, fields: Iterable<CompiledField>, reason: string): Sample[] {
    const at = new Date();
    return [...fields].map((field) => ({
      asset_id: unit.assetId,
      parameter: field.param,
      ...(field.unit === undefined ? {} : { unit: field.unit }),
      value: null,
      quality: "BAD" as const,
      device_time: at,
      time_source: "gateway" as const,
      error: reason,
    }));
  }

  async #readWithRetries(request: ReadRequest): Promise<number[] | boolean[] | ModbusReadError> {
    let attempt = 0;
    for (;;) {
      const started = performance.now();
      try {
        const data = await this.transport.read(request, this.options.timeoutMs);
        this.context.readLatency.observe({ device: this.transport.name }, (performance.now() - started) / 1000);
        return data;
      } catch (raw) {
        const error = raw instanceof ModbusReadError ? raw : new ModbusReadError("connection", (raw as Error).message);
        this.context.recordError(ERROR_TYPE[error.kind], `${this.transport.name} unit ${request.unitId} fc${request.functionCode}@${request.address}`, error);
        // An exception response is the device's answer; asking again gives the same one.
        if (error.kind !== "timeout" || attempt >= this.options.maxRetries || !this.#running) return error;
        attempt++;
      }
    }
  }

  #decode(unit: CompiledUnit, request: ReadRequest, data: number[] | boolean[], at: Date, out: Sample[]): void {
    const slices = splitResponse<number | boolean>(request, data);
    for (const slice of request.fields) {
      const field = unit.fields.get(slice.id)!;
      const base = { asset_id: unit.assetId, parameter: field.param, ...(field.unit === undefined ? {} : { unit: field.unit }), device_time: at, time_source: "gateway" as const };
      try {
        const value = decodeField(field.spec, slices.get(slice.id) as number[] | boolean[]);
        out.push(isFiniteReading(value)
          ? { ...base, value, quality: "GOOD" }
          : { ...base, value: null, quality: "BAD", error: `register ${field.key} holds ${value}` });
      } catch (error) {
        this.context.recordError("decode", `${this.transport.name} unit ${unit.unitId} ${field.key}`, error);
        out.push({ ...base, value: null, quality: "BAD", error: `decode ${field.key}: ${(error as Error).message}` });
      }
    }
  }

  /** Reports BAD once per outage, so a dead device does not flood Kafka with the same news. */
  #markFailing(state: UnitState, samples: Sample[], reason: string): void {
    state.failures++;
    state.retryAt = Date.now() + backoffDelay(state.failures, this.options.backoffMs, this.options.maxBackoffMs);
    if (state.failing) return;
    state.failing = true;
    this.context.log.warn({ device: this.transport.name, unit_id: state.unit.unitId, reason }, "device not responding");
    state.failingRequests.clear();
    samples.push(...this.#badSamples(state.unit, state.unit.fields.values(), reason));
  }
}
