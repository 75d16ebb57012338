// Modbus RTU framing, per "MODBUS over Serial Line Specification and Implementation Guide V1.02":
// ADU = slave address (1) + PDU + CRC-16 (2, low byte first). Pure functions, no I/O.
import type { ReadRequest } from "../modbus/plan.ts";
import { MODBUS_MAX_PDU_LENGTH } from "../modbus/pdu.ts";
import { ModbusReadError } from "../modbus/poller.ts";

/** Slave address + PDU + CRC: the largest RTU frame is 256 bytes. */
export const RTU_MAX_ADU_LENGTH = 1 + MODBUS_MAX_PDU_LENGTH + 2;
/** Address + function code + exception code + CRC. */
export const RTU_EXCEPTION_LENGTH = 5;
/** Serial line addresses: 0 is broadcast (no reply), 248-255 are reserved. */
export const RTU_MIN_UNIT_ID = 1;
export const RTU_MAX_UNIT_ID = 247;

// ---- CRC-16/MODBUS: polynomial 0x8005 reflected (0xA001), initial value 0xFFFF, no final XOR ----

const CRC_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let n = 0; n < 256; n++) {
    let crc = n;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
    table[n] = crc;
  }
  return table;
})();

/** CRC of bytes[start, end). Sent low byte first: CRC 0x0A84 goes on the wire as 84 0A. */
export function crc16(bytes: ArrayLike<number>, start = 0, end = bytes.length): number {
  let crc = 0xffff;
  for (let i = start; i < end; i++) crc = (crc >>> 8) ^ CRC_TABLE[(crc ^ (bytes[i] ?? 0)) & 0xff]!;
  return crc;
}

/** Slave address + PDU + CRC. */
export function encodeRtuFrame(unitId: number, pdu: ArrayLike<number>): Uint8Array {
  const frame = new Uint8Array(1 + pdu.length + 2);
  frame[0] = unitId;
  frame.set(pdu as ArrayLike<number>, 1);
  const crc = crc16(frame, 0, frame.length - 2);
  frame[frame.length - 2] = crc & 0xff;
  frame[frame.length - 1] = crc >>> 8;
  return frame;
}

/** True when the last two bytes are the CRC of the rest. */
export function hasValidCrc(frame: ArrayLike<number>, start = 0, end = frame.length): boolean {
  if (end - start < 4) return false;
  const crc = crc16(frame, start, end - 2);
  return frame[end - 2] === (crc & 0xff) && frame[end - 1] === crc >>> 8;
}

// ---- Timing ----

/** The spec counts 11 bits per character (start, 8 data, parity or a second stop bit, stop). */
export const RTU_BITS_PER_CHARACTER = 11;
/** Above 19200 baud the spec fixes t1.5 = 750 µs and t3.5 = 1.75 ms instead of scaling them. */
const FIXED_TIMING_ABOVE_BAUD = 19_200;

export interface RtuTiming {
  /** One character on the wire, ms. */
  characterMs: number;
  /** t1.5: the longest silence allowed inside a frame. */
  interCharacterMs: number;
  /** t3.5: the silence that separates frames. */
  interFrameMs: number;
}

export function rtuTiming(baudRate: number): RtuTiming {
  if (!(baudRate > 0)) throw new RangeError(`baud rate must be positive, got ${baudRate}`);
  const characterMs = (RTU_BITS_PER_CHARACTER * 1000) / baudRate;
  if (baudRate > FIXED_TIMING_ABOVE_BAUD) return { characterMs, interCharacterMs: 0.75, interFrameMs: 1.75 };
  return { characterMs, interCharacterMs: 1.5 * characterMs, interFrameMs: 3.5 * characterMs };
}

// ---- Master side: requests and responses ----

/** The read request ADU: unit, function code, start address, quantity, CRC. */
export function readRequestFrame(request: ReadRequest): Uint8Array {
  const { unitId, functionCode, address, quantity } = request;
  return encodeRtuFrame(unitId, [functionCode, address >>> 8, address & 0xff, quantity >>> 8, quantity & 0xff]);
}

/** Length of the normal response ADU to a read: unit + fc + byte count + data + CRC. */
export function readResponseLength(functionCode: number, quantity: number): number {
  const dataBytes = functionCode === 1 || functionCode === 2 ? Math.ceil(quantity / 8) : quantity * 2;
  return 3 + dataBytes + 2;
}

