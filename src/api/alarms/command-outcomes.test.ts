/**
 * Operator commands through the API against real Kafka and a running evaluator: the answer is what
 * the evaluator did. The chain: API → alarms.commands → alarm worker → alarms.raw + alarms.command_outcomes;
 * alarms.raw → quality validator → alarms.clean → projector → read model.
 */
import { describe, expect, test } from "bun:test";
import { DEFAULT_RULE_SETTINGS, publishAlarmRules } from "../../../test/support/alarm-rules.ts";
import { alarmsTestApp } from "../../../test/support/alarms-app.ts";
import { createPrefixedTopics, waitFor } from "../../../test/support/alerts.ts";
import { kafkaConnection, kafkaUp } from "../../../test/support/services.ts";
import { kafkaTestScope } from "../../../test/support/kafka-scope.ts";
import { listAudit } from "../../db/repo.ts";
import { ReliableProducer } from "../../kafka/producer.ts";
import { readTopic } from "../../kafka/reader.ts";
import { createLogger } from "../../log/logger.ts";
import type { AlarmEvent } from "../../streams/alarms/lifecycle.ts";
import { ALARM_COMMAND_OUTCOMES_TOPIC, decodeCommandOutcome } from "../../streams/alarms/outcome.ts";
import { ALARM_COMMANDS_TOPIC, createAlarmWorker } from "../../streams/alarms/worker.ts";
import { topicNamespace } from "../../streams/namespace.ts";
import { loadRules } from "../../streams/quality/rules.ts";
import { createQualityWorker } from "../../streams/quality/worker.ts";
import { CommandOutcomeTail } from "./outcomes.ts";
import { AlarmProjector } from "./projector.ts";

const log = createLogger("test", "silent");
const ASSETS = ["reactor_1", "reactor_2", "reactor_3", "reactor_4"];

