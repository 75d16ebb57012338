import { describe, expect, test } from "bun:test";
import { acknowledge, clearCondition, createAlarmStore, raiseAlarm, suppress, unsuppress, type AlarmEvent, type AlarmStore } from "../alarms/lifecycle.ts";
import type { Severity } from "../alarms/rules.ts";
import { loadRoutingConfig, type RoutingConfig } from "./config.ts";
import {
  actionFor,
  createRouterState,
  matchingRules,
  nextRouterDeadline,
  pendingDeliveries,
  recordOutcome,
  restoreRouter,
  restoreRouterFromChanges,
  routeAlarm,
  snapshotRouter,
  takeRouterChanges,
  tickRouter,
  type Delivery,
  type RouterOutput,
  type RouterState,
} from "./routing.ts";

const T0 = Date.parse("2025-01-10T12:00:00.000Z");
const MIN = 60_000;

const config = loadRoutingConfig(
  {
    providers: {
      pagerduty: { base_url: "http://pd.test" },
      slack: { webhook_url: "http://slack.test/hook" },
      twilio: { account_sid: "AC1", auth_token: "t", from: "+15005550006", base_url: "http://twilio.test" },
      smtp: { host: "localhost", from: "gw@plant.example" },
    },
    rules: [
      {
        condition: { severity: "CRITICAL" },
        actions: [
          { type: "pagerduty", integration_key: "pd-ops" },
          { type: "sms", phone_numbers: ["+14155550100", "+14155550101"] },
        ],
        escalation: [
          { after: "15min", actions: [{ type: "pagerduty", integration_key: "pd-lead" }] },
          { after: "30min", actions: [{ type: "sms", phone_numbers: ["+14155550199"] }] },
        ],
      },
      { condition: { severity: "HIGH" }, actions: [{ type: "slack", channel: "#alerts" }] },
      { condition: { severity: ["MEDIUM", "LOW"] }, actions: [{ type: "email", recipients: ["ops@example.com"], digest_interval: "15min" }] },
      { name: "reactors", condition: { asset_id: "reactor_*", type: ["overpressure", "over*"] }, actions: [{ type: "webhook", url: "http://hooks.test/reactors" }] },
      { condition: { severity: "LOW", parameter: "vibration" }, actions: [{ type: "email", recipients: ["OPS@example.com"], digest_interval: "15min" }] },
    ],
  },
  { env: {} },
);

/** Alarm events made by the real lifecycle. */
class Plant {
  store: AlarmStore = createAlarmStore();
  raise(asset: string, type: string, severity: Severity, at: number, parameter = "pressure"): AlarmEvent {
    return raiseAlarm(
      this.store,
      { asset_id: asset, parameter, type, severity, message: `${asset} ${type}`, value: 210, threshold: 200, unit: "psi", condition: `${asset}/${parameter}|r|${type}`, rule_id: "r", limit: "high" },
      at,
    );
  }
  clear(e: AlarmEvent, at: number): AlarmEvent {
    return clearCondition(this.store, e.condition, { at, value: 190 })!;
  }
  ack(e: AlarmEvent, at: number, by = "alice"): AlarmEvent {
    const r = acknowledge(this.store, e.alarm_id, by, at);
    if (!r.ok) throw r.error;
    return r.event;
  }
  suppress(e: AlarmEvent, at: number, until?: number): AlarmEvent {
    const r = suppress(this.store, e.alarm_id, "bob", at, until);
    if (!r.ok) throw r.error;
    return r.event;
  }
  unsuppress(e: AlarmEvent, at: number): AlarmEvent {
    const r = unsuppress(this.store, e.alarm_id, "bob", at);
    if (!r.ok) throw r.error;
    return r.event;
  }
}

