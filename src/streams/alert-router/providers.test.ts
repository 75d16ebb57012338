import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startFakeSaas, startPagerDutyFake, startSlackFake, startTwilioFake, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, type FakeSaas } from "../../../test/peers/saas/index.ts";
import { acknowledge, clearCondition, createAlarmStore, raiseAlarm, type AlarmEvent } from "../alarms/lifecycle.ts";
import type { Severity } from "../alarms/rules.ts";
import { loadRoutingConfig, type RetryPolicy, type RoutingConfig } from "./config.ts";
import { backoffMs, buildHttpRequest, classifyHttp, createSender, memoryDeliveredLog, PAGERDUTY_SEVERITY, retryAfterMs, type Sender } from "./providers.ts";
import { createRouterState, recordOutcome, routeAlarm, tickRouter, type Delivery } from "./routing.ts";

const T0 = Date.parse("2025-01-10T12:00:00.000Z");
const PD_KEY = "R0UTINGKEY0000000000000000000001";
const FAST: RetryPolicy = { max_attempts: 4, initial_backoff_ms: 10, max_backoff_ms: 40, multiplier: 2 };

let pd: FakeSaas;
let slack: FakeSaas & { webhookUrl: string };
let twilio: FakeSaas;
let hook: FakeSaas;
let config: RoutingConfig;

beforeAll(async () => {
  [pd, slack, twilio, hook] = await Promise.all([
    startPagerDutyFake({ routingKeys: [PD_KEY] }),
    startSlackFake(),
    startTwilioFake(),
    startFakeSaas("webhook", () => ({ status: 204 })),
  ]);
  config = loadRoutingConfig(
    {
      providers: {
        pagerduty: { base_url: "${PD_URL}" },
        slack: { webhook_url: "${SLACK_URL}" },
        twilio: { account_sid: TEST_ACCOUNT_SID, auth_token: "${secret:twilio_token}", from: "+15005550006", base_url: "${TWILIO_URL}" },
      },
      rules: [
        { condition: { severity: "CRITICAL" }, actions: [{ type: "pagerduty", integration_key: "${secret:pd_key}" }, { type: "sms", phone_numbers: ["+14155550100"] }] },
        { condition: { severity: "HIGH" }, actions: [{ type: "slack", channel: "#alerts", username: "gateway" }] },
        { condition: { severity: "LOW" }, actions: [{ type: "webhook", url: "${HOOK_URL}/alarms", headers: { authorization: "Bearer ${secret:hook_token}" } }] },
        { condition: { severity: "INFO" }, actions: [{ type: "pagerduty", integration_key: "not-a-known-key" }] },
      ],
    },
    {
      env: { PD_URL: pd.url, SLACK_URL: slack.webhookUrl, TWILIO_URL: twilio.url, HOOK_URL: hook.url },
      secret: (name) => ({ pd_key: PD_KEY, twilio_token: TEST_AUTH_TOKEN, hook_token: "h-123" })[name],
    },
  );
});

afterAll(async () => {
  await Promise.all([pd, slack, twilio, hook].map((f) => f?.stop()));
});

const store = createAlarmStore();
let n = 0;
function raise(severity: Severity, asset = "reactor_1"): AlarmEvent {
  n++;
  return raiseAlarm(
    store,
    { asset_id: asset, parameter: "pressure", type: "overpressure", severity, message: "Reactor pressure exceeded threshold", value: 210.5, threshold: 200, unit: "psi", condition: `${asset}/pressure|r${n}|high`, rule_id: `r${n}`, limit: "high" },
    T0 + n,
  );
}

function deliveriesFor(e: AlarmEvent, now = T0): Delivery[] {
  return routeAlarm(createRouterState(), config, e, now).deliveries;
}

function sender(extra: Parameters<typeof createSender>[0] = {}): Sender {
  return createSender({ retry: FAST, timeout_ms: 2000, sleep: () => Promise.resolve(), ...extra });
}

