import { describe, expect, test } from "bun:test";
import { ModbusConfigError, type ModbusFunctionCode } from "./address.ts";
import { planReads, splitResponse, type PlanField, type PlanOptions, type ReadRequest } from "./plan.ts";

const field = (id: string, address: number, count = 1, functionCode: ModbusFunctionCode = 3, unitId = 1): PlanField => ({
  id,
  unitId,
  functionCode,
  address,
  count,
});

/** Compact form of a request for readable expectations: "unit/fc/address+quantity: id@offset..." */
const describeRequest = (r: ReadRequest) =>
  `${r.unitId}/${r.functionCode}/${r.address}+${r.quantity}: ${r.fields.map((f) => `${f.id}@${f.offset}`).join(" ")}`;

interface PlanCase {
  name: string;
  fields: PlanField[];
  options?: PlanOptions;
  expected: string[];
}

const CASES: PlanCase[] = [
  {
    name: "adjacent fields merge",
    fields: [field("a", 0), field("b", 1, 2), field("c", 3, 2)],
    expected: ["1/3/0+5: a@0 b@1 c@3"],
  },
  {
    name: "gap equal to maxGap merges",
    fields: [field("a", 0), field("b", 4)],
    options: { maxGap: 3 },
    expected: ["1/3/0+5: a@0 b@4"],
  },
  {
    name: "gap one over maxGap splits",
    fields: [field("a", 0), field("b", 5)],
    options: { maxGap: 3 },
    expected: ["1/3/0+1: a@0", "1/3/5+1: b@0"],
  },
  {
    name: "maxGap 0 merges only touching fields",
    fields: [field("a", 0), field("b", 1), field("c", 3)],
    options: { maxGap: 0 },
    expected: ["1/3/0+2: a@0 b@1", "1/3/3+1: c@0"],
  },
  {
    name: "default maxGap is 10",
    fields: [field("a", 0), field("b", 11), field("c", 23)],
    expected: ["1/3/0+12: a@0 b@11", "1/3/23+1: c@0"],
  },
  {
    name: "span of exactly 125 registers is one read",
    fields: [field("a", 0, 2), field("b", 123, 2)],
    options: { maxGap: 200 },
    expected: ["1/3/0+125: a@0 b@123"],
  },
  {
    name: "span of 126 registers splits",
    fields: [field("a", 0, 2), field("b", 124, 2)],
    options: { maxGap: 200 },
    expected: ["1/3/0+2: a@0", "1/3/124+2: b@0"],
  },
  {
    name: "single field of 125 registers",
    fields: [field("s", 100, 125)],
    expected: ["1/3/100+125: s@0"],
  },
  {
    name: "coils span exactly 2000 bits",
    fields: [field("first", 0, 1, 1), field("last", 1999, 1, 1)],
    options: { maxGap: 2000 },
    expected: ["1/1/0+2000: first@0 last@1999"],
  },
  {
    name: "coils spanning 2001 bits split",
    fields: [field("first", 0, 1, 1), field("last", 2000, 1, 1)],
    options: { maxGap: 2000 },
    expected: ["1/1/0+1: first@0", "1/1/2000+1: last@0"],
  },
  {
    name: "register cap does not apply to bits",
    fields: [field("c1", 0, 1, 2), field("c2", 199, 1, 2)],
    options: { maxGap: 500, maxReadRegisters: 10 },
    expected: ["1/2/0+200: c1@0 c2@199"],
  },
  {
    name: "per-device cap of 32 registers",
    fields: [field("a", 0, 2), field("b", 30, 2), field("c", 32, 2)],
    options: { maxReadRegisters: 32, maxGap: 50 },
    expected: ["1/3/0+32: a@0 b@30", "1/3/32+2: c@0"],
  },
  {
    name: "per-device bit cap",
    fields: [field("a", 0, 1, 1), field("b", 7, 1, 1), field("c", 8, 1, 1)],
    options: { maxReadBits: 8 },
    expected: ["1/1/0+8: a@0 b@7", "1/1/8+1: c@0"],
  },
  {
    name: "overlapping fields share a read",
    fields: [field("status", 10), field("status.alarm", 10), field("status.mode", 10), field("temp", 9, 2)],
    expected: ["1/3/9+2: temp@0 status@1 status.alarm@1 status.mode@1"],
  },
  {
    name: "field inside another does not extend the read",
    fields: [field("long", 0, 10), field("inner", 2, 2)],
    options: { maxGap: 0 },
    expected: ["1/3/0+10: long@0 inner@2"],
  },
  {
    name: "units and function codes never share a read; ordered by unit, fc, address",
    fields: [
      field("u2-hr", 0, 1, 3, 2),
      field("u1-ir", 0, 1, 4, 1),
      field("u1-hr-b", 1, 1, 3, 1),
      field("u1-coil", 0, 1, 1, 1),
      field("u1-hr-a", 0, 1, 3, 1),
    ],
    expected: ["1/1/0+1: u1-coil@0", "1/3/0+2: u1-hr-a@0 u1-hr-b@1", "1/4/0+1: u1-ir@0", "2/3/0+1: u2-hr@0"],
  },
  {
    name: "oneRequestPerField workaround",
    fields: [field("b", 1), field("a", 0, 2), field("c", 1)],
    options: { oneRequestPerField: true },
    expected: ["1/3/0+2: a@0", "1/3/1+1: b@0", "1/3/1+1: c@0"],
  },
  {
    name: "unsorted input",
    fields: [field("z", 40), field("y", 20), field("x", 0)],
    options: { maxGap: 5 },
    expected: ["1/3/0+1: x@0", "1/3/20+1: y@0", "1/3/40+1: z@0"],
  },
  {
    name: "field ending at the last address",
    fields: [field("end", 65534, 2)],
    expected: ["1/3/65534+2: end@0"],
  },
  { name: "no fields", fields: [], expected: [] },
];

