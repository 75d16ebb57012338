import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { aiosmtpdAvailable, aiosmtpdMissing, startSmtpSink, type SmtpSink } from "../../../test/peers/saas/smtp.ts";
import { createAlarmStore, raiseAlarm, type AlarmEvent } from "../alarms/lifecycle.ts";
import type { Severity } from "../alarms/rules.ts";
import { loadRoutingConfig, type RoutingConfig } from "./config.ts";
import { createSender, type Sender } from "./providers.ts";
import { classifySmtpError } from "./smtp.ts";
import { createRouterState, routeAlarm, tickRouter, type Delivery } from "./routing.ts";

const T0 = Date.parse("2025-01-10T12:00:00.000Z");
const MIN = 60_000;

test.each([
  ["421 service not available → retry", { responseCode: 421, response: "421 4.3.2 Service not available" }, "retry"],
  ["451 try later → retry", { responseCode: 451, response: "451 try later" }, "retry"],
  ["550 no such user → failed", { responseCode: 550, response: "550 5.1.1 no such user" }, "failed"],
  ["535 auth failed → failed", { responseCode: 535, code: "EAUTH", response: "535 auth failed" }, "failed"],
  ["connection refused → retry", { code: "ECONNECTION", message: "connect ECONNREFUSED" }, "retry"],
  ["greeting timeout → retry", { code: "ETIMEDOUT", message: "Greeting never received" }, "retry"],
  ["no recipients → failed", { code: "EENVELOPE", message: "No recipients defined" }, "failed"],
] as const)("SMTP %s", (_, error, want) => {
  expect(classifySmtpError(error).status).toBe(want);
});

describe.skipIf(!aiosmtpdAvailable)(`e-mail into aiosmtpd${aiosmtpdMissing ? ` (skipped: ${aiosmtpdMissing})` : ""}`, () => {
  let sink: SmtpSink;
  let config: RoutingConfig;
  let sender: Sender;

  beforeAll(async () => {
    sink = await startSmtpSink();
    config = loadRoutingConfig(
      {
        retry: { max_attempts: 3, initial_backoff: "10ms", max_backoff: "50ms" },
        providers: { smtp: { host: sink.host, port: sink.port, from: "gateway@plant.example" } },
        rules: [
          { condition: { severity: ["MEDIUM", "LOW"] }, actions: [{ type: "email", recipients: ["ops@example.com", "shift@example.com"], digest_interval: "15min" }] },
          { condition: { severity: "HIGH" }, actions: [{ type: "email", recipients: ["oncall@example.com"], subject_prefix: "[PLANT]" }] },
        ],
      },
      { env: {} },
    );
    sender = createSender({ retry: config.retry, timeout_ms: 5000, sleep: () => Promise.resolve() });
  });

  afterAll(async () => {
    await sender?.close();
    await sink?.stop();
  });

  const store = createAlarmStore();
  let n = 0;
  const raise = (asset: string, type: string, severity: Severity, at: number, message: string, value: number, threshold: number): AlarmEvent =>
    raiseAlarm(store, { asset_id: asset, parameter: "p", type, severity, message, value, threshold, unit: "bar", condition: `${asset}/p|r${++n}|x`, rule_id: "r", limit: "high" }, at);

  test("a digest lists every alarm of the window", async () => {
    const state = createRouterState();
    const alarms = [
      raise("pump_1", "low_pressure", "MEDIUM", T0 + 1 * MIN, "Pump 1 suction pressure low", 0.8, 1),
      raise("pump_2", "low_flow", "LOW", T0 + 4 * MIN, "Pump 2 flow low", 12, 15),
      raise("tank_3", "high_level", "MEDIUM", T0 + 9 * MIN, "Tank 3 level high — check overflow", 96, 95),
    ];
    for (const a of alarms) expect(routeAlarm(state, config, a, Date.parse(a.raised_at)).deliveries).toEqual([]);
    const [digest] = tickRouter(state, config, T0 + 15 * MIN).deliveries;
    expect(digest?.kind).toBe("digest");
    expect(await sender.attempt(digest!)).toMatchObject({ status: "delivered" });

    const [mail] = await sink.waitFor(1);
    expect(mail!.from).toBe("gateway@plant.example");
    expect(mail!.to).toEqual(["ops@example.com", "shift@example.com"]);
    expect(mail!.subject).toBe("[alarm] digest: 3 alarms (2 MEDIUM, 1 LOW), 12:00–12:15 UTC");
    expect(mail!.message_id).toBe(`<${digest!.delivery_id}@industrial-data-gateway>`);
    const text = mail!.text;
    expect(text).toContain("Alarm digest 2025-01-10T12:00:00.000Z – 2025-01-10T12:15:00.000Z");
    expect(text).toContain("3 alarms: 2 MEDIUM, 1 LOW");
    for (const a of alarms) {
      expect(text).toContain(a.message);
      expect(text).toContain(a.alarm_id);
      expect(text).toContain(`${a.severity.padEnd(8)} ${a.asset_id} ${a.type} (ACTIVE, raised ${a.raised_at})`);
    }
    expect(text).toContain("value 0.8 bar, limit 1 bar");
    // in raise order
    expect(text.indexOf("pump_1")).toBeLessThan(text.indexOf("pump_2"));
    expect(text.indexOf("pump_2")).toBeLessThan(text.indexOf("tank_3"));
  });

  test("a single alarm e-mail; server down then back: retried until delivered", async () => {
    const before = sink.messages().length;
    const a = raise("reactor_1", "overpressure", "HIGH", T0, "Reactor pressure exceeded threshold", 210.5, 200);
    const [d] = routeAlarm(createRouterState(), config, a, T0).deliveries as [Delivery];
    await sink.down();
    const s = createSender({ retry: config.retry, timeout_ms: 5000, sleep: () => Promise.resolve() });
    try {
      const first = await s.attempt(d);
      expect(first.status).toBe("retry");
      await sink.up();
      const { outcome, attempts } = await s.deliver({ ...d, attempt: 2 });
      expect(outcome.status).toBe("delivered");
      expect(attempts).toBe(2);
    } finally {
      await s.close();
    }
    const mails = await sink.waitFor(before + 1);
    const mail = mails.find((m) => m.message_id === `<${d.delivery_id}@industrial-data-gateway>`)!;
    expect(mail.subject).toBe("[PLANT] [HIGH] reactor_1 overpressure: Reactor pressure exceeded threshold");
    expect(mail.to).toEqual(["oncall@example.com"]);
    expect(mail.text).toContain("[HIGH] reactor_1 overpressure: Reactor pressure exceeded threshold (210.5 bar, limit 200 bar)");
  });

  test("still down after the budget: failed", async () => {
    const a = raise("reactor_2", "overpressure", "HIGH", T0, "x", 1, 0);
    const [d] = routeAlarm(createRouterState(), config, a, T0).deliveries as [Delivery];
    await sink.down();
    try {
      const { outcome, attempts } = await sender.deliver(d);
      expect(attempts).toBe(3);
      expect(outcome.status).toBe("failed");
      expect((outcome as { reason: string }).reason).toStartWith("gave up after 3 attempts: SMTP");
    } finally {
      await sink.up();
    }
  });
});
