// xbee_modbus: listens to the local XBee's API frames on a serial port. RX packets (0x90) and IO
// samples (0x92) from the configured nodes become readings through virtual Modbus registers
// (see mapping.ts). Nothing is polled: frames are decoded as they arrive.
import type { Logger } from "../../src/log/logger.ts";
import { defineAdapter, type AdapterContext, type Sample } from "../../src/registry.ts";
import { backoffDelay } from "../../src/util/backoff.ts";
import { SerialPort, type SerialPortOptions } from "../serial/port.ts";
import {
  encodeFrame, encodeFrameData, FrameDecoder, FrameType, parseFrameData, XBeeFrameError,
  type AtCommandResponse, type DecodeEvent, type IoSample, type RxPacket,
} from "./codec.ts";
import { badReadings, compileNodes, ioReadings, matchNode, rxReadings, type FrameReadings, type XBeeNode } from "./mapping.ts";
import { XBeeConfigSchema, type XBeeConfig } from "./schema.ts";

const MAX_RECONNECT_DELAY_MS = 60_000;

function serialOptions(config: XBeeConfig): SerialPortOptions {
  const { source } = config;
  return { path: source.xbee_port, baudRate: source.baud_rate, parity: source.parity, dataBits: 8, stopBits: source.stop_bits };
}

export interface XBeeReceiverStats {
  frames: number;
  /** RX packets and IO samples from senders that match no configured node. */
  ignored: number;
  /** Frames with a good checksum but an impossible layout. */
  malformed: number;
}

/**
 * The receive loop: port → decoder → readings. The port is reopened with backoff when it cannot
 * be opened or goes away (USB adapter unplugged); a partial frame is dropped after frame_timeout_ms
 * of silence. Bad frames are counted (recordError "protocol") and skipped; nothing here throws.
 */
export class XBeeReceiver {
  readonly stats: XBeeReceiverStats = { frames: 0, ignored: 0, malformed: 0 };
  readonly #nodes: XBeeNode[];
  readonly #unknownSenders = new Set<string>();
  #decoder: FrameDecoder;
  #port: SerialPort | undefined;
  #running = false;
  #failures = 0;
  #reportedDown = false;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #expiry: ReturnType<typeof setTimeout> | undefined;
  #reconnect: ReturnType<typeof setTimeout> | undefined;
  #opening: Promise<void> | undefined;

  constructor(
    private readonly config: XBeeConfig,
    private readonly context: AdapterContext,
  ) {
    this.#nodes = compileNodes(config).nodes;
    this.#decoder = new FrameDecoder(config.source.api_mode);
  }

  get decoderStats() {
    return this.#decoder.stats;
  }

  async start(): Promise<void> {
    this.#running = true;
    this.#heartbeat = setInterval(() => this.context.heartbeat(), Math.min(this.config.poll_interval_ms, 5000));
    this.context.heartbeat();
    this.#opening = this.#open();
    await this.#opening;
  }

