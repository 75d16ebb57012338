import { afterAll, describe, expect, test } from "bun:test";
import { kafkaUp, uniqueName } from "../../test/support/services.ts";
import { clientIdOf } from "./index.ts";
import type { MqttConfig } from "./schema.ts";
import { Topics, baseConfig, mqttUp, publisher, purgeSession, readReadings, startAdapter, subscribed, type AdapterProcess } from "./test-support.ts";

/** Kept under mosquitto's default max_queued_messages (1000) for a disconnected session. */
const N = 600;

/** N QoS 1 messages, {"i": 0..N-1}, spread over ~`spreadMs`. */
async function publishSequence(topic: string, spreadMs: number, version: 4 | 5 = 5): Promise<void> {
  const pub = await publisher({ protocolVersion: version });
  const batch = 20;
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < N; i += batch) {
    for (let j = i; j < Math.min(N, i + batch); j++) sends.push(pub.publishAsync(topic, JSON.stringify({ i: j }), { qos: 1 }));
    await Bun.sleep(spreadMs / (N / batch));
  }
  await Promise.all(sends);
  await pub.endAsync();
}

async function metric(adapter: AdapterProcess, name: string): Promise<number> {
  const match = new RegExp(`^${name}\\{[^}]*\\} (\\d+)`, "m").exec(await adapter.metrics());
  return match ? Number(match[1]) : 0;
}

/** Waits until Kafka acknowledged readings have stopped growing for `quietMs`. */
async function settle(adapter: AdapterProcess, quietMs = 600, timeoutMs = 20_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  let since = Date.now();
  while (Date.now() < deadline) {
    const now = await metric(adapter, "adapter_kafka_records_total");
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (now > 0 && Date.now() - since >= quietMs) {
      return now;
    }
    await Bun.sleep(100);
  }
  return last;
}

/** All readings of the run: stops at N when there are no duplicates, else reads to the end. */
async function readAll(out: string) {
  let values = (await readReadings(out, N)).map((r) => r.value);
  if (new Set(values).size < N) values = (await readReadings(out, Infinity)).map((r) => r.value);
  return count(values);
}

function count(values: unknown[]) {
  const unique = new Set(values);
  const missing = Array.from({ length: N }, (_, i) => i).filter((i) => !unique.has(i));
  return { total: values.length, unique: unique.size, duplicates: values.length - unique.size, missing };
}

/**
 * "Nothing is acknowledged to a source before Kafka has it": with QoS 1 and a persistent session,
 * stopping or killing the adapter at any moment loses no message. Duplicates are allowed
 * (at least once) and reported.
 */
describe.skipIf(!kafkaUp || !mqttUp)("mqtt adapter: at least once into Kafka across restarts", () => {
  const topics = new Topics();
  afterAll(() => topics.cleanup());

  // Every message is well-formed: the DLQ topic is never written, so it need not exist.
  function setup(out: string, prefix: string, version: "5" | "3.1.1" = "5") {
    return baseConfig(prefix, out, "dlq.unused", [{ topic: `${prefix}/seq`, values: { i: "$.i" }, asset_id: "dur", qos: 1 }], { protocol_version: version });
  }

  test("readings taken while Kafka is unreachable are not acknowledged: kill -9, restart with Kafka, all arrive", async () => {
    const out = await topics.create("test.mqtt-noack");
    const prefix = uniqueName("noack");
    const config = setup(out, prefix);
    const blind = startAdapter({ ...config, output: { ...config.output, kafka_bootstrap: "127.0.0.1:1" } });
    await subscribed(blind);
    const pub = await publisher();
    for (let i = 0; i < 50; i++) await pub.publishAsync(`${prefix}/seq`, JSON.stringify({ i }), { qos: 1 });
    await pub.endAsync();
    const deadline = Date.now() + 5000;
    while ((await metric(blind, "adapter_readings_total")) < 50 && Date.now() < deadline) await Bun.sleep(50);
    expect(await metric(blind, "adapter_readings_total")).toBe(50); // taken from the broker, held unacknowledged
    blind.child.kill("SIGKILL");
    await blind.exited;

    const adapter = startAdapter(config);
    const readings = await readReadings(out, 50);
    adapter.child.kill("SIGTERM");
    expect(await adapter.exited).toBe(0);
    expect(count(readings.map((r) => r.value))).toMatchObject({ unique: 50 });
    await purgeSession(clientIdOf(config as unknown as MqttConfig));
  }, 40_000);

  test("SIGTERM while QoS 1 messages are being published: every one is in Kafka after the restart", async () => {
    const out = await topics.create("test.mqtt-stop");
    const prefix = uniqueName("stop");
    const config = setup(out, prefix);
    const first = startAdapter(config);
    await subscribed(first);
    const publishing = publishSequence(`${prefix}/seq`, 2000);
    await Bun.sleep(700);
    first.child.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    const summary = first.lines.find((l) => l.msg === "adapter stopped")!;
    expect(summary.sent_total).toBe(summary.readings_total);
    await publishing; // the rest is queued by the broker for the stopped session

    const second = startAdapter(config);
    await subscribed(second);
    await settle(second);
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
    const result = await readAll(out);
    console.log(`SIGTERM restart: first run ${String(summary.readings_total)} readings, total ${result.total}, duplicates ${result.duplicates}`);
    expect(result.missing).toEqual([]);
    expect(result.unique).toBe(N);
    // A graceful stop acknowledges exactly what reached Kafka: nothing is delivered twice.
    expect(result.duplicates).toBe(0);
    expect(Number(summary.readings_total)).toBeGreaterThan(0);
    expect(Number(summary.readings_total)).toBeLessThan(N);
    await purgeSession(clientIdOf(config as unknown as MqttConfig));
  }, 40_000);

  for (const version of ["5", "3.1.1"] as const) {
    test(`MQTT ${version}: kill -9 mid-stream, restart: nothing lost (duplicates counted)`, async () => {
      const out = await topics.create("test.mqtt-kill");
      const prefix = uniqueName("kill");
      const config = setup(out, prefix, version);
      const first = startAdapter(config);
      await subscribed(first);
      const publishing = publishSequence(`${prefix}/seq`, 2000, version === "5" ? 5 : 4);
      await Bun.sleep(800);
      const before = await metric(first, "adapter_kafka_records_total");
      first.child.kill("SIGKILL");
      await first.exited;
      await publishing;

      const second = startAdapter(config);
      await subscribed(second);
      await settle(second);
      second.child.kill("SIGTERM");
      expect(await second.exited).toBe(0);
      const result = await readAll(out);
      console.log(`MQTT ${version} kill -9 restart: ${before} in Kafka before the kill; total ${result.total}, unique ${result.unique}, duplicates ${result.duplicates}`);
      expect(before).toBeGreaterThan(0);
      expect(before).toBeLessThan(N);
      expect(result.missing).toEqual([]);
      expect(result.unique).toBe(N);
      await purgeSession(clientIdOf(config as unknown as MqttConfig), version === "5" ? 5 : 4);
    }, 40_000);
  }
});
