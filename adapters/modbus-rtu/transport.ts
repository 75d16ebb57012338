// Modbus RTU master over a serial line: one request on the bus at a time, the t3.5 silence kept
// before each request, the response framed by its expected length and checked by CRC.
import type { ReadRequest } from "../modbus/plan.ts";
import { ModbusReadError, type ModbusTransport } from "../modbus/poller.ts";
import { SerialPort, type SerialPortOptions } from "../serial/port.ts";
import { DEFAULT_LINE, formatLine, type LineSettings } from "../serial/termios.ts";
import { parseReadResponse, readRequestFrame, rtuTiming, scanResponse, type RtuTiming } from "./frame.ts";

/** What the transport needs from a port; SerialPort, or a fake in tests. */
export interface SerialLink {
  readonly isOpen: boolean;
  readonly line: LineSettings;
  readonly warnings: readonly string[];
  readonly closed: Promise<Error | undefined>;
  onData(listener: (chunk: Uint8Array) => void): () => void;
  write(data: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export interface ModbusRtuTransportOptions {
  serial: SerialPortOptions;
  /** Response timeouts of particular slaves (slow devices); others use the poller's timeout. */
  unitTimeoutsMs?: ReadonlyMap<number, number>;
  /** Replaces the spec's t3.5 (from the baud rate) for devices that need a longer turnaround. */
  interFrameMs?: number;
  /**
   * A slave whose last this-many requests all timed out is presumed dead: its further requests
   * fail at once, without using the bus, until `deadUnitWindowMs` has passed since its last real
   * timeout; then one real request probes it. So a dead slave costs the bus one timeout per probe,
   * not one per request and retry. Default: never presumed dead.
   */
  presumeDeadAfterTimeouts?: number;
  deadUnitWindowMs?: number;
  /** Called once per open with settings the port could not apply as asked. */
  onWarning?: (message: string) => void;
  /** Opens the port; tests pass a fake. */
  open?: (options: SerialPortOptions) => Promise<SerialLink>;
}

/**
 * A complete frame that fails its CRC is reported once the line has stayed quiet this long after
 * it (plus t3.5) rather than at the timeout: more bytes could still turn it into a good frame, and
 * USB serial adapters deliver in bursts (an FTDI chip's latency timer is 16 ms by default).
 */
const CRC_SETTLE_MS = 25;

interface PendingResponse {
  request: ReadRequest;
  check: () => void;
}

export class ModbusRtuTransport implements ModbusTransport {
  readonly name: string;
  readonly timing: RtuTiming;
  #port: SerialLink | undefined;
  #rx: number[] = [];
  /** When the last byte arrived, and when our last request finished leaving the UART (ms, performance.now()). */
  #lastRxAt = -Infinity;
  #txEndsAt = -Infinity;
  #pending: PendingResponse | undefined;
  #lostReason: Error | undefined;
  /** Requests are strictly sequential on a bus; this chain enforces it even if callers overlap. */
  #queue: Promise<unknown> = Promise.resolve();
  /** Consecutive timeouts per slave, and when the last one ended. */
  readonly #silentUnits = new Map<number, { timeouts: number; lastAt: number }>();
  /** Bytes that arrived outside any response (late answers, noise), for diagnostics. */
  discardedBytes = 0;

  constructor(private readonly options: ModbusRtuTransportOptions) {
    this.name = options.serial.path;
    const baudRate = options.serial.baudRate ?? DEFAULT_LINE.baudRate;
    const timing = rtuTiming(baudRate);
    this.timing = options.interFrameMs === undefined ? timing : { ...timing, interFrameMs: options.interFrameMs };
  }

  get isOpen(): boolean {
    return this.#port?.isOpen ?? false;
  }

  get line(): LineSettings | undefined {
    return this.#port?.line;
  }

  async connect(): Promise<void> {
    await this.close();
    let port: SerialLink;
    try {
      port = await (this.options.open ?? SerialPort.open)(this.options.serial);
    } catch (error) {
      throw new ModbusReadError("connection", (error as Error).message);
    }
    for (const warning of port.warnings) this.options.onWarning?.(warning);
    this.#port = port;
    this.#rx = [];
    this.#lostReason = undefined;
    port.onData((chunk) => this.#onData(chunk));
    void port.closed.then((reason) => {
      if (this.#port !== port) return;
      this.#lostReason = reason ?? new Error("port closed");
      this.#pending?.check();
    });
  }

  async close(): Promise<void> {
    const port = this.#port;
    this.#port = undefined;
    if (port) {
      // A read in flight ends now rather than at its timeout.
      this.#lostReason = new Error("port closed");
      this.#pending?.check();
    }
    await port?.close().catch(() => undefined);
  }

  read(request: ReadRequest, timeoutMs: number): Promise<number[] | boolean[]> {
    const result = this.#queue.then(() => this.#readTracked(request, this.options.unitTimeoutsMs?.get(request.unitId) ?? timeoutMs));
    this.#queue = result.catch(() => undefined);
    return result;
  }

  #onData(chunk: Uint8Array): void {
    this.#lastRxAt = performance.now();
    if (!this.#pending) {
      this.discardedBytes += chunk.length;
      return;
    }
    for (const byte of chunk) this.#rx.push(byte);
    this.#pending.check();
  }

  async #readTracked(request: ReadRequest, timeoutMs: number): Promise<number[] | boolean[]> {
    const unit = request.unitId;
    const silent = this.#silentUnits.get(unit);
    const threshold = this.options.presumeDeadAfterTimeouts ?? Infinity;
    if (silent && silent.timeouts >= threshold && performance.now() - silent.lastAt < (this.options.deadUnitWindowMs ?? 0)) {
      throw new ModbusReadError("timeout", `${this.name} unit ${unit}: presumed dead after ${silent.timeouts} consecutive timeouts; not asked again yet`);
    }
    try {
      const values = await this.#read(request, timeoutMs);
      this.#silentUnits.delete(unit);
      return values;
    } catch (error) {
      if (error instanceof ModbusReadError && error.kind === "timeout") {
        this.#silentUnits.set(unit, { timeouts: (silent?.timeouts ?? 0) + 1, lastAt: performance.now() });
      } else if (error instanceof ModbusReadError && error.kind === "protocol") {
        this.#silentUnits.delete(unit); // it answered, even if not well
      }
      throw error;
    }
  }

  async #read(request: ReadRequest, timeoutMs: number): Promise<number[] | boolean[]> {
    const where = `${this.name} unit ${request.unitId}`;
    const port = this.#port;
    if (!port?.isOpen || this.#lostReason) throw new ModbusReadError("connection", `${where}: ${this.#lostReason?.message ?? "not connected"}`);

    await this.#waitForSilence(where, timeoutMs);
    this.discardedBytes += this.#rx.length;
    this.#rx = [];
    const frame = readRequestFrame(request);
    let fail: (error: ModbusReadError) => void = () => undefined;
    const response = new Promise<number[] | boolean[]>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let settleTimer: ReturnType<typeof setTimeout> | undefined;
      let settled = false;
      const pending: PendingResponse = { request, check: () => undefined };
      const settle = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(settleTimer);
        if (this.#pending === pending) this.#pending = undefined;
        outcome();
      };
      fail = (error) => settle(() => reject(error));
      const crcError = () => new ModbusReadError("protocol", `${where}: response failed its CRC check (${this.#rx.length} bytes received)`);
      pending.check = () => {
        if (this.#lostReason) return fail(new ModbusReadError("connection", `${where}: ${this.#lostReason.message}`));
        const scan = scanResponse(request, this.#rx);
        clearTimeout(settleTimer);
        if (scan.kind === "crc") {
          settleTimer = setTimeout(() => fail(crcError()), CRC_SETTLE_MS + this.timing.interFrameMs);
          return;
        }
        if (scan.kind !== "frame") return;
        const bytes = this.#rx.slice(scan.start, scan.end);
        this.discardedBytes += this.#rx.length - bytes.length;
        this.#rx = [];
        settle(() => {
          try {
            resolve(parseReadResponse(request, bytes, where));
          } catch (error) {
            reject(error);
          }
        });
      };
      this.#pending = pending;
      // The response timeout runs from the moment the request has left the UART.
      const onTimeout = () => {
        const received = this.#rx.length;
        fail(scanResponse(request, this.#rx).kind === "crc"
          ? crcError()
          : new ModbusReadError("timeout", received === 0
            ? `${where}: no response within ${timeoutMs} ms`
            : `${where}: incomplete response within ${timeoutMs} ms (${received} bytes)`));
      };
      const txTime = frame.length * this.timing.characterMs;
      this.#txEndsAt = performance.now() + txTime;
      timer = setTimeout(onTimeout, txTime + timeoutMs);
    });
    try {
      await port.write(frame);
      this.#txEndsAt = Math.max(this.#txEndsAt, performance.now());
    } catch (error) {
      fail(new ModbusReadError("connection", `${where}: ${(error as Error).message}`));
    }
    return response;
  }

  /**
   * Frames are separated by at least 3.5 character times of silence: a request sent sooner after
   * the previous frame (ours, or a late reply from a slave that timed out) would be read by the
   * slaves as its continuation. A bus that never goes quiet for that long is reported as a timeout.
   */
  async #waitForSilence(where: string, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const quietAt = Math.max(this.#lastRxAt, this.#txEndsAt) + this.timing.interFrameMs;
      const now = performance.now();
      if (now >= quietAt) return;
      if (now > deadline) throw new ModbusReadError("timeout", `${where}: the bus did not go quiet for ${this.timing.interFrameMs.toFixed(2)} ms within ${timeoutMs} ms`);
      await Bun.sleep(Math.max(1, Math.ceil(quietAt - now)));
    }
  }

  describe(): string {
    const line = this.#port?.line ?? { ...DEFAULT_LINE, ...this.options.serial };
    return `${this.name} ${formatLine(line as LineSettings)}, t3.5 = ${this.timing.interFrameMs.toFixed(2)} ms`;
  }
}
