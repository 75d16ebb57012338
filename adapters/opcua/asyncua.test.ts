/**
 * Interoperability: the OPC UA adapter against an independent server, asyncua (PyPI),
 * test/peers/asyncua_server.py. Every security mode and policy both sides support, user login
 * with a ${secret:...} password, subscription and polling into Kafka, a restart mid-stream.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeConfigJson, parseAdapterConfig } from "../../src/adapter-runtime/config.ts";
import { runAdapter } from "../../src/adapter-runtime/run.ts";
import { ADAPTERS } from "../../src/adapters.ts";
import type { Reading } from "../../src/envelope/reading.ts";
import { KafkaAdmin } from "../../src/kafka/admin.ts";
import { createLogger } from "../../src/log/logger.ts";
import type { Sample } from "../../src/registry.ts";
import { asyncuaAvailable, startAsyncua, type AsyncuaSecurity, type AsyncuaServer } from "../../test/peers/asyncua.ts";
import { KAFKA_BOOTSTRAP, kafkaConnection, kafkaUp, uniqueName } from "../../test/support/services.ts";
import adapter from "./index.ts";
import { OpcuaConfigSchema } from "./schema.ts";
import { duplicates, metricValue, spawnAdapter, topicReadings } from "./test-support.ts";

const log = createLogger("opcua-asyncua-test", "error");
/** Source timestamp of ns=2;s=Held, the same across restarts of the server. */
const HELD_AT = Date.parse("2026-01-01T12:00:00.000Z");

const NODES = [
  { node_id: "ns=2;s=Counter", param: "counter" },
  { node_id: "ns=2;s=Temperature", param: "temperature", unit: "degC" },
  { node_id: "ns=2;s=Running", param: "running" },
  { node_id: "ns=2;s=Name", param: "name" },
  { node_id: "ns=2;s=Uncertain", param: "uncertain" },
  { node_id: "ns=2;s=BadSensor", param: "bad_sensor" },
  { node_id: "ns=2;s=Held", param: "held" },
  { node_id: "ns=2;s=Big", param: "big" },
  { node_id: "nsu=urn:gateway-test:asyncua;s=Counter", param: "counter_by_uri" },
  { node_id: "ns=2;s=NoSuchNode", param: "missing" },
];

const pkiDirs: string[] = [];
function freshPki(): string {
  const dir = mkdtempSync(join(tmpdir(), "opcua-client-pki-"));
  pkiDirs.push(dir);
  return dir;
}

function config(pipelineId: string, topic: string, source: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    pipeline_id: pipelineId,
    adapter_id: `opcua-${pipelineId}`,
    protocol: "opcua",
    source: { subscription: { publishing_interval_ms: 100 }, retry_unknown_nodes_ms: 1000, max_reconnect_delay_ms: 1000, ...source },
    mapping: { nodes: NODES },
    output: { kafka_bootstrap: KAFKA_BOOTSTRAP, topic, asset_id: "asyncua-plant" },
    retry_policy: { max_retries: 0, backoff_ms: 200 },
    ...extra,
  };
}

const param = <T extends { parameter: string }>(items: T[], name: string) => items.filter((r) => r.parameter === name);

