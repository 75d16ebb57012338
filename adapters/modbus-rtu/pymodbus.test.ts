/**
 * Interoperability: the modbus_rtu adapter process polls an independent Modbus RTU slave
 * (pymodbus's serial server, test/peers/pymodbus_rtu_server.py) over a pty pair, into Kafka.
 *
 * Register words are worked out by hand from the spec (big-endian registers) and IEEE 754, never
 * with our encoder, so an error shared by our encoder and decoder cannot hide.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Reading } from "../../src/envelope/reading.ts";
import { KafkaAdmin } from "../../src/kafka/admin.ts";
import { readAll, spawnAdapter } from "../../test/peers/adapter-process.ts";
import { pymodbusAvailable } from "../../test/peers/pymodbus.ts";
import { startPymodbusRtu, type PymodbusRtuServer } from "../../test/peers/pymodbus-rtu.ts";
import { socatAvailable, startPtyPair, type PtyPair } from "../../test/peers/socat.ts";
import { KAFKA_BOOTSTRAP, kafkaConnection, kafkaUp, uniqueName } from "../../test/support/services.ts";

const POLL_MS = 200;
const CYCLES = 4;

interface Case {
  key: string;
  cfg: Record<string, unknown> & { param: string };
  value: number | boolean | string;
}

// Unit 1 holding registers (0-based address: words), and the fields reading them.
const HOLDING: Record<number, number[]> = {
  0: [0x42f6, 0xe979], // float32 123.456 = 0x42F6E979 (sign 0, exponent 133, mantissa 0x76E979)
  2: [0xe979, 0x42f6], // the same, word-swapped (CDAB)
  4: [0xfffe], // int16 -2
  5: [0xb2d0, 0x5e00], // uint32 3000000000 = 0xB2D05E00
  7: [0xf8a4, 0x32eb], // int32 -123456789 = 0xF8A432EB
  9: [0xc093, 0x4a45, 0x6d5c, 0xfaad], // float64 -1234.5678 = 0xC0934A456D5CFAAD
  13: [0xffff, 0xffff, 0xffff, 0xfffe], // int64 -2
  17: [0x5055, 0x4d50, 0x2d30, 0x3700], // "PUMP-07" + NUL
  21: [0x073f], // 1855 × 0.1 = 185.5
  22: [0x00a8], // status word 0b1010_1000: bit 3 set, bit 2 clear, bits 4-7 = 0xA
};
const UNIT1: Case[] = [
  { key: "40001", cfg: { param: "f32", type: "float32" }, value: 123.456 },
  { key: "40003", cfg: { param: "f32_cdab", type: "float32", byte_order: "CDAB" }, value: 123.456 },
  { key: "40005", cfg: { param: "i16", type: "int16" }, value: -2 },
  { key: "40006", cfg: { param: "u32", type: "uint32" }, value: 3000000000 },
  { key: "40008", cfg: { param: "i32", type: "int32" }, value: -123456789 },
  { key: "40010", cfg: { param: "f64", type: "float64" }, value: -1234.5678 },
  { key: "40014", cfg: { param: "i64", type: "int64" }, value: -2 },
  { key: "40018", cfg: { param: "name", type: "string", length: 4 }, value: "PUMP-07" },
  { key: "40022", cfg: { param: "temperature", type: "uint16", scale: 0.1, unit: "degC" }, value: 185.5 },
  { key: "40023", cfg: { param: "running", type: "bool", bit: 3 }, value: true },
  { key: "400023", cfg: { param: "fault", type: "bool", bit: 2 }, value: false }, // the same register, 6-digit key
  { key: "30001", cfg: { param: "ir", type: "uint16" }, value: 0x1234 },
  { key: "00001", cfg: { param: "coil_1", type: "bool" }, value: true },
  { key: "00002", cfg: { param: "coil_2", type: "bool" }, value: false },
  { key: "00003", cfg: { param: "coil_3", type: "bool" }, value: true },
  { key: "10002", cfg: { param: "di_2", type: "bool" }, value: true },
];
// Unit 2: its own tables; 12345678 = 0x00BC614E.
const UNIT2: Case[] = [{ key: "40001", cfg: { param: "total", type: "uint32" }, value: 12345678 }];

const registersOf = (cases: Case[]) => Object.fromEntries(cases.map((c) => [c.key, c.cfg]));

describe.skipIf(!kafkaUp || !socatAvailable || !pymodbusAvailable)("modbus_rtu adapter process against pymodbus's serial server, into Kafka", () => {
  const admin = new KafkaAdmin(kafkaConnection("rtu-pymodbus-admin"));
  const topic = uniqueName("test.rtu-pymodbus");
  const pipelineId = uniqueName("rtu-pymodbus");
  let pair: PtyPair;
  let server: PymodbusRtuServer;
  let readings: Reading[] = [];
  let run: Awaited<ReturnType<ReturnType<typeof spawnAdapter>["stop"]>>;
  let topicCount = 0;

  beforeAll(async () => {
    pair = await startPtyPair();
    server = await startPymodbusRtu({
      device: pair.b,
      baudRate: 19200,
      parity: "N",
      stopBits: 2, // the spec's framing without parity
      unitIds: [1, 2], // unit 3 is polled but absent: no answer at all
      registers: { holding: HOLDING, input: { 0: [0x1234] }, coils: { 0: [true, false, true] }, discrete: { 0: [false, true] } },
      units: { 2: { holding: { 0: [0x00bc, 0x614e] } } },
    });
    await admin.createTopic(topic, 3);
    const adapter = spawnAdapter({
      pipeline_id: pipelineId,
      adapter_id: `adapter-${pipelineId}`,
      protocol: "modbus_rtu",
      source: {
        device: pair.a,
        baud_rate: 19200,
        parity: "none",
        stop_bits: 2,
        timeout_ms: 1000, // pymodbus is Python: generous under load
        units: [
          { unit_id: 1, asset_id: "pm-rtu-1" },
          { unit_id: 3, asset_id: "pm-rtu-absent", registers: { "40001": { param: "x" } }, timeout_ms: 150 },
          { unit_id: 2, asset_id: "pm-rtu-2", registers: registersOf(UNIT2) },
        ],
      },
      mapping: { registers: registersOf(UNIT1) },
      output: { kafka_bootstrap: KAFKA_BOOTSTRAP, topic, asset_id: "pm-default" },
      poll_interval_ms: POLL_MS,
      retry_policy: { max_retries: 1, backoff_ms: 100 },
    });
    await adapter.waitForMetric("adapter_readings_total", CYCLES * (UNIT1.length + UNIT2.length) + 1);
    run = await adapter.stop();
    const all = await readAll(admin, topic);
    readings = all.readings;
    topicCount = all.topicCount;
  }, 45_000);

  afterAll(async () => {
    await server?.stop();
    await pair?.stop();
    await admin.deleteTopics([topic]).catch(() => undefined);
    await admin.close();
  });

  test("SIGTERM: exit 0, and the topic holds exactly readings_total records", () => {
    expect({ exitCode: run.exitCode, stderr: run.stderr }).toEqual({ exitCode: 0, stderr: "" });
    expect(run.summary).toBeDefined();
    expect(run.summary!.sent_total).toBe(run.summary!.readings_total);
    expect(topicCount).toBe(run.summary!.readings_total as number);
    expect(readings).toHaveLength(topicCount);
  });

  test("every type, scaling and bit field decodes to the words pymodbus serves (FC3, FC4, FC1, FC2)", () => {
    for (const [asset, cases] of [["pm-rtu-1", UNIT1], ["pm-rtu-2", UNIT2]] as const) {
      for (const c of cases) {
        const mine = readings.filter((r) => r.asset_id === asset && r.parameter === c.cfg.param);
        expect(mine.length).toBeGreaterThanOrEqual(CYCLES);
        const wrong = mine.filter((r) => r.quality !== "GOOD" || !Object.is(r.value, c.value));
        expect(wrong.map((r) => `${c.cfg.param}: ${JSON.stringify(r.value)} ${r.quality} ${r.metadata.error ?? ""}`)).toEqual([]);
      }
    }
    expect(readings.find((r) => r.parameter === "temperature")!.unit).toBe("degC");
  });

  test("the absent slave: BAD once, no other asset affected", () => {
    const absent = readings.filter((r) => r.asset_id === "pm-rtu-absent");
    expect(absent.map((r) => [r.quality, r.value])).toEqual([["BAD", null]]);
    expect(String(absent[0]!.metadata.error)).toContain("no response within 150 ms");
    expect(readings.filter((r) => r.asset_id !== "pm-rtu-absent").every((r) => r.quality === "GOOD")).toBe(true);
  });
});