describe("planReads", () => {
  test.each(CASES)("$name", ({ fields, options, expected }) => {
    expect(planReads(fields, options).map(describeRequest)).toEqual(expected);
  });

  test.each(CASES)("same plan for reversed input: $name", ({ fields, options }) => {
    expect(planReads([...fields].reverse(), options)).toEqual(planReads(fields, options));
  });

  test("fields carry their counts", () => {
    expect(planReads([field("a", 0, 2), field("b", 3, 4)])).toEqual([
      {
        unitId: 1,
        functionCode: 3,
        address: 0,
        quantity: 7,
        fields: [
          { id: "a", offset: 0, count: 2 },
          { id: "b", offset: 3, count: 4 },
        ],
      },
    ]);
  });
});

describe("planReads rejects invalid config", () => {
  test.each<[string, PlanField[], PlanOptions, RegExp]>([
    ["126-register field", [field("big", 0, 126)], {}, /^field "big": 126 registers exceed the 125-registers limit/],
    ["string over a per-device cap", [field("name", 0, 40)], { maxReadRegisters: 32 }, /^field "name": 40 registers exceed the 32-registers limit/],
    ["2001-bit field", [field("coils", 0, 2001, 1)], {}, /^field "coils": 2001 bits exceed the 2000-bits limit/],
    ["past the address space", [field("tail", 65535, 2)], {}, /^field "tail": .*run past 65535/],
    ["address out of range", [field("x", 65536)], {}, /^field "x": address must be 0-65535/],
    ["negative address", [field("x", -1)], {}, /^field "x": address/],
    ["zero count", [field("x", 0, 0)], {}, /^field "x": count/],
    ["fractional count", [field("x", 0, 1.5)], {}, /^field "x": count/],
    ["bad function code", [field("x", 0, 1, 6 as ModbusFunctionCode)], {}, /^field "x": function code/],
    ["bad unit id", [field("x", 0, 1, 3, 256)], {}, /^field "x": unit id/],
    ["empty id", [field("", 0)], {}, /field id/],
    ["duplicate id", [field("x", 0), field("x", 5)], {}, /^field "x": duplicate/],
    ["register cap above 125", [], { maxReadRegisters: 126 }, /maxReadRegisters must be an integer 1-125/],
    ["register cap 0", [], { maxReadRegisters: 0 }, /maxReadRegisters/],
    ["bit cap above 2000", [], { maxReadBits: 2001 }, /maxReadBits must be an integer 1-2000/],
    ["negative gap", [], { maxGap: -1 }, /maxGap/],
    ["fractional gap", [], { maxGap: 1.5 }, /maxGap/],
  ])("%s", (_name, fields, options, message) => {
    expect(() => planReads(fields, options)).toThrow(ModbusConfigError);
    expect(() => planReads(fields, options)).toThrow(message);
  });
});

describe("splitResponse", () => {
  const onlyRequest = (fields: PlanField[]): ReadRequest => {
    const [request, ...rest] = planReads(fields);
    if (!request || rest.length > 0) throw new Error("expected a single request");
    return request;
  };
  const registers = onlyRequest([field("temp", 9, 2), field("status", 10), field("name", 12, 2)]);
  const coils = onlyRequest([field("run", 3, 1, 1), field("fault", 5, 1, 1)]);

  test.each<{ name: string; request: ReadRequest; response: ArrayLike<number | boolean>; expected: Record<string, Array<number | boolean>> }>([
    {
      name: "registers, overlapping fields",
      request: registers,
      response: [0x1111, 0x2222, 0x0000, 0x4142, 0x4344],
      expected: { temp: [0x1111, 0x2222], status: [0x2222], name: [0x4142, 0x4344] },
    },
    {
      name: "registers from a Uint16Array",
      request: registers,
      response: Uint16Array.of(1, 2, 3, 4, 5),
      expected: { temp: [1, 2], status: [2], name: [4, 5] },
    },
    {
      name: "coils padded to a whole byte",
      request: coils,
      response: [true, false, true, false, false, false, false, false],
      expected: { run: [true], fault: [true] },
    },
  ])("$name", ({ request, response, expected }) => {
    expect(Object.fromEntries(splitResponse(request, response))).toEqual(expected);
  });

  test("short response throws", () => {
    expect(() => splitResponse(registers, [1, 2, 3])).toThrow(RangeError);
  });
});