/** "type/event[/target]" per delivery, for compact assertions. */
const brief = (out: RouterOutput | Delivery[]) =>
  (Array.isArray(out) ? out : out.deliveries).map((d) => `${d.action.type}/${d.kind === "alarm" ? d.event : `digest(${d.alarms.length})`}${d.target ? `/${d.target}` : ""}`);

describe("conditions", () => {
  test.each([
    ["CRITICAL pump", { severity: "CRITICAL", asset_id: "pump_1", type: "high", parameter: "pressure" }, [0]],
    ["HIGH", { severity: "HIGH", asset_id: "pump_1", type: "high", parameter: "pressure" }, [1]],
    ["MEDIUM in a list", { severity: "MEDIUM", asset_id: "pump_1", type: "low", parameter: "pressure" }, [2]],
    ["LOW vibration: two rules", { severity: "LOW", asset_id: "pump_1", type: "low", parameter: "vibration" }, [2, 4]],
    ["reactor overpressure at HIGH: glob asset + type list", { severity: "HIGH", asset_id: "reactor_7", type: "overpressure", parameter: "pressure" }, [1, 3]],
    ["reactor over-temperature: type glob", { severity: "INFO", asset_id: "reactor_7", type: "overtemp", parameter: "t" }, [3]],
    ["reactor low: type does not match", { severity: "INFO", asset_id: "reactor_7", type: "low", parameter: "t" }, []],
    ["INFO pump: nothing", { severity: "INFO", asset_id: "pump_1", type: "x", parameter: "p" }, []],
  ] as const)("%s", (_, alarm, want) => {
    expect(matchingRules(config, alarm)).toEqual([...want]);
  });

  test("action refs point into the config", () => {
    expect(actionFor(config, "rules[0].actions[1]")).toMatchObject({ type: "sms" });
    expect(actionFor(config, "rules[0].escalation[1].actions[0]")).toMatchObject({ type: "sms", phone_numbers: ["+14155550199"] });
    expect(actionFor(config, "rules[9].actions[0]")).toBeUndefined();
    expect(actionFor(config, "nonsense")).toBeUndefined();
  });
});

describe("raise and follow-ups", () => {
  test("a CRITICAL raise pages PagerDuty and texts every number; ids are deterministic", () => {
    const plant = new Plant();
    const e = plant.raise("pump_1", "high", "CRITICAL", T0);
    const state = createRouterState();
    const out = routeAlarm(state, config, e, T0);
    expect(brief(out)).toEqual(["pagerduty/raised", "sms/raised/+14155550100", "sms/raised/+14155550101"]);
    expect(out.deliveries.every((d) => d.attempt === 1 && d.kind === "alarm" && d.alarm.alarm_id === e.alarm_id)).toBe(true);
    expect(new Set(out.deliveries.map((d) => d.delivery_id)).size).toBe(3);
    // the same event again: nothing; into a fresh state (a replay): the same ids
    expect(routeAlarm(state, config, e, T0 + 1000).deliveries).toEqual([]);
    expect(routeAlarm(createRouterState(), config, e, T0 + 5000).deliveries.map((d) => d.delivery_id)).toEqual(out.deliveries.map((d) => d.delivery_id));
  });

  test("ack → PagerDuty acknowledge; clear → PagerDuty resolve; SMS hears of the raise only", () => {
    const plant = new Plant();
    const state = createRouterState();
    const e = plant.raise("pump_1", "high", "CRITICAL", T0);
    routeAlarm(state, config, e, T0);
    expect(brief(routeAlarm(state, config, plant.ack(e, T0 + MIN), T0 + MIN))).toEqual(["pagerduty/acknowledged"]);
    const out = routeAlarm(state, config, plant.clear(e, T0 + 2 * MIN), T0 + 2 * MIN);
    expect(brief(out)).toEqual(["pagerduty/cleared"]);
    expect(state.tracked).toEqual({});
  });

  test("HIGH → Slack for raise, ack and clear", () => {
    const plant = new Plant();
    const state = createRouterState();
    const e = plant.raise("pump_1", "high", "HIGH", T0);
    expect(brief(routeAlarm(state, config, e, T0))).toEqual(["slack/raised"]);
    expect(brief(routeAlarm(state, config, plant.ack(e, T0 + 1), T0 + 1))).toEqual(["slack/acknowledged"]);
    expect(brief(routeAlarm(state, config, plant.clear(e, T0 + 2), T0 + 2))).toEqual(["slack/cleared"]);
  });

  test("stale and unmatched events do nothing", () => {
    const plant = new Plant();
    const state = createRouterState();
    const e = plant.raise("pump_1", "high", "HIGH", T0);
    const ack = plant.ack(e, T0 + 1);
    routeAlarm(state, config, e, T0);
    routeAlarm(state, config, ack, T0 + 1);
    expect(routeAlarm(state, config, ack, T0 + 2).deliveries).toEqual([]); // repeated
    expect(routeAlarm(state, config, e, T0 + 3).deliveries).toEqual([]); // older
    const info = plant.raise("pump_9", "x", "INFO", T0);
    expect(routeAlarm(state, config, info, T0)).toEqual({ deliveries: [], events: [], dead: [] });
    expect(state.tracked[info.alarm_id]).toBeUndefined();
    expect(routeAlarm(state, config, { ...e, event: "escalated", sequence: 99 }, T0).deliveries).toEqual([]);
  });
});

