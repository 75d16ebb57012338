import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { KAFKA_BOOTSTRAP, kafkaConnection, kafkaUp } from "../../test/support/services.ts";
import { KafkaAdmin } from "../kafka/admin.ts";
import { TOPIC_CATALOGUE } from "../kafka/catalogue.ts";
import type { ConsumedRecord } from "../kafka/processor.ts";
import { ReliableProducer, type OutgoingRecord } from "../kafka/producer.ts";
import { readTopic } from "../kafka/reader.ts";
import { aggregate, createAggregatorState } from "./aggregate/windows.ts";
import { createLedgerState, recordOutcome } from "./completeness/ledger.ts";
import { loadRules } from "./quality/rules.ts";
import { createValidatorState, validate } from "./quality/validator.ts";

const repo = join(import.meta.dir, "../..");
const PARTITIONS = 3;
const TAGS = 30;
const SAMPLES = 80;
const BASE = Date.parse("2026-01-01T00:00:00Z");
const RULES = { expected_interval_ms: 1000, rules: [{ parameter: "p0", min: 0, max: 55, action_on_violation: "mark_bad" }] };
const OUTPUT_TOPICS = ["telemetry.clean", "events.clean", "alarms.clean", "dlq.invalid_telemetry", "dlq.invalid_events", "telemetry.completeness", "telemetry.1s", "telemetry.10s", "telemetry.1min"];

function reading(tag: number, i: number) {
  const device = BASE + i * 1000 + (tag === 3 && i > 20 ? 4000 : 0);
  return {
    asset_id: `asset${tag % 5}`,
    parameter: `p${Math.floor(tag / 5)}`,
    value: i + tag / 10,
    unit: "u",
    quality: "GOOD",
    classification: "TELEMETRY",
    timestamps: { device_time: new Date(device).toISOString(), gateway_time: new Date(device + (tag === 7 ? 12_000 : 100)).toISOString(), kafka_time: null },
    clock_skew_ms: null,
    metadata: { adapter_id: "a", adapter_version: "1", pipeline_id: "p", hostname: "h" },
  };
}

/** Interleaved per sample index, with duplicates, a gap (tag 3), skew (tag 7), out-of-range values and garbage. */
function inputRecords(prefix: string): OutgoingRecord[] {
  const records: OutgoingRecord[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    for (let tag = 0; tag < TAGS; tag++) {
      if (tag === 3 && i >= 15 && i <= 20) continue;
      const r = reading(tag, i);
      const record = { topic: `${prefix}telemetry.raw`, key: `${r.asset_id}/${r.parameter}`, value: JSON.stringify(r) };
      records.push(record);
      if ((i * TAGS + tag) % 97 === 0) records.push(record);
    }
    if (i % 20 === 0) records.push({ topic: `${prefix}telemetry.raw`, key: "garbage/x", value: "{not json" });
  }
  records.push({ topic: `${prefix}events.raw`, key: "asset0", value: JSON.stringify({ event_type: "valve_opened", asset_id: "asset0", time: new Date(BASE).toISOString() }) });
  records.push({ topic: `${prefix}events.raw`, key: "asset0", value: JSON.stringify({ asset_id: "asset0" }) });
  records.push({ topic: `${prefix}alarms.raw`, key: "al1", value: JSON.stringify({ alarm_id: "al1", asset_id: "asset0", type: "high", severity: "HIGH", state: "ACTIVE", raised_at: new Date(BASE).toISOString() }) });
  return records;
}

/** The same pure functions, run in partition order in this process: what the workers must produce exactly once. */
function expectedOutputs(raw: ConsumedRecord[], prefix: string): Map<string, string[]> {
  const rules = loadRules(RULES);
  const byPartition = new Map<string, ConsumedRecord[]>();
  for (const r of raw) {
    const key = `${r.topic}#${r.partition}`;
    byPartition.set(key, [...(byPartition.get(key) ?? []), r]);
  }
  const out = new Map<string, string[]>();
  const push = (topic: string, value: string) => out.set(topic, [...(out.get(topic) ?? []), normalise(value)]);
  const cleanByPartition = new Map<number, string[]>();
  for (const records of byPartition.values()) {
    records.sort((a, b) => Number(a.offset - b.offset));
    const validator = createValidatorState();
    const ledger = createLedgerState();
    for (const r of records) {
      const topic = r.topic.slice(prefix.length);
      const result = validate(validator, { topic, key: r.key, value: r.value ?? "", partition: r.partition, offset: r.offset, timestamp: r.timestamp }, rules, new Date());
      const produced = topic === "telemetry.raw" && result.outcome ? [...result.outputs, ...recordOutcome(ledger, result.outcome)] : result.outputs;
      for (const o of produced) {
        push(o.topic, o.value);
        if (o.topic === "telemetry.clean") cleanByPartition.set(r.partition, [...(cleanByPartition.get(r.partition) ?? []), o.value]);
      }
    }
  }
  for (const values of cleanByPartition.values()) {
    const state = createAggregatorState();
    for (const value of values) for (const o of aggregate(state, JSON.parse(value))) push(o.topic, o.value);
  }
  return out;
}

/** DLQ records carry the wall-clock time of the failure; everything else must match to the byte. */
function normalise(value: string): string {
  const parsed = JSON.parse(value);
  if (parsed && typeof parsed === "object" && "failed_at" in parsed) delete parsed.failed_at;
  return JSON.stringify(parsed);
}

