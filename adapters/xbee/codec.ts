// XBee API frames (Digi "API frame format", XBee/XBee-PRO S2C and XBee 3 Zigbee user guides):
//
//   0x7E | length (2, big-endian) | frame data (length bytes: type + fields) | checksum (1)
//
// checksum = 0xFF − (sum of the frame data bytes & 0xFF); a receiver checks that the frame data
// plus the checksum sum to 0xFF. API mode 1 (AP=1) sends every byte as is. API mode 2 (AP=2)
// escapes 0x7E, 0x7D, 0x11 and 0x13 anywhere after the start delimiter (length and checksum
// included) as 0x7D followed by the byte XOR 0x20; length and checksum count the unescaped bytes.
// Pure: no I/O, no clocks.

export const START = 0x7e;
const ESCAPE = 0x7d;
const XON = 0x11;
const XOFF = 0x13;
const ESCAPE_XOR = 0x20;

export type ApiMode = 1 | 2;

export const FrameType = {
  AT_COMMAND: 0x08,
  TRANSMIT_REQUEST: 0x10,
  REMOTE_AT_COMMAND: 0x17,
  AT_COMMAND_RESPONSE: 0x88,
  MODEM_STATUS: 0x8a,
  TRANSMIT_STATUS: 0x8b,
  RX_PACKET: 0x90,
  IO_SAMPLE: 0x92,
  REMOTE_AT_RESPONSE: 0x97,
} as const;

/** Longest frame data accepted; a corrupted length above it is dropped at once instead of waited for. */
export const DEFAULT_MAX_FRAME_LENGTH = 512;

export class XBeeFrameError extends Error {
  override name = "XBeeFrameError";
}

const needsEscape = (byte: number) => byte === START || byte === ESCAPE || byte === XON || byte === XOFF;

export function checksum(frameData: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < frameData.length; i++) sum += frameData[i]!;
  return 0xff - (sum & 0xff);
}

/** Wraps frame data (type byte first) into an API frame for the given mode. */
export function encodeFrame(frameData: ArrayLike<number>, mode: ApiMode): Uint8Array {
  if (frameData.length < 1 || frameData.length > 0xffff) throw new RangeError(`frame data must be 1-65535 bytes, got ${frameData.length}`);
  const unescaped = [frameData.length >>> 8, frameData.length & 0xff, ...Array.from(frameData), checksum(frameData)];
  if (mode === 1) return Uint8Array.from([START, ...unescaped]);
  const out: number[] = [START];
  for (const byte of unescaped) {
    if (needsEscape(byte)) out.push(ESCAPE, byte ^ ESCAPE_XOR);
    else out.push(byte);
  }
  return Uint8Array.from(out);
}

// ---- Typed frames ----

/** 64-bit addresses as 16 upper-case hex digits, e.g. "0013A20040522BAA". */
export type Address64 = string;

export interface RxPacket {
  type: typeof FrameType.RX_PACKET;
  source64: Address64;
  source16: number;
  /** 0x01 acknowledged, 0x02 broadcast, 0x20 APS-encrypted, 0x40 sent by an end device. */
  options: number;
  data: Uint8Array;
}

export interface IoSample {
  type: typeof FrameType.IO_SAMPLE;
  source64: Address64;
  source16: number;
  options: number;
  /** Bit n set: DIO n is sampled. */
  digitalMask: number;
  /** Bit n set: AD n is sampled (bit 7: supply voltage). */
  analogMask: number;
  /** Sampled digital lines: line number → high. */
  digital: Map<number, boolean>;
  /** Sampled analog channels (10-bit readings): channel → value. */
  analog: Map<number, number>;
}

export interface AtCommand {
  type: typeof FrameType.AT_COMMAND;
  frameId: number;
  command: string;
  parameter: Uint8Array;
}

export interface AtCommandResponse {
  type: typeof FrameType.AT_COMMAND_RESPONSE;
  frameId: number;
  command: string;
  /** 0 OK, 1 ERROR, 2 invalid command, 3 invalid parameter, 4 transmission failure. */
  status: number;
  data: Uint8Array;
}

export interface RemoteAtCommand {
  type: typeof FrameType.REMOTE_AT_COMMAND;
  frameId: number;
  destination64: Address64;
  destination16: number;
  /** 0x02: apply changes. */
  options: number;
  command: string;
  parameter: Uint8Array;
}

export interface RemoteAtResponse {
  type: typeof FrameType.REMOTE_AT_RESPONSE;
  frameId: number;
  source64: Address64;
  source16: number;
  command: string;
  status: number;
  data: Uint8Array;
}

