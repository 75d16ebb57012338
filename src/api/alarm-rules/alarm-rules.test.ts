import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { freshPostgres } from "../../../test/support/alarms-app.ts";
import { testApp } from "../../../test/support/app.ts";
import { listAudit } from "../../db/repo.ts";

type TestApp = Awaited<ReturnType<typeof testApp>>;

const rule = (over: Record<string, unknown> = {}) => ({ id: "well_pressure", asset_id: "offshore_well_*", parameter: "pressure", unit: "psi", high: { value: 200, type: "overpressure", severity: "CRITICAL" }, ...over });

describe.each([
  ["PGlite", undefined],
  ["PostgreSQL", process.env.TEST_DATABASE_URL],
])("alarm rules API on %s", (name, databaseUrl) => {
  const skip = name === "PostgreSQL" && !databaseUrl;
  let t: TestApp;
  let published = 0;
  beforeAll(async () => {
    if (!skip) t = await testApp({ ...(databaseUrl ? { databaseUrl: await freshPostgres(databaseUrl) } : {}), alarmRulesChanged: () => published++ });
  }, 30_000);
  afterAll(() => t?.close());
  const call: TestApp["call"] = (...args) => t.call(...args);

  test.skipIf(skip)("create, read with ETag, update with If-Match, stale writes refused, delete; versions, audit and publishing follow", async () => {
    const created = await call("POST", "/api/v1/alarm-rules", { body: rule() });
    expect(created).toMatchObject({ status: 201, etag: '"1"', location: "/api/v1/alarm-rules/well_pressure", body: { id: "well_pressure", version: 1, rule: { ...rule(), enabled: true } } });
    expect(published).toBe(1);
    expect((await call("POST", "/api/v1/alarm-rules", { body: rule() })).status).toBe(409);

    const read = await call("GET", "/api/v1/alarm-rules/well_pressure", { token: t.tokens.Operator });
    expect(read).toMatchObject({ status: 200, etag: '"1"' });
    // What a GET returns under `rule` is what a PUT takes.
    const raised = { ...read.body.rule, high: { ...read.body.rule.high, value: 210 } };
    const updated = await call("PUT", "/api/v1/alarm-rules/well_pressure", { body: raised, headers: { "if-match": '"1"' } });
    expect(updated).toMatchObject({ status: 200, etag: '"2"', body: { version: 2, rule: { high: { value: 210 } } } });
    expect(published).toBe(2);
    expect(await call("PUT", "/api/v1/alarm-rules/well_pressure", { body: raised })).toMatchObject({ status: 200, body: { version: 2 } });
    expect(published).toBe(2); // unchanged: nothing stored, nothing to publish

    const stale = await call("PUT", "/api/v1/alarm-rules/well_pressure", { body: rule(), headers: { "if-match": '"1"' } });
    expect(stale).toMatchObject({ status: 412, body: { error: { code: "version_conflict", message: "alarm rule well_pressure is at version 2, expected 1" } } });
    expect((await call("DELETE", "/api/v1/alarm-rules/well_pressure", { headers: { "if-match": '"1"' } })).status).toBe(412);
    expect((await call("PUT", "/api/v1/alarm-rules/well_pressure", { body: rule(), headers: { "if-match": "1" } })).status).toBe(400);

    const versions = await call("GET", "/api/v1/alarm-rules/well_pressure/versions", { token: t.tokens.Operator });
    expect(versions.body.map((v: { version: number; created_by: string }) => [v.version, v.created_by])).toEqual([
      [2, "engineer"],
      [1, "engineer"],
    ]);
    expect(versions.body[0].rule.high.value).toBe(210);

    expect((await call("DELETE", "/api/v1/alarm-rules/well_pressure", { headers: { "if-match": '"2"' } })).status).toBe(204);
    expect(published).toBe(3);
    expect((await call("GET", "/api/v1/alarm-rules/well_pressure")).status).toBe(404);
    expect((await call("DELETE", "/api/v1/alarm-rules/well_pressure")).status).toBe(404);

    const audit = await listAudit(t.db.db, { resourceType: "alarm_rule", resourceId: "well_pressure" });
    expect(audit.map((a) => [a.action, a.actor])).toEqual([
      ["alarm_rule.delete", "engineer"],
      ["alarm_rule.update", "engineer"],
      ["alarm_rule.create", "engineer"],
    ]);
    expect(audit[1]!.changes).toEqual({ "rule.high.value": { old: 200, new: 210 }, version: { old: 1, new: 2 } });
  });

  test.skipIf(skip)("an id defaults to <asset_id>/<parameter> and works URL-encoded; a PUT body takes the URL's id; the list pages by id", async () => {
    const created = await call("POST", "/api/v1/alarm-rules", { body: { asset_id: "pump_1", parameter: "temp", high: 90 } });
    expect(created).toMatchObject({ status: 201, body: { id: "pump_1/temp" }, location: "/api/v1/alarm-rules/pump_1%2Ftemp" });
    expect((await call("GET", "/api/v1/alarm-rules/pump_1%2Ftemp")).body).toMatchObject({ id: "pump_1/temp", rule: { id: "pump_1/temp", high: 90 } });
    const put = await call("PUT", "/api/v1/alarm-rules/pump_2", { body: { asset_id: "pump_2", parameter: "temp", low: 5 } });
    expect(put).toMatchObject({ status: 200, etag: '"1"', body: { id: "pump_2", rule: { id: "pump_2" } } });
    await call("POST", "/api/v1/alarm-rules", { body: rule({ id: "a_first" }) });
    const page = await call("GET", "/api/v1/alarm-rules?limit=2&offset=1", { token: t.tokens.Copilot });
    expect(page.body).toMatchObject({ total: 3, limit: 2, offset: 1 });
    expect(page.body.items.map((i: { id: string }) => i.id)).toEqual(["pump_1/temp", "pump_2"]);
  });

  // Each bad body with every path the 422 must name (the same parser as streams.alarm_rules_file).
  const INVALID: [string, unknown, string[]][] = [
    ["missing asset and parameter", { high: 1 }, ["asset_id", "parameter"]],
    ["no limit at all", { asset_id: "a", parameter: "p" }, ["(root)"]],
    ["threshold not a number", { asset_id: "a", parameter: "p", high: { value: "x" } }, ["high.value"]],
    ["unknown severity", { asset_id: "a", parameter: "p", high: { value: 1, severity: "URGENT" } }, ["high.severity"]],
    ["unknown field", { asset_id: "a", parameter: "p", high: 1, hihg: 2 }, ["hihg"]],
    ["negative on-delay", { asset_id: "a", parameter: "p", high: 1, on_delay_s: -1 }, ["on_delay_s"]],
    ["limits out of order", { asset_id: "a", parameter: "p", low: 50, high: 40, high_high: 30 }, ["high", "high_high"]],
    ["rate deadband not below the rate", { asset_id: "a", parameter: "p", rate_of_change: { max_change_per_s: 1, deadband: 1 } }, ["rate_of_change.deadband"]],
    ["same type twice", { asset_id: "a", parameter: "p", high: { value: 2, type: "bad" }, low: { value: 1, type: "bad" } }, ["low.type"]],
    ["unknown placeholder", { asset_id: "a", parameter: "p", high: { value: 2, message: "{asset} too high" } }, ["high.message"]],
    ["not an object", [1, 2], ["(root)"]],
  ];
  test.skipIf(skip).each(INVALID)("422 naming each failing field: %s", async (_case, body, paths) => {
    const response = await call("POST", "/api/v1/alarm-rules", { body });
    expect(response.status).toBe(422);
    expect(response.body.error.code).toBe("validation_failed");
    expect(response.body.error.fields.map((f: { path: string }) => f.path).sort()).toEqual([...paths].sort());
  });

  test.skipIf(skip)("a PUT whose body names another id is refused on the id field", async () => {
    const response = await call("PUT", "/api/v1/alarm-rules/one", { body: rule({ id: "other" }) });
    expect(response).toMatchObject({ status: 422, body: { error: { fields: [{ path: "id", message: 'expected "one" (the id in the URL), got "other"' }] } } });
  });

  test.skipIf(skip)("operators and the copilot read rules; engineers and admins change them", async () => {
    for (const [role, status] of [["Operator", 403], ["Copilot", 403], ["Engineer", 201], ["Admin", 201]] as const) {
      const response = await call("POST", "/api/v1/alarm-rules", { token: t.tokens[role], body: rule({ id: `by_${role}` }) });
      expect([role, response.status]).toEqual([role, status]);
      expect([role, (await call("GET", "/api/v1/alarm-rules/well_pressure", { token: t.tokens[role] })).status]).toEqual([role, 404]);
    }
    expect((await call("DELETE", "/api/v1/alarm-rules/by_Admin", { token: t.tokens.Operator })).status).toBe(403);
    expect((await call("GET", "/api/v1/alarm-rules", { token: "" })).status).toBe(401);
  });
});