function spawnWorkers(prefix: string, instance: string) {
  return Bun.spawn([process.execPath, "src/main.ts", "worker", "all", "--topic-prefix", prefix, "--instance", instance, "--rules", rulesFile], {
    cwd: repo,
    env: { ...process.env, GATEWAY_KAFKA__BOOTSTRAP_SERVERS: KAFKA_BOOTSTRAP, LOG_LEVEL: process.env.WORKER_LOG_LEVEL ?? "warn" },
    stdout: process.env.WORKER_LOG ? Bun.file(`${process.env.WORKER_LOG}.${instance}.${Date.now()}`) : "ignore",
    stderr: "ignore",
  });
}

let rulesFile = "";

async function setupTopics(admin: KafkaAdmin, prefix: string): Promise<string[]> {
  const names: string[] = [];
  for (const spec of TOPIC_CATALOGUE) {
    await admin.createTopic(prefix + spec.name, spec.partitions === 1 ? 1 : PARTITIONS, spec.configs);
    names.push(prefix + spec.name);
  }
  return names;
}

async function collect(prefix: string, expected: Map<string, string[]>, timeoutMs: number): Promise<Map<string, string[]>> {
  const deadline = Date.now() + timeoutMs;
  let actual = new Map<string, string[]>();
  for (;;) {
    actual = new Map();
    for (const topic of OUTPUT_TOPICS) {
      const records = await readTopic(kafkaConnection(), prefix + topic, { idleMs: 400, timeoutMs: 10_000 });
      actual.set(topic, records.map((r) => normalise(r.value ?? "null")));
    }
    const done = OUTPUT_TOPICS.every((t) => (actual.get(t)?.length ?? 0) >= (expected.get(t)?.length ?? 0));
    if (done || Date.now() > deadline) return actual;
    await Bun.sleep(1000);
  }
}

function compare(expected: Map<string, string[]>, actual: Map<string, string[]>) {
  for (const topic of OUTPUT_TOPICS) {
    const want = [...(expected.get(topic) ?? [])].sort();
    const got = [...(actual.get(topic) ?? [])].sort();
    expect({ topic, count: got.length }).toEqual({ topic, count: want.length });
    expect(got).toEqual(want);
  }
}

describe.skipIf(!kafkaUp)("stream workers, exactly once against real Kafka", () => {
  const admin = new KafkaAdmin(kafkaConnection());
  const created: string[] = [];
  beforeAll(async () => {
    rulesFile = join(await Bun.$`mktemp -d`.text().then((d) => d.trim()), "rules.json");
    await Bun.write(rulesFile, JSON.stringify(RULES));
  });
  afterAll(async () => {
    await admin.deleteTopics(created).catch(() => undefined);
    await admin.close();
  });

  /** Input arrives in chunks while the workers run, so that kills land mid-stream. */
  async function feed(prefix: string, chunks = 15, pauseMs = 400) {
    const producer = new ReliableProducer(kafkaConnection(), "test");
    const records = inputRecords(prefix);
    const size = Math.ceil(records.length / chunks);
    for (let i = 0; i < records.length; i += size) {
      await producer.send(records.slice(i, i + size));
      await Bun.sleep(pauseMs);
    }
    await producer.close();
  }

  async function expectedFor(prefix: string) {
    const raw = (await Promise.all(["telemetry.raw", "events.raw", "alarms.raw"].map((t) => readTopic(kafkaConnection(), prefix + t, { idleMs: 500 })))).flat();
    const expected = expectedOutputs(raw, prefix);
    expect(expected.get("dlq.invalid_telemetry")!.length).toBeGreaterThan(10);
    expect(expected.get("events.clean")!.some((e) => e.includes('"gap"'))).toBe(true);
    expect(expected.get("events.clean")!.some((e) => e.includes("ntp_warning"))).toBe(true);
    expect(expected.get("telemetry.1min")!.length).toBeGreaterThan(0);
    return expected;
  }

  test("kill -9 at random points, many times: outputs equal an uninterrupted run, no duplicates, nothing missing", async () => {
    const prefix = `eos${Date.now().toString(36)}.`;
    created.push(...(await setupTopics(admin, prefix)));
    const feeding = feed(prefix);
    let kills = 0;
    let fed = false;
    void feeding.then(() => (fed = true));
    while (!fed || kills < 5) {
      const child = spawnWorkers(prefix, "w1");
      await Bun.sleep(700 + Math.random() * 1500);
      child.kill("SIGKILL");
      await child.exited;
      kills++;
    }
    const expected = await expectedFor(prefix);
    const final = spawnWorkers(prefix, "w1");
    try {
      compare(expected, await collect(prefix, expected, 60_000));
    } finally {
      final.kill("SIGTERM");
      await final.exited;
    }
  }, 150_000);

  test("two instances share the partitions; stopping one midway changes nothing in the output", async () => {
    const prefix = `scale${Date.now().toString(36)}.`;
    created.push(...(await setupTopics(admin, prefix)));
    const a = spawnWorkers(prefix, "a");
    const b = spawnWorkers(prefix, "b");
    const feeding = feed(prefix);
    await Bun.sleep(3000);
    b.kill("SIGTERM");
    await b.exited;
    await feeding;
    const expected = await expectedFor(prefix);
    try {
      compare(expected, await collect(prefix, expected, 60_000));
    } finally {
      a.kill("SIGTERM");
      await a.exited;
    }
  }, 150_000);
});
