/**
 * Alarm rules from the API to a running evaluator over real Kafka: the publisher keeps
 * `_gateway.alarm_rules` equal to the DB, and the worker follows it without a restart.
 */
import { describe, expect, test } from "bun:test";
import { DEFAULT_RULE_SETTINGS } from "../../../test/support/alarm-rules.ts";
import { createPrefixedTopics, waitFor } from "../../../test/support/alerts.ts";
import { testApp } from "../../../test/support/app.ts";
import { kafkaConnection, kafkaUp } from "../../../test/support/services.ts";
import { kafkaTestScope } from "../../../test/support/kafka-scope.ts";
import { deleteAlarmRuleVersioned, upsertAlarmRuleVersioned } from "../../db/repo.ts";
import { ReliableProducer } from "../../kafka/producer.ts";
import { readTopic } from "../../kafka/reader.ts";
import { createLogger } from "../../log/logger.ts";
import type { AlarmEvent } from "../../streams/alarms/lifecycle.ts";
import { createAlarmWorker } from "../../streams/alarms/worker.ts";
import { topicNamespace } from "../../streams/namespace.ts";
import { ruleRecordValue } from "../../streams/alarms/rule-topic.ts";
import { AlarmRulePublisher } from "./publisher.ts";

const log = createLogger("test", "silent");
const EVALUATOR_TOPICS = ["telemetry.clean", "alarms.commands", "alarms.raw", "_gateway.alarms.changelog", "_gateway.alarm_rules"];