describe("dedup: same (asset_id, type) not re-sent within the window", () => {
  test.each([
    ["within 5 min, still active at the end: held, then sent when the window ends", 1 * MIN, null, ["slack/raised@5"]],
    ["within 5 min, cleared first: never sent, nothing to resolve", 1 * MIN, 3 * MIN, []],
    ["after 5 min: sent at once", 5 * MIN, null, ["slack/raised@5"]],
    ["at 4:59: held", 5 * MIN - 1000, null, ["slack/raised@5"]],
  ])("%s", (_, secondAt, clearAt, want) => {
    const plant = new Plant();
    const state = createRouterState();
    const first = plant.raise("pump_1", "high", "HIGH", T0);
    expect(brief(routeAlarm(state, config, first, T0))).toEqual(["slack/raised"]);
    routeAlarm(state, config, plant.clear(first, T0 + 30_000), T0 + 30_000);
    const second = plant.raise("pump_1", "high", "HIGH", T0 + secondAt);
    const seen: string[] = [];
    const collect = (out: RouterOutput, at: number) => seen.push(...brief(out).map((b) => `${b}@${(at - T0) / MIN}`));
    collect(routeAlarm(state, config, second, T0 + secondAt), T0 + secondAt);
    for (let t = T0 + secondAt; t <= T0 + 10 * MIN; t += 1000) {
      if (clearAt !== null && t === T0 + clearAt) collect(routeAlarm(state, config, plant.clear(second, t), t), t);
      collect(tickRouter(state, config, t), t);
    }
    expect(seen).toEqual(want);
  });

  test("another type or another asset is not held", () => {
    const plant = new Plant();
    const state = createRouterState();
    routeAlarm(state, config, plant.raise("pump_1", "high", "HIGH", T0), T0);
    expect(brief(routeAlarm(state, config, plant.raise("pump_1", "high_high", "HIGH", T0), T0))).toEqual(["slack/raised"]);
    expect(brief(routeAlarm(state, config, plant.raise("pump_2", "high", "HIGH", T0), T0))).toEqual(["slack/raised"]);
  });

  test("an ack before the window ends drops the held raise", () => {
    const plant = new Plant();
    const state = createRouterState();
    const first = plant.raise("pump_1", "high", "HIGH", T0);
    routeAlarm(state, config, first, T0);
    routeAlarm(state, config, plant.clear(first, T0 + 1000), T0 + 1000);
    const second = plant.raise("pump_1", "high", "HIGH", T0 + MIN);
    routeAlarm(state, config, second, T0 + MIN);
    expect(brief(routeAlarm(state, config, plant.ack(second, T0 + 2 * MIN), T0 + 2 * MIN))).toEqual([]); // never engaged: no ack message either
    expect(tickRouter(state, config, T0 + 10 * MIN).deliveries).toEqual([]);
  });

  test("the window is configurable", () => {
    const short = { ...config, dedup_window_ms: 30_000 };
    const plant = new Plant();
    const state = createRouterState();
    const first = plant.raise("pump_1", "high", "HIGH", T0);
    routeAlarm(state, short, first, T0);
    routeAlarm(state, short, plant.clear(first, T0 + 1000), T0 + 1000);
    expect(brief(routeAlarm(state, short, plant.raise("pump_1", "high", "HIGH", T0 + 31_000), T0 + 31_000))).toEqual(["slack/raised"]);
  });
});