/** What every run against asyncua_server.py must show, whether samples or Kafka readings. */
function checkValues(samples: Array<Sample | Reading>): void {
  const time = (s: Sample | Reading) => ("device_time" in s ? s.device_time.getTime() : Date.parse(s.timestamps.device_time!));
  const source = (s: Sample | Reading) => ("time_source" in s ? s.time_source : s.metadata.time_source);
  const status = (s: Sample | Reading) => ("status_text" in s ? s.status_text : (s as Reading).metadata?.status_text);
  const counter = param(samples, "counter").filter((s) => s.quality === "GOOD");
  expect(counter.length).toBeGreaterThanOrEqual(1);
  expect(counter.every((s) => typeof s.value === "number" && source(s) === "device")).toBe(true);
  expect(param(samples, "counter_by_uri").filter((s) => s.quality === "GOOD").length).toBeGreaterThanOrEqual(1);
  expect(typeof param(samples, "temperature")[0]?.value).toBe("number");
  expect(typeof param(samples, "running")[0]?.value).toBe("boolean");
  expect(param(samples, "name")[0]?.value).toBe("asyncua-plant");
  const uncertain = param(samples, "uncertain")[0]!;
  expect({ quality: uncertain.quality, value: uncertain.value, status: status(uncertain) }).toEqual({ quality: "UNCERTAIN", value: 1.5, status: "UncertainLastUsableValue (0x40900000)" });
  const bad = param(samples, "bad_sensor")[0]!;
  expect({ quality: bad.quality, value: bad.value, status: status(bad) }).toEqual({ quality: "BAD", value: null, status: "BadSensorFailure (0x808c0000)" });
  const held = param(samples, "held");
  expect(held).toHaveLength(1);
  expect({ value: held[0]!.value, time: time(held[0]!), source: source(held[0]!) }).toEqual({ value: 42.5, time: HELD_AT, source: "device" });
  expect(param(samples, "big")[0]?.value).toBe("9007199254740993");
  const missing = param(samples, "missing");
  expect(missing).toHaveLength(1);
  expect(missing[0]!.quality).toBe("BAD");
}

describe.skipIf(!asyncuaAvailable)("opcua adapter against asyncua: security", () => {
  const ALL: AsyncuaSecurity[] = [
    "None",
    "Basic256Sha256_Sign",
    "Basic256Sha256_SignAndEncrypt",
    "Aes128Sha256RsaOaep_Sign",
    "Aes128Sha256RsaOaep_SignAndEncrypt",
    "Aes256Sha256RsaPss_Sign",
    "Aes256Sha256RsaPss_SignAndEncrypt",
  ];
  const POLICY: Record<string, string> = { Basic256Sha256: "Basic256Sha256", Aes128Sha256RsaOaep: "Aes128_Sha256_RsaOaep", Aes256Sha256RsaPss: "Aes256_Sha256_RsaPss" };
  let server: AsyncuaServer;
  let pki: string;

  beforeAll(async () => {
    pki = freshPki();
    server = await startAsyncua({ security: ALL, user: { name: "operator", password: "pa ss:wörd" }, heldTimestamp: HELD_AT });
    process.env.SECRET_ASYNCUA_OPERATOR = "pa ss:wörd";
  });
  afterAll(async () => {
    delete process.env.SECRET_ASYNCUA_OPERATOR;
    await server?.stop();
    for (const dir of pkiDirs) rmSync(dir, { recursive: true, force: true });
  });

  const test1 = (source: Record<string, unknown>) =>
    adapter.connectionTest!(
      parseAdapterConfig(OpcuaConfigSchema, config("security", "unused", { endpoint: server.endpoint, pki_dir: pki, trusted_server_certificates: server.certDir, ...source }), adapter.validate as never) as never,
      log,
    );
  const user = { auth: { username: "operator", password: "${secret:asyncua-operator}" } };

  test("every mode and policy both sides support, logged in with a ${secret:...} password, the server trusted from trusted_server_certificates", async () => {
    const results: Record<string, string> = {};
    for (const security of ALL) {
      const [policy, mode] = security === "None" ? ["None", "None"] : security.split("_");
      const samples = await test1({ security_mode: mode, security_policy: POLICY[policy!] ?? "None", ...user }).catch((e: Error) => e);
      if (samples instanceof Error) {
        results[security] = samples.message;
        continue;
      }
      checkValues(samples);
      results[security] = "ok";
    }
    expect(results).toEqual(Object.fromEntries(ALL.map((s) => [s, "ok"])));
  }, 45_000);

  test("refusals say why: anonymous where a user is required, a wrong password, an untrusted server certificate", async () => {
    await expect(test1({})).rejects.toThrow(/refused the user identity|BadIdentityToken/);
    process.env.SECRET_ASYNCUA_WRONG = "wrong";
    try {
      await expect(test1({ auth: { username: "operator", password: "${secret:asyncua-wrong}" } })).rejects.toThrow(/refused the user identity/);
    } finally {
      delete process.env.SECRET_ASYNCUA_WRONG;
    }
    const untrusted = freshPki();
    await expect(
      adapter.connectionTest!(
        parseAdapterConfig(OpcuaConfigSchema, config("security", "unused", { endpoint: server.endpoint, pki_dir: untrusted, security_mode: "SignAndEncrypt", ...user })) as never,
        log,
      ),
    ).rejects.toThrow(/server certificate not trusted/);
  }, 30_000);
});

