// Modbus application layer (PDU) for simulators, per the Modbus Application Protocol
// Specification V1.1b3. Transport-free: the TCP simulator wraps PDUs in MBAP headers
// (helpers at the bottom), an RTU simulator would add a unit id and CRC instead.
import { MODBUS_ADDRESS_SPACE, MODBUS_MAX_READ_BITS, MODBUS_MAX_READ_REGISTERS } from "./limits.ts";

export const FunctionCode = {
  READ_COILS: 0x01,
  READ_DISCRETE_INPUTS: 0x02,
  READ_HOLDING_REGISTERS: 0x03,
  READ_INPUT_REGISTERS: 0x04,
  WRITE_SINGLE_COIL: 0x05,
  WRITE_SINGLE_REGISTER: 0x06,
  WRITE_MULTIPLE_COILS: 0x0f,
  WRITE_MULTIPLE_REGISTERS: 0x10,
} as const;

export const ExceptionCode = {
  ILLEGAL_FUNCTION: 0x01,
  ILLEGAL_DATA_ADDRESS: 0x02,
  ILLEGAL_DATA_VALUE: 0x03,
  SERVER_DEVICE_FAILURE: 0x04,
  /** Sent by gateways (and our TCP simulator) when the addressed unit does not answer. */
  GATEWAY_TARGET_FAILED_TO_RESPOND: 0x0b,
} as const;
export type ExceptionCode = (typeof ExceptionCode)[keyof typeof ExceptionCode];

/** An exception response echoes the function code with its high bit set. */
const EXCEPTION_FLAG = 0x80;
/** Largest PDU: 256-byte RTU ADU minus unit id and CRC (spec section 4.1). */
export const MODBUS_MAX_PDU_LENGTH = 253;
/** FC15 quantity 1 to 0x7B0, FC16 quantity 1 to 0x7B: the request must fit one PDU. */
const MAX_WRITE_BITS = 0x7b0;
const MAX_WRITE_REGISTERS = 0x7b;
/** FC5 accepts exactly these two values; anything else is illegal data value. */
const COIL_ON = 0xff00;
const COIL_OFF = 0x0000;
/** fc + address + quantity (or value): every fixed-size request of FC1-6. */
const FIXED_REQUEST_LENGTH = 5;
/** fc + address + quantity + byte count, before FC15/FC16 data. */
const WRITE_MULTIPLE_HEADER_LENGTH = 6;

/**
 * The simulated device's data model. Addresses are 0-based PDU addresses.
 * Reads return undefined and writes false when any addressed item does not
 * exist (exception 02); throwing answers exception 04 (server device failure).
 */
export interface RegisterBank {
  /** fc 1 = coils, fc 2 = discrete inputs. */
  readBits(fc: 1 | 2, address: number, count: number): ArrayLike<boolean> | undefined;
  /** fc 3 = holding registers, fc 4 = input registers; values 0-0xFFFF. */
  readRegisters(fc: 3 | 4, address: number, count: number): ArrayLike<number> | undefined;
  /** Coils (FC5, FC15). */
  writeBits(address: number, values: readonly boolean[]): boolean;
  /** Holding registers (FC6, FC16). */
  writeRegisters(address: number, values: readonly number[]): boolean;
}

export function exceptionPdu(functionCode: number, code: ExceptionCode): Uint8Array {
  return Uint8Array.of((functionCode | EXCEPTION_FLAG) & 0xff, code);
}

const u16 = (pdu: Uint8Array, offset: number) => ((pdu[offset] ?? 0) << 8) | (pdu[offset + 1] ?? 0);
const fitsAddressSpace = (address: number, quantity: number) => address + quantity <= MODBUS_ADDRESS_SPACE;

/** Answers one request PDU; always returns a response PDU (normal or exception). */
export function handleRequestPdu(pdu: Uint8Array, bank: RegisterBank): Uint8Array {
  const fc = pdu[0] ?? 0;
  try {
    switch (fc) {
      case FunctionCode.READ_COILS:
      case FunctionCode.READ_DISCRETE_INPUTS:
        return readBits(pdu, fc, bank);
      case FunctionCode.READ_HOLDING_REGISTERS:
      case FunctionCode.READ_INPUT_REGISTERS:
        return readRegisters(pdu, fc, bank);
      case FunctionCode.WRITE_SINGLE_COIL:
        return writeSingleCoil(pdu, bank);
      case FunctionCode.WRITE_SINGLE_REGISTER:
        return writeSingleRegister(pdu, bank);
      case FunctionCode.WRITE_MULTIPLE_COILS:
        return writeMultipleCoils(pdu, bank);
      case FunctionCode.WRITE_MULTIPLE_REGISTERS:
        return writeMultipleRegisters(pdu, bank);
      default:
        return exceptionPdu(fc, ExceptionCode.ILLEGAL_FUNCTION);
    }
  } catch {
    // A bug or failure inside the bank must not kill the connection: real devices answer 04.
    return exceptionPdu(fc, ExceptionCode.SERVER_DEVICE_FAILURE);
  }
}