describe("escalation", () => {
  function critical() {
    const plant = new Plant();
    const state = createRouterState();
    const e = plant.raise("pump_1", "high", "CRITICAL", T0);
    routeAlarm(state, config, e, T0);
    return { plant, state, e };
  }

  test("unacknowledged at 15 min → next target, at 30 min → the one after; an escalated event each", () => {
    const { state, e } = critical();
    expect(nextRouterDeadline(state)).toBe(T0 + 15 * MIN);
    expect(tickRouter(state, config, T0 + 15 * MIN - 1)).toEqual({ deliveries: [], events: [], dead: [] });
    const l1 = tickRouter(state, config, T0 + 15 * MIN);
    expect(brief(l1)).toEqual(["pagerduty/escalated"]);
    expect(l1.deliveries[0]).toMatchObject({ action: { integration_key: "pd-lead" }, escalation_level: 1, action_ref: "rules[0].escalation[0].actions[0]" });
    expect(l1.events).toMatchObject([{ alarm_id: e.alarm_id, event: "escalated", escalation_level: 1, state: "ACTIVE", event_at: new Date(T0 + 15 * MIN).toISOString() }]);
    expect(nextRouterDeadline(state)).toBe(T0 + 30 * MIN);
    expect(brief(tickRouter(state, config, T0 + 31 * MIN))).toEqual(["sms/escalated/+14155550199"]);
    expect(nextRouterDeadline(state)).toBeNull();
    expect(tickRouter(state, config, T0 + 60 * MIN).deliveries).toEqual([]);
  });

  test("a late tick fires every level that is due, in order", () => {
    const { state } = critical();
    const out = tickRouter(state, config, T0 + 45 * MIN);
    expect(brief(out)).toEqual(["pagerduty/escalated", "sms/escalated/+14155550199"]);
    expect(out.events.map((e) => e.escalation_level)).toEqual([1, 2]);
  });

  test.each([
    ["ack", (p: Plant, e: AlarmEvent) => p.ack(e, T0 + 10 * MIN), ["pagerduty/acknowledged"]],
    ["clear", (p: Plant, e: AlarmEvent) => p.clear(e, T0 + 10 * MIN), ["pagerduty/cleared"]],
    ["suppress", (p: Plant, e: AlarmEvent) => p.suppress(e, T0 + 10 * MIN), ["pagerduty/suppressed"]],
  ])("%s at 10 min cancels it", (_, act, said) => {
    const { plant, state, e } = critical();
    expect(brief(routeAlarm(state, config, act(plant, e), T0 + 10 * MIN))).toEqual(said);
    expect(tickRouter(state, config, T0 + 60 * MIN)).toEqual({ deliveries: [], events: [], dead: [] });
    expect(nextRouterDeadline(state)).toBeNull();
  });

  test("clear after escalation resolves both PagerDuty services", () => {
    const { plant, state, e } = critical();
    tickRouter(state, config, T0 + 15 * MIN);
    const out = routeAlarm(state, config, plant.clear(e, T0 + 20 * MIN), T0 + 20 * MIN);
    expect(out.deliveries.map((d) => [d.action.type, d.kind === "alarm" && d.event, (d.action as { integration_key?: string }).integration_key])).toEqual([
      ["pagerduty", "cleared", "pd-ops"],
      ["pagerduty", "cleared", "pd-lead"],
    ]);
  });

  test("unsuppressed back to ACTIVE: escalation restarts from then, fired levels are not repeated", () => {
    const { plant, state, e } = critical();
    tickRouter(state, config, T0 + 15 * MIN); // level 1 fired
    routeAlarm(state, config, plant.suppress(e, T0 + 16 * MIN), T0 + 16 * MIN);
    expect(tickRouter(state, config, T0 + 40 * MIN).deliveries).toEqual([]);
    const back = routeAlarm(state, config, plant.unsuppress(e, T0 + 50 * MIN), T0 + 50 * MIN);
    expect(brief(back)).toEqual(["pagerduty/unsuppressed", "pagerduty/unsuppressed"]); // both engaged PagerDuty services re-triggered
    expect(nextRouterDeadline(state)).toBe(T0 + 80 * MIN); // level 2 (30 min) counted from the unsuppress
    expect(brief(tickRouter(state, config, T0 + 80 * MIN))).toEqual(["sms/escalated/+14155550199"]);
  });

  test("escalation runs while a raise is held by dedup", () => {
    const plant = new Plant();
    const state = createRouterState();
    const first = plant.raise("pump_1", "high", "CRITICAL", T0);
    routeAlarm(state, config, first, T0);
    routeAlarm(state, config, plant.ack(first, T0 + 1000), T0 + 1000);
    routeAlarm(state, config, plant.clear(first, T0 + 2000), T0 + 2000);
    const second = plant.raise("pump_1", "high", "CRITICAL", T0 + MIN);
    expect(routeAlarm(state, config, second, T0 + MIN).deliveries).toEqual([]);
    expect(brief(tickRouter(state, config, T0 + 5 * MIN))).toEqual(["pagerduty/raised", "sms/raised/+14155550100", "sms/raised/+14155550101"]);
    expect(brief(tickRouter(state, config, T0 + 16 * MIN))).toEqual(["pagerduty/escalated"]);
  });
});

