// The RTU bus through the shared poller when the serial device goes away (USB adapter unplugged)
// and comes back at the same path: every slave reports BAD once, the port is reopened with
// backoff, readings resume.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../src/log/logger.ts";
import type { AdapterContext, ErrorType, Sample } from "../../src/registry.ts";
import { socatAvailable, startPtyPair, type PtyPair } from "../../test/peers/socat.ts";
import { compileUnits, type Workarounds } from "../modbus/mapping.ts";
import { parsePlant } from "../modbus/plant.ts";
import { ConnectionPoller } from "../modbus/poller.ts";
import { startModbusRtuSimulator, type ModbusRtuSimulator } from "./simulator.ts";
import { ModbusRtuTransport } from "./transport.ts";

const WORKAROUNDS: Workarounds = { pause_after_connect_ms: 0, pause_between_requests_ms: 0, close_connection_after_poll: false, one_request_per_field: false, string_byte_mode: "both" };
const plant = parsePlant({
  name: "replug",
  devices: [1, 2].map((unit) => ({ name: `slave-${unit}`, unit_id: unit, registers: { "40001": { type: "uint16", waveform: { kind: "constant", value: unit * 100 } } } })),
}, "replug");

describe.skipIf(!socatAvailable)("Modbus RTU: the serial device unplugged and plugged back", () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  test("BAD once per tag, a connection error, then readings again from both slaves", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rtu-replug-"));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const links = { a: join(dir, "gw"), b: join(dir, "bus") };
    let pair: PtyPair = await startPtyPair(links);
    cleanup.push(() => pair.stop());
    let simulator: ModbusRtuSimulator = await startModbusRtuSimulator({ device: links.b, plant, line: { parity: "none" } });

    const samples: Sample[] = [];
    const errors: ErrorType[] = [];
    const context: AdapterContext = {
      log: createLogger("test", "silent"),
      emit: (s) => samples.push(...s),
      recordError: (type) => errors.push(type),
      readLatency: { observe: () => undefined } as never,
      heartbeat: () => undefined,
    };
    const { units } = compileUnits(
      [1, 2].map((unit) => ({ unitId: unit, assetId: `slave-${unit}`, registers: { "40001": { param: "value" } }, path: "mapping.registers" })),
      "modicon", WORKAROUNDS, { max_read_registers: 125, max_read_bits: 2000, max_gap: 10 }, "source",
    );
    const transport = new ModbusRtuTransport({ serial: { path: links.a, parity: "none" } });
    const poller = new ConnectionPoller(transport, units, { pollIntervalMs: 50, timeoutMs: 100, maxRetries: 0, backoffMs: 50, maxBackoffMs: 200, workarounds: WORKAROUNDS }, context);
    poller.start();
    cleanup.push(() => poller.stop());

    const good = (asset: string) => samples.filter((s) => s.asset_id === asset && s.quality === "GOOD").length;
    const until = async (condition: () => boolean, timeoutMs = 5000) => {
      const deadline = Date.now() + timeoutMs;
      while (!condition() && Date.now() < deadline) await Bun.sleep(10);
      return condition();
    };
    expect(await until(() => good("slave-1") >= 3 && good("slave-2") >= 3)).toBe(true);

    await simulator.stop();
    await pair.stop();
    expect(await until(() => samples.filter((s) => s.quality === "BAD").length >= 2)).toBe(true);
    await Bun.sleep(400); // reopening fails while the device is gone; no further BAD readings
    const bad = samples.filter((s) => s.quality === "BAD");
    expect(bad.map((s) => s.asset_id).sort()).toEqual(["slave-1", "slave-2"]);
    expect(errors).toContain("connection");

    pair = await startPtyPair(links);
    simulator = await startModbusRtuSimulator({ device: links.b, plant, line: { parity: "none" } });
    cleanup.push(() => simulator.stop());
    const before = [good("slave-1"), good("slave-2")];
    expect(await until(() => good("slave-1") > before[0]! + 2 && good("slave-2") > before[1]! + 2)).toBe(true);
    expect(samples.filter((s) => s.quality === "GOOD").every((s) => s.value === (s.asset_id === "slave-1" ? 100 : 200))).toBe(true);
  }, 15_000);
});