describe.skipIf(!asyncuaAvailable || !kafkaUp)("opcua adapter against asyncua, into Kafka", () => {
  const admin = new KafkaAdmin(kafkaConnection());
  const topics: string[] = [];
  let server: AsyncuaServer;

  beforeAll(async () => {
    server = await startAsyncua({ security: ["None"], heldTimestamp: HELD_AT, intervalMs: 200 });
  });
  afterAll(async () => {
    await server?.stop();
    await admin.deleteTopics(topics).catch(() => undefined);
    await admin.close();
    for (const dir of pkiDirs) rmSync(dir, { recursive: true, force: true });
  });

  async function topic(): Promise<string> {
    const name = uniqueName("test.opcua-asyncua");
    await admin.createTopic(name, 2);
    topics.push(name);
    return name;
  }

  test("subscription; asyncua restarted mid-stream: degraded while down, delivering again within 30 s, no sample twice in Kafka", async () => {
    const out = await topic();
    const proc = spawnAdapter(config("asyncua-sub", out, { endpoint: server.endpoint, pki_dir: freshPki() }));
    await proc.waitForLine((l) => l.msg === "OPC UA session established", 20_000);
    await Bun.sleep(1500);
    const restarting = server.restart(2000);
    await proc.waitForLine((l) => l.msg === "OPC UA server unreachable; reconnecting", 10_000);
    await Bun.sleep(300);
    const during = await proc.health();
    await restarting;
    const upAt = Date.now();
    await proc.waitForLine((l) => l.msg === "OPC UA session re-established; delivering again", 30_000);
    await Bun.sleep(1500);
    const metrics = await proc.metrics();
    expect(await proc.stop()).toBe(0);

    expect(during.status).toBe("degraded");
    expect(metricValue(metrics, "adapter_errors_total", 'type="connection"')).toBeGreaterThanOrEqual(1);
    const readings = await topicReadings(admin, out);
    expect(readings).toHaveLength(proc.lines.find((l) => l.msg === "adapter stopped")!.readings_total as number);
    expect(duplicates(readings)).toEqual([]);
    checkValues(readings.filter((r) => r.metadata.time_source === "device" || r.parameter === "missing"));
    const counterBack = param(readings, "counter").filter((r) => r.quality === "GOOD" && Date.parse(r.timestamps.gateway_time) > upAt);
    expect(counterBack.length).toBeGreaterThan(0);
    expect(Math.min(...counterBack.map((r) => Date.parse(r.timestamps.gateway_time))) - upAt).toBeLessThan(30_000);
    // The outage: one BAD per tag that was delivering (the missing node was already reported).
    expect(param(readings, "counter").filter((r) => r.quality === "BAD")).toHaveLength(1);
    expect(param(readings, "missing")).toHaveLength(1);
  }, 60_000);

  test("polling: batched Reads every poll_interval_ms, each device sample once", async () => {
    const out = await topic();
    const abort = new AbortController();
    const cfg = config("asyncua-poll", out, { endpoint: server.endpoint, pki_dir: freshPki(), mode: "polling", polling: { batch_size: 3 } }, { poll_interval_ms: 100 });
    const done = runAdapter({ env: { CONFIG_JSON: encodeConfigJson(cfg) }, definitions: ADAPTERS, signal: abort.signal });
    await Bun.sleep(2500);
    abort.abort();
    expect(await done).toBe(0);
    const readings = await topicReadings(admin, out);
    checkValues(readings);
    expect(duplicates(readings)).toEqual([]);
    const counters = param(readings, "counter").map((r) => r.value as number);
    expect(counters.length).toBeGreaterThanOrEqual(5);
    expect(counters).toEqual([...counters].sort((a, b) => a - b));
  }, 30_000);
});
