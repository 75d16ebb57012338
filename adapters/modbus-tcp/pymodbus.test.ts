/**
 * Interoperability: the real adapter process (`gateway adapter`) polls an independent Modbus TCP
 * server (pymodbus, test/peers/pymodbus_server.py) and its readings land in Kafka.
 *
 * Register contents are raw 16-bit words worked out by hand from the Modbus spec (registers are
 * big-endian words) and IEEE 754, never from our encoder, so an error shared by our encoder and
 * decoder cannot hide. A..H are the value's bytes, most significant first (adapters/modbus/README.md):
 *   ABCD  AB CD [EF GH]      (Modbus default: high word first)
 *   CDAB  CD AB / GH EF CD AB (registers reversed)
 *   BADC  BA DC [FE HG]      (bytes swapped inside each register)
 *   DCBA  DC BA / HG FE DC BA (little-endian)
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { encodeConfigJson } from "../../src/adapter-runtime/config.ts";
import type { Reading } from "../../src/envelope/reading.ts";
import { KafkaAdmin } from "../../src/kafka/admin.ts";
import type { ConsumedRecord } from "../../src/kafka/processor.ts";
import { readAll, spawnAdapter, type LogLine } from "../../test/peers/adapter-process.ts";
import { pymodbusAvailable, startPymodbus, type ModbusTables, type PymodbusServer } from "../../test/peers/pymodbus.ts";
import { KAFKA_BOOTSTRAP, kafkaConnection, kafkaUp, uniqueName } from "../../test/support/services.ts";

const repo = join(import.meta.dir, "../..");
const POLL_MS = 200;
/** Polls each adapter makes before it is stopped. */
const CYCLES = 4;

// ---------------------------------------------------------------------------------------------
// Expected values and their words, by hand.
// ---------------------------------------------------------------------------------------------

type Order = "ABCD" | "CDAB" | "BADC" | "DCBA";
/** `bad`: quality BAD, value null, metadata.error containing the text. */
type Expect = { exact: number | boolean | string } | { float32: number } | { close: number } | { bad: string };

interface RegisterCfg {
  param: string;
  type: string;
  byte_order?: Order;
  unit?: string;
  scale?: number;
  offset?: number;
  length?: number;
  bit?: number;
  bits?: [number, number];
}

interface Case {
  cfg: RegisterCfg;
  expect: Expect;
}

