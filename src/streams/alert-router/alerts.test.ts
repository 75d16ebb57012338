/**
 * Alert routing against real Kafka and the fake SaaS peers (test/peers/saas): the whole path from a
 * reading to a PagerDuty page and an operator's ack through the API; escalation and digests on an
 * injected clock; a provider that is down, then back; a retry budget that runs out.
 */
import { describe, expect, test } from "bun:test";
import { Registry } from "prom-client";
import { DEFAULT_RULE_SETTINGS, publishAlarmRules } from "../../../test/support/alarm-rules.ts";
import { alarmsTestApp } from "../../../test/support/alarms-app.ts";
import { ALERT_TOPICS, createPrefixedTopics, Plant, pdBrief, pdEvents, readJson, sendAlarms, waitFor } from "../../../test/support/alerts.ts";
import { kafkaConnection, kafkaUp } from "../../../test/support/services.ts";
import { kafkaTestScope } from "../../../test/support/kafka-scope.ts";
import { startFakeSaas, startPagerDutyFake } from "../../../test/peers/saas/index.ts";
import { aiosmtpdAvailable, aiosmtpdMissing, startSmtpSink, type SmtpSink } from "../../../test/peers/saas/smtp.ts";
import { AlarmProjector } from "../../api/alarms/projector.ts";
import { ReliableProducer } from "../../kafka/producer.ts";
import { createLogger } from "../../log/logger.ts";
import type { AlarmEvent } from "../alarms/lifecycle.ts";
import { ALARM_COMMANDS_TOPIC, createAlarmWorker } from "../alarms/worker.ts";
import { topicNamespace } from "../namespace.ts";
import { loadRules } from "../quality/rules.ts";
import { createQualityWorker } from "../quality/worker.ts";
import { loadRoutingConfig } from "./config.ts";
import type { DeadLetter } from "./routing.ts";
import { AlertSender } from "./sender.ts";
import { createAlertRouterWorker } from "./worker.ts";

const log = createLogger("test", "silent");
const MIN = 60_000;

