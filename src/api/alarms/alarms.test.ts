import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { alarmsTestApp, freshPostgres } from "../../../test/support/alarms-app.ts";
import { listAudit } from "../../db/repo.ts";
import { UnknownAlarmError } from "../../live/alarms.ts";
import { createLogger } from "../../log/logger.ts";
import { applyAlarmCommand, createAlarmEngine, evaluateReading } from "../../streams/alarms/evaluator.ts";
import type { AlarmCommand, AlarmEvent } from "../../streams/alarms/lifecycle.ts";
import { loadAlarmRules } from "../../streams/alarms/rules.ts";
import { ApiError } from "../errors.ts";
import { AlarmService, dbAlarmSource, getAlarmRow, rowOf, upsertAlarmRows } from "./service.ts";

const RULES = loadAlarmRules({
  rules: [
    { id: "p", asset_id: "reactor_*", parameter: "pressure", unit: "psi", high: { value: 200, type: "overpressure", severity: "CRITICAL" }, low: 20 },
    { id: "t", asset_id: "oven_*", parameter: "temp", high: 80, high_high: 90 },
  ],
});
const T0 = Date.parse("2026-02-01T08:00:00Z");
const reading = (asset: string, parameter: string, value: number, s: number) => {
  const at = new Date(T0 + s * 1000).toISOString();
  return { asset_id: asset, parameter, value, quality: "GOOD" as const, timestamps: { device_time: at, gateway_time: at } };
};

type App = Awaited<ReturnType<typeof alarmsTestApp>>;

/**
 * Stands in for Kafka and the evaluator: a published command is applied by the real engine and its
 * events are projected into the read model shortly after, as the pipeline would. `mute` drops them.
 */
function loopBack() {
  const engine = createAlarmEngine();
  const published: { key: string; command: AlarmCommand }[] = [];
  let app: App | undefined;
  const state = {
    mute: false,
    published,
    engine,
    attach: (a: App) => (app = a),
    async project(events: AlarmEvent[]) {
      await upsertAlarmRows(app!.db.db, events.map((e) => rowOf(e)!));
    },
    publisher: {
      async publish(key: string, command: AlarmCommand) {
        published.push({ key, command });
        if (state.mute) return;
        const { events } = applyAlarmCommand(engine, command);
        setTimeout(() => void state.project(events), 50);
      },
    },
  };
  return state;
}