/** Words per byte order for every type; the comment gives the big-endian (ABCD) bytes. */
const MATRIX: { type: string; length?: number; expect: Expect; words: Record<Order, number[]> }[] = [
  // Any non-zero register is true; 0x0100 stays non-zero when its bytes are swapped.
  { type: "bool", expect: { exact: true }, words: { ABCD: [0x0100], CDAB: [0x0100], BADC: [0x0001], DCBA: [0x0001] } },
  // -2 = 0xFFFE; 16-bit values: CDAB = ABCD, DCBA = BADC (one register, bytes swapped).
  { type: "int16", expect: { exact: -2 }, words: { ABCD: [0xfffe], CDAB: [0xfffe], BADC: [0xfeff], DCBA: [0xfeff] } },
  // 32769 = 0x8001: above int16's range; swapped it would read 0x0180 = 384.
  { type: "uint16", expect: { exact: 32769 }, words: { ABCD: [0x8001], CDAB: [0x8001], BADC: [0x0180], DCBA: [0x0180] } },
  // -123456789 = 0xF8A432EB (two's complement of 0x075BCD15).
  { type: "int32", expect: { exact: -123456789 }, words: { ABCD: [0xf8a4, 0x32eb], CDAB: [0x32eb, 0xf8a4], BADC: [0xa4f8, 0xeb32], DCBA: [0xeb32, 0xa4f8] } },
  // 3000000000 = 0xB2D05E00 (above int32's range).
  { type: "uint32", expect: { exact: 3000000000 }, words: { ABCD: [0xb2d0, 0x5e00], CDAB: [0x5e00, 0xb2d0], BADC: [0xd0b2, 0x005e], DCBA: [0x005e, 0xd0b2] } },
  // 123.456 = 1.929 × 2^6: sign 0, exponent 127+6 = 133 = 0x85, mantissa 0x76E979 → 0x42F6E979.
  { type: "float32", expect: { float32: 123.456 }, words: { ABCD: [0x42f6, 0xe979], CDAB: [0xe979, 0x42f6], BADC: [0xf642, 0x79e9], DCBA: [0x79e9, 0xf642] } },
  // -2 = 0xFFFF_FFFF_FFFF_FFFE.
  {
    type: "int64", expect: { exact: -2 },
    words: { ABCD: [0xffff, 0xffff, 0xffff, 0xfffe], CDAB: [0xfffe, 0xffff, 0xffff, 0xffff], BADC: [0xffff, 0xffff, 0xffff, 0xfeff], DCBA: [0xfeff, 0xffff, 0xffff, 0xffff] },
  },
  // 0x0102_0304_0506_0708 = 72623859790382856 > 2^53: JSON carries the nearest double, 72623859790382848.
  {
    type: "uint64", expect: { exact: Number(0x0102030405060708n) },
    words: { ABCD: [0x0102, 0x0304, 0x0506, 0x0708], CDAB: [0x0708, 0x0506, 0x0304, 0x0102], BADC: [0x0201, 0x0403, 0x0605, 0x0807], DCBA: [0x0807, 0x0605, 0x0403, 0x0201] },
  },
  // -1234.5678 = -1.20563261718... × 2^10: sign 1, exponent 1023+10 = 0x409 → 0xC093_4A45_6D5C_FAAD.
  {
    type: "float64", expect: { exact: -1234.5678 },
    words: { ABCD: [0xc093, 0x4a45, 0x6d5c, 0xfaad], CDAB: [0xfaad, 0x6d5c, 0x4a45, 0xc093], BADC: [0x93c0, 0x454a, 0x5c6d, 0xadfa], DCBA: [0xadfa, 0x5c6d, 0x454a, 0x93c0] },
  },
  // "PUMP-07" = 50 55 4D 50 2D 30 37 + NUL pad. Strings are never word-reordered, only byte-swapped.
  {
    type: "string", length: 4, expect: { exact: "PUMP-07" },
    words: { ABCD: [0x5055, 0x4d50, 0x2d30, 0x3700], CDAB: [0x5055, 0x4d50, 0x2d30, 0x3700], BADC: [0x5550, 0x504d, 0x302d, 0x0037], DCBA: [0x5550, 0x504d, 0x302d, 0x0037] },
  },
];

const ORDERS: Order[] = ["ABCD", "CDAB", "BADC", "DCBA"];

/** Lays holding-register fields out from address 0, one unused register after each (merged reads span them). */
class Layout {
  readonly words: Record<number, number[]> = {};
  readonly registers: Record<string, RegisterCfg> = {};
  readonly cases: Case[] = [];
  #next = 0;

  add(cfg: RegisterCfg, words: number[], expect: Expect): number {
    const address = this.#next;
    this.words[address] = words;
    this.#next += words.length + 1;
    this.#field(String(40001 + address), cfg, expect);
    return address;
  }

  /**
   * A second field on a register already laid out (bit fields sharing a status word). Register
   * maps are keyed by address, so it takes the 6-digit Modicon spelling of the same address.
   */
  alias(address: number, cfg: RegisterCfg, expect: Expect): void {
    this.#field(String(400001 + address), cfg, expect);
  }

  #field(key: string, cfg: RegisterCfg, expect: Expect): void {
    if (key in this.registers) throw new Error(`duplicate key ${key}`);
    this.registers[key] = cfg;
    this.cases.push({ cfg, expect });
  }
}

