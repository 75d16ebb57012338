import { afterAll, describe, expect, test } from "bun:test";
import { parseAdapterConfig } from "../../src/adapter-runtime/config.ts";
import type { Reading } from "../../src/envelope/reading.ts";
import { createLogger } from "../../src/log/logger.ts";
import { kafkaUp, uniqueName } from "../../test/support/services.ts";
import mqttAdapter, { clientIdOf } from "./index.ts";
import type { MqttConfig } from "./schema.ts";
import { DataType, decodePayload, encodePayload, type SpPayload } from "./sparkplug.ts";
import { Topics, baseConfig, mqttUp, publisher, purgeSession, readJson, readReadings, startAdapter, subscribed } from "./test-support.ts";

interface DeadLetter {
  reason: string;
  validation_failure_reason: string;
  raw_base64: string;
  source_topic: string;
  mqtt: { qos: number; retain: boolean };
  pipeline_id: string;
}

const byKey = (readings: Reading[]) => new Map(readings.map((r) => [`${r.asset_id}/${r.parameter}`, r]));

/** Mosquitto on 1883 and Kafka: each mapping kind end to end, at each QoS, over both protocol versions. */
describe.skipIf(!kafkaUp || !mqttUp)("mqtt adapter: Mosquitto → Kafka", () => {
  const topics = new Topics();
  afterAll(() => topics.cleanup());

  for (const version of ["5", "3.1.1"] as const) {
    test(`MQTT ${version}: number, JSON paths, JSON values at QoS 0/1/2; malformed and unmapped messages to the DLQ`, async () => {
      const out = await topics.create("test.mqtt");
      const dlq = await topics.create("dlq.test-mqtt");
      const prefix = uniqueName(`m${version.replaceAll(".", "")}`);
      const config = baseConfig(
        prefix,
        out,
        dlq,
        [
          { topic: `${prefix}/num/+asset/+parameter`, format: "number", unit: "rpm" },
          { topic: `${prefix}/json/+asset`, parameter: "temperature", value: "$.data.v", timestamp: "$.ts", quality: "$.q", unit: "$.u" },
          { topic: `${prefix}/multi/+asset`, values: { running: "$.run", mode: "$.mode" }, timestamp: "$.t", timestamp_format: "epoch_s" },
        ],
        { protocol_version: version, subscriptions: [{ topic: `${prefix}/#`, qos: 2 }] },
      );
      const adapter = startAdapter(config);
      await subscribed(adapter);
      const pub = await publisher({ protocolVersion: version === "5" ? 5 : 4 });
      const deviceTime = "2026-03-01T10:00:00.000Z";
      await pub.publishAsync(`${prefix}/num/pump-1/speed`, "1450", { qos: 0 });
      await pub.publishAsync(`${prefix}/num/pump-2/speed`, "-3.25e2", { qos: 1 });
      await pub.publishAsync(`${prefix}/num/pump-3/speed`, "7", { qos: 2 });
      await pub.publishAsync(`${prefix}/json/boiler`, JSON.stringify({ data: { v: 88.5 }, ts: deviceTime, q: "GOOD", u: "degC" }), { qos: 2 });
      await pub.publishAsync(`${prefix}/multi/line-1`, JSON.stringify({ run: true, mode: "auto", t: 1772359200 }), { qos: 1 });
      // Bad input, one per QoS, plus a topic no rule maps.
      await pub.publishAsync(`${prefix}/num/pump-1/speed`, "fast", { qos: 0 });
      await pub.publishAsync(`${prefix}/json/boiler`, "{broken", { qos: 1 });
      await pub.publishAsync(`${prefix}/json/boiler`, JSON.stringify({ data: {}, ts: deviceTime }), { qos: 2 });
      await pub.publishAsync(`${prefix}/nobody/maps/this`, "1", { qos: 1 });
      await pub.endAsync();

      const readings = await readReadings(out, 6);
      const dead = await readJson<DeadLetter>(dlq, 4);
      const metrics = await adapter.metrics();
      adapter.child.kill("SIGTERM");
      expect(await adapter.exited).toBe(0);

      expect(readings).toHaveLength(6);
      const got = byKey(readings);
      expect(got.get("pump-1/speed")).toMatchObject({ value: 1450, unit: "rpm", quality: "GOOD", metadata: { time_source: "gateway", pipeline_id: prefix } });
      expect(got.get("pump-2/speed")!.value).toBe(-325);
      expect(got.get("pump-3/speed")!.value).toBe(7);
      const boiler = got.get("boiler/temperature")!;
      expect(boiler).toMatchObject({ value: 88.5, unit: "degC", quality: "GOOD", metadata: { time_source: "device" } });
      expect(boiler.timestamps.device_time).toBe(deviceTime);
      expect(got.get("line-1/running")).toMatchObject({ value: true, timestamps: { device_time: deviceTime } });
      expect(got.get("line-1/mode")!.value).toBe("auto");

      expect(dead.map((d) => [d.value.reason, d.value.mqtt.qos, Buffer.from(d.value.raw_base64, "base64").toString()])).toEqual([
        ["not_a_number", 0, "fast"],
        ["malformed_json", 1, "{broken"],
        ["missing_field", 2, JSON.stringify({ data: {}, ts: deviceTime })],
        ["no_mapping", 1, "1"],
      ]);
      expect(dead[0]!.key).toBe(`${prefix}/num/pump-1/speed`);
      expect(dead[0]!.value).toMatchObject({ source_topic: `${prefix}/num/pump-1/speed`, pipeline_id: prefix });
      expect(dead[2]!.value.validation_failure_reason).toBe("value $.data.v not in payload");
      expect(metrics).toMatch(new RegExp(`adapter_raw_records_total\\{pipeline_id="${prefix}",topic="${dlq}"[^}]*\\} 4`));
      expect(metrics).toMatch(/adapter_errors_total\{[^}]*type="decode"[^}]*\} 4/);
      const summary = adapter.lines.find((l) => l.msg === "adapter stopped")!;
      expect(summary).toMatchObject({ readings_total: 6, sent_total: 6, raw_total: 4, raw_sent_total: 4 });
      await purgeSession(clientIdOf(config as unknown as MqttConfig), version === "5" ? 5 : 4);
    }, 40_000);
  }

  test("connection test: a throwaway clean session decodes a retained message, publishing nothing", async () => {
    const prefix = uniqueName("ct");
    const pub = await publisher();
    await pub.publishAsync(`${prefix}/pump/speed`, "12.5", { qos: 1, retain: true });
    const config = parseAdapterConfig(mqttAdapter.configSchema, baseConfig(prefix, "unused", "unused", [{ topic: `${prefix}/+asset/+parameter`, format: "number" }]), mqttAdapter.validate);
    const started = Date.now();
    const samples = await mqttAdapter.connectionTest!(config, createLogger("test", "warn"));
    await pub.publishAsync(`${prefix}/pump/speed`, "", { qos: 1, retain: true }); // clears the retained message
    await pub.endAsync();
    expect(samples).toMatchObject([{ asset_id: "pump", parameter: "speed", value: 12.5, quality: "GOOD" }]);
    expect(Date.now() - started).toBeLessThan(2500);
  });

  test("Sparkplug B: births bind aliases, DATA by alias, a sequence gap is counted and triggers NCMD rebirth, unknown alias to the DLQ", async () => {
    const out = await topics.create("test.mqtt-spb");
    const dlq = await topics.create("dlq.test-mqtt-spb");
    const group = uniqueName("G");
    const config = baseConfig(group, out, dlq, [{ topic: `spBv1.0/${group}/#`, format: "sparkplug_b", sparkplug: { device_asset: "{edge_node_id}.{device_id}" } }]);
    const adapter = startAdapter(config);
    await subscribed(adapter);
    const edge = await publisher();
    const commands: SpPayload[] = [];
    await edge.subscribeAsync(`spBv1.0/${group}/NCMD/+`, { qos: 0 });
    edge.on("message", (_topic, payload) => commands.push(decodePayload(payload)));
    const T = Date.UTC(2026, 2, 1, 10);
    const send = (type: string, device: string | undefined, payload: SpPayload) =>
      edge.publishAsync(`spBv1.0/${group}/${type}/edge1${device ? `/${device}` : ""}`, Buffer.from(encodePayload(payload)), { qos: 0 });

    await send("NBIRTH", undefined, {
      timestamp: T,
      seq: 0,
      metrics: [
        { name: "bdSeq", datatype: DataType.Int64, long_value: 0 },
        { name: "Node Control/Rebirth", datatype: DataType.Boolean, boolean_value: false },
        { name: "Uptime", alias: 1, datatype: DataType.UInt32, int_value: 100 },
      ],
    });
    await send("DBIRTH", "pump", {
      timestamp: T,
      seq: 1,
      metrics: [
        { name: "Speed", alias: 2, datatype: DataType.Float, float_value: 1450, properties: { keys: ["engUnit"], values: [{ type: 12, string_value: "rpm" }] } },
        { name: "Running", alias: 3, datatype: DataType.Boolean, boolean_value: true },
      ],
    });
    await send("NDATA", undefined, { timestamp: T + 1000, seq: 2, metrics: [{ alias: 1, int_value: 101 }] });
    await send("DDATA", "pump", { timestamp: T + 1000, seq: 3, metrics: [{ alias: 2, timestamp: T + 900, float_value: 1460 }] });
    await send("DDATA", "pump", { timestamp: T + 2000, seq: 7, metrics: [{ alias: 3, boolean_value: false }] }); // seq 4..6 lost
    await send("DDATA", "pump", { timestamp: T + 3000, seq: 8, metrics: [{ alias: 99, float_value: 1 }] }); // never born

    const readings = await readReadings(out, 6);
    const dead = await readJson<DeadLetter>(dlq, 1);
    const deadline = Date.now() + 5000;
    while (commands.length === 0 && Date.now() < deadline) await Bun.sleep(50);
    const metrics = await adapter.metrics();
    adapter.child.kill("SIGTERM");
    expect(await adapter.exited).toBe(0);
    await edge.endAsync();

    expect(readings.map((r) => [r.asset_id, r.parameter, r.value, r.unit ?? null, r.timestamps.device_time])).toEqual([
      [`${group}/edge1`, "Uptime", 100, null, new Date(T).toISOString()],
      ["edge1.pump", "Speed", 1450, "rpm", new Date(T).toISOString()],
      ["edge1.pump", "Running", true, null, new Date(T).toISOString()],
      [`${group}/edge1`, "Uptime", 101, null, new Date(T + 1000).toISOString()],
      ["edge1.pump", "Speed", 1460, "rpm", new Date(T + 900).toISOString()],
      ["edge1.pump", "Running", false, null, new Date(T + 2000).toISOString()],
    ]);
    expect(readings.every((r) => r.metadata.time_source === "device")).toBe(true);
    expect(dead).toHaveLength(1);
    expect(dead[0]!.value).toMatchObject({ reason: "sparkplug_unknown_alias", source_topic: `spBv1.0/${group}/DDATA/edge1/pump` });
    expect(decodePayload(Buffer.from(dead[0]!.value.raw_base64, "base64")).metrics?.[0]?.float_value).toBe(1);
    expect(metrics).toMatch(/adapter_errors_total\{[^}]*type="protocol"[^}]*\} 1/);
    expect(adapter.lines.some((l) => String(l.err).includes("sequence gap from") && String(l.err).includes("expected seq 4, got 7"))).toBe(true);
    // One rebirth request: the gap; the unknown alias right after falls in the same 5 s window.
    expect(commands).toHaveLength(1);
    expect(commands[0]!.metrics?.[0]).toMatchObject({ name: "Node Control/Rebirth", boolean_value: true });
    await purgeSession(clientIdOf(config as unknown as MqttConfig));
  }, 40_000);
});