export interface OtherFrame {
  type: number;
  /** The frame data after the type byte. */
  body: Uint8Array;
}

export type XBeeFrame = RxPacket | IoSample | AtCommand | AtCommandResponse | RemoteAtCommand | RemoteAtResponse;

/** Frame types whose layout this codec knows. */
export const KNOWN_FRAME_TYPES: ReadonlySet<number> = new Set([
  FrameType.RX_PACKET, FrameType.IO_SAMPLE, FrameType.AT_COMMAND, FrameType.AT_COMMAND_RESPONSE, FrameType.REMOTE_AT_COMMAND, FrameType.REMOTE_AT_RESPONSE,
]);

const HEX = /^[0-9A-F]{16}$/;

export function normalizeAddress64(address: string): Address64 {
  const upper = address.replace(/[\s:-]/g, "").toUpperCase();
  if (!HEX.test(upper)) throw new XBeeFrameError(`a 64-bit address is 16 hex digits, got ${JSON.stringify(address)}`);
  return upper;
}

function readAddress64(data: Uint8Array, offset: number): Address64 {
  let out = "";
  for (let i = 0; i < 8; i++) out += data[offset + i]!.toString(16).padStart(2, "0");
  return out.toUpperCase();
}

function writeAddress64(address: Address64): number[] {
  const hex = normalizeAddress64(address);
  return Array.from({ length: 8 }, (_, i) => Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16));
}

const u16 = (data: Uint8Array, offset: number) => (data[offset]! << 8) | data[offset + 1]!;
const be16 = (value: number) => [(value >>> 8) & 0xff, value & 0xff];
const ascii = (data: Uint8Array, offset: number, length: number) => String.fromCharCode(...data.subarray(offset, offset + length));
const commandBytes = (command: string) => {
  if (!/^[\x20-\x7e]{2}$/.test(command)) throw new XBeeFrameError(`an AT command is two ASCII characters, got ${JSON.stringify(command)}`);
  return [command.charCodeAt(0), command.charCodeAt(1)];
};
const bitCount = (mask: number) => {
  let n = 0;
  for (let m = mask; m; m &= m - 1) n++;
  return n;
};

/** Frame data (type byte first) → a typed frame; other types come back as OtherFrame. Throws XBeeFrameError when a known type is malformed. */
export function parseFrameData(frameData: Uint8Array): XBeeFrame | OtherFrame {
  const type = frameData[0];
  if (type === undefined) throw new XBeeFrameError("empty frame");
  const need = (length: number, name: string) => {
    if (frameData.length < length) throw new XBeeFrameError(`${name} frame needs at least ${length} bytes, got ${frameData.length}`);
  };
  switch (type) {
    case FrameType.RX_PACKET:
      need(12, "RX packet (0x90)");
      return { type, source64: readAddress64(frameData, 1), source16: u16(frameData, 9), options: frameData[11]!, data: frameData.slice(12) };
    case FrameType.IO_SAMPLE: {
      need(16, "IO data sample (0x92)");
      const digitalMask = u16(frameData, 13);
      const analogMask = frameData[15]!;
      let offset = 16;
      const expected = offset + (digitalMask ? 2 : 0) + 2 * bitCount(analogMask);
      if (frameData.length !== expected) throw new XBeeFrameError(`IO data sample (0x92) with masks 0x${digitalMask.toString(16)}/0x${analogMask.toString(16)} is ${expected} bytes, got ${frameData.length}`);
      const digital = new Map<number, boolean>();
      if (digitalMask) {
        const bits = u16(frameData, offset);
        offset += 2;
        for (let line = 0; line < 16; line++) if (digitalMask & (1 << line)) digital.set(line, (bits & (1 << line)) !== 0);
      }
      const analog = new Map<number, number>();
      for (let channel = 0; channel < 8; channel++) {
        if (!(analogMask & (1 << channel))) continue;
        analog.set(channel, u16(frameData, offset));
        offset += 2;
      }
      return { type, source64: readAddress64(frameData, 1), source16: u16(frameData, 9), options: frameData[11]!, digitalMask, analogMask, digital, analog };
    }
    case FrameType.AT_COMMAND:
      need(4, "AT command (0x08)");
      return { type, frameId: frameData[1]!, command: ascii(frameData, 2, 2), parameter: frameData.slice(4) };
    case FrameType.AT_COMMAND_RESPONSE:
      need(5, "AT command response (0x88)");
      return { type, frameId: frameData[1]!, command: ascii(frameData, 2, 2), status: frameData[4]!, data: frameData.slice(5) };
    case FrameType.REMOTE_AT_COMMAND:
      need(15, "remote AT command (0x17)");
      return {
        type, frameId: frameData[1]!, destination64: readAddress64(frameData, 2), destination16: u16(frameData, 10),
        options: frameData[12]!, command: ascii(frameData, 13, 2), parameter: frameData.slice(15),
      };
    case FrameType.REMOTE_AT_RESPONSE:
      need(15, "remote AT command response (0x97)");
      return {
        type, frameId: frameData[1]!, source64: readAddress64(frameData, 2), source16: u16(frameData, 10),
        command: ascii(frameData, 12, 2), status: frameData[14]!, data: frameData.slice(15),
      };
    default:
      return { type, body: frameData.slice(1) };
  }
}

