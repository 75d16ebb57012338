import { describe, expect, test } from "bun:test";
import { encodeMbap, handleRequestPdu, parseMbapFrames, type RegisterBank } from "./pdu.ts";

const bytes = (hex: string) => Uint8Array.from(hex.split(/\s+/).filter(Boolean), (b) => parseInt(b, 16));
const hex = (data: Uint8Array) => Array.from(data, (b) => b.toString(16).toUpperCase().padStart(2, "0")).join(" ");

/** Plain arrays per table; addresses at or beyond `size` do not exist. */
function memoryBank(size: number) {
  const tables = {
    coils: new Array<boolean>(size).fill(false),
    inputs: new Array<boolean>(size).fill(false),
    holding: new Array<number>(size).fill(0),
    inputRegisters: new Array<number>(size).fill(0),
  };
  const inRange = (address: number, count: number) => address + count <= size;
  const bank: RegisterBank = {
    readBits: (fc, address, count) =>
      inRange(address, count) ? (fc === 1 ? tables.coils : tables.inputs).slice(address, address + count) : undefined,
    readRegisters: (fc, address, count) =>
      inRange(address, count) ? (fc === 3 ? tables.holding : tables.inputRegisters).slice(address, address + count) : undefined,
    writeBits: (address, values) => inRange(address, values.length) && (tables.coils.splice(address, values.length, ...values), true),
    writeRegisters: (address, values) => inRange(address, values.length) && (tables.holding.splice(address, values.length, ...values), true),
  };
  return { bank, tables };
}

/** Bits as listed in a response: LSB of the first byte first. */
const bitsOf = (data: string, count: number) =>
  Array.from({ length: count }, (_, i) => ((bytes(data)[i >> 3]! >> (i & 7)) & 1) === 1);

/** The device state behind the spec's examples (Modbus Application Protocol V1.1b3, section 6). */
function specBank() {
  const { bank, tables } = memoryBank(1000);
  tables.coils.splice(19, 19, ...bitsOf("CD 6B 05", 19)); // 6.1: coils 20-38
  tables.inputs.splice(196, 22, ...bitsOf("AC DB 35", 22)); // 6.2: inputs 197-218
  tables.holding.splice(107, 3, 0x022b, 0x0000, 0x0064); // 6.3: registers 108-110
  tables.inputRegisters[8] = 0x000a; // 6.4: input register 9
  return { bank, tables };
}

describe("handleRequestPdu: spec examples", () => {
  test.each([
    ["FC1 read coils 20-38", "01 00 13 00 13", "01 03 CD 6B 05"],
    ["FC2 read discrete inputs 197-218", "02 00 C4 00 16", "02 03 AC DB 35"],
    ["FC3 read holding registers 108-110", "03 00 6B 00 03", "03 06 02 2B 00 00 00 64"],
    ["FC4 read input register 9", "04 00 08 00 01", "04 02 00 0A"],
    ["FC5 write coil 173 ON", "05 00 AC FF 00", "05 00 AC FF 00"],
    ["FC6 write register 2 = 3", "06 00 01 00 03", "06 00 01 00 03"],
    ["FC15 write coils 20-29", "0F 00 13 00 0A 02 CD 01", "0F 00 13 00 0A"],
    ["FC16 write registers 2-3", "10 00 01 00 02 04 00 0A 01 02", "10 00 01 00 02"],
    ["section 7: read of a coil the device lacks", "01 04 A1 00 01", "81 02"],
  ])("%s", (_name, request, response) => {
    expect(hex(handleRequestPdu(bytes(request), specBank().bank))).toBe(response);
  });

  test("writes land in the bank and read back", () => {
    const { bank, tables } = specBank();
    handleRequestPdu(bytes("05 00 AC FF 00"), bank);
    expect(tables.coils[172]).toBe(true);
    handleRequestPdu(bytes("05 00 AC 00 00"), bank);
    expect(tables.coils[172]).toBe(false);
    handleRequestPdu(bytes("0F 00 13 00 0A 02 CD 01"), bank);
    expect(tables.coils.slice(19, 29)).toEqual(bitsOf("CD 01", 10));
    handleRequestPdu(bytes("10 00 01 00 02 04 00 0A 01 02"), bank);
    expect(hex(handleRequestPdu(bytes("03 00 01 00 02"), bank))).toBe("03 04 00 0A 01 02");
  });
});