// Each handler follows the spec's state diagrams: quantity/length checks (03),
// then the address range (02), then the bank.

function readBits(pdu: Uint8Array, fc: 1 | 2, bank: RegisterBank): Uint8Array {
  const address = u16(pdu, 1);
  const quantity = u16(pdu, 3);
  if (pdu.length !== FIXED_REQUEST_LENGTH || quantity < 1 || quantity > MODBUS_MAX_READ_BITS) {
    return exceptionPdu(fc, ExceptionCode.ILLEGAL_DATA_VALUE);
  }
  const bits = fitsAddressSpace(address, quantity) ? bank.readBits(fc, address, quantity) : undefined;
  if (!bits) return exceptionPdu(fc, ExceptionCode.ILLEGAL_DATA_ADDRESS);
  if (bits.length !== quantity) throw new RangeError("bank returned the wrong number of bits");
  const byteCount = Math.ceil(quantity / 8);
  const response = new Uint8Array(2 + byteCount);
  response[0] = fc;
  response[1] = byteCount;
  // The first bit goes to the least significant bit of the first data byte.
  for (let i = 0; i < quantity; i++) {
    if (bits[i]) response[2 + (i >> 3)]! |= 1 << (i & 7);
  }
  return response;
}

function readRegisters(pdu: Uint8Array, fc: 3 | 4, bank: RegisterBank): Uint8Array {
  const address = u16(pdu, 1);
  const quantity = u16(pdu, 3);
  if (pdu.length !== FIXED_REQUEST_LENGTH || quantity < 1 || quantity > MODBUS_MAX_READ_REGISTERS) {
    return exceptionPdu(fc, ExceptionCode.ILLEGAL_DATA_VALUE);
  }
  const words = fitsAddressSpace(address, quantity) ? bank.readRegisters(fc, address, quantity) : undefined;
  if (!words) return exceptionPdu(fc, ExceptionCode.ILLEGAL_DATA_ADDRESS);
  if (words.length !== quantity) throw new RangeError("bank returned the wrong number of registers");
  const response = new Uint8Array(2 + quantity * 2);
  response[0] = fc;
  response[1] = quantity * 2;
  for (let i = 0; i < quantity; i++) {
    const word = words[i]!;
    response[2 + i * 2] = word >>> 8;
    response[3 + i * 2] = word & 0xff;
  }
  return response;
}

function writeSingleCoil(pdu: Uint8Array, bank: RegisterBank): Uint8Array {
  const fc = FunctionCode.WRITE_SINGLE_COIL;
  const value = u16(pdu, 3);
  if (pdu.length !== FIXED_REQUEST_LENGTH || (value !== COIL_ON && value !== COIL_OFF)) {
    return exceptionPdu(fc, ExceptionCode.ILLEGAL_DATA_VALUE);
  }
  if (!bank.writeBits(u16(pdu, 1), [value === COIL_ON])) return exceptionPdu(fc, ExceptionCode.ILLEGAL_DATA_ADDRESS);
  return pdu.slice(); // the normal response echoes the request
}

function writeSingleRegister(pdu: Uint8Array, bank: RegisterBank): Uint8Array {
  const fc = FunctionCode.WRITE_SINGLE_REGISTER;
  if (pdu.length !== FIXED_REQUEST_LENGTH) return exceptionPdu(fc, ExceptionCode.ILLEGAL_DATA_VALUE);
  if (!bank.writeRegisters(u16(pdu, 1), [u16(pdu, 3)])) return exceptionPdu(fc, ExceptionCode.ILLEGAL_DATA_ADDRESS);
  return pdu.slice();
}

function writeMultipleCoils(pdu: Uint8Array, bank: RegisterBank): Uint8Array {
  const fc = FunctionCode.WRITE_MULTIPLE_COILS;
  const address = u16(pdu, 1);
  const quantity = u16(pdu, 3);
  const byteCount = pdu[5] ?? -1;
  if (
    quantity < 1 || quantity > MAX_WRITE_BITS ||
    byteCount !== Math.ceil(quantity / 8) || pdu.length !== WRITE_MULTIPLE_HEADER_LENGTH + byteCount
  ) {
    return exceptionPdu(fc, ExceptionCode.ILLEGAL_DATA_VALUE);
  }
  if (!fitsAddressSpace(address, quantity)) return exceptionPdu(fc, ExceptionCode.ILLEGAL_DATA_ADDRESS);
  const bits = new Array<boolean>(quantity);
  for (let i = 0; i < quantity; i++) {
    bits[i] = ((pdu[WRITE_MULTIPLE_HEADER_LENGTH + (i >> 3)]! >> (i & 7)) & 1) === 1;
  }
  if (!bank.writeBits(address, bits)) return exceptionPdu(fc, ExceptionCode.ILLEGAL_DATA_ADDRESS);
  return pdu.slice(0, FIXED_REQUEST_LENGTH); // fc, address, quantity
}