/** A typed frame → frame data (type byte first). */
export function encodeFrameData(frame: XBeeFrame): Uint8Array {
  switch (frame.type) {
    case FrameType.RX_PACKET:
      return Uint8Array.from([frame.type, ...writeAddress64(frame.source64), ...be16(frame.source16), frame.options, ...frame.data]);
    case FrameType.IO_SAMPLE: {
      const out = [frame.type, ...writeAddress64(frame.source64), ...be16(frame.source16), frame.options, 1, ...be16(frame.digitalMask), frame.analogMask];
      if (frame.digitalMask) {
        let bits = 0;
        for (const [line, high] of frame.digital) if (high && frame.digitalMask & (1 << line)) bits |= 1 << line;
        out.push(...be16(bits));
      }
      for (let channel = 0; channel < 8; channel++) {
        if (!(frame.analogMask & (1 << channel))) continue;
        const value = frame.analog.get(channel);
        if (value === undefined || !Number.isInteger(value) || value < 0 || value > 0xffff) throw new XBeeFrameError(`analog channel ${channel}: expected a reading 0-65535, got ${value}`);
        out.push(...be16(value));
      }
      return Uint8Array.from(out);
    }
    case FrameType.AT_COMMAND:
      return Uint8Array.from([frame.type, frame.frameId, ...commandBytes(frame.command), ...frame.parameter]);
    case FrameType.AT_COMMAND_RESPONSE:
      return Uint8Array.from([frame.type, frame.frameId, ...commandBytes(frame.command), frame.status, ...frame.data]);
    case FrameType.REMOTE_AT_COMMAND:
      return Uint8Array.from([
        frame.type, frame.frameId, ...writeAddress64(frame.destination64), ...be16(frame.destination16), frame.options, ...commandBytes(frame.command), ...frame.parameter,
      ]);
    case FrameType.REMOTE_AT_RESPONSE:
      return Uint8Array.from([
        frame.type, frame.frameId, ...writeAddress64(frame.source64), ...be16(frame.source16), ...commandBytes(frame.command), frame.status, ...frame.data,
      ]);
  }
}

// ---- Node discovery (ND) ----

export interface DiscoveredNode {
  /** MY: 16-bit network address. */
  address16: number;
  address64: Address64;
  /** NI string. */
  nodeIdentifier: string;
  parent16: number;
  /** 0 coordinator, 1 router, 2 end device. */
  deviceType: number;
  status: number;
  profileId: number;
  manufacturerId: number;
}

/**
 * The data of one ND answer (in a 0x88 or 0x97 frame): MY (2), SH (4), SL (4), NI (NUL-terminated),
 * parent network address (2), device type (1), status (1), profile id (2), manufacturer id (2).
 * Optional trailing fields (DD, RSSI when NO is set) are ignored.
 */
export function parseNodeDiscovery(data: Uint8Array): DiscoveredNode {
  if (data.length < 11) throw new XBeeFrameError(`node discovery data needs at least 11 bytes, got ${data.length}`);
  const nul = data.indexOf(0, 10);
  if (nul < 0 || data.length < nul + 1 + 8) throw new XBeeFrameError("node discovery data is truncated");
  return {
    address16: u16(data, 0),
    address64: readAddress64(data, 2),
    nodeIdentifier: ascii(data, 10, nul - 10),
    parent16: u16(data, nul + 1),
    deviceType: data[nul + 3]!,
    status: data[nul + 4]!,
    profileId: u16(data, nul + 5),
    manufacturerId: u16(data, nul + 7),
  };
}

export function encodeNodeDiscovery(node: DiscoveredNode): Uint8Array {
  return Uint8Array.from([
    ...be16(node.address16), ...writeAddress64(node.address64), ...Array.from(node.nodeIdentifier, (c) => c.charCodeAt(0) & 0xff), 0,
    ...be16(node.parent16), node.deviceType, node.status, ...be16(node.profileId), ...be16(node.manufacturerId),
  ]);
}

