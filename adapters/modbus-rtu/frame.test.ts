import { describe, expect, test } from "bun:test";
import type { ReadRequest } from "../modbus/plan.ts";
import { ModbusReadError } from "../modbus/poller.ts";
import {
  crc16, encodeRtuFrame, hasValidCrc, parseReadResponse, readRequestFrame, readResponseLength, requestFrameLength, rtuTiming, scanResponse,
} from "./frame.ts";

const hex = (text: string) => Uint8Array.from(text.trim().split(/\s+/).map((h) => Number.parseInt(h, 16)));
const toHex = (bytes: ArrayLike<number>) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0").toUpperCase()).join(" ");
const request = (functionCode: 1 | 2 | 3 | 4, quantity: number, unitId = 1, address = 0): ReadRequest => ({ unitId, functionCode, address, quantity, fields: [] });

describe("CRC-16/MODBUS", () => {
  // [frame without CRC, CRC bytes as sent (low byte first), source]
  const vectors: Array<[string, string, string]> = [
    ["02 07", "41 12", "MODBUS over Serial Line V1.02, appendix B: CRC of 02 07 is 0x1241, sent 41 12"],
    ["01 03 00 00 00 01", "84 0A", "read 1 holding register of slave 1 (the classic request)"],
    ["11 03 00 6B 00 03", "76 87", "slave 17, FC3, 3 registers from 0x6B (the spec's read holding registers example)"],
    ["01 04 00 00 00 01", "31 CA", "FC4 counterpart, cross-checked with pymodbus FramerRTU.compute_CRC"],
    ["01 03 04 12 34 56 78", "81 07", "a response captured from pymodbus's serial server (0x1234, 0x5678)"],
    ["01 83 02", "C0 F1", "exception response: illegal data address"],
    ["31 32 33 34 35 36 37 38 39", "37 4B", 'the CRC catalogue\'s check value for "123456789": 0x4B37'],
  ];
  for (const [frame, crc, source] of vectors) {
    test(`${frame} → ${crc} (${source})`, () => {
      const bytes = hex(frame);
      const value = crc16(bytes);
      expect(toHex([value & 0xff, value >>> 8])).toBe(crc);
      const full = encodeRtuFrame(bytes[0]!, bytes.subarray(1));
      expect(toHex(full)).toBe(`${frame} ${crc}`);
      expect(hasValidCrc(full)).toBe(true);
    });
  }

  test("any single flipped bit fails the check", () => {
    const frame = hex("01 03 04 12 34 56 78 81 07");
    for (let i = 0; i < frame.length * 8; i++) {
      const corrupted = frame.slice();
      corrupted[i >> 3]! ^= 1 << (i & 7);
      expect(hasValidCrc(corrupted)).toBe(false);
    }
  });

  test("a frame shorter than address + function code + CRC is never valid", () => {
    expect(hasValidCrc(hex("FF FF FF"))).toBe(false);
  });
});

describe("RTU timing (spec 2.5.1.1: 11 bits per character)", () => {
  test("9600 baud: a character is 1.146 ms, t1.5 = 1.719 ms, t3.5 = 4.010 ms", () => {
    const t = rtuTiming(9600);
    expect(t.characterMs).toBeCloseTo(11 / 9.6, 6);
    expect(t.interCharacterMs).toBeCloseTo(1.71875, 5);
    expect(t.interFrameMs).toBeCloseTo(4.0104, 4);
  });
  test("19200 baud still scales: t3.5 = 2.005 ms", () => {
    expect(rtuTiming(19200).interFrameMs).toBeCloseTo(2.0052, 4);
  });
  test("above 19200 baud the spec fixes t1.5 = 0.75 ms and t3.5 = 1.75 ms", () => {
    for (const baud of [38400, 57600, 115200]) expect(rtuTiming(baud)).toMatchObject({ interCharacterMs: 0.75, interFrameMs: 1.75 });
  });
});