export type ResponseScan =
  | { kind: "incomplete" }
  | { kind: "frame"; start: number; end: number }
  /** A complete frame by length whose CRC is wrong. */
  | { kind: "crc"; start: number; end: number };

/**
 * Finds the response to `request` in the bytes received since it was sent. A response starts with
 * the unit id and the function code (or the exception code: fc | 0x80); leading bytes that do not
 * (line noise, an RS-485 driver's turn-on glitch) are skipped. The length follows from the request,
 * or is 5 for an exception. The CRC decides between candidates, so garbage that happens to look
 * like a header cannot hide a good response behind it.
 */
export function scanResponse(request: ReadRequest, rx: ArrayLike<number>): ResponseScan {
  const normal = readResponseLength(request.functionCode, request.quantity);
  let crcFailure: ResponseScan | undefined;
  for (let start = 0; start + 1 < rx.length; start++) {
    if (rx[start] !== request.unitId) continue;
    const fc = rx[start + 1];
    if (fc !== request.functionCode && fc !== (request.functionCode | 0x80)) continue;
    const length = fc === request.functionCode ? normal : RTU_EXCEPTION_LENGTH;
    if (start + length > rx.length) return crcFailure ?? { kind: "incomplete" };
    if (hasValidCrc(rx, start, start + length)) return { kind: "frame", start, end: start + length };
    crcFailure ??= { kind: "crc", start, end: start + length };
  }
  return crcFailure ?? { kind: "incomplete" };
}

const EXCEPTION_NAMES: Readonly<Record<number, string>> = {
  1: "illegal function",
  2: "illegal data address",
  3: "illegal data value",
  4: "server device failure",
  5: "acknowledge",
  6: "server device busy",
  8: "memory parity error",
  10: "gateway path unavailable",
  11: "gateway target device failed to respond",
};

/** Values of a verified response frame (unit, fc, byte count, data, CRC); throws ModbusReadError("protocol"). */
export function parseReadResponse(request: ReadRequest, frame: ArrayLike<number>, where: string): number[] | boolean[] {
  const fc = frame[1] ?? 0;
  if (fc === (request.functionCode | 0x80)) {
    const code = frame[2] ?? 0;
    throw new ModbusReadError("protocol", `${where}: exception ${code} (${EXCEPTION_NAMES[code] ?? "unknown"})`, code);
  }
  const byteCount = frame[2] ?? 0;
  const isBits = request.functionCode === 1 || request.functionCode === 2;
  const expected = isBits ? Math.ceil(request.quantity / 8) : request.quantity * 2;
  if (byteCount !== expected || frame.length !== 3 + byteCount + 2) {
    throw new ModbusReadError("protocol", `${where}: response byte count ${byteCount}, expected ${expected}`);
  }
  if (isBits) {
    // The first coil is the least significant bit of the first data byte.
    return Array.from({ length: request.quantity }, (_, i) => (((frame[3 + (i >> 3)] ?? 0) >> (i & 7)) & 1) === 1);
  }
  return Array.from({ length: request.quantity }, (_, i) => ((frame[3 + i * 2] ?? 0) << 8) | (frame[4 + i * 2] ?? 0));
}

// ---- Slave side: request framing for the simulator ----

/** Fixed-size requests: unit + fc + 2 × 2 bytes + CRC (FC1-6). */
const FIXED_REQUEST_LENGTH = 8;
/** FC15/FC16: unit + fc + address + quantity + byte count, then data, then CRC. */
const WRITE_MULTIPLE_HEADER = 7;

/**
 * Expected length of the request frame at the start of `rx`: a number once it is known,
 * undefined while more bytes are needed, null for a function code whose length we cannot tell
 * (the simulator then waits for the t3.5 silence that ends every frame).
 */
export function requestFrameLength(rx: ArrayLike<number>): number | undefined | null {
  if (rx.length < 2) return undefined;
  const fc = rx[1]!;
  if (fc >= 1 && fc <= 6) return FIXED_REQUEST_LENGTH;
  if (fc === 15 || fc === 16) {
    if (rx.length < WRITE_MULTIPLE_HEADER) return undefined;
    return WRITE_MULTIPLE_HEADER + rx[6]! + 2;
  }
  return null;
}