describe.skipIf(!kafkaUp)("alarm commands answered with the evaluator's outcome (real Kafka)", () => {
  const { admin, created, cleanup } = kafkaTestScope(60_000);

  test("applied → 200; two acks at once → 200 and 409; ack after a clear the read model has not seen → 409; evaluator stopped → 202, applied once it runs", async () => {
    const prefix = `aco${Date.now().toString(36)}.`;
    const ns = topicNamespace(prefix);
    created.push(...(await createPrefixedTopics(admin, prefix)));
    await publishAlarmRules(prefix, [{ id: "p", asset_id: "reactor_*", parameter: "pressure", unit: "psi", high: { value: 200, type: "overpressure", severity: "CRITICAL" } }]);
    const common = { connection: kafkaConnection(), log, instanceId: "aco", namespace: ns };
    const quality = createQualityWorker({ ...common, rules: loadRules({}) });
    await quality.start();
    cleanup.push(() => quality.stop());
    const startEvaluator = async () => {
      const w = createAlarmWorker({ ...common, ruleDefaults: DEFAULT_RULE_SETTINGS, tickMs: 300 });
      await w.start();
      return w;
    };
    let evaluator = await startEvaluator();
    cleanup.push(() => evaluator.stop());

    const commands = new ReliableProducer(kafkaConnection(), "test-commands");
    cleanup.push(() => commands.close());
    const outcomes = new CommandOutcomeTail({ connection: kafkaConnection(), log, namespace: ns });
    outcomes.start();
    cleanup.push(() => outcomes.stop());
    const app = await alarmsTestApp({
      service: { outcomes, waitMs: 5000, publisher: { publish: (key, command) => commands.send([{ topic: ns.physical(ALARM_COMMANDS_TOPIC), key, value: JSON.stringify(command) }]) } },
    });
    cleanup.push(() => app.close());
    const startProjector = async () => {
      const p = new AlarmProjector({ connection: kafkaConnection(), db: () => app.db.db, log, gatewayId: "aco", namespace: ns });
      await p.start();
      return p;
    };
    let projector = await startProjector();
    cleanup.push(() => projector.stop());
    expect(await outcomes.whenReady(20_000)).toBe(true);

    const readings = new ReliableProducer(kafkaConnection(), "test-readings");
    cleanup.push(() => readings.close());
    const t0 = Date.now() - 10 * 60_000;
    const send = (asset: string, value: number, s: number) => {
      const at = new Date(t0 + s * 1000).toISOString();
      const r = { asset_id: asset, parameter: "pressure", value, unit: "psi", quality: "GOOD", classification: "TELEMETRY", timestamps: { device_time: at, gateway_time: at, kafka_time: null } };
      return readings.send([{ topic: ns.physical("telemetry.clean"), key: `${asset}/pressure`, value: JSON.stringify(r) }]);
    };
    const get = async (id: string) => (await app.request("GET", `/api/v1/alarms/${id}`, { token: app.tokens.Operator })).body as { state: string; sequence: number };
    const post = (id: string, what: string, token = app.tokens.Operator) => app.request("POST", `/api/v1/alarms/${id}/${what}`, { token });

    for (const asset of ASSETS) await send(asset, 210, 1);
    const active = await waitFor(
      "four ACTIVE alarms in the read model",
      async () => {
        const items = (await app.request("GET", "/api/v1/alarms?state=ACTIVE", { token: app.tokens.Operator })).body!.items as { alarm_id: string; asset_id: string }[];
        return items.length === ASSETS.length && Object.fromEntries(items.map((a) => [a.asset_id, a.alarm_id]));
      },
      60_000,
    );

    // 1. Applied.
    const acked = await post(active.reactor_1!, "ack");
    expect(acked.status).toBe(200);
    expect(acked.body).toMatchObject({ alarm_id: active.reactor_1, state: "ACKNOWLEDGED", acked_by: "operator", sequence: 2 });

    // 2. Two acks at once: both pass the read model's check, the evaluator takes the first and refuses the second.
    const both = await Promise.all([post(active.reactor_2!, "ack"), post(active.reactor_2!, "ack", app.tokens.Engineer)]);
    expect(both.map((r) => r.status).sort()).toEqual([200, 409]);
    const loser = both.find((r) => r.status === 409)!;
    const winner = both.find((r) => r.status === 200)!;
    expect(loser.body!.error).toMatchObject({ code: "invalid_transition" });
    expect(loser.body!.error.message).toStartWith(`cannot acknowledge alarm ${active.reactor_2}: it is already ACKNOWLEDGED (by ${winner.body!.acked_by} at `);

    // 3. The alarm cleared in Kafka, the read model has not caught up (projector stopped): the API's check passes, the evaluator refuses.
    await projector.stop();
    await send("reactor_3", 150, 2);
    await waitFor("the clear on alarms.raw", async () =>
      (await readTopic(kafkaConnection(), ns.physical("alarms.raw"), { idleMs: 300 })).some((r) => {
        const e = JSON.parse(r.value!) as AlarmEvent;
        return e.alarm_id === active.reactor_3 && e.event === "cleared";
      }),
    );
    expect((await get(active.reactor_3!)).state).toBe("ACTIVE");
    const late = await post(active.reactor_3!, "ack");
    expect(late.status).toBe(409);
    expect(late.body!.error).toEqual({ code: "invalid_transition", message: `cannot acknowledge alarm ${active.reactor_3}: it is CLEARED` });
    const [audit] = await listAudit(app.db.db, { resourceType: "alarm", resourceId: active.reactor_3 });
    expect(audit).toMatchObject({ actor: "operator", action: "alarm.acknowledge.refused", changes: { reason: { new: `cannot acknowledge alarm ${active.reactor_3}: it is CLEARED` }, state: { old: "CLEARED" } } });
    // The refusal is on the outcome topic too, kept with the alarm history.
    const kept = (await readTopic(kafkaConnection(), ns.physical(ALARM_COMMAND_OUTCOMES_TOPIC), { idleMs: 300 })).map((r) => decodeCommandOutcome(r.value));
    expect(kept.filter((o) => o?.outcome === "refused").map((o) => o!.alarm_id).sort()).toEqual([active.reactor_2!, active.reactor_3!].sort());
    projector = await startProjector();
    await waitFor("the clear in the read model", async () => (await get(active.reactor_3!)).state === "CLEARED", 30_000);

    // 4. Evaluator stopped: 202 with the command id; the command waits in Kafka and applies when it runs again.
    await evaluator.stop();
    const started = Date.now();
    const accepted = await post(active.reactor_4!, "ack");
    expect(accepted.status).toBe(202);
    expect(Date.now() - started).toBeGreaterThanOrEqual(4900);
    expect(accepted.body).toMatchObject({ status: "accepted", command: { action: "acknowledge", alarm_id: active.reactor_4 }, alarm: { state: "ACTIVE" } });
    expect(accepted.body!.command_id).toBe(accepted.body!.command.command_id);
    expect(accepted.body!.message).toContain("queued in Kafka");
    evaluator = await startEvaluator();
    await waitFor("the queued ack applied", async () => (await get(active.reactor_4!)).state === "ACKNOWLEDGED", 60_000);
    expect(await get(active.reactor_4!)).toMatchObject({ state: "ACKNOWLEDGED", sequence: 2 });
  }, 180_000);
});