describe("requests and responses (master side)", () => {
  test("read request frames: unit, fc, address and quantity big-endian, CRC", () => {
    expect(toHex(readRequestFrame(request(3, 1)))).toBe("01 03 00 00 00 01 84 0A");
    expect(toHex(readRequestFrame(request(3, 3, 0x11, 0x6b)))).toBe("11 03 00 6B 00 03 76 87");
  });

  test("expected response lengths: registers 5 + 2n, bits 5 + ceil(n/8)", () => {
    expect(readResponseLength(3, 1)).toBe(7);
    expect(readResponseLength(4, 125)).toBe(255);
    expect(readResponseLength(1, 1)).toBe(6);
    expect(readResponseLength(2, 9)).toBe(7);
    expect(readResponseLength(1, 2000)).toBe(255);
  });

  test("scan: complete frame; incomplete; exception (5 bytes); bad CRC", () => {
    const r = request(3, 2);
    const good = hex("01 03 04 12 34 56 78 81 07");
    expect(scanResponse(r, good)).toEqual({ kind: "frame", start: 0, end: 9 });
    expect(scanResponse(r, good.subarray(0, 8))).toEqual({ kind: "incomplete" });
    expect(scanResponse(r, encodeRtuFrame(1, [0x83, 0x02]))).toEqual({ kind: "frame", start: 0, end: 5 });
    const bad = good.slice();
    bad[4] = 0x35;
    expect(scanResponse(r, bad)).toEqual({ kind: "crc", start: 0, end: 9 });
  });

  test("scan skips leading noise, a wrong unit's frame and a look-alike header, and finds the response by its CRC", () => {
    const r = request(3, 2);
    const good = hex("01 03 04 12 34 56 78 81 07");
    const otherUnit = encodeRtuFrame(2, [0x03, 0x04, 0, 0, 0, 0]);
    // 01 03 in the noise looks like our header; its "frame" fails the CRC and the real one follows.
    const rx = Uint8Array.from([0x00, 0xff, ...otherUnit, 0x01, 0x03, 0x00, ...good]);
    const scan = scanResponse(r, rx);
    expect(scan.kind).toBe("frame");
    if (scan.kind === "frame") expect(toHex(rx.subarray(scan.start, scan.end))).toBe(toHex(good));
  });

  test("parse: registers big-endian; coils LSB first, padding ignored", () => {
    expect(parseReadResponse(request(3, 2), hex("01 03 04 12 34 56 78 81 07"), "x")).toEqual([0x1234, 0x5678]);
    // Coils 1..10 = 1 0 1 1 0 0 1 1 | 1 0: bytes 0xCD, 0x01 (spec 6.1 example, shifted).
    const coils = encodeRtuFrame(1, [0x01, 0x02, 0xcd, 0x01]);
    expect(parseReadResponse(request(1, 10), coils, "x")).toEqual([true, false, true, true, false, false, true, true, true, false]);
  });

  test("parse: an exception response is a protocol error carrying its code", () => {
    const error = (() => {
      try {
        parseReadResponse(request(3, 2), encodeRtuFrame(1, [0x83, 0x02]), "bus unit 1");
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ModbusReadError);
    expect(error).toMatchObject({ kind: "protocol", exceptionCode: 2, message: "bus unit 1: exception 2 (illegal data address)" });
  });

  test("parse: a byte count that does not match the request is a protocol error", () => {
    const wrong = encodeRtuFrame(1, [0x03, 0x02, 0x12, 0x34, 0x00, 0x00]);
    expect(() => parseReadResponse(request(3, 2), wrong, "x")).toThrow("byte count 2, expected 4");
  });
});

describe("request framing (slave side)", () => {
  test("FC1-6 are 8 bytes; FC15/16 are 9 + byte count; unknown function codes wait for silence", () => {
    expect(requestFrameLength(hex("01"))).toBeUndefined();
    expect(requestFrameLength(hex("01 03"))).toBe(8);
    expect(requestFrameLength(hex("01 06 00 01"))).toBe(8);
    expect(requestFrameLength(hex("01 10 00 00 00 02"))).toBeUndefined();
    expect(requestFrameLength(hex("01 10 00 00 00 02 04"))).toBe(13);
    expect(requestFrameLength(hex("01 0F 00 00 00 0A 02"))).toBe(11);
    expect(requestFrameLength(hex("01 2B 0E 01"))).toBeNull();
  });
});