describe.skipIf(!kafkaUp)("alarm rules over Kafka", () => {
  const { admin, created, cleanup } = kafkaTestScope(30_000);

  const topicState = async (prefix: string) => {
    const latest = new Map<string, unknown>();
    for (const r of await readTopic(kafkaConnection(), `${prefix}_gateway.alarm_rules`, { idleMs: 500 })) latest.set(r.key!, r.value ? JSON.parse(r.value) : null);
    return latest;
  };

  test("the topic follows the DB: creates and changes sent once, a restart sends only what differs, a rule deleted meanwhile gets a tombstone, another gateway's rules stay", async () => {
    const prefix = `arp${Date.now().toString(36)}.`;
    created.push(...(await createPrefixedTopics(admin, prefix, ["_gateway.alarm_rules"])));
    const t = await testApp();
    cleanup.push(() => t.close());
    const gatewayId = t.config.gateway_id;
    const publisher = () => new AlarmRulePublisher({ db: () => t.db.db, connection: kafkaConnection(), gatewayId, log, namespace: topicNamespace(prefix) });
    const store = (id: string, value: number) => upsertAlarmRuleVersioned(t.db.db, { id, gatewayId, rule: { id, asset_id: "a", parameter: id, enabled: true, high: value } }, "test");

    const neighbour = new ReliableProducer(kafkaConnection(), "test-neighbour");
    await neighbour.send([{ topic: `${prefix}_gateway.alarm_rules`, key: "theirs", value: ruleRecordValue("another-gateway", { id: "theirs", asset_id: "b", parameter: "q", enabled: true, low: 1 }, 4) }]);
    await neighbour.close();
    await store("p1", 10);
    await store("p2", 20);
    const first = publisher();
    expect(await first.syncNow()).toBe(2);
    expect(await first.syncNow()).toBe(0);
    await store("p1", 11);
    expect(await first.syncNow()).toBe(1);
    await first.stop();

    // While no publisher runs: p2 deleted, p3 created. The next start sends exactly that.
    await deleteAlarmRuleVersioned(t.db.db, "p2", "test");
    await store("p3", 30);
    const second = publisher();
    expect(await second.syncNow()).toBe(2);
    // Someone else deletes p1 behind the publisher's back: the periodic sync reads the topic again and restores it.
    const outsider = new ReliableProducer(kafkaConnection(), "test-outsider");
    await outsider.send([{ topic: `${prefix}_gateway.alarm_rules`, key: "p1", value: null as unknown as string }]);
    await outsider.close();
    expect(await second.syncNow()).toBe(0);
    expect(await second.syncNow({ rereadTopic: true })).toBe(1);
    await second.stop();
    const state = await topicState(prefix);
    expect(state.get("p1")).toEqual({ gateway_id: gatewayId, version: 2, rule: { id: "p1", asset_id: "a", parameter: "p1", enabled: true, high: 11 } });
    expect(state.get("p2")).toBeNull();
    expect(state.get("p3")).toMatchObject({ version: 1, rule: { high: 30 } });
    expect(state.get("theirs")).toMatchObject({ gateway_id: "another-gateway", version: 4 });
  }, 60_000);

  test("a rule created through the API raises at a running evaluator; updating and deleting it change what it does, without a restart", async () => {
    const prefix = `are${Date.now().toString(36)}.`;
    const namespace = topicNamespace(prefix);
    created.push(...(await createPrefixedTopics(admin, prefix, EVALUATOR_TOPICS)));
    let publisher: AlarmRulePublisher | undefined;
    const t = await testApp({ alarmRulesChanged: () => void publisher?.syncNow() });
    cleanup.push(() => t.close());
    publisher = new AlarmRulePublisher({ db: () => t.db.db, connection: kafkaConnection(), gatewayId: t.config.gateway_id, log, namespace });
    cleanup.push(() => publisher!.stop());
    const worker = createAlarmWorker({ connection: kafkaConnection(), ruleDefaults: DEFAULT_RULE_SETTINGS, log, instanceId: "rules-e2e", namespace, tickMs: 500 });
    await worker.start();
    cleanup.push(() => worker.stop());
    const readings = new ReliableProducer(kafkaConnection(), "test-readings");
    cleanup.push(() => readings.close());

    let second = 0;
    const t0 = Date.now() - 3_600_000;
    const send = (value: number) => {
      const at = new Date(t0 + ++second * 1000).toISOString();
      const reading = { asset_id: "reactor_1", parameter: "pressure", value, unit: "psi", quality: "GOOD", classification: "TELEMETRY", timestamps: { device_time: at, gateway_time: at } };
      return readings.send([{ topic: `${prefix}telemetry.clean`, key: "reactor_1/pressure", value: JSON.stringify(reading) }]);
    };
    const alarmEvents = async () => (await readTopic(kafkaConnection(), `${prefix}alarms.raw`, { idleMs: 300 })).map((r) => JSON.parse(r.value!) as AlarmEvent);
    // The rule reaches the worker a moment after the API answers: keep sending until the effect shows.
    const sendUntil = (what: string, value: number, done: (events: AlarmEvent[]) => AlarmEvent | undefined) =>
      waitFor(what, async () => {
        await send(value);
        return done(await alarmEvents());
      }, 30_000, 300);

    await send(250);
    expect(await alarmEvents()).toEqual([]); // no rule yet
    const token = t.tokens.Engineer;
    const body = { id: "reactor_pressure", asset_id: "reactor_*", parameter: "pressure", unit: "psi", high: { value: 200, type: "overpressure", severity: "CRITICAL" } };
    expect((await t.request("POST", "/api/v1/alarm-rules", { token, body })).status).toBe(201);
    const raised = await sendUntil("a raise under the new rule", 250, (es) => es.find((e) => e.event === "raised"));
    expect(raised).toMatchObject({ rule_id: "reactor_pressure", type: "overpressure", severity: "CRITICAL", threshold: 200, value: 250, state: "ACTIVE" });

    // 250 is normal under a high limit of 300: the same alarm clears.
    const update = await t.request("PUT", "/api/v1/alarm-rules/reactor_pressure", { token, body: { ...body, high: { ...body.high, value: 300 } }, headers: { "if-match": '"1"' } });
    expect(update.status).toBe(200);
    const cleared = await sendUntil("a clear under the raised limit", 250, (es) => es.find((e) => e.event === "cleared"));
    expect(cleared).toMatchObject({ alarm_id: raised.alarm_id, cleared_value: 250 });
    await send(350);
    // alarms.raw has several partitions, so a read of it is not in time order: find the new alarm by its id.
    const reraised = await sendUntil("a raise above the new limit", 350, (es) => es.find((e) => e.event === "raised" && e.alarm_id !== raised.alarm_id));
    expect(reraised).toMatchObject({ threshold: 300, value: 350 });

    // Deleted: the open alarm clears at the tag's next reading, and nothing raises any more.
    expect((await t.request("DELETE", "/api/v1/alarm-rules/reactor_pressure", { token })).status).toBe(204);
    const removed = await sendUntil("a clear for the removed rule", 350, (es) => es.find((e) => e.event === "cleared" && e.alarm_id === reraised.alarm_id));
    expect(removed.clear_reason).toBe("rule_removed");
    const settled = (await alarmEvents()).length;
    await send(400);
    await Bun.sleep(1500);
    expect((await alarmEvents()).length).toBe(settled);
  }, 90_000);
});