describe.each([
  ["PGlite", undefined],
  ["PostgreSQL", process.env.TEST_DATABASE_URL],
])("alarms API on %s", (name, databaseUrl) => {
  const skip = name === "PostgreSQL" && !databaseUrl;
  let t: App;
  const loop = loopBack();
  const ids = { a: "", b: "", hh: "", h: "", cleared: "" };

  beforeAll(async () => {
    if (skip) return;
    t = await alarmsTestApp({ ...(databaseUrl ? { databaseUrl: await freshPostgres(databaseUrl) } : {}), service: { publisher: loop.publisher, waitMs: 1500, pollMs: 25 } });
    loop.attach(t);
    const e = loop.engine;
    const events = [
      ...evaluateReading(e, reading("reactor_1", "pressure", 210, 0), RULES),
      ...evaluateReading(e, reading("reactor_2", "pressure", 10, 1), RULES),
      ...evaluateReading(e, reading("oven_1", "temp", 95, 2), RULES),
      ...evaluateReading(e, reading("reactor_3", "pressure", 210, 3), RULES),
      ...evaluateReading(e, reading("reactor_3", "pressure", 150, 4), RULES),
    ];
    await loop.project(events);
    const idOf = (asset: string, limit: string) => events.find((x) => x.asset_id === asset && x.limit === limit)!.alarm_id;
    Object.assign(ids, { a: idOf("reactor_1", "high"), b: idOf("reactor_2", "low"), hh: idOf("oven_1", "high_high"), h: idOf("oven_1", "high"), cleared: idOf("reactor_3", "high") });
  }, 30_000);
  afterAll(() => t?.close());

  const get = (path: string) => t.request("GET", path, { token: t.tokens.Operator });
  const post = (path: string, body?: unknown, token = t.tokens.Operator) => t.request("POST", path, { token, ...(body === undefined ? {} : { body }) });

  test.skipIf(skip)("list: filters by state, severity and asset, paginated, newest raise first", async () => {
    const all = await get("/api/v1/alarms");
    expect(all.status).toBe(200);
    expect(all.body!.total).toBe(5);
    expect(all.body!.items[0].alarm_id).toBe(ids.cleared); // raised last
    expect(all.body!.items.find((a: { alarm_id: string }) => a.alarm_id === ids.a)).toMatchObject({
      asset_id: "reactor_1", parameter: "pressure", type: "overpressure", severity: "CRITICAL", state: "ACTIVE", value: 210, threshold: 200, unit: "psi", sequence: 1, acked_by: null,
    });
    expect((await get("/api/v1/alarms?state=open")).body!.total).toBe(4);
    expect((await get("/api/v1/alarms?state=cleared")).body!.items.map((a: { alarm_id: string }) => a.alarm_id)).toEqual([ids.cleared]);
    expect((await get("/api/v1/alarms?severity=CRITICAL")).body!.items.map((a: { alarm_id: string }) => a.alarm_id).sort()).toEqual([ids.a, ids.hh, ids.cleared].sort());
    expect((await get("/api/v1/alarms?asset_id=oven_1&severity=HIGH,CRITICAL")).body!.total).toBe(2);
    const page = await get("/api/v1/alarms?limit=2&offset=4");
    expect(page.body).toMatchObject({ total: 5, limit: 2, offset: 4 });
    expect(page.body!.items).toHaveLength(1);
    const bad = await get("/api/v1/alarms?state=RINGING");
    expect(bad.status).toBe(422);
    expect(bad.body!.error.fields[0].path).toBe("state");
    expect((await get(`/api/v1/alarms/${ids.b}`)).body).toMatchObject({ alarm_id: ids.b, state: "ACTIVE", severity: "MEDIUM" });
    expect((await get("/api/v1/alarms/nope")).status).toBe(404);
  });

  test.skipIf(skip)("ack → 200 with the alarm, audited with the user; a second ack → 409 naming who acked", async () => {
    const acked = await post(`/api/v1/alarms/${ids.a}/ack`, { note: "on it" });
    expect(acked.status).toBe(200);
    expect(acked.body).toMatchObject({ alarm_id: ids.a, state: "ACKNOWLEDGED", acked_by: "operator", sequence: 2 });
    // The command went to the partition that owns the alarm: keyed by its tag.
    expect(loop.published.at(-1)).toMatchObject({ key: "reactor_1/pressure", command: { action: "acknowledge", alarm_id: ids.a, by: "operator", note: "on it" } });
    const [audit] = await listAudit(t.db.db, { resourceType: "alarm", resourceId: ids.a });
    expect(audit).toMatchObject({ actor: "operator", action: "alarm.acknowledge", changes: { state: { old: "ACTIVE", new: "ACKNOWLEDGED" }, note: { new: "on it" } } });

    const again = await post(`/api/v1/alarms/${ids.a}/ack`, undefined, t.tokens.Engineer);
    expect(again.status).toBe(409);
    expect(again.body!.error).toMatchObject({ code: "invalid_transition" });
    expect(again.body!.error.message).toContain(`cannot acknowledge alarm ${ids.a}: it is already ACKNOWLEDGED (by operator at `);
  });

  test.skipIf(skip)("suppress until a time, ack refused while suppressed, unsuppress back to where it was, invalid ones refused", async () => {
    const until = new Date(Date.now() + 3_600_000).toISOString();
    const suppressed = await post(`/api/v1/alarms/${ids.a}/suppress`, { until });
    expect(suppressed.status).toBe(200);
    expect(suppressed.body).toMatchObject({ state: "SUPPRESSED", suppressed_by: "operator", suppressed_until: until });
    expect((await post(`/api/v1/alarms/${ids.a}/ack`)).body!.error.message).toContain("unsuppress it first");
    const back = await post(`/api/v1/alarms/${ids.a}/unsuppress`);
    expect(back.status).toBe(200);
    expect(back.body).toMatchObject({ state: "ACKNOWLEDGED", suppressed_until: null, suppressed_by: null });
    const notSuppressed = await post(`/api/v1/alarms/${ids.a}/unsuppress`);
    expect(notSuppressed.status).toBe(409);
    expect(notSuppressed.body!.error.message).toBe(`cannot unsuppress alarm ${ids.a}: it is ACKNOWLEDGED, not SUPPRESSED`);

    const past = await post(`/api/v1/alarms/${ids.b}/suppress`, { until: "2020-01-01T00:00:00Z" });
    expect(past.status).toBe(422);
    expect(past.body!.error.fields[0]).toMatchObject({ path: "until" });
    expect((await post(`/api/v1/alarms/${ids.b}/suppress`, { until: "tomorrow" })).status).toBe(422);
    const cleared = await post(`/api/v1/alarms/${ids.cleared}/ack`);
    expect(cleared.status).toBe(409);
    expect(cleared.body!.error.message).toBe(`cannot acknowledge alarm ${ids.cleared}: it is CLEARED`);
    expect((await post("/api/v1/alarms/no-such-alarm/ack")).status).toBe(404);
    // Refusals publish nothing and audit nothing.
    const actions = (await listAudit(t.db.db, { resourceType: "alarm" })).map((a) => `${a.action}:${a.resourceId}`);
    expect(actions.sort()).toEqual([`alarm.acknowledge:${ids.a}`, `alarm.suppress:${ids.a}`, `alarm.unsuppress:${ids.a}`].sort());
    expect(loop.published).toHaveLength(3);
  });

  test.skipIf(skip)("the read model does not show it within the wait → 202 Accepted with the command", async () => {
    loop.mute = true;
    try {
      const started = Date.now();
      const accepted = await post(`/api/v1/alarms/${ids.h}/ack`);
      expect(accepted.status).toBe(202);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
      expect(accepted.body).toMatchObject({ status: "accepted", command: { action: "acknowledge", alarm_id: ids.h, by: "operator" }, alarm: { state: "ACTIVE" } });
      expect((await listAudit(t.db.db, { resourceType: "alarm", resourceId: ids.h }))[0]?.action).toBe("alarm.acknowledge");
    } finally {
      loop.mute = false;
    }
  });

  test.skipIf(skip)("a Copilot may read but not acknowledge", async () => {
    expect((await t.request("GET", "/api/v1/alarms", { token: t.tokens.Copilot })).status).toBe(200);
    expect((await post(`/api/v1/alarms/${ids.b}/ack`, undefined, t.tokens.Copilot)).status).toBe(403);
  });

  test.skipIf(skip)("the read model only moves forward: replays, stale copies and escalations change nothing", async () => {
    const before = await getAlarmRow(t.db.db, ids.a);
    const raise = before!.lastEvent as unknown as AlarmEvent;
    await upsertAlarmRows(t.db.db, [rowOf({ ...raise, sequence: 1, state: "ACTIVE", event: "raised" })!]);
    expect(rowOf({ ...raise, event: "escalated", escalation_level: 1 })).toBeNull();
    const after = await getAlarmRow(t.db.db, ids.a);
    expect({ state: after!.state, sequence: after!.sequence }).toEqual({ state: before!.state, sequence: before!.sequence });
  });

  test.skipIf(skip)("the UI's AlarmSource over the read model: same shapes, real commands, no double audit", async () => {
    const source = dbAlarmSource(t.alarms);
    const open = await source.list({ state: "active" });
    expect(open.map((a) => a.id)).not.toContain(ids.cleared);
    expect(open.find((a) => a.id === ids.b)).toMatchObject({ asset_id: "reactor_2", parameter: "pressure", severity: "MEDIUM", state: "ACTIVE", acked_by: null });
    expect((await source.list({ state: "all", q: "reactor_3" })).map((a) => a.id)).toEqual([ids.cleared]);
    const audits = (await listAudit(t.db.db, { resourceType: "alarm" })).length;
    expect(await source.ack(ids.b, "operator")).toMatchObject({ id: ids.b, state: "ACKNOWLEDGED", acked_by: "operator" });
    expect(await source.suppress(ids.hh, "operator", new Date(Date.now() + 60_000))).toMatchObject({ id: ids.hh, state: "SUPPRESSED", suppressed_by: "operator" });
    expect((await listAudit(t.db.db, { resourceType: "alarm" })).length).toBe(audits); // the UI page audits its own actions
    await expect(source.ack("nope", "operator")).rejects.toBeInstanceOf(UnknownAlarmError);
    await expect(source.ack(ids.b, "operator")).rejects.toMatchObject({ status: 409 });
  });

  test.skipIf(skip)("without a Kafka producer a valid command is refused with 503, after its checks", async () => {
    const service = new AlarmService({ db: () => t.db.db, log: createLogger("test", "silent") });
    await expect(service.command(ids.cleared, "acknowledge", "operator", null)).rejects.toMatchObject({ status: 409 });
    const error = await service.command(ids.hh, "unsuppress", "operator", null).catch((e) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 503, code: "alarm_commands_unavailable" });
  });
});
