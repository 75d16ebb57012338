// The receive loop's resilience, in-process with a recording context: the serial device goes away
// (USB adapter unplugged) and comes back, garbage never crashes it, frames from unknown senders
// are ignored.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Value } from "@sinclair/typebox/value";
import { createLogger } from "../../src/log/logger.ts";
import type { AdapterContext, ErrorType, Sample } from "../../src/registry.ts";
import { socatAvailable, startPtyPair, type PtyPair } from "../../test/peers/socat.ts";
import { SerialPort } from "../serial/port.ts";
import { encodeFrame, encodeFrameData, FrameType } from "./codec.ts";
import { XBeeReceiver } from "./index.ts";
import { XBeeConfigSchema, type XBeeConfig } from "./schema.ts";

function recorder() {
  const samples: Sample[] = [];
  const errors: Array<{ type: ErrorType; message: string }> = [];
  let heartbeats = 0;
  const context: AdapterContext = {
    log: createLogger("test", "silent"),
    emit: (s) => samples.push(...s),
    recordError: (type, _source, error) => errors.push({ type, message: (error as Error).message }),
    readLatency: { observe: () => undefined } as never,
    heartbeat: () => heartbeats++,
  };
  return { context, samples, errors, heartbeats: () => heartbeats };
}

async function until(condition: () => boolean, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await Bun.sleep(10);
  return condition();
}

const rxFrame = (source64: string, value: number) =>
  encodeFrame(encodeFrameData({ type: FrameType.RX_PACKET, source64, source16: 0xfffe, options: 1, data: Uint8Array.of(value >> 8, value & 0xff) }), 1);

describe.skipIf(!socatAvailable)("XBee receive loop", () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  test("the device goes away: BAD once and a connection error; it comes back: frames flow again", async () => {
    const dir = mkdtempSync(join(tmpdir(), "xbee-replug-"));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const links = { a: join(dir, "gw"), b: join(dir, "radio") };
    let pair: PtyPair = await startPtyPair(links);
    cleanup.push(() => pair.stop());
    const config = Value.Default(XBeeConfigSchema, {
      pipeline_id: "p", adapter_id: "a", protocol: "xbee_modbus",
      source: { xbee_port: links.a, node_id: "0013A200" },
      mapping: { registers: { "40001": { param: "level" } } },
      output: { asset_id: "tank" },
      poll_interval_ms: 50,
      retry_policy: { backoff_ms: 50 },
    }) as XBeeConfig;
    const { context, samples, errors, heartbeats } = recorder();
    const receiver = new XBeeReceiver(config, context);
    await receiver.start();
    cleanup.push(() => receiver.stop());

    let radio = await SerialPort.open({ path: links.b });
    await radio.write(rxFrame("0013A20040522BAA", 1));
    expect(await until(() => samples.length === 1)).toBe(true);
    expect(samples[0]).toMatchObject({ asset_id: "tank", parameter: "level", value: 1, quality: "GOOD" });

    // Unplugged: socat goes away, both ends hang up.
    await radio.close();
    await pair.stop();
    expect(await until(() => samples.some((s) => s.quality === "BAD"))).toBe(true);
    expect(samples.filter((s) => s.quality === "BAD")).toHaveLength(1);
    expect(errors.some((e) => e.type === "connection")).toBe(true);
    await Bun.sleep(300); // reconnect attempts fail while it is gone, without more BAD readings
    expect(samples.filter((s) => s.quality === "BAD")).toHaveLength(1);

    // Plugged back in at the same path.
    pair = await startPtyPair(links);
    radio = await SerialPort.open({ path: links.b });
    cleanup.push(() => radio.close());
    const deadline = Date.now() + 5000;
    while (!samples.some((s) => s.value === 2) && Date.now() < deadline) {
      await radio.write(rxFrame("0013A20040522BAA", 2)); // until the receiver has reopened its end
      await Bun.sleep(100);
    }
    expect(samples.some((s) => s.value === 2 && s.quality === "GOOD")).toBe(true);
    expect(heartbeats()).toBeGreaterThan(3); // the loop stayed alive throughout
  }, 15_000);

  test("garbage, bad frames and frames from other senders: counted or ignored, never a crash", async () => {
    const pair = await startPtyPair();
    cleanup.push(() => pair.stop());
    const config = Value.Default(XBeeConfigSchema, {
      pipeline_id: "p", adapter_id: "a", protocol: "xbee_modbus",
      source: { xbee_port: pair.a, node_id: "0013A20040522BAA", frame_timeout_ms: 20 },
      mapping: { registers: { "40001": { param: "level" }, "40002": { param: "flow" } } },
      output: { asset_id: "tank" },
    }) as XBeeConfig;
    const { context, samples, errors } = recorder();
    const receiver = new XBeeReceiver(config, context);
    await receiver.start();
    cleanup.push(() => receiver.stop());
    const radio = await SerialPort.open({ path: pair.b });
    cleanup.push(() => radio.close());

    const bad = rxFrame("0013A20040522BAA", 9);
    bad[bad.length - 1]! ^= 0xff;
    await radio.write(Uint8Array.from([
      ...Array.from({ length: 300 }, (_, i) => (i * 91) & 0xff), // noise, some 0x7E in it
      ...bad,
      ...rxFrame("0013A20040FFFFFF", 5), // another XBee, not ours
      ...encodeFrame(Uint8Array.of(0x90, 0x00), 1), // an RX packet too short to have an address
      ...rxFrame("0013A20040522BAA", 7), // ours, with a 2-byte payload: flow (40002) is missing
    ]));
    await radio.write(Uint8Array.of(0x7e, 0x00, 0x20, 0x90)); // a frame cut short, then silence
    expect(await until(() => samples.length === 2 && errors.some((e) => e.message.startsWith("truncated")))).toBe(true);
    expect(samples.map((s) => [s.parameter, s.value, s.quality])).toEqual([["level", 7, "GOOD"], ["flow", null, "BAD"]]);
    expect(receiver.stats).toMatchObject({ frames: 1, ignored: 1, malformed: 1 });
    expect(receiver.decoderStats.checksum).toBeGreaterThanOrEqual(1);
    expect(errors.filter((e) => e.type === "decode").map((e) => e.message)).toEqual(["payload from 0013A20040522BAA has 2 bytes; register 40002 needs bytes 2-3"]);
    expect(errors.filter((e) => e.type === "protocol").length).toBeGreaterThanOrEqual(3);
  });
});