// Unit 1: holding registers (FC3, "4xxxx"), every type × byte order, then scaling and bit fields.
const unit1 = new Layout();
for (const row of MATRIX) {
  for (const order of ORDERS) {
    unit1.add({ param: `${row.type}_${order}`, type: row.type, byte_order: order, ...(row.length ? { length: row.length } : {}) }, row.words[order], row.expect);
  }
}
unit1.add({ param: "bool_zero", type: "bool" }, [0x0000], { exact: false });
unit1.add({ param: "uint16_max", type: "uint16" }, [0xffff], { exact: 65535 });
// -5124095576030430 = -0x0012_3456_789A_BCDE (< 2^53, exact): ~0x00123456789ABCDE + 1 = 0xFFED_CBA9_8765_4322.
// NaN (exponent all ones, mantissa non-zero) and -Infinity are no error, but not a GOOD reading either.
unit1.add({ param: "float32_nan", type: "float32" }, [0x7fc0, 0x0000], { bad: "holds NaN" });
unit1.add({ param: "float64_minus_inf", type: "float64", byte_order: "DCBA" }, [0x0000, 0x0000, 0x0000, 0xf0ff], { bad: "holds -Infinity" });
unit1.add({ param: "int64_exact_CDAB", type: "int64", byte_order: "CDAB" }, [0x4322, 0x8765, 0xcba9, 0xffed], { exact: -5124095576030430 });
// 1855 = 0x073F; × 0.1 = 185.5.
unit1.add({ param: "temperature", type: "uint16", unit: "degC", scale: 0.1 }, [0x073f], { close: 185.5 });
// -400 = 0xFE70; × 0.1 + 273.15 = 233.15.
unit1.add({ param: "kelvin", type: "int16", unit: "K", scale: 0.1, offset: 273.15 }, [0xfe70], { close: 233.15 });
// 100000 = 0x0001_86A0 in CDAB; × 0.01 − 5 = 995.
unit1.add({ param: "flow", type: "uint32", byte_order: "CDAB", scale: 0.01, offset: -5 }, [0x86a0, 0x0001], { close: 995 });
// Status word 0x0008: bit 3 set, bit 2 clear (two fields, one register).
const status = unit1.add({ param: "running", type: "bool", bit: 3 }, [0x0008], { exact: true });
unit1.alias(status, { param: "fault", type: "bool", bit: 2 }, { exact: false });
// 0x00A0: bits 4-7 = 0xA = 10; bits 5-5 (one bit wide) on uint16 = true.
const mode = unit1.add({ param: "mode", type: "uint16", bits: [4, 7] }, [0x00a0], { exact: 10 });
unit1.alias(mode, { param: "mode_bit5", type: "uint16", bits: [5, 5] }, { exact: true });

// Unit 1, other tables. Values differ from the holding registers at the same addresses.
const INPUT_REGISTERS: Record<number, number[]> = { 0: [0x1234], 4: [0x0000, 0xbfc0] }; // 4660; -1.5 = 0xBFC00000 in CDAB
const COILS: Record<number, boolean[]> = { 0: [true, false, true], 16: [true] };
const DISCRETE: Record<number, boolean[]> = { 0: [false, true], 9: [true] };
const unit1Other: Record<string, Case> = {
  "30001": { cfg: { param: "ir_uint16", type: "uint16" }, expect: { exact: 4660 } },
  "30005": { cfg: { param: "ir_float32_CDAB", type: "float32", byte_order: "CDAB" }, expect: { float32: -1.5 } },
  "00001": { cfg: { param: "coil_1", type: "bool" }, expect: { exact: true } },
  "00002": { cfg: { param: "coil_2", type: "bool" }, expect: { exact: false } },
  "00003": { cfg: { param: "coil_3", type: "bool" }, expect: { exact: true } },
  "00017": { cfg: { param: "coil_17", type: "bool" }, expect: { exact: true } },
  "10001": { cfg: { param: "di_1", type: "bool" }, expect: { exact: false } },
  "10002": { cfg: { param: "di_2", type: "bool" }, expect: { exact: true } },
  "10010": { cfg: { param: "di_10", type: "bool" }, expect: { exact: true } },
};
for (const [key, c] of Object.entries(unit1Other)) {
  unit1.registers[key] = c.cfg;
  unit1.cases.push(c);
}