// ---- Streaming decoder ----

export type DecodeErrorKind =
  /** Bytes outside any frame. */
  | "noise"
  /** A complete frame whose checksum is wrong. */
  | "checksum"
  /** A frame cut short: a new start delimiter (mode 2) or silence (expire()) before its end. */
  | "truncated"
  /** A length of 0 or above the maximum. */
  | "length";

export type DecodeEvent =
  | { kind: "frame"; data: Uint8Array }
  | { kind: "error"; error: DecodeErrorKind; bytes: number; detail: string };

export interface DecoderStats {
  frames: number;
  checksum: number;
  truncated: number;
  length: number;
  /** Runs of noise, and the bytes they held. */
  noise: number;
  noiseBytes: number;
}

export interface DecoderOptions {
  maxFrameLength?: number;
}

/**
 * Splits a byte stream into frames, skipping line noise, frames with a bad checksum, impossible
 * lengths and truncated frames (each counted and reported) and resynchronising at the next 0x7E.
 *
 * Mode 2 is unambiguous: an unescaped 0x7E always starts a frame. In mode 1 a 0x7E can also be
 * data, so after a bad frame the decoder rescans from the byte after its start delimiter; and a
 * frame that passes its checksum is only accepted if no frame starting inside it also passes
 * (otherwise a false start in noise, passing by chance, could swallow the good frame behind it).
 * A frame whose inner 0x7E could still begin a frame waits for more bytes or for expire().
 */
export class FrameDecoder {
  readonly stats: DecoderStats = { frames: 0, checksum: 0, truncated: 0, length: 0, noise: 0, noiseBytes: 0 };
  readonly #mode: ApiMode;
  readonly #max: number;
  // Mode 1: raw bytes not yet consumed.
  #buffer: number[] = [];
  /** Mode 1: bytes skipped right after a bad frame belong to that error, not to a new noise run. */
  #recovering = false;
  // Mode 2: the frame being unescaped.
  #inFrame = false;
  #escapeNext = false;
  #logical: number[] = [];
  #noiseRun = 0;

  constructor(mode: ApiMode, options: DecoderOptions = {}) {
    if (mode !== 1 && mode !== 2) throw new RangeError(`API mode must be 1 or 2, got ${mode}`);
    this.#mode = mode;
    this.#max = options.maxFrameLength ?? DEFAULT_MAX_FRAME_LENGTH;
  }

  /** True while a frame has started but not ended (expire() would drop it). */
  get pending(): boolean {
    return this.#mode === 1 ? this.#buffer.length > 0 : this.#inFrame || this.#noiseRun > 0;
  }

  push(chunk: ArrayLike<number>): DecodeEvent[] {
    const events: DecodeEvent[] = [];
    if (this.#mode === 2) {
      for (let i = 0; i < chunk.length; i++) this.#pushEscaped(chunk[i]!, events);
    } else {
      for (let i = 0; i < chunk.length; i++) this.#buffer.push(chunk[i]!);
      this.#scanRaw(events, false);
    }
    return events;
  }

  /** The line went quiet: a frame still incomplete never will be. */
  expire(): DecodeEvent[] {
    const events: DecodeEvent[] = [];
    if (this.#mode === 2) {
      if (this.#inFrame) this.#error(events, "truncated", this.#logical.length + 1, "frame cut short: the line went quiet");
      this.#inFrame = false;
      this.#flushNoise(events);
    } else {
      this.#scanRaw(events, true);
    }
    return events;
  }

  #error(events: DecodeEvent[], error: DecodeErrorKind, bytes: number, detail: string): void {
    this.stats[error]++;
    events.push({ kind: "error", error, bytes, detail });
  }

