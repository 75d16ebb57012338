// XBee simulator: the local (coordinator) XBee of a wireless plant, on a serial device. Every node
// sends its RX packet and/or IO sample on its interval; --noise injects line noise, frames with a
// bad checksum and truncated frames between them, from a seeded generator (reproducible runs).
// The simulated coordinator also answers local AT commands (AP, ND, NI, SH, SL) and remote ones.
import { SerialPort } from "../serial/port.ts";
import { DEFAULT_LINE, type LineSettings } from "../serial/termios.ts";
import {
  encodeFrame, encodeFrameData, encodeNodeDiscovery, FrameDecoder, FrameType, parseFrameData,
  type AtCommand, type RemoteAtCommand, type XBeeFrame,
} from "./codec.ts";
import { nodeBank, type NodeFrames, type XBeePlant, type XBeePlantNode } from "./plant.ts";

export interface XBeeSimulatorOptions {
  device: string;
  plant: XBeePlant;
  line?: Partial<LineSettings>;
  /** Probability (0-1), after each frame, of a noise event: garbage bytes, a bad-checksum frame or a truncated frame. */
  noise?: number;
  /** Noise seed; default the plant's noise_seed. */
  seed?: number;
  /** Plant time in seconds; default: seconds since start. */
  clock?: () => number;
  /** false: frames are sent only by tick() (tests). Default true: each node on its own interval. */
  autoSend?: boolean;
  onWarning?: (message: string) => void;
}

export interface XBeeSimulatorStats {
  /** Well-formed data frames sent, in total and per node name. */
  framesSent: number;
  rxPackets: number;
  ioSamples: number;
  byNode: Record<string, number>;
  noise: { garbage: number; badChecksum: number; truncated: number };
  atCommands: number;
}

export interface XBeeSimulator {
  readonly stats: XBeeSimulatorStats;
  /** Sends every node's frames once, now (with noise as configured). */
  tick(): Promise<void>;
  /** Sends one node's frames now. */
  send(nodeName: string): Promise<void>;
  stop(): Promise<void>;
}

/** mulberry32: small, fast, seeded. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const AT_OK = 0;
const AT_INVALID_COMMAND = 2;
const REMOTE_TX_FAILURE = 4;
const RX_OPTIONS_ACKNOWLEDGED = 0x01;
const ZIGBEE_PROFILE = 0xc105;
const DIGI_MANUFACTURER = 0x101e;
const ROUTER = 1;

/** A node's data frames (frame data, type first) from its current values. */
export function nodeFrames(node: XBeePlantNode, values: NodeFrames): XBeeFrame[] {
  const frames: XBeeFrame[] = [];
  if (values.payload) {
    frames.push({ type: FrameType.RX_PACKET, source64: node.address64, source16: node.address16, options: RX_OPTIONS_ACKNOWLEDGED, data: values.payload });
  }
  if (values.analog || values.digital) {
    frames.push({
      type: FrameType.IO_SAMPLE, source64: node.address64, source16: node.address16, options: RX_OPTIONS_ACKNOWLEDGED,
      digitalMask: node.digitalMask, analogMask: node.analogMask, digital: values.digital ?? new Map(), analog: values.analog ?? new Map(),
    });
  }
  return frames;
}

