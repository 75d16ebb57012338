import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { DEFAULT_RULE_SETTINGS, publishAlarmRules } from "../../../test/support/alarm-rules.ts";
import { KAFKA_BOOTSTRAP, kafkaConnection, kafkaUp } from "../../../test/support/services.ts";
import { KafkaAdmin } from "../../kafka/admin.ts";
import { topicSpec } from "../../kafka/catalogue.ts";
import { copartitionedAssigner, singleActiveAssigner, type ConsumedRecord } from "../../kafka/processor.ts";
import { ReliableProducer } from "../../kafka/producer.ts";
import { readTopic } from "../../kafka/reader.ts";
import { createLogger } from "../../log/logger.ts";
import { topicNamespace } from "../namespace.ts";
import { createAlarmEngine, evaluateReading, type ReadingInput } from "./evaluator.ts";
import type { AlarmEvent } from "./lifecycle.ts";
import { loadAlarmRules } from "./rules.ts";
import { ALARM_COMMANDS_TOPIC, createAlarmWorker } from "./worker.ts";

const repo = join(import.meta.dir, "../../..");
const log = createLogger("test", "silent");
const PARTITIONS = 3;
const RULES = {
  rules: [
    { id: "pressure", asset_id: "reactor_*", parameter: "pressure", unit: "psi", high: { value: 200, type: "overpressure", severity: "CRITICAL" }, low: 20 },
    { id: "temp", asset_id: "*", parameter: "temp", high_high: 90, high: { value: 80, deadband: 2 }, on_delay_s: 2 },
  ],
};
const TOPICS = ["telemetry.clean", "alarms.commands", "alarms.raw", "alarms.command_outcomes", "_gateway.alarms.changelog", "_gateway.alarm_rules"];

function reading(asset: string, parameter: string, value: number, t: number): ReadingInput & Record<string, unknown> {
  const at = new Date(t).toISOString();
  return { asset_id: asset, parameter, value, unit: parameter === "pressure" ? "psi" : "C", quality: "GOOD", timestamps: { device_time: at, gateway_time: at }, classification: "TELEMETRY" };
}
const readingRecord = (prefix: string, r: ReadingInput) => ({ topic: `${prefix}telemetry.clean`, key: `${r.asset_id}/${r.parameter}`, value: JSON.stringify(r) });

async function createTopics(admin: KafkaAdmin, prefix: string, names = TOPICS): Promise<string[]> {
  for (const name of names) {
    const spec = topicSpec(name);
    await admin.createTopic(prefix + name, spec.partitions === 1 ? 1 : PARTITIONS, spec.configs);
  }
  return names.map((t) => prefix + t);
}

async function waitForEvents(prefix: string, predicate: (events: AlarmEvent[]) => boolean, timeoutMs = 20_000): Promise<AlarmEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = (await readTopic(kafkaConnection(), `${prefix}alarms.raw`, { idleMs: 300 })).map((r) => JSON.parse(r.value!) as AlarmEvent);
    if (predicate(events)) return events;
    if (Date.now() > deadline) throw new Error(`alarms.raw never matched; have ${events.map((e) => `${e.alarm_id.slice(0, 8)}:${e.event}`).join(" ")}`);
    await Bun.sleep(300);
  }
}

describe("partition assignors", () => {
  const metadata = { topics: new Map([["telemetry.clean", { partitionsCount: 6 }], ["alarms.commands", { partitionsCount: 6 }], ["outcomes", { partitionsCount: 1 }]]) };
  const members = new Map(["m-c", "m-a", "m-b", "m-d"].map((id) => [id, { memberId: id, topics: [...metadata.topics.keys()] }]));
  const run = (assigner: typeof copartitionedAssigner) =>
    Object.fromEntries(
      assigner("m-a", members as never, new Set(metadata.topics.keys()), metadata as never).map((m) => [m.memberId, Object.fromEntries([...m.assignments].map(([t, a]) => [t, a.partitions]))]),
    );

  test("co-partitioned: partition p of every topic goes to the same member (round robin does not promise it with 4 members and 6 partitions)", () => {
    const got = run(copartitionedAssigner);
    for (const member of Object.values(got)) expect(member["alarms.commands"]).toEqual(member["telemetry.clean"]);
    expect(got["m-a"]).toEqual({ "telemetry.clean": [0, 4], "alarms.commands": [0, 4], outcomes: [0] });
    expect(Object.values(got).flatMap((m) => m["telemetry.clean"] ?? []).sort()).toEqual([0, 1, 2, 3, 4, 5]);
  });

  test("single active: one member gets everything, the others stand by", () => {
    const got = run(singleActiveAssigner);
    expect(got["m-a"]).toEqual({ "telemetry.clean": [0, 1, 2, 3, 4, 5], "alarms.commands": [0, 1, 2, 3, 4, 5], outcomes: [0] });
    expect([got["m-b"], got["m-c"], got["m-d"]]).toEqual([{}, {}, {}]);
  });
});

