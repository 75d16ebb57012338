/**
 * The OPC UA adapter against our simulator (node-opcua-server), into Kafka: subscription and
 * polling, security with a trust list, user login from a secret, recovery from a restarted
 * server and from an address space rebuilt under a live subscription, browse.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeConfigJson } from "../../src/adapter-runtime/config.ts";
import { runAdapter } from "../../src/adapter-runtime/run.ts";
import { ADAPTERS } from "../../src/adapters.ts";
import type { Reading } from "../../src/envelope/reading.ts";
import { KafkaAdmin } from "../../src/kafka/admin.ts";
import { createLogger } from "../../src/log/logger.ts";
import { KAFKA_BOOTSTRAP, kafkaConnection, kafkaUp, uniqueName } from "../../test/support/services.ts";
import { browse } from "./browse.ts";
import adapter from "./index.ts";
import { generateOpcuaBenchPlant, parseOpcuaPlant } from "./plant.ts";
import { OpcuaReader } from "./reader.ts";
import { OpcuaConfigSchema } from "./schema.ts";
import { startOpcuaSimulator, type OpcuaSimulator } from "./simulator.ts";
import { duplicates, metricValue, spawnAdapter, topicReadings } from "./test-support.ts";
import { parseAdapterConfig } from "../../src/adapter-runtime/config.ts";

const repo = join(import.meta.dir, "../..");
const log = createLogger("opcua-test", "error");

const plant = parseOpcuaPlant(
  {
    name: "test-plant",
    update_ms: 250,
    namespaces: ["urn:gateway-test:plant"],
    nodes: {
      "ns=2;s=Fast": { type: "Double", folder: "Line1", waveform: { kind: "ramp", min: 0, max: 1000, period_s: 1000 } },
      // Value and source timestamp held for an hour: a restarted server serves exactly the sample it served before.
      "ns=2;s=Held": { type: "Int32", update_ms: 3_600_000, waveform: { kind: "counter", every_s: 3600 } },
      "ns=2;s=Unc": { type: "Double", status: "UncertainLastUsableValue", update_ms: 3_600_000, waveform: { kind: "constant", value: 1.5 } },
      "ns=2;s=BadS": { type: "Double", status: "BadSensorFailure", update_ms: 3_600_000, waveform: { kind: "constant", value: 0 } },
      "ns=2;s=Flag": { type: "Boolean", folder: "Line1", writable: true, waveform: { kind: "square", low: 0, high: 1, period_s: 1 } },
    },
  },
  "test plant",
);

const pkiDirs: string[] = [];
function freshPki(): string {
  const dir = mkdtempSync(join(tmpdir(), "opcua-client-pki-"));
  pkiDirs.push(dir);
  return dir;
}

function opcuaConfig(pipelineId: string, topic: string, source: Record<string, unknown>, nodes: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}) {
  return {
    pipeline_id: pipelineId,
    adapter_id: `opcua-${pipelineId}`,
    protocol: "opcua",
    source: { subscription: { publishing_interval_ms: 200 }, retry_unknown_nodes_ms: 1000, max_reconnect_delay_ms: 1000, ...source },
    mapping: { nodes },
    output: { kafka_bootstrap: KAFKA_BOOTSTRAP, topic, asset_id: "line1" },
    retry_policy: { max_retries: 0, backoff_ms: 200 },
    ...extra,
  };
}

const byParam = (readings: Reading[], param: string) => readings.filter((r) => r.parameter === param);
const gatewayTime = (r: Reading) => Date.parse(r.timestamps.gateway_time);

describe.skipIf(!kafkaUp)("opcua adapter against the simulator, into Kafka", () => {
  const admin = new KafkaAdmin(kafkaConnection());
  const topics: string[] = [];
  let sim: OpcuaSimulator;
  let pki: string;

  beforeAll(async () => {
    pki = freshPki();
    sim = await startOpcuaSimulator({ plant, log });
  });
  afterAll(async () => {
    await sim?.stop();
    await admin.deleteTopics(topics).catch(() => undefined);
    await admin.close();
    for (const dir of pkiDirs) rmSync(dir, { recursive: true, force: true });
  });

  async function topic(): Promise<string> {
    const name = uniqueName("test.opcua");
    await admin.createTopic(name, 2);
    topics.push(name);
    return name;
  }

  test("subscription: source timestamps, StatusCode quality, bad node ids isolated; server restart: degraded, resumes within 30 s, no duplicate", async () => {
    const out = await topic();
    const nodes = [
      { node_id: "ns=2;s=Fast", param: "fast", unit: "m3" },
      { node_id: "ns=2;s=Held", param: "held" },
      { node_id: "ns=2;s=Unc", param: "uncertain" },
      { node_id: "ns=2;s=BadS", param: "bad_sensor" },
      { node_id: "ns=2;s=Missing", param: "missing" },
      { node_id: "ns=2;q=oops", param: "malformed" },
    ];
    const proc = spawnAdapter(opcuaConfig("sub-restart", out, { endpoint: sim.endpoint, pki_dir: pki }, nodes));
    await proc.waitForLine((l) => l.msg === "OPC UA session established", 20_000);
    await Bun.sleep(1500);

    const restarting = sim.restart({ downMs: 2500 });
    await proc.waitForLine((l) => l.msg === "OPC UA server unreachable; reconnecting", 10_000);
    await Bun.sleep(300);
    const during = await proc.health();
    await restarting;
    const upAt = Date.now();
    const back = await proc.waitForLine((l) => l.msg === "OPC UA session re-established; delivering again", 30_000);
    await Bun.sleep(2500);
    const metrics = await proc.metrics();
    expect(await proc.stop()).toBe(0);

    expect(during.status).toBe("degraded");
    expect(metricValue(metrics, "adapter_errors_total", 'type="connection"')).toBeGreaterThanOrEqual(1);
    expect(back.outage_ms as number).toBeGreaterThan(2000);
    // Malformed and unknown node ids: one line each naming the node, not repeated.
    expect(proc.lines.filter((l) => l.node === "ns=2;q=oops" && l.level === "error")).toHaveLength(1);
    expect(proc.lines.filter((l) => l.node === "ns=2;s=Missing" && l.msg === "OPC UA node failing; others continue")).toHaveLength(1);
    expect(proc.lines.filter((l) => l.level === "stdout")).toEqual([]);

    const readings = await topicReadings(admin, out);
    const summary = proc.lines.find((l) => l.msg === "adapter stopped")!;
    expect(readings).toHaveLength(summary.readings_total as number);
    expect(duplicates(readings)).toEqual([]);

    // device_time is the source timestamp: the simulator's 250 ms ticks; server_time in metadata.
    const fast = byParam(readings, "fast");
    const fastGood = fast.filter((r) => r.quality === "GOOD");
    // ~16 ticks of 250 ms while connected; a loaded machine delivers fewer within the same wall time.
    expect(fastGood.length).toBeGreaterThanOrEqual(6);
    for (const r of fastGood) {
      expect(r.metadata.time_source).toBe("device");
      expect(Date.parse(r.timestamps.device_time!) % 250).toBe(0);
      expect(Date.parse((r.metadata as Record<string, unknown>).server_time as string)).toBeGreaterThanOrEqual(Date.parse(r.timestamps.device_time!));
      expect(r.unit).toBe("m3");
    }
    // The outage: one BAD per tag (gateway time), then delivery again within 30 s of the server being back.
    const fastBad = fast.filter((r) => r.quality === "BAD");
    expect(fastBad).toHaveLength(1);
    expect(fastBad[0]!.metadata.time_source).toBe("gateway");
    expect(String(fastBad[0]!.metadata.error)).toContain(sim.endpoint);
    const firstBack = Math.min(...fastGood.filter((r) => gatewayTime(r) > upAt).map(gatewayTime));
    expect(firstBack - upAt).toBeLessThan(30_000);

    // Held: the restarted server sent the same (source timestamp, value) again; it reached Kafka once.
    expect(byParam(readings, "held").filter((r) => r.quality === "GOOD")).toHaveLength(1);

    // StatusCode → quality, with the status text kept.
    const unc = byParam(readings, "uncertain").filter((r) => r.quality !== "BAD");
    expect(unc.length).toBeGreaterThanOrEqual(1);
    expect(unc[0]).toMatchObject({ quality: "UNCERTAIN", value: 1.5 });
    expect(unc[0]!.metadata.status_text).toBe("UncertainLastUsableValue (0x40900000)");
    const badSensor = byParam(readings, "bad_sensor").filter((r) => r.metadata.time_source === "device");
    expect(badSensor[0]).toMatchObject({ quality: "BAD", value: null });
    expect(badSensor[0]!.metadata.status_text).toBe("BadSensorFailure (0x808c0000)");

    // Bad node ids: one BAD each, with the reason; the others kept flowing.
    const missing = byParam(readings, "missing");
    expect(missing).toHaveLength(1);
    expect(missing[0]).toMatchObject({ quality: "BAD", value: null });
    expect(String(missing[0]!.metadata.error)).toContain("BadNodeIdUnknown");
    const malformed = byParam(readings, "malformed");
    expect(malformed).toHaveLength(1);
    expect(String(malformed[0]!.metadata.error)).toContain("not an OPC UA node id");
  }, 60_000);

  test("address space rebuilt under a live subscription, then the server restarted with its namespace moved: nodes re-resolved, delivery resumes", async () => {
    const out = await topic();
    const abort = new AbortController();
    const config = opcuaConfig("rebuild", out, { endpoint: sim.endpoint, pki_dir: pki }, [
      { node_id: "ns=2;s=Fast", param: "fast" },
      { node_id: "ns=2;s=Held", param: "held" },
    ]);
    const done = runAdapter({ env: { CONFIG_JSON: encodeConfigJson(config) }, definitions: ADAPTERS, signal: abort.signal });
    await Bun.sleep(2000);
    const rebuiltAt = Date.now();
    await sim.rebuild(1000);
    await Bun.sleep(2500);
    const movedAt = Date.now();
    await sim.restart({ downMs: 500, extraNamespaces: ["urn:gateway-test:pushed-first"] });
    await Bun.sleep(3000);
    abort.abort();
    expect(await done).toBe(0);
    // Leave the shared simulator as the other tests expect it.
    await sim.restart();

    const readings = await topicReadings(admin, out);
    const fastGood = byParam(readings, "fast").filter((r) => r.quality === "GOOD");
    const after = (t: number) => fastGood.filter((r) => gatewayTime(r) > t + 1000);
    expect(after(rebuiltAt).length).toBeGreaterThan(0);
    expect(after(movedAt).length).toBeGreaterThan(0);
    const bad = byParam(readings, "fast").filter((r) => r.quality === "BAD");
    expect(bad.map((r) => String(r.metadata.error).includes("BadNodeId"))).toContain(true);
    expect(byParam(readings, "held").filter((r) => r.quality === "GOOD")).toHaveLength(1);
    expect(duplicates(readings)).toEqual([]);
  }, 40_000);

  test("polling over SignAndEncrypt, server certificate from trusted_server_certificates, user and password from ${secret:...}", async () => {
    const secure = await startOpcuaSimulator({
      plant,
      log,
      security: { modes: ["SignAndEncrypt"], policies: ["Basic256Sha256", "Aes256_Sha256_RsaPss"], users: { operator: "s3cret pass" } },
    });
    const trusted = mkdtempSync(join(tmpdir(), "opcua-trusted-"));
    pkiDirs.push(trusted);
    writeFileSync(join(trusted, "simulator.der"), secure.certificate());
    const dataDir = mkdtempSync(join(tmpdir(), "opcua-data-"));
    pkiDirs.push(dataDir);
    mkdirSync(join(dataDir, "secrets"));
    writeFileSync(join(dataDir, "secrets", "opcua-operator"), "s3cret pass\n");
    const source = {
      endpoint: secure.endpoint,
      security_mode: "SignAndEncrypt",
      security_policy: "Aes256_Sha256_RsaPss",
      auth: { username: "operator", password: "${secret:opcua-operator}" },
      trusted_server_certificates: trusted,
      mode: "polling",
      polling: { batch_size: 1 },
    };
    const nodes = [
      { node_id: "ns=2;s=Fast", param: "fast" },
      { node_id: "ns=2;s=Held", param: "held" },
      { node_id: "ns=2;s=Missing", param: "missing" },
    ];
    try {
      const out = await topic();
      const proc = spawnAdapter(opcuaConfig("secure-poll", out, { ...source, pki_dir: freshPki() }, nodes, { poll_interval_ms: 250 }), { GATEWAY_DATA_DIR: dataDir });
      await proc.waitForLine((l) => l.msg === "OPC UA session established", 20_000);
      await Bun.sleep(2000);
      expect(await proc.stop()).toBe(0);
      const readings = await topicReadings(admin, out);
      expect(byParam(readings, "fast").filter((r) => r.quality === "GOOD").length).toBeGreaterThanOrEqual(4);
      // Polling reads Held every 250 ms; the same device sample is delivered once.
      expect(byParam(readings, "held")).toHaveLength(1);
      expect(byParam(readings, "missing")).toHaveLength(1);
      expect(duplicates(readings)).toEqual([]);

      // The connection test says what is wrong, in words: a wrong password, an untrusted server.
      const parse = (s: Record<string, unknown>) =>
        parseAdapterConfig(OpcuaConfigSchema, opcuaConfig("t", "t", s, nodes), adapter.validate as never) as never;
      // In this process the secrets come from the environment (the adapter process above read a file).
      process.env.SECRET_OPCUA_OPERATOR = "s3cret pass";
      process.env.SECRET_OPCUA_WRONG = "nope";
      await expect(adapter.connectionTest!(parse({ ...source, auth: { username: "operator", password: "${secret:opcua_wrong}" }, pki_dir: freshPki() }), log)).rejects.toThrow(/refused the user identity/);
      const untrusted = freshPki();
      await expect(adapter.connectionTest!(parse({ ...source, trusted_server_certificates: undefined, pki_dir: untrusted }), log)).rejects.toThrow(
        new RegExp(`server certificate not trusted.*${join(untrusted, "rejected")}`),
      );
      // The server offers SignAndEncrypt only: Sign, or None, finds no endpoint (the mode really is applied).
      await expect(adapter.connectionTest!(parse({ ...source, security_mode: "Sign", pki_dir: untrusted }), log)).rejects.toThrow(/offers no endpoint for security Sign\/Aes256_Sha256_RsaPss/);
      await expect(adapter.connectionTest!(parse({ ...source, security_mode: "None", security_policy: undefined, pki_dir: untrusted }), log)).rejects.toThrow(/offers no endpoint for security None\/None/);
      await expect(adapter.connectionTest!(parse({ ...source, auth: { username: "operator", password: "${secret:not_there}" }, pki_dir: untrusted }), log)).rejects.toThrow(
        /source\.auth\.password: secret "not_there" not found: set SECRET_NOT_THERE/,
      );
    } finally {
      delete process.env.SECRET_OPCUA_WRONG;
      delete process.env.SECRET_OPCUA_OPERATOR;
      await secure.stop();
    }
  }, 60_000);

  test("browse: the tree with node ids, data types and access levels; `gateway opcua browse` prints it", async () => {
    const tree = await browse(sim.endpoint, { nodeId: "ns=1;s=test-plant", depth: 3, pki_dir: pki });
    const line1 = tree.children.find((c) => c.browseName === "Line1")!;
    expect(line1.nodeClass).toBe("Object");
    expect(line1.children.find((c) => c.browseName === "Fast")).toMatchObject({ nodeId: "ns=2;s=Fast", nodeClass: "Variable", dataType: "Double", access: "R" });
    expect(line1.children.find((c) => c.browseName === "Flag")).toMatchObject({ nodeId: "ns=2;s=Flag", dataType: "Boolean", access: "RW" });
    expect(tree.children.find((c) => c.browseName === "Held")).toMatchObject({ dataType: "Int32" });

    const cli = Bun.spawn([process.execPath, "src/main.ts", "opcua", "browse", sim.endpoint, "--node", "ns=1;s=test-plant", "--depth", "2", "--pki-dir", pki], {
      cwd: repo,
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr] = await Promise.all([new Response(cli.stdout).text(), new Response(cli.stderr).text()]);
    expect({ code: await cli.exited, stderr }).toEqual({ code: 0, stderr: "" });
    expect(stdout).toContain("test-plant  [ns=1;s=test-plant]  Object");
    expect(stdout).toMatch(/├─ Line1 {2}\[ns=1;s=test-plant\/Line1\] {2}Object/);
    expect(stdout).toMatch(/Fast {2}\[ns=2;s=Fast\] {2}Variable {2}Double {2}R/);
  }, 30_000);
});

describe("opcua adapter against a simulator that takes at most 100 items per call", () => {
  let sim: OpcuaSimulator;
  let pki: string;
  beforeAll(async () => {
    pki = freshPki();
    sim = await startOpcuaSimulator({ plant: generateOpcuaBenchPlant(250, 1000), maxItemsPerCall: 100, log });
  });
  afterAll(async () => {
    await sim?.stop();
    for (const dir of pkiDirs) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the reader in process until every node delivered once; returns the params seen and the warnings logged. */
  async function deliverAll(source: Record<string, unknown>, extra: Record<string, unknown> = {}) {
    const nodes = Array.from({ length: 250 }, (_, i) => ({ node_id: `ns=2;s=Bench.${i}`, param: `t${i}` }));
    const config = parseAdapterConfig(OpcuaConfigSchema, opcuaConfig("limits", "unused", { endpoint: sim.endpoint, pki_dir: pki, ...source }, nodes, extra), adapter.validate as never);
    const seen = new Set<string>();
    const bad: string[] = [];
    const warnings: string[] = [];
    const quiet = createLogger("opcua-test", "warn");
    const reader = new OpcuaReader(config as never, {
      log: Object.assign(Object.create(quiet), { warn: (_: unknown, msg: string) => warnings.push(msg), info: () => undefined, child: () => quiet }),
      emit: (samples) => samples.forEach((s) => (s.quality === "GOOD" ? seen.add(s.parameter) : bad.push(`${s.parameter}: ${s.error ?? s.status_text}`))),
      recordError: () => undefined,
      readLatency: { observe: () => undefined } as never,
      heartbeat: () => undefined,
    });
    reader.start();
    const deadline = Date.now() + 10_000;
    while (seen.size < 250 && Date.now() < deadline) await Bun.sleep(100);
    await reader.stop();
    return { seen: seen.size, bad, warnings };
  }

  test("subscription: batch_size 100 creates every item; a larger batch the server refuses is split", async () => {
    expect(await deliverAll({ subscription: { publishing_interval_ms: 200, batch_size: 100 } })).toEqual({ seen: 250, bad: [], warnings: [] });
    const split = await deliverAll({ subscription: { publishing_interval_ms: 200, batch_size: 250 } });
    expect({ seen: split.seen, bad: split.bad }).toEqual({ seen: 250, bad: [] });
    expect(split.warnings).toContain("server refused a CreateMonitoredItems batch; splitting it (lower source.subscription.batch_size)");
  }, 30_000);

  test("polling: Read batches the server finds too large are split", async () => {
    const split = await deliverAll({ mode: "polling", polling: { batch_size: 250 } }, { poll_interval_ms: 200 });
    expect({ seen: split.seen, bad: split.bad }).toEqual({ seen: 250, bad: [] });
    expect(split.warnings).toContain("server refused a Read batch; splitting it (lower source.polling.batch_size)");
  }, 30_000);
});