export async function startXBeeSimulator(options: XBeeSimulatorOptions): Promise<XBeeSimulator> {
  const { plant } = options;
  const noise = options.noise ?? 0;
  if (!(noise >= 0 && noise <= 1)) throw new RangeError(`noise must be a probability 0-1, got ${noise}`);
  const started = performance.now();
  const clock = options.clock ?? (() => (performance.now() - started) / 1000);
  const random = seededRandom(options.seed ?? plant.noiseSeed);
  const mode = plant.apiMode;
  const port = await SerialPort.open({ path: options.device, ...DEFAULT_LINE, ...options.line });
  for (const warning of port.warnings) options.onWarning?.(warning);

  const stats: XBeeSimulatorStats = {
    framesSent: 0, rxPackets: 0, ioSamples: 0, byNode: Object.fromEntries(plant.nodes.map((n) => [n.name, 0])),
    noise: { garbage: 0, badChecksum: 0, truncated: 0 }, atCommands: 0,
  };
  const banks = new Map(plant.nodes.map((node) => [node.name, { node, values: nodeBank(node, clock) }]));
  let stopped = false;
  let writes: Promise<void> = Promise.resolve();
  const write = (bytes: Uint8Array) => {
    writes = writes.then(() => (stopped ? undefined : port.write(bytes))).catch(() => undefined);
    return writes;
  };

  /**
   * One noise event after `frame`: garbage, a copy of it with a wrong checksum byte (so it can never
   * pass for a good frame), or a copy cut short. The next good frame follows it.
   */
  const noiseBytes = (frame: Uint8Array): Uint8Array => {
    const kind = random();
    if (kind < 1 / 3) {
      stats.noise.garbage++;
      // Line noise, start delimiters included (mode 2 resynchronises on them; mode 1 rescans).
      return Uint8Array.from({ length: 1 + Math.floor(random() * 16) }, () => (random() < 0.15 ? 0x7e : Math.floor(random() * 256)));
    }
    if (kind < 2 / 3) {
      stats.noise.badChecksum++;
      const corrupted = frame.slice();
      const last = corrupted.length - 1;
      corrupted[last] = (corrupted[last]! + 1 + Math.floor(random() * 254)) & 0xff;
      // In mode 2 the new checksum byte must not itself need escaping (it would change the length).
      if (mode === 2 && [0x7e, 0x7d, 0x11, 0x13].includes(corrupted[last]!)) corrupted[last] = 0x00 === frame[last] ? 0x01 : 0x00;
      return corrupted;
    }
    stats.noise.truncated++;
    return frame.slice(0, 1 + Math.floor(random() * (frame.length - 2)));
  };

  const send = async (name: string) => {
    const entry = banks.get(name);
    if (!entry) throw new Error(`no node ${JSON.stringify(name)} in plant ${plant.name}`);
    for (const frame of nodeFrames(entry.node, entry.values())) {
      const bytes = encodeFrame(encodeFrameData(frame), mode);
      const extra = noise > 0 && random() < noise ? noiseBytes(bytes) : undefined;
      stats.framesSent++;
      stats.byNode[name]!++;
      if (frame.type === FrameType.RX_PACKET) stats.rxPackets++;
      else stats.ioSamples++;
      await write(extra ? Uint8Array.from([...bytes, ...extra]) : bytes);
    }
  };

  // ---- The coordinator's answers to AT commands ----

  const atResponse = (request: AtCommand): XBeeFrame[] => {
    const reply = (status: number, data: ArrayLike<number> = []): XBeeFrame => ({
      type: FrameType.AT_COMMAND_RESPONSE, frameId: request.frameId, command: request.command, status, data: Uint8Array.from(data),
    });
    const address = plant.coordinator.address64;
    switch (request.command) {
      case "AP":
        return [reply(AT_OK, [mode])];
      case "SH":
        return [reply(AT_OK, hexBytes(address.slice(0, 8)))];
      case "SL":
        return [reply(AT_OK, hexBytes(address.slice(8)))];
      case "NI":
        return [reply(AT_OK, asciiBytes(plant.coordinator.nodeIdentifier))];
      case "ND":
        // One answer per node, then an empty one when discovery ends.
        return [
          ...plant.nodes.map((node) => reply(AT_OK, encodeNodeDiscovery({
            address16: node.address16, address64: node.address64, nodeIdentifier: node.nodeIdentifier, parent16: 0xfffe,
            deviceType: ROUTER, status: 0, profileId: ZIGBEE_PROFILE, manufacturerId: DIGI_MANUFACTURER,
          }))),
          reply(AT_OK),
        ];
      default:
        return [reply(AT_INVALID_COMMAND)];
    }
  };

  const remoteResponse = (request: RemoteAtCommand): XBeeFrame => {
    const node = plant.nodes.find((n) => n.address64 === request.destination64);
    const reply = (status: number, data: ArrayLike<number> = []): XBeeFrame => ({
      type: FrameType.REMOTE_AT_RESPONSE, frameId: request.frameId, source64: request.destination64,
      source16: node?.address16 ?? 0xfffe, command: request.command, status, data: Uint8Array.from(data),
    });
    if (!node) return reply(REMOTE_TX_FAILURE);
    switch (request.command) {
      case "NI":
        return reply(AT_OK, asciiBytes(node.nodeIdentifier));
      case "SH":
        return reply(AT_OK, hexBytes(node.address64.slice(0, 8)));
      case "SL":
        return reply(AT_OK, hexBytes(node.address64.slice(8)));
      case "MY":
        return reply(AT_OK, [node.address16 >>> 8, node.address16 & 0xff]);
      default:
        return reply(AT_INVALID_COMMAND);
    }
  };

  const decoder = new FrameDecoder(mode);
  port.onData((chunk) => {
    for (const event of decoder.push(chunk)) {
      if (event.kind !== "frame") continue;
      let frame;
      try {
        frame = parseFrameData(event.data);
      } catch {
        continue;
      }
      // Frame id 0 asks for no response.
      if (frame.type === FrameType.AT_COMMAND) {
        stats.atCommands++;
        if ((frame as AtCommand).frameId !== 0) for (const r of atResponse(frame as AtCommand)) void write(encodeFrame(encodeFrameData(r), mode));
      } else if (frame.type === FrameType.REMOTE_AT_COMMAND) {
        stats.atCommands++;
        if ((frame as RemoteAtCommand).frameId !== 0) void write(encodeFrame(encodeFrameData(remoteResponse(frame as RemoteAtCommand)), mode));
      }
    }
  });

  const timers: Array<ReturnType<typeof setTimeout>> = [];
  if (options.autoSend ?? true) {
    for (const node of plant.nodes) {
      timers.push(setTimeout(() => {
        void send(node.name);
        timers.push(setInterval(() => void send(node.name), node.intervalMs));
      }, node.phaseMs));
    }
  }

  return {
    stats,
    async tick() {
      for (const node of plant.nodes) await send(node.name);
    },
    send,
    async stop() {
      for (const timer of timers) clearTimeout(timer);
      await writes;
      stopped = true;
      await port.close();
    },
  };
}

const hexBytes = (hex: string) => Array.from({ length: hex.length / 2 }, (_, i) => Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16));
const asciiBytes = (text: string) => Array.from(text, (c) => c.charCodeAt(0) & 0xff);
