import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeField } from "./codec.ts";
import { handleRequestPdu } from "./pdu.ts";
import { generateBenchPlant, loadPlantFile, parsePlant, plantBank, waveformValue, type Waveform } from "./plant.ts";

const OFFSHORE_WELL = join(import.meta.dir, "../../plants/offshore-well.yaml");

describe("waveformValue", () => {
  const sine: Waveform = { kind: "sine", min: 180, max: 190, period_s: 60 };
  const ramp: Waveform = { kind: "ramp", min: 60, max: 80, period_s: 120 };
  const square: Waveform = { kind: "square", low: 0, high: 1, period_s: 30 };
  test.each<[string, Waveform, number, number | string | boolean]>([
    ["constant number", { kind: "constant", value: 185.5 }, 1234, 185.5],
    ["constant string", { kind: "constant", value: "WELL-12" }, 0, "WELL-12"],
    ["constant bool", { kind: "constant", value: true }, 0, true],
    ["sine starts at the midpoint", sine, 0, 185],
    ["sine peaks at a quarter period", sine, 15, 190],
    ["sine is back at the midpoint at half a period", sine, 30, 185],
    ["sine bottoms at three quarters", sine, 45, 180],
    ["sine repeats", sine, 75, 190],
    ["sine with phase_s 15 starts at the peak", { ...sine, phase_s: 15 }, 0, 190],
    ["ramp starts at min", ramp, 0, 60],
    ["ramp halfway", ramp, 60, 70],
    ["ramp just before the reset", ramp, 119.88, 79.98],
    ["ramp resets to min", ramp, 120, 60],
    ["ramp before t = 0", ramp, -30, 75],
    ["square is high for the first half", square, 0, 1],
    ["square still high just before half", square, 14.99, 1],
    ["square is low for the second half", square, 15, 0],
    ["square duty 0.1 of 100 s: high for 10 s", { kind: "square", low: 2, high: 9, period_s: 100, duty: 0.1 }, 9.9, 9],
    ["square duty 0.1 of 100 s: low after 10 s", { kind: "square", low: 2, high: 9, period_s: 100, duty: 0.1 }, 10, 2],
    ["square with phase_s -60 goes high at t = 60", { kind: "square", low: 0, high: 25, period_s: 180, duty: 0.05, phase_s: -60 }, 60, 25],
    ["counter defaults: start 0, +1 per second", { kind: "counter" }, 42.7, 42],
    ["counter start 100 step 5 every 2 s", { kind: "counter", start: 100, step: 5, every_s: 2 }, 7, 115],
    ["counter with phase_s", { kind: "counter", phase_s: 10 }, 0, 10],
    ["sum of sine and constant", { kind: "sum", components: [sine, { kind: "constant", value: 10 }] }, 15, 200],
    ["sum counts booleans as 0/1", { kind: "sum", components: [{ kind: "constant", value: true }, { kind: "constant", value: 4 }] }, 0, 5],
  ])("%s", (_name, waveform, t, expected) => {
    const value = waveformValue(waveform, t);
    if (typeof expected === "number") expect(value as number).toBeCloseTo(expected, 9);
    else expect(value).toBe(expected);
  });

  test("noise is deterministic, stays in range, and changes per time bucket", () => {
    const noise: Waveform = { kind: "noise", min: -1, max: 1, seed: 7, every_s: 2 };
    const samples = Array.from({ length: 2000 }, (_, i) => waveformValue(noise, i * 2) as number);
    expect(samples.every((v) => v >= -1 && v < 1)).toBe(true);
    expect(new Set(samples).size).toBeGreaterThan(1990);
    expect(Math.abs(samples.reduce((a, b) => a + b, 0) / samples.length)).toBeLessThan(0.05); // roughly uniform
    expect(waveformValue(noise, 10)).toBe(waveformValue(noise, 11.9)); // same 2 s bucket
    expect(waveformValue(noise, 10)).toBe(waveformValue({ ...noise }, 10)); // no hidden state
    expect(waveformValue(noise, 10)).not.toBe(waveformValue({ ...noise, seed: 8 }, 10));
    // Known value pins the hash, so plants stay reproducible across releases.
    const unit: Waveform = { kind: "noise", min: 0, max: 1 };
    expect([0, 1, -1, 2 ** 40].map((t) => waveformValue(unit, t)))
      .toEqual([0.3913450762629509, 0.9692096405196935, 0.31175654800608754, 0.08320508571341634]);
  });
});

