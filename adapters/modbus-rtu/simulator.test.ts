import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { socatAvailable, startPtyPair, type PtyPair } from "../../test/peers/socat.ts";
import { decodeField, type FieldSpec } from "../modbus/codec.ts";
import type { ReadRequest } from "../modbus/plan.ts";
import { parsePlant } from "../modbus/plant.ts";
import { ModbusReadError } from "../modbus/poller.ts";
import { SerialPort } from "../serial/port.ts";
import { encodeRtuFrame } from "./frame.ts";
import { slavesByUnitId, startModbusRtuSimulator, type ModbusRtuSimulator } from "./simulator.ts";
import { ModbusRtuTransport } from "./transport.ts";

const plant = parsePlant({
  name: "rtu-test",
  devices: [
    {
      name: "flow-meter",
      unit_id: 1,
      registers: {
        "40001": { type: "float32", waveform: { kind: "constant", value: 123.456 } },
        "40003": { type: "int16", waveform: { kind: "constant", value: -2 } },
        "40004": { type: "uint32", byte_order: "CDAB", waveform: { kind: "constant", value: 3000000000 } },
        "40006": { type: "string", length: 4, waveform: { kind: "constant", value: "FM-01" } },
        "30001": { type: "uint16", scale: 0.1, waveform: { kind: "constant", value: 185.5 } },
        "00001": { type: "bool", waveform: { kind: "constant", value: true } },
        "00002": { type: "bool", waveform: { kind: "constant", value: false } },
        "10003": { type: "bool", waveform: { kind: "constant", value: 1 } },
      },
    },
    {
      name: "strict-valve",
      unit_id: 17,
      unmapped_reads: "exception",
      registers: { "40001": { type: "uint16", waveform: { kind: "counter", start: 5, step: 0 } } },
    },
  ],
}, "rtu-test plant");

const read = (unitId: number, functionCode: 1 | 2 | 3 | 4, address: number, quantity: number): ReadRequest => ({ unitId, functionCode, address, quantity, fields: [] });
const spec = (type: FieldSpec["type"], extra: Partial<FieldSpec> = {}): FieldSpec => ({ type, byteOrder: "ABCD", scale: 1, offset: 0, ...extra });
const failure = async (promise: Promise<unknown>) => promise.then(() => undefined, (e: unknown) => e as ModbusReadError);

