/**
 * The API's side of command outcomes, with the real engine standing in for Kafka and the evaluator
 * (the same over real Kafka: command-outcomes.test.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { alarmsTestApp } from "../../../test/support/alarms-app.ts";
import { listAudit } from "../../db/repo.ts";
import { applyAlarmCommand, createAlarmEngine, evaluateReading } from "../../streams/alarms/evaluator.ts";
import { acknowledge, type AlarmCommand, type AlarmEvent } from "../../streams/alarms/lifecycle.ts";
import { commandOutcome, type CommandOutcome } from "../../streams/alarms/outcome.ts";
import { loadAlarmRules } from "../../streams/alarms/rules.ts";
import { LATE_OUTCOME_WINDOW_MS, OutcomeRegistry } from "./outcomes.ts";
import { dbAlarmSource, rowOf, upsertAlarmRows } from "./service.ts";

const refused = (id: string): Extract<CommandOutcome, { outcome: "refused" }> => ({ command_id: id, alarm_id: "a", action: "acknowledge", by: "bob", at: null, outcome: "refused", state: "CLEARED", error: { code: "invalid_transition", message: "cannot acknowledge alarm a: it is CLEARED" } });

describe("OutcomeRegistry", () => {
  test("an outcome settles its waiter; one for a command nobody watches is ignored", async () => {
    const r = new OutcomeRegistry();
    const w = r.watch("c1");
    r.deliver(refused("other"));
    r.deliver({ ...refused("c1") });
    expect(await w.outcome).toMatchObject({ command_id: "c1", outcome: "refused" });
    expect(r.size).toBe(0);
  });

  test("released: a late outcome goes to onLate within the window, not after; cancelled: forgotten", () => {
    let now = 1000;
    const r = new OutcomeRegistry({ now: () => now });
    const late: string[] = [];
    r.watch("c1", (o) => late.push(o.command_id!)).release();
    r.watch("c2", (o) => late.push(o.command_id!)).release();
    r.watch("c3", (o) => late.push(o.command_id!)).cancel();
    r.deliver(refused("c1"));
    r.deliver(refused("c3"));
    now += LATE_OUTCOME_WINDOW_MS + 1;
    r.deliver(refused("c2"));
    expect(late).toEqual(["c1"]);
    // Expired late watches are pruned on the next watch; one still waited on is kept.
    r.watch("c4", () => undefined).release();
    now += LATE_OUTCOME_WINDOW_MS + 1;
    r.watch("c5");
    expect(r.size).toBe(1);
  });
});

const RULES = loadAlarmRules({ rules: [{ id: "p", asset_id: "reactor_*", parameter: "pressure", unit: "psi", high: { value: 200, type: "overpressure", severity: "CRITICAL" } }] });
const T0 = Date.parse("2026-02-01T08:00:00Z");
const reading = (asset: string, value: number, s: number) => {
  const at = new Date(T0 + s * 1000).toISOString();
  return { asset_id: asset, parameter: "pressure", value, quality: "GOOD" as const, timestamps: { device_time: at, gateway_time: at } };
};

describe("alarm commands answered from the evaluator's outcome", () => {
  type App = Awaited<ReturnType<typeof alarmsTestApp>>;
  let t: App;
  const engine = createAlarmEngine();
  const tail = { ready: true };
  const outcomes = new OutcomeRegistry({ ready: () => tail.ready });
  const loop = { mute: false, lostOutcomes: false, published: [] as AlarmCommand[] };
  const ids: Record<string, string> = {};
  const project = (events: AlarmEvent[]) => upsertAlarmRows(t.db.db, events.map((e) => rowOf(e)!));

  beforeAll(async () => {
    t = await alarmsTestApp({
      service: {
        waitMs: 1000,
        pollMs: 20,
        outcomes,
        publisher: {
          // The evaluator: applies the command, reports its outcome at once, the read model follows later.
          async publish(_key, command) {
            loop.published.push(command);
            if (loop.mute) return;
            const result = applyAlarmCommand(engine, command);
            if (!loop.lostOutcomes) setTimeout(() => outcomes.deliver(commandOutcome(command, result)), 20);
            setTimeout(() => void project(result.events), 100);
          },
        },
      },
    });
    for (const [i, asset] of ["reactor_1", "reactor_2", "reactor_3", "reactor_4", "reactor_5"].entries()) {
      const [raised] = evaluateReading(engine, reading(asset, 210, i), RULES);
      ids[asset] = raised!.alarm_id;
      await project([raised!]);
    }
  }, 30_000);
  afterAll(() => t?.close());
  const post = (path: string, token = t.tokens.Operator) => t.request("POST", path, { token });

  test("applied → 200 with the alarm in its new state, once the read model shows it", async () => {
    const r = await post(`/api/v1/alarms/${ids.reactor_1}/ack`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ alarm_id: ids.reactor_1, state: "ACKNOWLEDGED", acked_by: "operator", sequence: 2 });
    expect(loop.published.at(-1)!.command_id).toMatch(/^[0-9a-f-]{36}$/);
    const [audit] = await listAudit(t.db.db, { resourceType: "alarm", resourceId: ids.reactor_1 });
    expect(audit).toMatchObject({ action: "alarm.acknowledge", changes: { command_id: { new: loop.published.at(-1)!.command_id } } });
  });

  test("refused by the evaluator (someone acknowledged it there first; the read model has not caught up) → 409 with the reason, audited", async () => {
    const id = ids.reactor_2!;
    expect(acknowledge(engine.store, id, "alice", Date.now()).ok).toBe(true); // not projected: the read model still says ACTIVE
    const r = await post(`/api/v1/alarms/${id}/ack`, t.tokens.Engineer);
    expect(r.status).toBe(409);
    expect(r.body!.error.code).toBe("invalid_transition");
    expect(r.body!.error.message).toStartWith(`cannot acknowledge alarm ${id}: it is already ACKNOWLEDGED (by alice at `);
    const audit = (await listAudit(t.db.db, { resourceType: "alarm", resourceId: id })).map((a) => ({ action: a.action, actor: a.actor, changes: a.changes }));
    expect(audit[0]).toMatchObject({ action: "alarm.acknowledge.refused", actor: "engineer", changes: { code: { new: "invalid_transition" }, state: { old: "ACKNOWLEDGED" } } });
    expect((audit[0]!.changes as { reason: { new: string } }).reason.new).toContain("already ACKNOWLEDGED");
    expect(audit[1]).toMatchObject({ action: "alarm.acknowledge", actor: "engineer" });
  });

  test("the UI's source gets the refusal as a 409 with the reason (shown by the page instead of the stale row)", async () => {
    const id = ids.reactor_3!;
    expect(acknowledge(engine.store, id, "alice", Date.now()).ok).toBe(true);
    await expect(dbAlarmSource(t.alarms).ack(id, "operator")).rejects.toMatchObject({ status: 409, message: expect.stringContaining("already ACKNOWLEDGED (by alice") });
  });

  test("no outcome in time → 202 with the command id and why; a refusal arriving later is still audited", async () => {
    const id = ids.reactor_4!;
    loop.mute = true;
    try {
      const started = Date.now();
      const r = await post(`/api/v1/alarms/${id}/suppress`);
      expect(r.status).toBe(202);
      expect(Date.now() - started).toBeGreaterThanOrEqual(950);
      const command = loop.published.at(-1)!;
      expect(r.body).toMatchObject({ status: "accepted", command_id: command.command_id, command: { action: "suppress", alarm_id: id, by: "operator" }, alarm: { state: "ACTIVE" } });
      expect(r.body!.message).toContain("queued in Kafka");
      // The evaluator comes back; meanwhile the alarm cleared, so it refuses.
      outcomes.deliver({ ...refused(command.command_id!), alarm_id: id, action: "suppress", by: "operator", error: { code: "invalid_transition", message: `cannot suppress alarm ${id}: it is CLEARED` } });
      // The audit row is written in the background: wait for it, not for a fixed time a busy machine can outlast.
      const refusal = async () => (await listAudit(t.db.db, { resourceType: "alarm", resourceId: id })).find((a) => a.action === "alarm.suppress.refused");
      const deadline = Date.now() + 10_000;
      while (!(await refusal()) && Date.now() < deadline) await Bun.sleep(20);
      expect(await refusal()).toMatchObject({ actor: "operator", changes: { reason: { new: `cannot suppress alarm ${id}: it is CLEARED` } } });
    } finally {
      loop.mute = false;
    }
  });

  test("while the shared tail is not following yet, the read model moving on answers 200 (an outcome it could not see is not waited for)", async () => {
    tail.ready = false;
    loop.lostOutcomes = true;
    try {
      const started = Date.now();
      const r = await post(`/api/v1/alarms/${ids.reactor_5}/ack`);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ state: "ACKNOWLEDGED", sequence: 2 });
      expect(Date.now() - started).toBeLessThan(900);
    } finally {
      tail.ready = true;
      loop.lostOutcomes = false;
    }
  });
});