describe("request formats, checked by the fakes", () => {
  test("PagerDuty trigger and resolve (same dedup_key)", async () => {
    const e = raise("CRITICAL");
    const [d] = deliveriesFor(e);
    expect(await sender().attempt(d!)).toMatchObject({ status: "delivered" });
    const got = pd.received.at(-1)!;
    expect(got).toMatchObject({ method: "POST", path: "/v2/enqueue", status: 202 });
    expect(got.json).toEqual({
      routing_key: PD_KEY,
      event_action: "trigger",
      dedup_key: e.alarm_id,
      payload: {
        summary: "[CRITICAL] reactor_1 overpressure: Reactor pressure exceeded threshold (210.5 psi, limit 200 psi)",
        source: "reactor_1",
        severity: "critical",
        timestamp: e.raised_at,
        component: "pressure",
        class: "overpressure",
        custom_details: { alarm_id: e.alarm_id, state: "ACTIVE", message: "Reactor pressure exceeded threshold", value: 210.5, threshold: 200, unit: "psi", raised_at: e.raised_at, condition: e.condition },
      },
      client: "Industrial Data Gateway",
    });
    const cleared = clearCondition(store, e.condition, { at: T0 + 60_000 })!;
    const state = createRouterState();
    routeAlarm(state, config, e, T0);
    const [resolve] = routeAlarm(state, config, cleared, T0 + 60_000).deliveries;
    expect(await sender().attempt(resolve!)).toMatchObject({ status: "delivered" });
    expect(pd.received.at(-1)!.json).toEqual({ routing_key: PD_KEY, event_action: "resolve", dedup_key: e.alarm_id });
  });

  test("PagerDuty acknowledge on an operator ack", async () => {
    const e = raise("CRITICAL");
    const state = createRouterState();
    routeAlarm(state, config, e, T0);
    const r = acknowledge(store, e.alarm_id, "alice", T0 + 5000);
    if (!r.ok) throw r.error;
    const [ack] = routeAlarm(state, config, r.event, T0 + 5000).deliveries;
    expect(await sender().attempt(ack!)).toMatchObject({ status: "delivered" });
    expect(pd.received.at(-1)!.json).toEqual({ routing_key: PD_KEY, event_action: "acknowledge", dedup_key: e.alarm_id });
  });

  test.each(Object.entries(PAGERDUTY_SEVERITY))("severity %s → %s", (ours, theirs) => {
    const d = { ...deliveriesFor(raise("CRITICAL"))[0]! };
    if (d.kind !== "alarm") throw new Error("alarm expected");
    d.alarm = { ...d.alarm, severity: ours as Severity };
    expect((JSON.parse(buildHttpRequest(d)!.body) as { payload: { severity: string } }).payload.severity).toBe(theirs);
  });

  test("PagerDuty rejects an unknown routing key: 400 → failed at once", async () => {
    const [d] = deliveriesFor(raise("INFO"));
    const outcome = await sender().attempt(d!);
    expect(outcome).toEqual({ status: "failed", reason: 'HTTP 400: {"status":"invalid event","message":"Event object is invalid","errors":["Invalid routing key"]}' });
  });

  test("Slack incoming webhook", async () => {
    const e = raise("HIGH");
    const [d] = deliveriesFor(e);
    expect(await sender().attempt(d!)).toEqual({ status: "delivered", detail: "HTTP 200: ok" });
    const got = slack.received.at(-1)!;
    expect(got.headers["content-type"]).toBe("application/json");
    expect(got.json).toMatchObject({
      text: "[HIGH] reactor_1 overpressure: Reactor pressure exceeded threshold (210.5 psi, limit 200 psi)",
      channel: "#alerts",
      username: "gateway",
      blocks: [{ type: "section", text: { type: "mrkdwn" } }, { type: "context" }],
    });
  });

  test("Slack: a wrong hook path is 404 no_service → failed", async () => {
    const [d] = deliveriesFor(raise("HIGH"));
    const bad = { ...d!, action: { ...d!.action, webhook_url: `${slack.url}/services/nope` } } as Delivery;
    expect(await sender().attempt(bad)).toEqual({ status: "failed", reason: "HTTP 404: no_service" });
  });

  test("Twilio SMS: form fields and basic auth", async () => {
    const [, d] = deliveriesFor(raise("CRITICAL"));
    expect(d!.action.type).toBe("sms");
    expect(await sender().attempt(d!)).toMatchObject({ status: "delivered" });
    const got = twilio.received.at(-1)!;
    expect(got.path).toBe(`/2010-04-01/Accounts/${TEST_ACCOUNT_SID}/Messages.json`);
    expect(got.form).toEqual({ To: "+14155550100", From: "+15005550006", Body: "[CRITICAL] reactor_1 overpressure: Reactor pressure exceeded threshold (210.5 psi, limit 200 psi)" });
    expect(got.status).toBe(201);
  });

  test("Twilio: a bad token is 401 → failed", async () => {
    const [, d] = deliveriesFor(raise("CRITICAL"));
    const bad = { ...d!, action: { ...d!.action, auth_token: "wrong" } } as Delivery;
    const outcome = await sender().attempt(bad);
    expect(outcome.status).toBe("failed");
    expect((outcome as { reason: string }).reason).toStartWith('HTTP 401: {"code":20003,"message":"Authenticate"');
  });

  test("generic webhook: JSON body, configured headers, delivery id header", async () => {
    const e = raise("LOW");
    const [d] = deliveriesFor(e);
    expect(await sender().attempt(d!)).toMatchObject({ status: "delivered" });
    const got = hook.received.at(-1)!;
    expect(got.path).toBe("/alarms");
    expect(got.headers.authorization).toBe("Bearer h-123");
    expect(got.headers["x-delivery-id"]).toBe(d!.delivery_id);
    expect(got.json).toEqual({ delivery_id: d!.delivery_id, kind: "alarm", event: "raised", escalation_level: null, alarm: e });
  });
});

