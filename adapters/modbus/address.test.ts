import { describe, expect, test } from "bun:test";
import { formatAddress, ModbusConfigError, parseAddress, type ModbusFunctionCode } from "./address.ts";

describe("parseAddress modicon", () => {
  test.each([
    ["00001", 1, 0],
    ["09999", 1, 9998],
    ["10005", 2, 4],
    ["19999", 2, 9998],
    ["30001", 4, 0],
    ["39999", 4, 9998],
    ["40001", 3, 0],
    ["40100", 3, 99],
    ["49999", 3, 9998],
    ["000001", 1, 0],
    ["165536", 2, 65535],
    ["300001", 4, 0],
    ["400001", 3, 0],
    ["410000", 3, 9999],
    ["465536", 3, 65535],
  ] as const)("%s -> FC%i address %i", (key, functionCode, address) => {
    expect(parseAddress(key, "modicon")).toEqual({ functionCode, address });
  });

  test.each([
    "4x001", // vendor "4x" notation is not accepted
    "40000", // Modicon numbers are 1-based
    "400000",
    "465537", // past the 16-bit address space
    "20001", // 2x is not a Modicon table
    "50001",
    "4001", // too short
    "4000001", // too long
    " 40001",
    "3:0", // explicit key in modicon mode
    "",
  ])("rejects %p", (key) => {
    expect(() => parseAddress(key, "modicon")).toThrow(ModbusConfigError);
  });

  test("error names the key and the expected forms", () => {
    expect(() => parseAddress("4x001", "modicon")).toThrow(
      'register key "4x001": expected a Modicon address like "40001" (coils 00001-09999, discrete inputs 10001-19999, input registers 30001-39999, holding registers 40001-49999) or 6-digit "400001"',
    );
  });
});

describe("parseAddress explicit", () => {
  test.each([
    ["3:0", 3, 0],
    ["4:17", 4, 17],
    ["1:2000", 1, 2000],
    ["2:65535", 2, 65535],
  ] as const)("%s -> FC%i address %i", (key, functionCode, address) => {
    expect(parseAddress(key, "explicit")).toEqual({ functionCode, address });
  });

  test.each(["0:1", "5:1", "3:65536", "3:-1", "3:", ":3", "3:1.5", "40001", "3 : 0", "03:0"])("rejects %p", (key) => {
    expect(() => parseAddress(key, "explicit")).toThrow(ModbusConfigError);
  });

  test("error names the key", () => {
    expect(() => parseAddress("6:1", "explicit")).toThrow(/^register key "6:1": expected "<function code>:<address>"/);
  });
});

describe("formatAddress", () => {
  test.each([
    [3, 0, "40001", "3:0"],
    [4, 0, "30001", "4:0"],
    [2, 4, "10005", "2:4"],
    [1, 0, "00001", "1:0"],
    [3, 9998, "49999", "3:9998"], // last address 5 digits can hold
    [3, 9999, "410000", "3:9999"], // first address that needs 6 digits
    [3, 65535, "465536", "3:65535"],
    [1, 65535, "065536", "1:65535"],
  ] as const)("FC%i address %i -> %s / %s", (fc, address, modicon, explicit) => {
    expect(formatAddress(fc, address)).toEqual({ modicon, explicit });
  });

  test.each([
    [3, -1],
    [3, 65536],
    [3, 1.5],
    [5, 0],
  ])("rejects FC%i address %d", (fc, address) => {
    expect(() => formatAddress(fc as ModbusFunctionCode, address)).toThrow(ModbusConfigError);
  });

  test("round-trips through both parsers", () => {
    for (const fc of [1, 2, 3, 4] as const) {
      for (const address of [0, 1, 9998, 9999, 12345, 65535]) {
        const { modicon, explicit } = formatAddress(fc, address);
        expect(parseAddress(modicon, "modicon")).toEqual({ functionCode: fc, address });
        expect(parseAddress(explicit, "explicit")).toEqual({ functionCode: fc, address });
      }
    }
  });
});