function writeMultipleRegisters(pdu: Uint8Array, bank: RegisterBank): Uint8Array {
  const fc = FunctionCode.WRITE_MULTIPLE_REGISTERS;
  const address = u16(pdu, 1);
  const quantity = u16(pdu, 3);
  const byteCount = pdu[5] ?? -1;
  if (
    quantity < 1 || quantity > MAX_WRITE_REGISTERS ||
    byteCount !== quantity * 2 || pdu.length !== WRITE_MULTIPLE_HEADER_LENGTH + byteCount
  ) {
    return exceptionPdu(fc, ExceptionCode.ILLEGAL_DATA_VALUE);
  }
  if (!fitsAddressSpace(address, quantity)) return exceptionPdu(fc, ExceptionCode.ILLEGAL_DATA_ADDRESS);
  const words = new Array<number>(quantity);
  for (let i = 0; i < quantity; i++) words[i] = u16(pdu, WRITE_MULTIPLE_HEADER_LENGTH + i * 2);
  if (!bank.writeRegisters(address, words)) return exceptionPdu(fc, ExceptionCode.ILLEGAL_DATA_ADDRESS);
  return pdu.slice(0, FIXED_REQUEST_LENGTH);
}

// ---- MBAP (Modbus TCP) framing, Modbus Messaging on TCP/IP Implementation Guide V1.0b ----

/** transaction id (2) + protocol id (2) + length (2) + unit id (1). */
export const MBAP_HEADER_LENGTH = 7;
/** The length field counts the unit id and the PDU. */
const MBAP_MIN_LENGTH = 2; // unit id + function code
const MBAP_MAX_LENGTH = 1 + MODBUS_MAX_PDU_LENGTH;
/** 0 = Modbus; other values belong to other protocols and are ignored by servers. */
export const MODBUS_PROTOCOL_ID = 0;

export interface MbapFrame {
  transactionId: number;
  protocolId: number;
  unitId: number;
  /** A view into the input buffer: copy it if it must outlive the buffer. */
  pdu: Uint8Array;
}

export interface MbapParseResult {
  frames: MbapFrame[];
  /** Bytes of an incomplete trailing frame: prepend them to the next chunk. */
  rest: Uint8Array;
  /** Set when a length field is impossible; TCP has no resync point, so close the connection. */
  error?: string;
}

/** Splits a TCP byte stream into MBAP frames; handles partial and concatenated (pipelined) frames. */
export function parseMbapFrames(buffer: Uint8Array): MbapParseResult {
  const frames: MbapFrame[] = [];
  let offset = 0;
  while (buffer.length - offset >= MBAP_HEADER_LENGTH) {
    const length = u16(buffer, offset + 4);
    if (length < MBAP_MIN_LENGTH || length > MBAP_MAX_LENGTH) {
      return { frames, rest: buffer.subarray(offset), error: `MBAP length ${length} is outside ${MBAP_MIN_LENGTH}-${MBAP_MAX_LENGTH}` };
    }
    const end = offset + 6 + length;
    if (end > buffer.length) break;
    frames.push({
      transactionId: u16(buffer, offset),
      protocolId: u16(buffer, offset + 2),
      unitId: buffer[offset + 6]!,
      pdu: buffer.subarray(offset + MBAP_HEADER_LENGTH, end),
    });
    offset = end;
  }
  return { frames, rest: buffer.subarray(offset) };
}

export function encodeMbap(transactionId: number, unitId: number, pdu: Uint8Array): Uint8Array {
  const frame = new Uint8Array(MBAP_HEADER_LENGTH + pdu.length);
  writeMbap(frame, 0, transactionId, unitId, pdu);
  return frame;
}

/** Writes one frame into `target` at `offset` (so servers can batch pipelined replies); returns its end. */
export function writeMbap(target: Uint8Array, offset: number, transactionId: number, unitId: number, pdu: Uint8Array): number {
  const length = 1 + pdu.length;
  target[offset] = transactionId >>> 8;
  target[offset + 1] = transactionId & 0xff;
  target[offset + 2] = MODBUS_PROTOCOL_ID >>> 8;
  target[offset + 3] = MODBUS_PROTOCOL_ID & 0xff;
  target[offset + 4] = length >>> 8;
  target[offset + 5] = length & 0xff;
  target[offset + 6] = unitId;
  target.set(pdu, offset + MBAP_HEADER_LENGTH);
  return offset + MBAP_HEADER_LENGTH + pdu.length;
}