describe.skipIf(!kafkaUp)("alert routing end to end", () => {
  const { admin, created, cleanup } = kafkaTestScope(30_000);
  const started = async <T extends { start(): Promise<void>; stop(): Promise<void> }>(w: T): Promise<T> => {
    await w.start();
    cleanup.push(() => w.stop());
    return w;
  };

  test("reading over the limit → alarm → PagerDuty trigger; API ack → acknowledge; clear → resolve; a repeat within the dedup window is held and never sent", async () => {
    const prefix = `ae${Date.now().toString(36)}.`;
    const ns = topicNamespace(prefix);
    created.push(...(await createPrefixedTopics(admin, prefix)));
    const pd = await startPagerDutyFake({ routingKeys: ["pd-ops"] });
    cleanup.push(() => pd.stop());
    const routing = loadRoutingConfig({ providers: { pagerduty: { base_url: pd.url } }, rules: [{ condition: { severity: "CRITICAL" }, actions: [{ type: "pagerduty", integration_key: "pd-ops" }] }] }, { env: {} });
    await publishAlarmRules(prefix, [{ asset_id: "reactor_*", parameter: "pressure", unit: "psi", high: { value: 200, type: "overpressure", severity: "CRITICAL" } }]);
    const common = { connection: kafkaConnection(), log, instanceId: "e2e", namespace: ns };
    // The real chain: evaluator → alarms.raw → quality validator → alarms.clean → router → jobs → sender.
    await started(createQualityWorker({ ...common, rules: loadRules({}) }));
    await started(createAlarmWorker({ ...common, ruleDefaults: DEFAULT_RULE_SETTINGS, tickMs: 500 }));
    await started(createAlertRouterWorker({ ...common, config: routing, tickMs: 300 }));
    await started(new AlertSender({ ...common, config: routing }));
    const commands = new ReliableProducer(kafkaConnection(), "test-commands");
    cleanup.push(() => commands.close());
    const app = await alarmsTestApp({ service: { publisher: { publish: (key, command) => commands.send([{ topic: ns.physical(ALARM_COMMANDS_TOPIC), key, value: JSON.stringify(command) }]) } } });
    cleanup.push(() => app.close());
    await started(new AlarmProjector({ connection: kafkaConnection(), db: () => app.db.db, log, gatewayId: "e2e", namespace: ns }));

    const readings = new ReliableProducer(kafkaConnection(), "test-readings");
    cleanup.push(() => readings.close());
    const t0 = Date.now() - 10 * MIN;
    const send = (value: number, s: number) => {
      const at = new Date(t0 + s * 1000).toISOString();
      const r = { asset_id: "reactor_1", parameter: "pressure", value, unit: "psi", quality: "GOOD", classification: "TELEMETRY", timestamps: { device_time: at, gateway_time: at, kafka_time: null } };
      return readings.send([{ topic: `${prefix}telemetry.clean`, key: "reactor_1/pressure", value: JSON.stringify(r) }]);
    };
    const alarms = async (state?: string) => (await app.request("GET", `/api/v1/alarms${state ? `?state=${state}` : ""}`, { token: app.tokens.Operator })).body!.items as { alarm_id: string; state: string }[];

    await send(150, 0);
    await send(210.5, 1);
    const trigger = await waitFor("a PagerDuty trigger", () => pdEvents(pd).find((e) => e.event_action === "trigger"), 45_000);
    expect(trigger).toMatchObject({ routing_key: "pd-ops", payload: { severity: "critical" } });
    expect(trigger.payload!.summary).toContain("[CRITICAL] reactor_1 overpressure");
    const [active] = await waitFor("the alarm in the read model", async () => (await alarms("ACTIVE")).length === 1 && alarms("ACTIVE"));
    expect(active!.alarm_id).toBe(trigger.dedup_key);

    const ack = await app.request("POST", `/api/v1/alarms/${active!.alarm_id}/ack`, { token: app.tokens.Operator, body: { note: "checking the relief valve" } });
    expect(ack.status).toBe(200);
    expect(ack.body).toMatchObject({ state: "ACKNOWLEDGED", acked_by: "operator", sequence: 2 });
    await waitFor("PagerDuty acknowledge", () => pdEvents(pd).some((e) => e.event_action === "acknowledge"));

    await send(150, 2);
    await waitFor("PagerDuty resolve", () => pdEvents(pd).some((e) => e.event_action === "resolve"));
    await waitFor("CLEARED in the read model", async () => (await alarms("CLEARED")).length === 1);
    const late = await app.request("POST", `/api/v1/alarms/${active!.alarm_id}/ack`, { token: app.tokens.Operator });
    expect(late.status).toBe(409);
    expect(late.body!.error.message).toContain("it is CLEARED");

    // Again over the limit within the dedup window: a new alarm, held; it clears before the window ends, so it is never sent.
    await send(220, 3);
    const [second] = await waitFor("the second alarm", async () => (await alarms("ACTIVE")).length === 1 && alarms("ACTIVE"));
    await send(150, 4);
    await waitFor("second alarm CLEARED", async () => (await alarms("CLEARED")).length === 2);
    await Bun.sleep(1500);
    const id = active!.alarm_id.slice(0, 8);
    expect(pdBrief(pd)).toEqual([`pd-ops:trigger:${id}`, `pd-ops:acknowledge:${id}`, `pd-ops:resolve:${id}`]);
    expect(pdEvents(pd).some((e) => e.dedup_key === second!.alarm_id)).toBe(false);
  }, 85_000);

  test(`escalation and e-mail digests on the router's clock${aiosmtpdMissing ? ` (digest part skipped: ${aiosmtpdMissing})` : ""}`, async () => {
    const prefix = `ax${Date.now().toString(36)}.`;
    created.push(...(await createPrefixedTopics(admin, prefix, ALERT_TOPICS)));
    const pd = await startPagerDutyFake();
    cleanup.push(() => pd.stop());
    let smtp: SmtpSink | undefined;
    if (aiosmtpdAvailable) {
      smtp = await startSmtpSink();
      cleanup.push(() => smtp!.stop());
    }
    const routing = loadRoutingConfig(
      {
        providers: { pagerduty: { base_url: pd.url }, ...(smtp ? { smtp: { host: smtp.host, port: smtp.port, from: "gateway@plant.example" } } : {}) },
        rules: [
          { condition: { severity: "CRITICAL" }, actions: [{ type: "pagerduty", integration_key: "pd-ops" }], escalation: [{ after: "15min", actions: [{ type: "pagerduty", integration_key: "pd-lead" }] }] },
          ...(smtp ? [{ condition: { severity: ["MEDIUM", "LOW"] }, actions: [{ type: "email", recipients: ["ops@example.com"], digest_interval: "15min" }] }] : []),
        ],
      },
      { env: {} },
    );
    // A quarter-hour boundary plus a minute: the digest window is [B, B+15min).
    const boundary = Math.floor(Date.now() / (15 * MIN)) * 15 * MIN;
    let clock = boundary + MIN;
    const common = { connection: kafkaConnection(), log, instanceId: "x", namespace: topicNamespace(prefix) };
    await started(createAlertRouterWorker({ ...common, config: routing, now: () => clock, tickMs: 200 }));
    await started(new AlertSender({ ...common, config: routing }));

    const plant = new Plant();
    const x = plant.raise("pump_1", "overpressure", "CRITICAL", clock);
    // A device's own alarm record (the seed's shape: no event, no sequence) is not routed, and does not stop the router.
    const foreign = { alarm_id: "plc-77", asset_id: "pump_9", type: "high", severity: "CRITICAL", state: "ACTIVE", raised_at: new Date(clock).toISOString() } as unknown as AlarmEvent;
    await sendAlarms(prefix, [foreign, x, ...(smtp ? [plant.raise("tank_1", "low_level", "MEDIUM", clock), plant.raise("tank_2", "low_level", "LOW", clock)] : [])]);
    await waitFor("the page", () => pdEvents(pd).length === 1);
    await Bun.sleep(500);
    expect(smtp?.messages() ?? []).toHaveLength(0); // digest window still open

    clock += 16 * MIN;
    await waitFor("the escalation page", () => pdEvents(pd).some((e) => e.routing_key === "pd-lead"), 10_000);
    const escalated = pdEvents(pd).find((e) => e.routing_key === "pd-lead")!;
    expect(escalated).toMatchObject({ event_action: "trigger", dedup_key: x.alarm_id });
    expect(escalated.payload!.summary).toContain("[ESCALATED L1 CRITICAL] pump_1 overpressure");
    const note = await waitFor("the escalated event on alarms.raw", async () => (await readJson<AlarmEvent>(`${prefix}alarms.raw`)).find((e) => e.event === "escalated"));
    expect(note).toMatchObject({ alarm_id: x.alarm_id, escalation_level: 1, state: "ACTIVE", event_at: new Date(clock - 16 * MIN + 15 * MIN).toISOString() });
    if (smtp) {
      const [mail] = await smtp.waitFor(1, 15_000);
      expect(mail!.to).toEqual(["ops@example.com"]);
      expect(mail!.subject).toMatch(/^\[alarm\] digest: 2 alarms \((1 MEDIUM, 1 LOW|1 LOW, 1 MEDIUM)\), \d\d:\d\d–\d\d:\d\d UTC$/); // arrival order: two partitions
      expect(mail!.text).toContain("tank_1 low_level");
      expect(mail!.text).toContain("tank_2 low_level");
    }

    // The ack reaches everyone who was paged: the service and the escalation service.
    await sendAlarms(prefix, [plant.ack(x, clock)]);
    await waitFor("acknowledge to both services", () => pdEvents(pd).filter((e) => e.event_action === "acknowledge").length === 2);
    await Bun.sleep(500);
    expect(pdBrief(pd).sort()).toEqual([`pd-lead:acknowledge:${x.alarm_id.slice(0, 8)}`, `pd-lead:trigger:${x.alarm_id.slice(0, 8)}`, `pd-ops:acknowledge:${x.alarm_id.slice(0, 8)}`, `pd-ops:trigger:${x.alarm_id.slice(0, 8)}`]);
    expect(smtp?.messages() ?? []).toHaveLength(smtp ? 1 : 0);
  }, 60_000);

  test("offline: deliveries wait while the provider is unreachable and go out once when it returns; past the retry budget → DLQ and /metrics", async () => {
    const prefix = `ao${Date.now().toString(36)}.`;
    created.push(...(await createPrefixedTopics(admin, prefix, ALERT_TOPICS)));
    const pd = await startPagerDutyFake();
    const hook = await startFakeSaas("webhook", () => ({ status: 204 }));
    cleanup.push(() => pd.stop(), () => hook.stop());
    const routing = loadRoutingConfig(
      {
        retry: { max_attempts: 2, initial_backoff: "100ms", max_backoff: "300ms" },
        providers: { pagerduty: { base_url: pd.url } },
        rules: [
          { condition: { severity: "CRITICAL" }, actions: [{ type: "pagerduty", integration_key: "pd-ops" }] },
          { condition: { severity: "HIGH" }, actions: [{ type: "webhook", url: `${hook.url}/alarms` }] },
        ],
      },
      { env: {} },
    );
    const metrics = new Registry();
    const common = { connection: kafkaConnection(), log, instanceId: "o", namespace: topicNamespace(prefix), metrics };
    await started(createAlertRouterWorker({ ...common, config: routing, tickMs: 100 }));
    await started(new AlertSender({ ...common, config: routing, retryBudgetMs: 4000 }));
    const metric = async (name: string, labels: Record<string, string>) =>
      ((await metrics.getSingleMetric(name)?.get())?.values ?? []).filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((n, v) => n + v.value, 0);

    await pd.down("refused");
    await hook.down("refused");
    const plant = new Plant();
    const y = plant.raise("pump_2", "overpressure", "CRITICAL", Date.now());
    const w = plant.raise("pump_3", "overtemp", "HIGH", Date.now());
    await sendAlarms(prefix, [y, w]);
    // More tries than retry.max_attempts: an unreachable provider is bounded by time, not by count.
    await waitFor("3 failed tries of the page", async () => (await metric("gateway_alert_delivery_attempts_total", { action_type: "pagerduty", outcome: "retry" })) >= 3, 15_000);
    expect(pd.received).toHaveLength(0);
    await pd.up();
    await waitFor("the page, once the link is back", () => pd.accepted().length === 1, 10_000);

    const [dead] = await waitFor("a dead letter", async () => {
      const d = await readJson<DeadLetter>(`${prefix}dlq.alert_deliveries`);
      return d.length > 0 && d;
    }, 15_000);
    expect(dead).toMatchObject({ action_type: "webhook", kind: "alarm", event: "raised", alarm_ids: [w.alarm_id] });
    expect(dead!.reason).toMatch(/gave up after \d+ attempts over \d+s \(retry budget 4s\): webhook unreachable/);
    expect(await metric("gateway_alert_dead_letters_total", { action_type: "webhook" })).toBe(1);
    expect(await metrics.metrics()).toContain('gateway_alert_dead_letters_total{action_type="webhook"} 1');
    await Bun.sleep(1000);
    expect(pdEvents(pd).map((e) => `${e.event_action}:${e.dedup_key}`)).toEqual([`trigger:${y.alarm_id}`]);
    expect(hook.received).toHaveLength(0);
  }, 60_000);
});