// Unit 2 on the same connection: its own registers, the same parameter name as unit 1 under another asset.
const UNIT2_TABLES: ModbusTables = {
  // 12345678 = 0x00BC_614E at 0; 7 at 2 (param int16_ABCD, which reads -2 on unit 1).
  // Address 100 and the input/coil/discrete entries serve the explicit-addressing pipeline.
  holding: { 0: [0x00bc, 0x614e], 2: [0x0007], 100: [0x4120, 0x0000] }, // 10.0 = 0x41200000
  input: { 7: [0xff9c] }, // -100
  coils: { 5: [true] },
  discrete: { 9: [true] },
};
const unit2Cases: Record<string, Case> = {
  "40001": { cfg: { param: "serial_no", type: "uint32" }, expect: { exact: 12345678 } },
  "40003": { cfg: { param: "int16_ABCD", type: "int16" }, expect: { exact: 7 } },
};
const explicitCases: Record<string, Case> = {
  "3:100": { cfg: { param: "setpoint", type: "float32", unit: "bar" }, expect: { float32: 10 } },
  "3:0": { cfg: { param: "serial_no", type: "uint32" }, expect: { exact: 12345678 } }, // = modicon 40001
  "4:7": { cfg: { param: "ir_int16", type: "int16" }, expect: { exact: -100 } },
  "1:5": { cfg: { param: "coil", type: "bool" }, expect: { exact: true } },
  "2:9": { cfg: { param: "di", type: "bool" }, expect: { exact: true } },
};

const registersOf = (cases: Record<string, Case>) => Object.fromEntries(Object.entries(cases).map(([k, c]) => [k, c.cfg]));

// ---------------------------------------------------------------------------------------------
// Running the adapter process.
// ---------------------------------------------------------------------------------------------

/** The final "adapter stopped" log line. */
interface StopSummary {
  readings_total: number;
  sent_total: number;
  dropped_total: number;
  unsent: number;
}

interface AdapterRun {
  exitCode: number;
  lines: LogLine[];
  stderr: string;
  summary: LogLine | undefined;
  records: ConsumedRecord[];
  /** Records in the topic by its end offsets (idempotent producer, no transactions: one offset per record). */
  topicCount: number;
}

/** Spawns `gateway adapter`, waits for `minReadings` on its own counter (the machine may be slow), SIGTERMs it, then reads its topic. */
async function runAdapterProcess(admin: KafkaAdmin, config: Record<string, unknown>, minReadings: number): Promise<AdapterRun> {
  const adapter = spawnAdapter(config);
  await adapter.waitForMetric("adapter_readings_total", minReadings);
  const stopped = await adapter.stop();
  const { records, topicCount } = await readAll(admin, (config.output as { topic: string }).topic);
  return { ...stopped, lines: adapter.lines, records, topicCount };
}

const readingsOf = (run: AdapterRun) => run.records.map((r) => ({ key: r.key, reading: JSON.parse(r.value!) as Reading }));

function matches(expect: Expect, reading: Reading): boolean {
  if ("bad" in expect) return reading.quality === "BAD" && reading.value === null && String(reading.metadata.error).includes(expect.bad);
  if (reading.quality !== "GOOD") return false;
  const value = reading.value;
  if ("exact" in expect) return Object.is(value, expect.exact);
  if (typeof value !== "number") return false;
  // Whether the decoder prints float32 as its shortest decimal or as the full double, it must be the same float32.
  if ("float32" in expect) return Math.fround(value) === Math.fround(expect.float32);
  return Math.abs(value - expect.close) < 1e-9;
}