describe("parsePlant validation", () => {
  const plantWith = (registers: Record<string, unknown>, device: Record<string, unknown> = {}) => ({
    name: "p",
    devices: [{ name: "d", ...device, registers }],
  });
  const errorOf = (obj: unknown): string => {
    try {
      parsePlant(obj, "test.yaml");
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error("expected parsePlant to throw");
  };

  test.each<[string, unknown, string]>([
    ["unknown waveform kind", plantWith({ "40001": { type: "float32", waveform: { kind: "sinus" } } }),
      'devices[0].registers["40001"].waveform.kind: expected one of "constant", "sine", "ramp", "square", "counter", "noise", "sum", got "sinus"'],
    ["missing waveform property", plantWith({ "40001": { type: "float32", waveform: { kind: "sine", min: 1, max: 2 } } }),
      'devices[0].registers["40001"].waveform.period_s: expected required property'],
    ["non-positive period", plantWith({ "40001": { type: "float32", waveform: { kind: "ramp", min: 0, max: 1, period_s: 0 } } }),
      'devices[0].registers["40001"].waveform.period_s: expected number to be greater than 0'],
    ["max below min", plantWith({ "40001": { type: "float32", waveform: { kind: "sine", min: 5, max: 1, period_s: 1 } } }),
      'devices[0].registers["40001"].waveform.max: must be >= min (5), got 1'],
    ["bad component of a sum", plantWith({ "40001": { type: "float32", waveform: { kind: "sum", components: [{ kind: "constant", value: 1 }, { kind: "sawtooth" }] } } }),
      'devices[0].registers["40001"].waveform.components[1].kind: expected one of'],
    ["unknown data type", plantWith({ "40001": { type: "float", waveform: { kind: "constant", value: 1 } } }),
      'devices[0].registers["40001"].type: expected one of "bool", "int16"'],
    ["typo in a register property", plantWith({ "40001": { type: "uint16", byteorder: "CDAB", waveform: { kind: "constant", value: 1 } } }),
      'devices[0].registers["40001"].byteorder: unexpected property'],
    ["waveform out of the type's range", plantWith({ "40001": { type: "uint16", waveform: { kind: "sine", min: -5, max: 10, period_s: 1 } } }),
      'devices[0].registers["40001"].waveform: waveform range -5..10 does not fit uint16'],
    ["string without a string waveform", plantWith({ "40001": { type: "string", length: 4, waveform: { kind: "counter" } } }),
      'devices[0].registers["40001"].waveform: a string register needs a constant string waveform'],
    ["string too long for its registers", plantWith({ "40001": { type: "string", length: 2, waveform: { kind: "constant", value: "WELL-12" } } }),
      'devices[0].registers["40001"].waveform: "WELL-12" exceeds 4 characters'],
    ["number register with a string", plantWith({ "40001": { type: "uint16", waveform: { kind: "constant", value: "x" } } }),
      'devices[0].registers["40001"].waveform: a uint16 register needs a numeric or boolean waveform'],
    ["coil that is not bool", plantWith({ "00001": { type: "uint16", waveform: { kind: "constant", value: 1 } } }),
      'devices[0].registers["00001"]: coils and discrete inputs (function code 1) hold single bits'],
    ["bad Modicon key", plantWith({ "50001": { type: "uint16", waveform: { kind: "constant", value: 1 } } }),
      'devices[0].registers["50001"]: register key "50001": expected a Modicon address'],
    ["unquoted YAML key 00001 arrives as 1", plantWith({ 1: { type: "bool", waveform: { kind: "constant", value: true } } }),
      '(quote Modicon keys in YAML: "00001", not 00001)'],
    ["explicit key in modicon mode", plantWith({ "3:0": { type: "uint16", waveform: { kind: "constant", value: 1 } } }),
      'devices[0].registers["3:0"]: register key "3:0"'],
    ["overlapping registers", plantWith({
      "40001": { type: "float32", waveform: { kind: "constant", value: 1 } },
      "40002": { type: "uint16", waveform: { kind: "constant", value: 1 } },
    }), 'devices[0].registers["40002"]: overlaps register "40001": both use 0-based address 1'],
    ["unit id out of range", plantWith({}, { unit_id: 256 }), "devices[0].unit_id: expected integer to be less or equal to 255, got 256"],
    ["no devices", { name: "p", devices: [] }, "devices: expected array length to be greater or equal to 1"],
  ])("%s", (_name, plant, message) => {
    const error = errorOf(plant);
    expect(error).toStartWith("test.yaml is invalid:\n");
    expect(error).toContain(message);
  });

  test("every problem is reported, across devices", () => {
    const error = errorOf({
      name: "p",
      devices: [
        { name: "a", registers: { "40001": { type: "float32", waveform: { kind: "nope" } } } },
        { name: "b", unit_id: -1 },
        { name: "a", registers: { "40001": { type: "float32" } } },
      ],
    });
    expect(error.split("\n").slice(1)).toEqual([
      'devices[0].registers["40001"].waveform.kind: expected one of "constant", "sine", "ramp", "square", "counter", "noise", "sum", got "nope"',
      "devices[1].unit_id: expected integer to be greater or equal to 0, got -1",
      'devices[2].registers["40001"].waveform: expected required property, got nothing',
      'devices[2].name: duplicate device name "a"',
      'devices[2].unit_id: unit 1 on port_offset 0 is already device "a"',
    ]);
  });

  test("explicit addressing and defaults", () => {
    const plant = parsePlant(plantWith({ "4:7": { type: "int16", waveform: { kind: "constant", value: -3 } } }, { addressing: "explicit" }), "t");
    const [device] = plant.devices;
    expect(device).toMatchObject({ name: "d", portOffset: 0, unitId: 1, addressing: "explicit", unmappedReads: "zero" });
    expect(device!.registers[0]).toMatchObject({
      key: "4:7", functionCode: 4, address: 7, count: 1,
      field: { type: "int16", byteOrder: "ABCD", scale: 1, offset: 0 },
    });
  });
});

describe("plantBank", () => {
  const device = parsePlant({
    name: "p",
    devices: [{
      name: "d",
      registers: {
        "40001": { type: "float32", byte_order: "ABCD", waveform: { kind: "constant", value: 185.5 } },
        "40003": { type: "float32", byte_order: "CDAB", waveform: { kind: "ramp", min: 0, max: 100, period_s: 100 } },
        "40005": { type: "uint16", waveform: { kind: "counter", start: 65534 } },
        "40006": { type: "int32", byte_order: "CDAB", waveform: { kind: "counter", start: -2, step: 1 } },
        "40008": { type: "int16", scale: 0.1, waveform: { kind: "constant", value: -12.3 } },
        "40010": { type: "string", length: 4, waveform: { kind: "constant", value: "WELL-12" } },
        "00001": { type: "bool", waveform: { kind: "square", low: 0, high: 1, period_s: 10 } },
        "10002": { type: "bool", waveform: { kind: "constant", value: true } },
        "30001": { type: "uint16", waveform: { kind: "constant", value: 7 } },
      },
    }],
  }, "t").devices[0]!;

  test("values are encoded with the codec and computed at request time", () => {
    let now = 0;
    const bank = plantBank(device, () => now);
    const read = () => Array.from(bank.readRegisters(3, 0, 13)!);
    expect(read()).toEqual([0x4339, 0x8000, 0, 0, 65534, 0xfffe, 0xffff, 0xff85, 0, 0x5745, 0x4c4c, 0x2d31, 0x3200]);
    now = 25;
    const words = read();
    expect(decodeField({ type: "float32", byteOrder: "CDAB", scale: 1, offset: 0 }, words.slice(2, 4))).toBe(25);
    expect(words[4]).toBe(65534 + 25 - 65536); // uint16 counter wrapped past 65535
    expect(decodeField({ type: "int32", byteOrder: "CDAB", scale: 1, offset: 0 }, words.slice(5, 7))).toBe(23);
    expect(decodeField({ type: "int16", byteOrder: "ABCD", scale: 0.1, offset: 0 }, words.slice(7, 8))).toBeCloseTo(-12.3, 9);
  });

  test("bits, input registers and a PDU round trip", () => {
    let now = 0;
    const bank = plantBank(device, () => now);
    expect(Array.from(bank.readBits(1, 0, 2)!)).toEqual([true, false]);
    now = 5;
    expect(Array.from(bank.readBits(1, 0, 1)!)).toEqual([false]);
    expect(Array.from(bank.readBits(2, 0, 2)!)).toEqual([false, true]);
    expect(Array.from(handleRequestPdu(Uint8Array.of(4, 0, 0, 0, 1), bank))).toEqual([4, 2, 0, 7]);
  });

  test("writes override the waveform at that address", () => {
    const bank = plantBank(device, () => 0);
    expect(bank.writeRegisters(4, [123])).toBe(true);
    expect(bank.writeBits(0, [false])).toBe(true);
    expect(Array.from(bank.readRegisters(3, 4, 1)!)).toEqual([123]);
    expect(Array.from(bank.readBits(1, 0, 1)!)).toEqual([false]);
    expect(Array.from(plantBank(device, () => 0).readRegisters(3, 4, 1)!)).toEqual([65534]); // per bank
  });

  test("unmapped addresses read 0, or are illegal with unmapped_reads: exception", () => {
    expect(Array.from(plantBank(device, () => 0).readRegisters(3, 13, 3)!)).toEqual([0, 0, 0]);
    const strict = plantBank({ ...device, unmappedReads: "exception" }, () => 0);
    expect(strict.readRegisters(3, 12, 2)).toBeUndefined();
    expect(strict.readRegisters(3, 12, 1)).toHaveLength(1);
    expect(strict.writeRegisters(13, [1])).toBe(false);
    expect(Array.from(handleRequestPdu(Uint8Array.of(3, 0, 12, 0, 2), strict))).toEqual([0x83, 2]);
  });
});

describe("plant files", () => {
  test("offshore-well.yaml parses and behaves as documented", () => {
    const plant = loadPlantFile(OFFSHORE_WELL);
    expect(plant.name).toBe("offshore-well");
    const [rtu] = plant.devices;
    expect(rtu).toMatchObject({ name: "well-12-rtu", asset: "offshore_well_12", unitId: 1, portOffset: 0 });
    const register = (key: string) => rtu!.registers.find((r) => r.key === key)!;
    const pressure = register("40001");
    expect(pressure).toMatchObject({ unit: "psi", field: { type: "float32", byteOrder: "ABCD" } });
    expect(register("40003")).toMatchObject({ unit: "celsius", field: { type: "float32" } });

    const pressureAt = (t: number) => waveformValue(pressure.waveform, t) as number;
    expect(pressureAt(0)).toBeCloseTo(185, 9);
    // Surges above 200 psi for 9 s every 3 minutes from t = 60, and only then.
    const above = Array.from({ length: 3600 }, (_, t) => t).filter((t) => pressureAt(t) > 200);
    expect(above.length).toBe(20 * 9);
    expect(above.slice(0, 10)).toEqual([60, 61, 62, 63, 64, 65, 66, 67, 68, 240]);
    expect(Math.max(...above.map(pressureAt))).toBeLessThanOrEqual(215);

    const status = (t: number) => waveformValue(register("40008").waveform, t);
    expect([status(0), status(61), status(3500)]).toEqual([5, 7, 4]);
    expect(waveformValue(register("00001").waveform, 3500)).toBe(0);

    const bank = plantBank(rtu!, () => 0);
    const tag = bank.readRegisters(3, 10, 8)!; // 40011
    expect(decodeField(register("40011").field, tag)).toBe("WELL-12");
  });

  test("loadPlantFile names the file in errors", () => {
    const dir = mkdtempSync(join(tmpdir(), "plant-"));
    const file = join(dir, "broken.yaml");
    writeFileSync(file, "name: x\ndevices:\n  - name: d\n    registers:\n      '40001': { type: float32, waveform: { kind: sinus } }\n");
    expect(() => loadPlantFile(file)).toThrow(`${file} is invalid:\ndevices[0].registers["40001"].waveform.kind: expected one of`);
    writeFileSync(file, "name: [unclosed\n");
    expect(() => loadPlantFile(file)).toThrow(`${file} is invalid`);
  });

  test("generateBenchPlant: one port per device, consecutive holding registers", () => {
    const plant = generateBenchPlant({ devices: 100, registersPerDevice: 100 });
    expect(plant.devices).toHaveLength(100);
    expect(new Set(plant.devices.map((d) => d.portOffset)).size).toBe(100);
    for (const device of plant.devices) {
      let next = 0;
      for (const r of device.registers) {
        expect(r).toMatchObject({ functionCode: 3, address: next });
        next += r.count;
      }
      expect(next).toBe(100);
    }
    const types = new Set(plant.devices[0]!.registers.map((r) => r.field.type));
    expect([...types].sort()).toEqual(["float32", "uint16"]);
    expect(generateBenchPlant({ devices: 1, registersPerDevice: 5 }).devices[0]!.registers.map((r) => r.field.type))
      .toEqual(["float32", "uint16", "uint16", "uint16"]);
  });
});