  async stop(): Promise<void> {
    this.#running = false;
    clearInterval(this.#heartbeat);
    clearTimeout(this.#reconnect);
    await this.#opening;
    // Whatever complete frames arrived are decoded synchronously on arrival; a partial one is dropped.
    clearTimeout(this.#expiry);
    await this.#port?.close();
    this.#port = undefined;
  }

  async #open(): Promise<void> {
    const path = this.config.source.xbee_port;
    try {
      const port = await SerialPort.open(serialOptions(this.config));
      if (!this.#running) {
        await port.close();
        return;
      }
      for (const warning of port.warnings) this.context.log.warn({ device: path }, warning);
      this.#port = port;
      this.#failures = 0;
      this.#reportedDown = false;
      this.#decoder = new FrameDecoder(this.config.source.api_mode);
      port.onData((chunk) => this.#onData(chunk));
      void port.closed.then((reason) => {
        if (this.#port !== port || !this.#running) return;
        this.#port = undefined;
        this.#lost(reason ?? new Error(`${path}: closed`));
      });
      this.context.log.info({ device: path, line: port.line, api_mode: this.config.source.api_mode }, "XBee port open");
    } catch (error) {
      if (this.#running) this.#lost(error as Error);
    }
  }

  #lost(error: Error): void {
    this.#failures++;
    this.context.recordError("connection", this.config.source.xbee_port, error);
    if (!this.#reportedDown) {
      this.#reportedDown = true;
      this.context.emit(badReadings(this.#nodes, error.message, new Date()));
    }
    if (!this.#running) return;
    const delay = backoffDelay(this.#failures, this.config.retry_policy.backoff_ms, Math.max(this.config.retry_policy.backoff_ms, MAX_RECONNECT_DELAY_MS));
    this.#reconnect = setTimeout(() => {
      this.#opening = this.#open();
    }, delay);
  }

  #onData(chunk: Uint8Array): void {
    this.#handle(this.#decoder.push(chunk));
    clearTimeout(this.#expiry);
    if (this.#decoder.pending) {
      this.#expiry = setTimeout(() => this.#handle(this.#decoder.expire()), this.config.source.frame_timeout_ms);
    }
  }

  #handle(events: DecodeEvent[]): void {
    const samples: Sample[] = [];
    const at = new Date();
    for (const event of events) {
      if (event.kind === "error") {
        this.context.recordError("protocol", this.config.source.xbee_port, new XBeeFrameError(`${event.error}: ${event.detail}`));
        continue;
      }
      let frame;
      try {
        frame = parseFrameData(event.data);
      } catch (error) {
        this.stats.malformed++;
        this.context.recordError("protocol", this.config.source.xbee_port, error);
        continue;
      }
      if (frame.type !== FrameType.RX_PACKET && frame.type !== FrameType.IO_SAMPLE) {
        if (frame.type === FrameType.MODEM_STATUS) this.context.log.info({ status: (frame as { body: Uint8Array }).body[0] }, "XBee modem status");
        continue;
      }
      const data = frame as RxPacket | IoSample;
      const node = matchNode(this.#nodes, data.source64);
      if (!node) {
        this.stats.ignored++;
        if (!this.#unknownSenders.has(data.source64)) {
          this.#unknownSenders.add(data.source64);
          this.context.log.info({ source64: data.source64 }, "frames from this XBee match no configured node_id; ignored");
        }
        continue;
      }
      this.stats.frames++;
      const result: FrameReadings = data.type === FrameType.RX_PACKET ? rxReadings(node, data, at) : ioReadings(node, data, at);
      for (const problem of result.problems) this.context.recordError("decode", data.source64, new Error(problem));
      samples.push(...result.samples);
    }
    this.context.emit(samples);
  }
}

/** Sends a local AT command and waits for its response (frame id 1). */
async function localAt(port: SerialPort, decoder: FrameDecoder, apiMode: 1 | 2, command: string, timeoutMs: number, onFrame: (events: DecodeEvent[]) => void): Promise<AtCommandResponse | undefined> {
  let resolve!: (response: AtCommandResponse | undefined) => void;
  const answer = new Promise<AtCommandResponse | undefined>((r) => (resolve = r));
  const stopListening = port.onData((chunk) => {
    const events = decoder.push(chunk);
    onFrame(events);
    for (const event of events) {
      if (event.kind !== "frame") continue;
      try {
        const frame = parseFrameData(event.data);
        if (frame.type === FrameType.AT_COMMAND_RESPONSE && (frame as AtCommandResponse).command === command) resolve(frame as AtCommandResponse);
      } catch {
        // malformed frames are no answer
      }
    }
  });
  const timer = setTimeout(() => resolve(undefined), timeoutMs);
  await port.write(encodeFrame(encodeFrameData({ type: FrameType.AT_COMMAND, frameId: 1, command, parameter: new Uint8Array() }), apiMode));
  const response = await answer;
  clearTimeout(timer);
  stopListening();
  return response;
}

const CONNECTION_TEST_AT_TIMEOUT_MS = 2000;
const CONNECTION_TEST_LISTEN_MS = 3000;

export default defineAdapter({
  protocol: "xbee_modbus",
  version: "1.0.0",
  stability: "beta",
  description: "Receives XBee API frames (RX packets, IO samples) from a local XBee on a serial port and decodes them as virtual Modbus registers",
  configSchema: XBeeConfigSchema,
  validate: (config) => compileNodes(config).errors,
  create(config, context) {
    const receiver = new XBeeReceiver(config, context);
    return {
      start: () => receiver.start(),
      stop: () => receiver.stop(),
    };
  },
  /**
   * Asks the local XBee for its API mode (AT AP): an answer proves the port, the baud rate and the
   * API mode; then listens for a few seconds and returns what the configured nodes sent.
   */
  async connectionTest(config, log: Logger) {
    const port = await SerialPort.open(serialOptions(config));
    const samples: Sample[] = [];
    try {
      const decoder = new FrameDecoder(config.source.api_mode);
      const { nodes } = compileNodes(config);
      const collect = (events: DecodeEvent[]) => {
        for (const event of events) {
          if (event.kind !== "frame") continue;
          try {
            const frame = parseFrameData(event.data);
            if (frame.type !== FrameType.RX_PACKET && frame.type !== FrameType.IO_SAMPLE) continue;
            const data = frame as RxPacket | IoSample;
            const node = matchNode(nodes, data.source64);
            if (node) samples.push(...(data.type === FrameType.RX_PACKET ? rxReadings(node, data, new Date()) : ioReadings(node, data, new Date())).samples);
          } catch {
            // skipped, as the adapter would
          }
        }
      };
      const response = await localAt(port, decoder, config.source.api_mode, "AP", CONNECTION_TEST_AT_TIMEOUT_MS, collect);
      if (!response) {
        throw new Error(`no answer from the XBee on ${config.source.xbee_port} to AT AP within ${CONNECTION_TEST_AT_TIMEOUT_MS} ms: check baud_rate (the XBee's BD) and api_mode (its AP)`);
      }
      const apiMode = response.data[0];
      if (response.status === 0 && apiMode !== undefined && apiMode !== config.source.api_mode) {
        throw new Error(`the XBee runs API mode ${apiMode} (AP=${apiMode}) but api_mode is ${config.source.api_mode}`);
      }
      log.info({ device: config.source.xbee_port, api_mode: apiMode }, "XBee answered AT AP");
      const stop = port.onData((chunk) => collect(decoder.push(chunk)));
      await Bun.sleep(CONNECTION_TEST_LISTEN_MS);
      stop();
    } finally {
      await port.close();
    }
    return samples;
  },
});