/** Every reading of each parameter (the server's values do not change) against the expectation; [] when all match. */
function mismatches(run: AdapterRun, assetId: string, cases: Case[]): string[] {
  const byParam = new Map<string, Reading[]>();
  for (const { reading } of readingsOf(run)) {
    if (reading.asset_id !== assetId) continue;
    byParam.set(reading.parameter, [...(byParam.get(reading.parameter) ?? []), reading]);
  }
  const problems: string[] = [];
  for (const { cfg, expect } of cases) {
    const readings = byParam.get(cfg.param) ?? [];
    const latest = readings.at(-1);
    if (!latest) {
      problems.push(`${cfg.param}: no reading`);
      continue;
    }
    const wrong = readings.filter((r) => !matches(expect, r));
    if (wrong.length > 0) {
      const seen = [...new Set(wrong.map((r) => `${JSON.stringify(r.value)} ${r.quality}${r.metadata.error ? ` (${r.metadata.error})` : ""}`))];
      problems.push(`${cfg.param} (${cfg.type} ${cfg.byte_order ?? "ABCD"}): expected ${JSON.stringify(expect)}, got ${seen.join(" | ")}`);
    }
    if (cfg.unit !== undefined && latest.unit !== cfg.unit) problems.push(`${cfg.param}: unit ${latest.unit}, expected ${cfg.unit}`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------

describe.skipIf(!kafkaUp || !pymodbusAvailable)("modbus_tcp adapter process against pymodbus, into Kafka", () => {
  const admin = new KafkaAdmin(kafkaConnection("pymodbus-test-admin"));
  const topics: string[] = [];
  let server: PymodbusServer;
  let modicon: AdapterRun;
  let explicit: AdapterRun;
  let partial: AdapterRun;
  const pipelines = { modicon: uniqueName("pymodbus-modicon"), explicit: uniqueName("pymodbus-explicit"), partial: uniqueName("pymodbus-partial") };

  beforeAll(async () => {
    server = await startPymodbus({
      unitIds: [1, 2],
      registers: { holding: unit1.words, input: INPUT_REGISTERS, coils: COILS, discrete: DISCRETE },
      units: { 2: UNIT2_TABLES },
    });
    const [modiconTopic, explicitTopic, partialTopic] = [uniqueName("test.pymodbus"), uniqueName("test.pymodbus"), uniqueName("test.pymodbus")];
    for (const t of [modiconTopic, explicitTopic, partialTopic]) {
      await admin.createTopic(t, 3);
      topics.push(t);
    }
    const common = (pipelineId: string, topic: string) => ({
      pipeline_id: pipelineId,
      adapter_id: `adapter-${pipelineId}`,
      protocol: "modbus_tcp",
      output: { kafka_bootstrap: KAFKA_BOOTSTRAP, topic, asset_id: "pm-default" },
      poll_interval_ms: POLL_MS,
      retry_policy: { max_retries: 0, backoff_ms: 100 },
    });
    const modiconFields = Object.keys(unit1.registers).length + Object.keys(unit2Cases).length;
    const explicitFields = Object.keys(explicitCases).length;
    // The pipelines run side by side; each has its own topic.
    [modicon, explicit, partial] = await Promise.all([
      runAdapterProcess(
        admin,
        {
          ...common(pipelines.modicon, modiconTopic),
          source: {
            connections: [{ host: "127.0.0.1", port: server.port, units: [
              { unit_id: 1, asset_id: "pm-unit1" }, // mapping.registers
              { unit_id: 2, asset_id: "pm-unit2", registers: registersOf(unit2Cases) },
            ] }],
            timeout_ms: 1000,
          },
          mapping: { addressing: "modicon", registers: unit1.registers },
        },
        CYCLES * modiconFields,
      ),
      runAdapterProcess(
        admin,
        {
          ...common(pipelines.explicit, explicitTopic),
          output: { ...common(pipelines.explicit, explicitTopic).output, asset_id: "pm-explicit" },
          source: { host: "127.0.0.1", port: server.port, unit_id: 2, timeout_ms: 1000 },
          mapping: { addressing: "explicit", registers: registersOf(explicitCases) },
        },
        CYCLES * explicitFields,
      ),
      runAdapterProcess(
        admin,
        {
          ...common(pipelines.partial, partialTopic),
          output: { ...common(pipelines.partial, partialTopic).output, asset_id: "pm-partial" },
          source: { host: "127.0.0.1", port: server.port, unit_id: 1, timeout_ms: 1000 },
          // 49001 = address 9000, past the table pymodbus serves: exception 2 (illegal data address),
          // in a read of its own (the gap to 40001 is far above max_gap).
          mapping: { registers: { "40001": { param: "good", type: "bool", byte_order: "ABCD" }, "49001": { param: "beyond_table", type: "uint16" } } },
        },
        CYCLES,
      ),
    ]);
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await admin.deleteTopics(topics).catch(() => undefined);
    await admin.close();
  });

  test("SIGTERM: exit 0, no read errors, and the topic holds exactly readings_total records", () => {
    for (const run of [modicon, explicit]) {
      expect({ exitCode: run.exitCode, stderr: run.stderr }).toEqual({ exitCode: 0, stderr: "" });
      expect(run.lines.filter((l) => l.level !== "info").map((l) => `${l.msg}: ${l.err ?? l.reason ?? ""}`)).toEqual([]);
      expect(run.summary).toBeDefined();
      const { readings_total, sent_total, dropped_total, unsent } = run.summary as unknown as StopSummary;
      expect({ sent_total, dropped_total, unsent }).toEqual({ sent_total: readings_total, dropped_total: 0, unsent: 0 });
      expect(run.topicCount).toBe(readings_total);
      expect(run.records).toHaveLength(readings_total);
    }
    expect(modicon.summary!.readings_total as number).toBeGreaterThanOrEqual(CYCLES * (unit1.cases.length + Object.keys(unit2Cases).length));
  });

  test("every type × byte order decodes to the value pymodbus serves (FC3, modicon 4xxxx)", () => {
    const matrix = unit1.cases.filter((c) => ORDERS.some((o) => c.cfg.param === `${c.cfg.type}_${o}`));
    expect(matrix).toHaveLength(MATRIX.length * ORDERS.length);
    expect(mismatches(modicon, "pm-unit1", matrix)).toEqual([]);
  });

  test("scale/offset, bit fields, NaN/Infinity as BAD, edge values", () => {
    const extras = unit1.cases.filter((c) => !ORDERS.some((o) => c.cfg.param === `${c.cfg.type}_${o}`) && !Object.values(unit1Other).includes(c));
    expect(extras.map((c) => c.cfg.param)).toEqual(["bool_zero", "uint16_max", "float32_nan", "float64_minus_inf", "int64_exact_CDAB", "temperature", "kelvin", "flow", "running", "fault", "mode", "mode_bit5"]);
    expect(mismatches(modicon, "pm-unit1", extras)).toEqual([]);
  });

  test("input registers (FC4, 3xxxx), coils (FC1, 0xxxx) and discrete inputs (FC2, 1xxxx)", () => {
    expect(mismatches(modicon, "pm-unit1", Object.values(unit1Other))).toEqual([]);
  });

  test("two unit ids on one connection: each its own registers and asset id", () => {
    expect(mismatches(modicon, "pm-unit2", Object.values(unit2Cases))).toEqual([]);
    const params = (asset: string) => new Set(readingsOf(modicon).filter((r) => r.reading.asset_id === asset).map((r) => r.reading.parameter));
    expect([...params("pm-unit2")].sort()).toEqual(["int16_ABCD", "serial_no"]);
    expect(params("pm-unit1").size).toBe(unit1.cases.length);
    const keys = new Set(modicon.records.map((r) => r.key));
    expect(keys.has("pm-unit1/int16_ABCD") && keys.has("pm-unit2/int16_ABCD")).toBe(true);
    expect(readingsOf(modicon).some((r) => r.reading.asset_id === "pm-default")).toBe(false);
  });

  test('explicit addressing ("3:100", "4:7", "1:5", "2:9") via the source.host shorthand, unit id 2', () => {
    expect(mismatches(explicit, "pm-explicit", Object.values(explicitCases))).toEqual([]);
    expect(new Set(readingsOf(explicit).map((r) => r.reading.asset_id))).toEqual(new Set(["pm-explicit"]));
  });

  // One read of a unit failing with an exception response while its others succeed: that read's
  // fields report BAD (once), the rest keep flowing.
  test("a field whose read gets an exception response reports BAD even when the unit's other reads succeed", () => {
    expect(mismatches(partial, "pm-partial", [{ cfg: { param: "good", type: "bool" }, expect: { exact: true } }])).toEqual([]);
    const beyond = readingsOf(partial).filter((r) => r.reading.parameter === "beyond_table").map((r) => r.reading);
    expect(beyond[0] && { value: beyond[0].value, quality: beyond[0].quality }).toEqual({ value: null, quality: "BAD" });
  });

  test("envelope: key asset_id/parameter, gateway time source, timestamps, pipeline and adapter ids", () => {
    for (const [run, pipelineId] of [[modicon, pipelines.modicon], [explicit, pipelines.explicit], [partial, pipelines.partial]] as const) {
      const bad = readingsOf(run).filter(({ key, reading }) =>
        key !== `${reading.asset_id}/${reading.parameter}` ||
        reading.metadata.time_source !== "gateway" ||
        reading.metadata.pipeline_id !== pipelineId ||
        reading.metadata.adapter_id !== `adapter-${pipelineId}` ||
        reading.classification !== "TELEMETRY" ||
        Number.isNaN(Date.parse(reading.timestamps.device_time ?? "")) ||
        Number.isNaN(Date.parse(reading.timestamps.gateway_time)) ||
        reading.timestamps.kafka_time !== null ||
        typeof reading.clock_skew_ms !== "number",
      );
      expect(bad).toEqual([]);
      expect(run.records.every((r) => r.headers.get("schema_id") === "telemetry-reading:v1")).toBe(true);
    }
  });
});

describe("modbus_tcp adapter process: config errors", () => {
  const runWith = async (registers: Record<string, unknown>) => {
    const config = {
      pipeline_id: "bad-config",
      adapter_id: "bad-config",
      protocol: "modbus_tcp",
      source: { host: "127.0.0.1", port: 1502 },
      mapping: { registers },
      output: { asset_id: "a", topic: "never.written" },
    };
    const child = Bun.spawn([process.execPath, "src/main.ts", "adapter"], {
      cwd: repo,
      env: { ...process.env, CONFIG_JSON: encodeConfigJson(config) },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stderr] = await Promise.all([new Response(child.stderr).text(), new Response(child.stdout).text()]);
    return { exitCode: await child.exited, stderr };
  };

  test('register key "4x001" with type "float33": exit 2, stderr names mapping.registers["4x001"]', async () => {
    const { exitCode, stderr } = await runWith({ "4x001": { param: "p", type: "float33" } });
    expect(exitCode).toBe(2);
    expect(stderr).toContain('mapping.registers["4x001"]');
    expect(stderr).toContain("float33");
  });

  test('register key "4x001" alone: exit 2, stderr explains the Modicon notation', async () => {
    const { exitCode, stderr } = await runWith({ "4x001": { param: "p", type: "float32" }, "40001": { param: "q" } });
    expect(exitCode).toBe(2);
    expect(stderr).toContain('mapping.registers["4x001"]: expected a Modicon address');
    expect(stderr).not.toContain('["40001"]');
  });
});