describe.skipIf(!kafkaUp)("alarm evaluator worker against real Kafka", () => {
  const admin = new KafkaAdmin(kafkaConnection());
  const created: string[] = [];
  afterAll(async () => {
    await admin.deleteTopics(created).catch(() => undefined);
    await admin.close();
  });

  test("readings raise, commands ack and suppress, a wall-clock tick ends the suppression, a restart keeps the state", async () => {
    const prefix = `alw${Date.now().toString(36)}.`;
    created.push(...(await createTopics(admin, prefix)));
    const producer = new ReliableProducer(kafkaConnection(), "test");
    await publishAlarmRules(prefix, RULES.rules);
    const start = () => createAlarmWorker({ connection: kafkaConnection(), ruleDefaults: DEFAULT_RULE_SETTINGS, log, instanceId: "t1", namespace: topicNamespace(prefix), tickMs: 200 });
    let worker = start();
    await worker.start();
    try {
      const t0 = Date.now() - 60_000;
      await producer.send([readingRecord(prefix, reading("reactor_1", "pressure", 150, t0)), readingRecord(prefix, reading("reactor_1", "pressure", 210.5, t0 + 1000))]);
      const [raised] = await waitForEvents(prefix, (es) => es.length >= 1);
      expect(raised).toMatchObject({ event: "raised", state: "ACTIVE", asset_id: "reactor_1", type: "overpressure", severity: "CRITICAL", value: 210.5, threshold: 200, unit: "psi", sequence: 1 });
      const id = raised!.alarm_id;
      const command = (body: Record<string, unknown>) => ({ topic: `${prefix}${ALARM_COMMANDS_TOPIC}`, key: "reactor_1/pressure", value: JSON.stringify({ alarm_id: id, at: new Date().toISOString(), ...body }) });

      await producer.send([command({ action: "acknowledge", by: "alice", command_id: "c-alice" })]);
      await waitForEvents(prefix, (es) => es.some((e) => e.event === "acknowledged" && e.acked_by === "alice"));
      // A refused command (already acknowledged) produces no transition and does not stop the worker.
      await producer.send([command({ action: "acknowledge", by: "bob", command_id: "c-bob" }), command({ action: "suppress", by: "bob", until: new Date(Date.now() + 1500).toISOString(), command_id: "c-bob-2" })]);
      await waitForEvents(prefix, (es) => es.some((e) => e.event === "suppressed"));
      // Every command's outcome, keyed like the command, for the API waiting on it and the audit trail.
      const outcomes = (await readTopic(kafkaConnection(), `${prefix}alarms.command_outcomes`, { idleMs: 300 })).map((r) => ({ key: r.key, ...JSON.parse(r.value!) }) as Record<string, any>);
      expect(outcomes.map((o) => `${o.key} ${o.command_id} ${o.outcome} ${o.state}`)).toEqual([
        "reactor_1/pressure c-alice applied ACKNOWLEDGED",
        "reactor_1/pressure c-bob refused ACKNOWLEDGED",
        "reactor_1/pressure c-bob-2 applied SUPPRESSED",
      ]);
      expect(outcomes[1]!.error).toMatchObject({ code: "invalid_transition", message: expect.stringContaining(`cannot acknowledge alarm ${id}: it is already ACKNOWLEDGED (by alice at `) });
      expect(outcomes[2]).toMatchObject({ action: "suppress", by: "bob", event: "suppressed", sequence: 3, alarm: { alarm_id: id, state: "SUPPRESSED", suppressed_by: "bob" } });
      // No reading arrives: only the tick can end the suppression.
      const expired = await waitForEvents(prefix, (es) => es.some((e) => e.event === "unsuppressed"), 10_000);
      const unsuppressed = expired.find((e) => e.event === "unsuppressed")!;
      expect(unsuppressed).toMatchObject({ state: "ACKNOWLEDGED", event_by: null, sequence: 4 });
      expect(expired.filter((e) => e.event === "acknowledged")).toHaveLength(1);

      // A new incarnation restores the alarm from the changelog: the clear belongs to the same alarm.
      await worker.stop();
      worker = start();
      await worker.start();
      await producer.send([readingRecord(prefix, reading("reactor_1", "pressure", 180, t0 + 2000))]);
      const all = await waitForEvents(prefix, (es) => es.some((e) => e.event === "cleared"));
      expect(all.map((e) => `${e.sequence}:${e.event}`)).toEqual(["1:raised", "2:acknowledged", "3:suppressed", "4:unsuppressed", "5:cleared"]);
      expect(new Set(all.map((e) => e.alarm_id))).toEqual(new Set([id]));
    } finally {
      await worker.stop();
      await producer.close();
    }
  }, 60_000);

  test("inside gateway serve the evaluator waits for the first publish of the rules: a reading already waiting is judged by them", async () => {
    const prefix = `alp${Date.now().toString(36)}.`;
    created.push(...(await createTopics(admin, prefix)));
    const producer = new ReliableProducer(kafkaConnection(), "test");
    const t0 = Date.now() - 60_000;
    await producer.send([readingRecord(prefix, reading("reactor_1", "pressure", 250, t0))]);
    await producer.close();
    // As after an upgrade from a rules file: the topic is empty until the control plane has published.
    const rulesPublished = Bun.sleep(1500).then(() => publishAlarmRules(prefix, RULES.rules));
    const worker = createAlarmWorker({ connection: kafkaConnection(), ruleDefaults: DEFAULT_RULE_SETTINGS, rulesPublished, log, instanceId: "t2", namespace: topicNamespace(prefix), tickMs: 200 });
    await worker.start();
    try {
      const [raised] = await waitForEvents(prefix, (es) => es.length >= 1);
      expect(raised).toMatchObject({ event: "raised", rule_id: "pressure", value: 250, raised_at: new Date(t0).toISOString() });
    } finally {
      await worker.stop();
    }
  }, 60_000);

  test("without alarms.command_outcomes (an upgrade before `gateway topics apply`) commands still apply; only their outcome is not reported", async () => {
    const prefix = `alo${Date.now().toString(36)}.`;
    created.push(...(await createTopics(admin, prefix, TOPICS.filter((t) => t !== "alarms.command_outcomes"))));
    await publishAlarmRules(prefix, RULES.rules);
    const producer = new ReliableProducer(kafkaConnection(), "test");
    const worker = createAlarmWorker({ connection: kafkaConnection(), ruleDefaults: DEFAULT_RULE_SETTINGS, log, instanceId: "t3", namespace: topicNamespace(prefix), tickMs: 200 });
    await worker.start();
    try {
      await producer.send([readingRecord(prefix, reading("reactor_1", "pressure", 250, Date.now() - 60_000))]);
      const [raised] = await waitForEvents(prefix, (es) => es.length >= 1);
      const ack = { action: "acknowledge", alarm_id: raised!.alarm_id, by: "alice", at: new Date().toISOString(), command_id: "c-1" };
      await producer.send([{ topic: `${prefix}${ALARM_COMMANDS_TOPIC}`, key: "reactor_1/pressure", value: JSON.stringify(ack) }]);
      await waitForEvents(prefix, (es) => es.some((e) => e.event === "acknowledged"));
      // The worker goes on: a later reading is still evaluated.
      await producer.send([readingRecord(prefix, reading("reactor_1", "pressure", 150, Date.now() - 50_000))]);
      await waitForEvents(prefix, (es) => es.some((e) => e.event === "cleared"));
    } finally {
      await worker.stop();
      await producer.close();
    }
  }, 60_000);

  test("kill -9 at random points: alarms.raw equals an uninterrupted pure run, no duplicates, nothing missing; one outcome per command", async () => {
    const prefix = `alk${Date.now().toString(36)}.`;
    created.push(...(await createTopics(admin, prefix)));
    await publishAlarmRules(prefix, RULES.rules);
    // 12 tags, 60 samples each: pressure swings through high and low, temperature through the on-delay band.
    const base = Date.parse("2026-01-01T00:00:00Z");
    const records = [];
    const commandIds: string[] = [];
    for (let i = 0; i < 60; i++) {
      for (let n = 0; n < 6; n++) {
        records.push(readingRecord(prefix, reading(`reactor_${n}`, "pressure", 110 + 100 * Math.sin((i + n) / 4) + (i % 3), base + i * 1000)));
        records.push(readingRecord(prefix, reading(`oven_${n}`, "temp", 75 + 12 * Math.sin((i + 2 * n) / 5) + (i % 2), base + i * 1000)));
        // Commands for alarms that never existed: refused, so alarms.raw is untouched, but each has one outcome.
        if (i % 10 === 0) commandIds.push(`k-${i}-${n}`);
        if (i % 10 === 0) records.push({ topic: `${prefix}${ALARM_COMMANDS_TOPIC}`, key: `reactor_${n}/pressure`, value: JSON.stringify({ action: "acknowledge", alarm_id: `ghost-${i}-${n}`, by: "t", at: new Date(base).toISOString(), command_id: `k-${i}-${n}` }) });
      }
    }
    const spawn = () =>
      Bun.spawn([process.execPath, "test/support/stream-worker.ts", "alarms", "--topic-prefix", prefix, "--instance", "k1"], {
        cwd: repo,
        env: { ...process.env, GATEWAY_KAFKA__BOOTSTRAP_SERVERS: KAFKA_BOOTSTRAP, LOG_LEVEL: "error" },
        stdout: "ignore",
        stderr: "ignore",
      });
    const producer = new ReliableProducer(kafkaConnection(), "test");
    let fed = false;
    const feeding = (async () => {
      const size = Math.ceil(records.length / 12);
      for (let i = 0; i < records.length; i += size) {
        await producer.send(records.slice(i, i + size));
        await Bun.sleep(400);
      }
      fed = true;
    })();
    let kills = 0;
    while (!fed || kills < 4) {
      const child = spawn();
      await Bun.sleep(1200 + Math.random() * 1500);
      child.kill("SIGKILL");
      await child.exited;
      kills++;
    }
    await feeding;
    await producer.close();

    const input = await readTopic(kafkaConnection(), `${prefix}telemetry.clean`, { idleMs: 500 });
    // The killed incarnations did part of the work: the kills landed mid-stream, not before or after it.
    const before = (await readTopic(kafkaConnection(), `${prefix}alarms.raw`, { idleMs: 500 })).length;
    console.log(`alarm kill test: ${kills} kills, ${before} alarm records before the final run`);
    expect(before).toBeGreaterThan(0);
    const expected = pureRun(input);
    expect(expected.length).toBeGreaterThan(30);
    expect(before).toBeLessThanOrEqual(expected.length);
    const final = spawn();
    try {
      const deadline = Date.now() + 45_000;
      let got: string[] = [];
      let outcomes: string[] = [];
      while (Date.now() < deadline) {
        got = (await readTopic(kafkaConnection(), `${prefix}alarms.raw`, { idleMs: 500 })).map((r) => r.value!);
        outcomes = (await readTopic(kafkaConnection(), `${prefix}alarms.command_outcomes`, { idleMs: 500 })).map((r) => JSON.parse(r.value!).command_id as string);
        if (got.length >= expected.length && outcomes.length >= commandIds.length) break;
        await Bun.sleep(1000);
      }
      expect(got.length).toBe(expected.length);
      expect([...got].sort()).toEqual([...expected].sort());
      // Outcomes are written in the same transactions: exactly one per command across the kills.
      expect([...outcomes].sort()).toEqual([...commandIds].sort());
    } finally {
      final.kill("SIGTERM");
      await final.exited;
    }
  }, 90_000);
});

/** The pure engine over each partition in offset order: what the worker must produce exactly once. */
function pureRun(input: ConsumedRecord[]): string[] {
  const rules = loadAlarmRules(RULES);
  const out: string[] = [];
  for (let p = 0; p < PARTITIONS; p++) {
    const engine = createAlarmEngine();
    for (const r of input.filter((x) => x.partition === p).sort((a, b) => Number(a.offset - b.offset))) {
      for (const e of evaluateReading(engine, JSON.parse(r.value!), rules)) out.push(JSON.stringify(e));
    }
  }
  return out;
}