describe("e-mail digests", () => {
  test("collected per recipient set and flushed at the 15-minute boundary", () => {
    const plant = new Plant();
    const state = createRouterState();
    const at = (m: number) => T0 + m * MIN;
    expect(routeAlarm(state, config, plant.raise("pump_1", "low", "MEDIUM", at(1)), at(1)).deliveries).toEqual([]);
    expect(routeAlarm(state, config, plant.raise("pump_2", "low", "LOW", at(3)), at(3)).deliveries).toEqual([]);
    // LOW vibration matches two rules whose recipients differ only in case: one buffer, the alarm twice
    routeAlarm(state, config, plant.raise("pump_3", "low", "LOW", at(7), "vibration"), at(7));
    expect(nextRouterDeadline(state)).toBe(at(15));
    expect(tickRouter(state, config, at(14)).deliveries).toEqual([]);
    const out = tickRouter(state, config, at(15));
    expect(brief(out)).toEqual(["email/digest(4)"]);
    const d = out.deliveries[0]!;
    if (d.kind !== "digest") throw new Error("expected a digest");
    expect(d).toMatchObject({ window_start: new Date(at(0)).toISOString(), window_end: new Date(at(15)).toISOString(), action: { recipients: ["ops@example.com"] } });
    expect(d.alarms.map((a) => a.asset_id)).toEqual(["pump_1", "pump_2", "pump_3", "pump_3"]);
    // the next window is a new digest
    routeAlarm(state, config, plant.raise("pump_4", "low", "LOW", at(16)), at(16));
    const next = tickRouter(state, config, at(30));
    expect(brief(next)).toEqual(["email/digest(1)"]);
    expect(next.deliveries[0]!.delivery_id).not.toBe(d.delivery_id);
  });

  test("an alarm arriving after a window closed but before the tick flushes the old window first", () => {
    const plant = new Plant();
    const state = createRouterState();
    routeAlarm(state, config, plant.raise("pump_1", "low", "MEDIUM", T0 + MIN), T0 + MIN);
    const out = routeAlarm(state, config, plant.raise("pump_2", "low", "MEDIUM", T0 + 16 * MIN), T0 + 16 * MIN);
    expect(brief(out)).toEqual(["email/digest(1)"]);
  });
});