  #noise(events: DecodeEvent[], bytes: number): void {
    this.stats.noise++;
    this.stats.noiseBytes += bytes;
    events.push({ kind: "error", error: "noise", bytes, detail: `${bytes} byte(s) outside any frame` });
  }

  #flushNoise(events: DecodeEvent[]): void {
    if (this.#noiseRun > 0) this.#noise(events, this.#noiseRun);
    this.#noiseRun = 0;
  }

  #frame(events: DecodeEvent[], data: number[]): void {
    this.stats.frames++;
    events.push({ kind: "frame", data: Uint8Array.from(data) });
  }

  // ---- Mode 2 ----

  #pushEscaped(byte: number, events: DecodeEvent[]): void {
    if (byte === START) {
      if (this.#inFrame) this.#error(events, "truncated", this.#logical.length + 1, "frame cut short by the next start delimiter");
      this.#flushNoise(events);
      this.#inFrame = true;
      this.#escapeNext = false;
      this.#logical = [];
      return;
    }
    if (!this.#inFrame) {
      this.#noiseRun++;
      return;
    }
    if (byte === ESCAPE && !this.#escapeNext) {
      this.#escapeNext = true;
      return;
    }
    const value = this.#escapeNext ? byte ^ ESCAPE_XOR : byte;
    this.#escapeNext = false;
    this.#logical.push(value);
    if (this.#logical.length === 2) {
      const length = (this.#logical[0]! << 8) | this.#logical[1]!;
      if (length === 0 || length > this.#max) {
        this.#error(events, "length", 3, `frame length ${length} is outside 1-${this.#max}`);
        this.#inFrame = false;
      }
      return;
    }
    if (this.#logical.length < 3) return;
    const length = (this.#logical[0]! << 8) | this.#logical[1]!;
    if (this.#logical.length < 2 + length + 1) return;
    this.#inFrame = false;
    const data = this.#logical.slice(2, 2 + length);
    if (checksum(data) === this.#logical[2 + length]) this.#frame(events, data);
    else this.#error(events, "checksum", length + 4, `checksum 0x${this.#logical[2 + length]!.toString(16)} does not match 0x${checksum(data).toString(16)}`);
  }

  // ---- Mode 1 ----

  #scanRaw(events: DecodeEvent[], expired: boolean): void {
    const buf = this.#buffer;
    let consumed = 0;
    const skip = (count: number) => {
      if (count <= 0) return;
      if (!this.#recovering) this.#noise(events, count);
      else this.stats.noiseBytes += count;
      consumed += count;
    };
    for (;;) {
      let start = consumed;
      while (start < buf.length && buf[start] !== START) start++;
      skip(start - consumed);
      if (consumed >= buf.length) break;
      // buf[consumed] is a start delimiter.
      const candidate = this.#candidateAt(buf, consumed);
      if (candidate.kind === "need-more") {
        if (!expired) break;
        this.#error(events, "truncated", buf.length - consumed, "frame cut short: the line went quiet");
        consumed++;
        this.#recovering = true;
        continue;
      }
      if (candidate.kind === "bad") {
        this.#error(events, candidate.error, candidate.bytes, candidate.detail);
        consumed++;
        this.#recovering = true;
        continue;
      }
      // A valid frame, unless a frame starting inside it is valid too (then this one was a false start).
      const inner = this.#innerFrame(buf, consumed, candidate.end, expired);
      if (inner === "need-more") break;
      if (inner !== undefined) {
        this.#error(events, "truncated", inner - consumed, "a false or truncated frame overlapped the next one");
        consumed = inner;
        this.#recovering = true;
        continue;
      }
      this.#frame(events, buf.slice(consumed + 3, candidate.end - 1));
      consumed = candidate.end;
      this.#recovering = false;
    }
    this.#buffer = buf.slice(consumed);
    if (this.#buffer.length === 0 && expired) this.#recovering = false;
  }

  /** A frame starting at `at` (a 0x7E): complete and valid, invalid, or waiting for more bytes. */
  #candidateAt(buf: number[], at: number):
    | { kind: "need-more" }
    | { kind: "bad"; error: DecodeErrorKind; bytes: number; detail: string }
    | { kind: "valid"; end: number } {
    if (buf.length - at < 3) return { kind: "need-more" };
    const length = (buf[at + 1]! << 8) | buf[at + 2]!;
    if (length === 0 || length > this.#max) return { kind: "bad", error: "length", bytes: 3, detail: `frame length ${length} is outside 1-${this.#max}` };
    const end = at + 3 + length + 1;
    if (buf.length < end) return { kind: "need-more" };
    let sum = 0;
    for (let i = at + 3; i < end; i++) sum += buf[i]!;
    if ((sum & 0xff) !== 0xff) return { kind: "bad", error: "checksum", bytes: end - at, detail: `checksum 0x${buf[end - 1]!.toString(16)} does not match` };
    return { kind: "valid", end };
  }

  /** The first 0x7E inside (at, end) that starts a valid frame; "need-more" while one could still. */
  #innerFrame(buf: number[], at: number, end: number, expired: boolean): number | "need-more" | undefined {
    for (let i = at + 1; i < end; i++) {
      if (buf[i] !== START) continue;
      const inner = this.#candidateAt(buf, i);
      if (inner.kind === "valid") return i;
      if (inner.kind === "need-more" && !expired) return "need-more";
    }
    return undefined;
  }
}