describe("retries", () => {
  test.each([["503"], ["refused"]] as const)("provider down (%s), then back: retried until delivered", async (mode) => {
    const [d] = deliveriesFor(raise("HIGH"));
    const before = slack.accepted().length;
    await slack.down(mode);
    const sleeps: number[] = [];
    const s = sender({
      sleep: async (ms) => {
        sleeps.push(ms);
        if (sleeps.length === 2) await slack.up();
      },
    });
    const { outcome, attempts } = await s.deliver(d!);
    expect(outcome).toMatchObject({ status: "delivered" });
    expect(attempts).toBe(3);
    expect(sleeps).toEqual([10, 20]);
    expect(slack.accepted().length).toBe(before + 1);
  });

  test("still down after the budget: failed, naming the attempts", async () => {
    const [d] = deliveriesFor(raise("HIGH"));
    await slack.down("503");
    try {
      const { outcome, attempts } = await sender().deliver(d!);
      expect(attempts).toBe(4);
      expect(outcome).toEqual({ status: "failed", reason: "gave up after 4 attempts: HTTP 503: Service Unavailable" });
    } finally {
      await slack.up();
    }
  });

  test("429 honours Retry-After (capped)", async () => {
    const [d] = deliveriesFor(raise("HIGH"));
    slack.script({ status: 429, body: "rate_limited", headers: { "retry-after": "7" } });
    const outcome = await createSender({ retry: { ...FAST, max_backoff_ms: 60_000 } }).attempt(d!);
    expect(outcome).toEqual({ status: "retry", after_ms: 7000, reason: "HTTP 429: rate_limited" });
    slack.script({ status: 429, body: "rate_limited", headers: { "retry-after": "7" } });
    expect(await sender().attempt(d!)).toMatchObject({ status: "retry", after_ms: 40 });
  });

  test("a timeout is retried", async () => {
    const [d] = deliveriesFor(raise("HIGH"));
    const hanging = (_url: string, init: RequestInit) =>
      new Promise<Response>((_, reject) => init.signal!.addEventListener("abort", () => reject((init.signal as AbortSignal).reason)));
    const outcome = await createSender({ fetch: hanging, timeout_ms: 20, retry: FAST }).attempt(d!);
    expect(outcome).toEqual({ status: "retry", after_ms: 10, reason: "slack unreachable: timed out after 20 ms" });
  });

  test("an id already delivered is not sent again", async () => {
    const [d] = deliveriesFor(raise("HIGH"));
    const log = memoryDeliveredLog();
    const s = sender({ delivered: log });
    const before = slack.received.length;
    await s.attempt(d!);
    expect(await s.attempt(d!)).toEqual({ status: "delivered", detail: "already delivered" });
    expect(slack.received.length).toBe(before + 1);
  });

  test.each([
    [200, 1, "delivered"],
    [202, 1, "delivered"],
    [400, 1, "failed"],
    [401, 1, "failed"],
    [404, 1, "failed"],
    [408, 1, "retry"],
    [429, 1, "retry"],
    [500, 1, "retry"],
    [503, 3, "retry"],
    [503, 4, "failed"],
  ] as const)("HTTP %d (attempt %d of 4) → %s", (status, attempt, want) => {
    expect(classifyHttp(status, "", null, attempt, FAST).status).toBe(want);
  });

  test("backoff doubles and is capped; Retry-After takes seconds or a date", () => {
    expect([1, 2, 3, 4, 5].map((a) => backoffMs(a, FAST))).toEqual([10, 20, 40, 40, 40]);
    expect(retryAfterMs("12", T0)).toBe(12_000);
    expect(retryAfterMs(new Date(T0 + 5000).toUTCString(), T0)).toBe(5000);
    expect(retryAfterMs("soon", T0)).toBeNull();
  });
});