describe.skipIf(!socatAvailable)("Modbus RTU simulator over a pty pair, read by the RTU transport", () => {
  let pair: PtyPair;
  let simulator: ModbusRtuSimulator;
  let transport: ModbusRtuTransport;

  beforeAll(async () => {
    pair = await startPtyPair();
    simulator = await startModbusRtuSimulator({ device: pair.b, plant, line: { baudRate: 38400, parity: "none" }, clock: () => 0 });
    transport = new ModbusRtuTransport({ serial: { path: pair.a, baudRate: 38400, parity: "none" } });
    await transport.connect();
  });
  afterAll(async () => {
    await transport?.close();
    await simulator?.stop();
    await pair?.stop();
  });

  test("holding registers of several types decode to the plant's values", async () => {
    const words = (await transport.read(read(1, 3, 0, 9), 500)) as number[];
    expect(decodeField(spec("float32"), words.slice(0, 2))).toBe(123.456);
    expect(decodeField(spec("int16"), words.slice(2, 3))).toBe(-2);
    expect(decodeField(spec("uint32", { byteOrder: "CDAB" }), words.slice(3, 5))).toBe(3000000000);
    expect(decodeField(spec("string", { length: 4 }), words.slice(5, 9))).toBe("FM-01");
  });

  test("input registers (FC4), coils (FC1) and discrete inputs (FC2)", async () => {
    expect(decodeField(spec("uint16", { scale: 0.1 }), (await transport.read(read(1, 4, 0, 1), 500)) as number[])).toBe(185.5);
    expect(await transport.read(read(1, 1, 0, 3), 500)).toEqual([true, false, false]);
    expect(await transport.read(read(1, 2, 0, 3), 500)).toEqual([false, false, true]);
  });

  test("a slave that answers unmapped reads with an exception: protocol error, exception 2", async () => {
    expect(await transport.read(read(17, 3, 0, 1), 500)).toEqual([5]);
    expect(await failure(transport.read(read(17, 3, 0, 2), 500))).toMatchObject({ kind: "protocol", exceptionCode: 2 });
  });

  test("an absent unit id and an offline slave stay silent (timeout) while the others answer", async () => {
    const ignoredBefore = simulator.stats.ignored;
    expect(await failure(transport.read(read(5, 3, 0, 1), 100))).toMatchObject({ kind: "timeout" });
    simulator.setOnline("flow-meter", false);
    expect(await failure(transport.read(read(1, 3, 0, 1), 100))).toMatchObject({ kind: "timeout" });
    expect(await transport.read(read(17, 3, 0, 1), 500)).toEqual([5]);
    simulator.setOnline("flow-meter", true);
    expect(((await transport.read(read(1, 3, 2, 1), 500)) as number[])[0]).toBe(0xfffe);
    expect(simulator.stats.ignored - ignoredBefore).toBe(2);
  });

  test("a corrupted request (bad CRC) is dropped without a reply; the next good one is answered", async () => {
    // Written around the transport, straight onto the line: a frame whose CRC was hit by noise.
    await transport.close();
    const raw = await SerialPort.open({ path: pair.a, baudRate: 38400 });
    const replies: number[] = [];
    raw.onData((chunk) => replies.push(...chunk));
    const badBefore = simulator.stats.badFrames;
    const corrupted = encodeRtuFrame(1, [0x03, 0x00, 0x00, 0x00, 0x01]);
    corrupted[3]! ^= 0x01;
    await raw.write(corrupted);
    await Bun.sleep(150); // the simulator drops everything until the line is quiet
    expect(replies).toEqual([]);
    expect(simulator.stats.badFrames - badBefore).toBe(1);
    await raw.write(encodeRtuFrame(17, [0x03, 0x00, 0x00, 0x00, 0x01]));
    const deadline = Date.now() + 1000;
    while (replies.length < 7 && Date.now() < deadline) await Bun.sleep(5);
    expect(replies).toEqual([...encodeRtuFrame(17, [0x03, 0x02, 0x00, 0x05])]);
    await raw.close();
    await transport.connect();
  });

  test("writes (FC6) go to the addressed slave's bank", async () => {
    await transport.close();
    const raw = await SerialPort.open({ path: pair.a, baudRate: 38400 });
    const replies: number[] = [];
    raw.onData((chunk) => replies.push(...chunk));
    const request = encodeRtuFrame(17, [0x06, 0x00, 0x00, 0x12, 0x34]);
    await raw.write(request);
    const deadline = Date.now() + 1000;
    while (replies.length < 8 && Date.now() < deadline) await Bun.sleep(5);
    expect(replies).toEqual([...request]); // FC6 echoes the request
    await raw.close();
    await transport.connect();
    expect(await transport.read(read(17, 3, 0, 1), 500)).toEqual([0x1234]);
  });
});

describe("RTU plant checks", () => {
  test("two devices with one unit id cannot share a serial line", () => {
    const twins = parsePlant({
      name: "twins",
      devices: [
        { name: "a", port_offset: 0, unit_id: 3, registers: {} },
        { name: "b", port_offset: 1, unit_id: 3, registers: {} },
      ],
    }, "twins");
    expect(() => slavesByUnitId(twins)).toThrow("devices a and b share unit_id 3 on one serial line");
  });

  test("unit id 0 (broadcast) or above 247 is not a slave address", () => {
    const broadcast = parsePlant({ name: "b", devices: [{ name: "zero", unit_id: 0, registers: {} }] }, "b");
    expect(() => slavesByUnitId(broadcast)).toThrow("unit_id 0 is not a serial slave address (1-247)");
  });
});