describe("outcomes", () => {
  function oneDelivery() {
    const plant = new Plant();
    const state = createRouterState();
    const e = plant.raise("pump_1", "high", "HIGH", T0);
    const [d] = routeAlarm(state, config, e, T0).deliveries;
    return { state, d: d!, plant, e };
  }

  test("retry: handed out again when due, with the next attempt number", () => {
    const { state, d } = oneDelivery();
    recordOutcome(state, config, d.delivery_id, { status: "retry", after_ms: 4000, reason: "HTTP 503" }, T0 + 100);
    expect(nextRouterDeadline(state)).toBe(T0 + 4100);
    expect(tickRouter(state, config, T0 + 4099).deliveries).toEqual([]);
    const again = tickRouter(state, config, T0 + 4100).deliveries;
    expect(again).toEqual([{ ...d, attempt: 2 }]);
    expect(tickRouter(state, config, T0 + 9000).deliveries).toEqual([]); // in flight now
  });

  test("failed: dead letter, and the id is done", () => {
    const { state, d, e } = oneDelivery();
    const out = recordOutcome(state, config, d.delivery_id, { status: "failed", reason: "HTTP 400: invalid_payload" }, T0 + 100);
    expect(out.dead).toEqual([
      { delivery_id: d.delivery_id, action_ref: "rules[1].actions[0]", action_type: "slack", target: null, kind: "alarm", event: "raised", alarm_ids: [e.alarm_id], attempts: 1, reason: "HTTP 400: invalid_payload", failed_at: new Date(T0 + 100).toISOString() },
    ]);
    expect(state.pending).toEqual({});
    expect(routeAlarm(createRouterState(), config, e, T0).deliveries[0]!.delivery_id).toBe(d.delivery_id);
  });

  test("delivered: a replay of the same event does not send again", () => {
    const { state, d, e } = oneDelivery();
    recordOutcome(state, config, d.delivery_id, { status: "delivered" }, T0 + 100);
    delete state.tracked[e.alarm_id]; // as if the raise were consumed again after a restart
    expect(routeAlarm(state, config, e, T0 + 200).deliveries).toEqual([]);
    expect(recordOutcome(state, config, "unknown", { status: "delivered" }, T0)).toEqual({ deliveries: [], events: [], dead: [] });
  });

  test("pending deliveries can be handed out again after a restart", () => {
    const { state, d } = oneDelivery();
    const restored = restoreRouter(JSON.parse(JSON.stringify(snapshotRouter(state))));
    expect(pendingDeliveries(restored, config)).toEqual([d]);
    expect(JSON.stringify(snapshotRouter(state))).not.toContain("hook"); // no action (and so no secret) in the state
  });
});