test("end to end: router + sender, PagerDuty down then back, retry from the router state", async () => {
  const state = createRouterState();
  const e = raise("CRITICAL", "reactor_9");
  const s = sender();
  await pd.down("refused");
  const first = routeAlarm(state, config, e, T0).deliveries;
  let now = T0;
  const results = await Promise.all(first.map((d) => s.attempt(d)));
  results.forEach((o, i) => recordOutcome(state, config, first[i]!.delivery_id, o, now));
  const pdId = first.find((d) => d.action.type === "pagerduty")!.delivery_id;
  expect(state.pending[pdId]).toMatchObject({ attempt: 2 });
  await pd.up();
  now += 1000;
  const again = tickRouter(state, config, now).deliveries;
  expect(again.map((d) => [d.delivery_id, d.attempt])).toEqual([[pdId, 2]]);
  recordOutcome(state, config, pdId, await s.attempt(again[0]!), now);
  expect(state.pending).toEqual({});
  expect(pd.accepted().filter((r) => (r.json as { dedup_key?: string }).dedup_key === e.alarm_id)).toHaveLength(1);
});

test("summary lines per transition", async () => {
  const { summaryLine } = await import("./providers.ts");
  const e = raise("CRITICAL", "reactor_5");
  expect(summaryLine(e)).toBe("[CRITICAL] reactor_5 overpressure: Reactor pressure exceeded threshold (210.5 psi, limit 200 psi)");
  expect(summaryLine({ ...e, event: "acknowledged", event_by: "alice" })).toBe("[ACKNOWLEDGED by alice] reactor_5 overpressure: Reactor pressure exceeded threshold (210.5 psi, limit 200 psi)");
  expect(summaryLine({ ...e, event: "cleared", cleared_value: 190 })).toBe("[CLEARED] reactor_5 overpressure: Reactor pressure exceeded threshold (back to 190 psi, limit 200 psi)");
  expect(summaryLine({ ...e, event: "escalated", escalation_level: 2 })).toBe("[ESCALATED L2 CRITICAL] reactor_5 overpressure: Reactor pressure exceeded threshold (210.5 psi, limit 200 psi)");
});
