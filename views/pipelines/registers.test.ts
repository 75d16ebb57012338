import { describe, expect, test } from "bun:test";
import { registerRowsFromCsv, normalizeType, parseCsv } from "./csv.ts";
import { describeAddress, emptyRow, normalizeAddress, registersFromRows, rowErrors, rowsFromRegisters, type RegisterRow } from "./registers.ts";
import { decodeAllOrders } from "./byte-order.ts";

const row = (fields: Partial<RegisterRow>): RegisterRow => ({ ...emptyRow(), ...fields });

describe("addresses in both notations", () => {
  test.each([
    ["40001", "modicon", { modicon: "40001", explicit: "3:0", table: "holding register" }],
    ["3:0", "modicon", { modicon: "40001", explicit: "3:0", table: "holding register" }],
    ["30001", "explicit", { modicon: "30001", explicit: "4:0", table: "input register" }],
    ["00001", "modicon", { modicon: "00001", explicit: "1:0", table: "coil" }],
    ["410000", "modicon", { modicon: "410000", explicit: "3:9999", table: "holding register" }],
  ] as const)("%s (%s)", (address, mode, expected) => {
    expect(describeAddress(address, mode)).toEqual(expected);
  });

  test("a typed address is stored in the pipeline's notation; nonsense stays for the validator to name", () => {
    expect(normalizeAddress("3:6", "modicon")).toBe("40007");
    expect(normalizeAddress("40007", "explicit")).toBe("3:6");
    expect(normalizeAddress(" 4x ", "modicon")).toBe("4x");
    expect(describeAddress("4x", "modicon")).toEqual({ error: 'not an address: use "40001" or "3:0"' });
  });
});

describe("register rows ⇄ register map", () => {
  const stored = {
    "40009": { param: "rtu_uptime", type: "uint32", byte_order: "CDAB" },
    "00001": { param: "pump_running", type: "bool" },
    "40008": [
      { param: "running", type: "bool", bit: 0 },
      { param: "mode", type: "uint16", bits: [2, 4] },
    ],
  };

  test("round trip keeps every field and the list form, in address order", () => {
    const rows = rowsFromRegisters(stored);
    expect(rows.map((r) => r.address)).toEqual(["00001", "40008", "40008", "40009"]);
    expect(rows[2]!.bit).toBe("2-4");
    expect(registersFromRows(rows, "modicon").registers).toEqual(stored);
  });

  test("numbers are converted; what is not a number is left for the validator", () => {
    const { registers } = registersFromRows([row({ address: "40001", param: "p", scale: "0.1", offset: "-4", length: "x" })], "modicon");
    expect(registers).toEqual({ "40001": { param: "p", scale: 0.1, offset: -4, length: "x" } });
  });

  test("validator paths land on their row and cell", () => {
    const { keyRows } = registersFromRows(
      [row({ address: "40001", param: "a" }), row({ address: "40008", param: "b", bit: "0" }), row({ address: "40008", param: "c", bit: "1" }), row({ address: "4x", param: "d" })],
      "modicon",
    );
    const placed = rowErrors(
      [
        { path: 'adapter.mapping.registers["40001"].type', message: "expected one of ..." },
        { path: 'adapter.mapping.registers["40008"][1].bit', message: "bits must be 0-15" },
        { path: 'adapter.mapping.registers["4x"]', message: "expected a Modicon address" },
        { path: "adapter.mapping.registers", message: "expected at least one register" },
        { path: "adapter.source.port", message: "not mine" },
      ],
      keyRows,
    );
    expect(placed.byRow.get(0)?.get("type")).toEqual(["expected one of ..."]);
    expect(placed.byRow.get(2)?.get("bit")).toEqual(["bits must be 0-15"]);
    expect(placed.byRow.get(3)?.get("row")).toEqual(["expected a Modicon address"]);
    expect(placed.general).toEqual(["expected at least one register"]);
  });
});

describe("CSV import", () => {
  test("header, quotes, PLC type names, semicolons", () => {
    const csv = 'Address;Parameter;Unit;Data type;Byte order;Scale;Offset;Comment\n40001;pressure;psi;REAL;abcd;1;0;"wellhead; main"\n30001;"annulus ""A""";psi;INT;;0.1;\n';
    const { rows, errors } = registerRowsFromCsv(csv);
    expect(rows).toEqual([
      row({ address: "40001", param: "pressure", unit: "psi", type: "float32", byte_order: "ABCD", scale: "1", offset: "0" }),
      row({ address: "30001", param: 'annulus "A"', unit: "psi", type: "int16", scale: "0.1" }),
    ]);
    expect(errors).toEqual(["ignored column(s): Comment"]);
  });

  test("without a header the documented column order applies; incomplete lines are reported", () => {
    const { rows, errors } = registerRowsFromCsv("40001,pressure,psi,float32\n\n# comment\n40003\n");
    expect(rows).toEqual([row({ address: "40001", param: "pressure", unit: "psi", type: "float32" })]);
    expect(errors).toEqual(["line 2: needs at least an address and a param; skipped"]);
  });

  test("CRLF, BOM and tabs", () => {
    expect(parseCsv("\uFEFFaddress\tparam\r\n40001\tp\r\n")).toEqual([["address", "param"], ["40001", "p"]]);
    expect(normalizeType("DWord")).toBe("uint32");
    expect(normalizeType("float64")).toBe("float64");
    expect(normalizeType("weird")).toBe("weird");
  });
});

describe("byte-order preview", () => {
  const spec = { type: "float32" as const, byteOrder: "ABCD" as const, scale: 1, offset: 0 };

  test("the same two words in all four orders", () => {
    // 185.4 as a big-endian float32 is 0x4339 0x6666.
    const decoded = Object.fromEntries(decodeAllOrders(spec, [0x4339, 0x6666]).map((o) => [o.order, o.value]));
    expect(decoded.ABCD).toBe("185.4");
    expect(decoded.CDAB).not.toBe("185.4");
    expect(Object.keys(decoded)).toEqual(["ABCD", "CDAB", "BADC", "DCBA"]);
  });

  test("a short read shows why instead of a value", () => {
    expect(decodeAllOrders(spec, [0x4339])[0]!.value).toContain("needs 2 registers");
  });
});