describe("handleRequestPdu: exceptions", () => {
  test.each([
    ["unsupported function code", "07", "87 01"],
    ["encapsulated interface (MEI) is not implemented", "2B 0E 01 00", "AB 01"],
    ["FC3 quantity 0", "03 00 00 00 00", "83 03"],
    ["FC3 quantity 126 (> 125)", "03 00 00 00 7E", "83 03"],
    ["FC4 quantity 126", "04 00 00 00 7E", "84 03"],
    ["FC1 quantity 0", "01 00 00 00 00", "81 03"],
    ["FC2 quantity 2001 (> 2000)", "02 00 00 07 D1", "82 03"],
    ["FC3 truncated request", "03 00 6B 00", "83 03"],
    ["FC3 trailing byte", "03 00 6B 00 03 00", "83 03"],
    ["FC3 past the device's registers", "03 03 E7 00 02", "83 02"],
    ["FC3 past address 0xFFFF", "03 FF FF 00 02", "83 02"],
    ["FC5 value other than FF00/0000", "05 00 AC 12 34", "85 03"],
    ["FC5 address the device lacks", "05 04 A1 FF 00", "85 02"],
    ["FC6 truncated", "06 00 01 00", "86 03"],
    ["FC6 address the device lacks", "06 04 A1 00 01", "86 02"],
    ["FC15 byte count does not match quantity", "0F 00 13 00 0A 01 CD", "8F 03"],
    ["FC15 data shorter than byte count", "0F 00 13 00 0A 02 CD", "8F 03"],
    ["FC15 quantity 1969 (> 0x7B0)", "0F 00 00 07 B1 F7", "8F 03"],
    ["FC16 byte count does not match quantity", "10 00 01 00 02 02 00 0A", "90 03"],
    ["FC16 quantity 124 (> 0x7B)", "10 00 00 00 7C F8", "90 03"],
    ["FC16 quantity 0", "10 00 00 00 00 00", "90 03"],
    ["FC16 past address 0xFFFF", "10 FF FF 00 02 04 00 01 00 02", "90 02"],
  ])("%s", (_name, request, response) => {
    expect(hex(handleRequestPdu(bytes(request), specBank().bank))).toBe(response);
  });

  test("quantity limits are inclusive: 125 registers, 2000 bits", () => {
    const { bank } = memoryBank(2000);
    expect(handleRequestPdu(bytes("03 00 00 00 7D"), bank).slice(0, 2)).toEqual(bytes("03 FA"));
    expect(handleRequestPdu(bytes("01 00 00 07 D0"), bank).slice(0, 2)).toEqual(bytes("01 FA"));
  });

  test("a failing bank answers 04 server device failure", () => {
    const bank: RegisterBank = {
      readBits: () => { throw new Error("boom"); },
      readRegisters: () => [1, 2], // wrong count for the request
      writeBits: () => true,
      writeRegisters: () => true,
    };
    expect(hex(handleRequestPdu(bytes("01 00 00 00 01"), bank))).toBe("81 04");
    expect(hex(handleRequestPdu(bytes("03 00 00 00 03"), bank))).toBe("83 04");
  });

  test("an empty PDU is answered as illegal function 0", () => {
    expect(hex(handleRequestPdu(new Uint8Array(0), memoryBank(1).bank))).toBe("80 01");
  });
});

describe("MBAP framing", () => {
  // Transaction 1, unit 0x11, the FC3 spec request.
  const request = "00 01 00 00 00 06 11 03 00 6B 00 03";

  test("encodeMbap", () => {
    expect(hex(encodeMbap(1, 0x11, bytes("03 00 6B 00 03")))).toBe(request);
    expect(hex(encodeMbap(0xabcd, 0xff, bytes("83 02")))).toBe("AB CD 00 00 00 03 FF 83 02");
  });

  test("one whole frame", () => {
    const { frames, rest, error } = parseMbapFrames(bytes(request));
    expect(error).toBeUndefined();
    expect(rest.length).toBe(0);
    expect(frames.map((f) => ({ ...f, pdu: hex(f.pdu) }))).toEqual([
      { transactionId: 1, protocolId: 0, unitId: 0x11, pdu: "03 00 6B 00 03" },
    ]);
  });

  test("concatenated frames and a partial tail", () => {
    const stream = bytes(`${request} 00 02 00 00 00 06 01 04 00 08 00 01 00 03 00 00 00`);
    const { frames, rest } = parseMbapFrames(stream);
    expect(frames.map((f) => [f.transactionId, f.unitId, hex(f.pdu)])).toEqual([
      [1, 0x11, "03 00 6B 00 03"],
      [2, 1, "04 00 08 00 01"],
    ]);
    expect(hex(rest)).toBe("00 03 00 00 00");
  });

  test("a frame split at every byte boundary reassembles", () => {
    const whole = bytes(request);
    for (let cut = 0; cut < whole.length; cut++) {
      const first = parseMbapFrames(whole.subarray(0, cut));
      expect(first.frames).toHaveLength(0);
      const joined = new Uint8Array([...first.rest, ...whole.subarray(cut)]);
      expect(parseMbapFrames(joined).frames).toHaveLength(1);
    }
  });

  test.each([
    ["length 1 (no function code)", "00 01 00 00 00 01 11"],
    ["length 255 (PDU over 253 bytes)", "00 01 00 00 00 FF 11"],
  ])("impossible %s is an error", (_name, stream) => {
    const { frames, error } = parseMbapFrames(bytes(stream));
    expect(frames).toHaveLength(0);
    expect(error).toContain("MBAP length");
  });
});