describe("restart: the state restored at any cut gives the uninterrupted outputs", () => {
  type Step = { at: number; route?: AlarmEvent; outcome?: (out: Delivery[]) => [string, Parameters<typeof recordOutcome>[3]] | null };
  const plant = new Plant();
  const steps: Step[] = [];
  const crit = plant.raise("pump_1", "high", "CRITICAL", T0);
  steps.push({ at: T0, route: crit });
  steps.push({ at: T0 + 1000, outcome: (ds) => [ds[0]!.delivery_id, { status: "retry", after_ms: 30_000, reason: "HTTP 503" }] });
  const high = plant.raise("reactor_1", "overpressure", "HIGH", T0 + 2 * MIN);
  steps.push({ at: T0 + 2 * MIN, route: high });
  steps.push({ at: T0 + 3 * MIN, route: plant.raise("pump_1", "low", "MEDIUM", T0 + 3 * MIN) });
  steps.push({ at: T0 + 4 * MIN, route: plant.ack(high, T0 + 4 * MIN) });
  steps.push({ at: T0 + 4 * MIN, route: plant.clear(high, T0 + 4 * MIN + 1) });
  steps.push({ at: T0 + 5 * MIN, route: plant.raise("reactor_1", "overpressure", "HIGH", T0 + 5 * MIN) });
  steps.push({ at: T0 + 6 * MIN, outcome: (ds) => [ds.find((d) => d.action.type === "sms")!.delivery_id, { status: "failed", reason: "HTTP 400" }] });
  steps.push({ at: T0 + 20 * MIN, route: plant.clear(crit, T0 + 20 * MIN) });
  const ticks = Array.from({ length: 40 }, (_, i) => T0 + i * 45_000);

  function play(state: RouterState, from: number, to: number, issued: Delivery[]): { deliveries: Delivery[]; events: AlarmEvent[]; dead: unknown[]; changes: { key: string; value: string | null }[] } {
    const all = { deliveries: [] as Delivery[], events: [] as AlarmEvent[], dead: [] as unknown[], changes: [] as { key: string; value: string | null }[] };
    const timeline = [...steps.map((s, i) => ({ at: s.at, i, s })), ...ticks.map((at, k) => ({ at, i: 1000 + k, s: null }))].sort((a, b) => a.at - b.at || a.i - b.i);
    timeline.slice(from, to).forEach(({ at, s }) => {
      let out: RouterOutput;
      if (!s) out = tickRouter(state, config, at);
      else if (s.route) out = routeAlarm(state, config, s.route, at);
      else {
        const o = s.outcome!([...issued, ...all.deliveries]);
        out = o ? recordOutcome(state, config, o[0], o[1], at) : { deliveries: [], events: [], dead: [] };
      }
      all.deliveries.push(...out.deliveries);
      all.events.push(...out.events);
      all.dead.push(...out.dead);
      all.changes.push(...takeRouterChanges(state));
    });
    return all;
  }

  const total = steps.length + ticks.length;
  const whole = play(createRouterState(), 0, total, []);
  test("the scenario has retries, dead letters, digests, dedup and escalation", () => {
    expect(whole.dead).toHaveLength(1);
    expect(whole.events.map((e) => e.event)).toContain("escalated");
    expect(whole.deliveries.some((d) => d.kind === "digest")).toBe(true);
    expect(whole.deliveries.some((d) => d.attempt === 2)).toBe(true);
  });

  for (const cut of [1, 3, 9, 20, 30, total - 1]) {
    test(`cut at ${cut}`, () => {
      const state = createRouterState();
      const before = play(state, 0, cut, []);
      const viaSnapshot = play(restoreRouter(JSON.parse(JSON.stringify(snapshotRouter(state)))), cut, total, before.deliveries);
      const viaChanges = play(restoreRouterFromChanges(before.changes), cut, total, before.deliveries);
      for (const rest of [viaSnapshot, viaChanges]) {
        expect([...before.deliveries, ...rest.deliveries]).toEqual(whole.deliveries);
        expect([...before.events, ...rest.events]).toEqual(whole.events);
        expect([...before.dead, ...rest.dead]).toEqual(whole.dead);
      }
    });
  }
});

test("the config is used as given (no hidden globals)", () => {
  const c: RoutingConfig = { ...config, rules: [] };
  expect(routeAlarm(createRouterState(), c, new Plant().raise("pump_1", "high", "CRITICAL", T0), T0).deliveries).toEqual([]);
});
