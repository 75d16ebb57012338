import { MODBUS_ADDRESS_SPACE } from "./limits.ts";

/** Read function codes: 1 coils, 2 discrete inputs, 3 holding registers, 4 input registers. */
export type ModbusFunctionCode = 1 | 2 | 3 | 4;

/** "modicon": 1-based "40001" notation (the seed's config). "explicit": "<fc>:<0-based address>". */
export type AddressingMode = "modicon" | "explicit";

export interface RegisterAddress {
  functionCode: ModbusFunctionCode;
  /** 0-based PDU address, as sent on the wire. */
  address: number;
}

/** A configuration mistake; the message names the offending key or field. */
export class ModbusConfigError extends Error {
  override name = "ModbusConfigError";
}

// Modicon prefixes are historical table numbers, not function codes: 3x is
// input registers (FC4) and 4x is holding registers (FC3).
const FUNCTION_CODE_BY_MODICON_PREFIX: Readonly<Record<string, ModbusFunctionCode>> = {
  "0": 1,
  "1": 2,
  "3": 4,
  "4": 3,
};
const MODICON_PREFIX_BY_FUNCTION_CODE: Readonly<Record<ModbusFunctionCode, string>> = {
  1: "0",
  2: "1",
  3: "4",
  4: "3",
};

/** 5-digit Modicon numbers hold 4 digits after the prefix, so 9999 is the last 1-based slot. */
const MODICON_5_DIGIT_MAX_OFFSET = 9999;

const MODICON_EXPECTED =
  'expected a Modicon address like "40001" (coils 00001-09999, discrete inputs 10001-19999, ' +
  'input registers 30001-39999, holding registers 40001-49999) or 6-digit "400001" (up to 465536)';
const EXPLICIT_EXPECTED =
  'expected "<function code>:<address>" like "3:0", with function code 1-4 and 0-based address 0-65535';

export function isFunctionCode(value: unknown): value is ModbusFunctionCode {
  return value === 1 || value === 2 || value === 3 || value === 4;
}

export function isValidAddress(address: number): boolean {
  return Number.isInteger(address) && address >= 0 && address < MODBUS_ADDRESS_SPACE;
}

/** Parses a register key from config. Throws ModbusConfigError naming the key. */
export function parseAddress(key: string, mode: AddressingMode): RegisterAddress {
  const parsed = mode === "modicon" ? parseModicon(key) : parseExplicit(key);
  if (!parsed) {
    const expected = mode === "modicon" ? MODICON_EXPECTED : EXPLICIT_EXPECTED;
    throw new ModbusConfigError(`register key ${JSON.stringify(key)}: ${expected}`);
  }
  return parsed;
}

function parseModicon(key: string): RegisterAddress | undefined {
  const match = /^([0134])(\d{4,5})$/.exec(key);
  if (!match) return undefined;
  const [, prefix = "", digits = ""] = match;
  const functionCode = FUNCTION_CODE_BY_MODICON_PREFIX[prefix];
  const oneBased = Number(digits);
  const maxOneBased = digits.length === 4 ? MODICON_5_DIGIT_MAX_OFFSET : MODBUS_ADDRESS_SPACE;
  if (functionCode === undefined || oneBased < 1 || oneBased > maxOneBased) return undefined;
  return { functionCode, address: oneBased - 1 };
}

function parseExplicit(key: string): RegisterAddress | undefined {
  const match = /^(\d):(\d{1,5})$/.exec(key);
  if (!match) return undefined;
  const functionCode = Number(match[1]);
  const address = Number(match[2]);
  if (!isFunctionCode(functionCode) || !isValidAddress(address)) return undefined;
  return { functionCode, address };
}

/** Both notations of an address, for logs and UIs. 6-digit Modicon only when 5 digits cannot hold it. */
export function formatAddress(
  functionCode: ModbusFunctionCode,
  address: number,
): { modicon: string; explicit: string } {
  if (!isFunctionCode(functionCode) || !isValidAddress(address)) {
    throw new ModbusConfigError(
      `cannot format function code ${functionCode} address ${address}: ${EXPLICIT_EXPECTED}`,
    );
  }
  const oneBased = address + 1;
  const width = oneBased > MODICON_5_DIGIT_MAX_OFFSET ? 5 : 4;
  const prefix = MODICON_PREFIX_BY_FUNCTION_CODE[functionCode];
  return {
    modicon: prefix + String(oneBased).padStart(width, "0"),
    explicit: `${functionCode}:${address}`,
  };
}
