import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { freshPostgres } from "../../../test/support/alarms-app.ts";
import { testApp } from "../../../test/support/app.ts";
import { ensureGateway, listAudit } from "../../db/repo.ts";
import { sinks } from "../../db/schema.ts";

type TestApp = Awaited<ReturnType<typeof testApp>>;

const TARGET_DB = process.env.TEST_DATABASE_URL;
// Nothing listens on port 1: the connection is refused at once.
const DOWN_DB = "postgres://gateway:gateway@127.0.0.1:1/gateway_test";

const sinkConfig = (over: Record<string, unknown> = {}) => ({ sink_id: "historian", type: "postgres", kafka: { topics: ["telemetry.clean"] }, target: { url: DOWN_DB }, ...over });

describe.each([
  ["PGlite", undefined],
  ["PostgreSQL", TARGET_DB],
])("sinks API on %s", (name, databaseUrl) => {
  const skip = name === "PostgreSQL" && !databaseUrl;
  let t: TestApp;
  let changed = 0;
  beforeAll(async () => {
    if (!skip) t = await testApp({ ...(databaseUrl ? { databaseUrl: await freshPostgres(databaseUrl) } : {}), sinksChanged: () => changed++ });
  }, 30_000);
  afterAll(() => t?.close());
  const call: TestApp["call"] = (...args) => t.call(...args);

  test.skipIf(skip)("create, read with ETag, update with If-Match, stale writes refused, delete; versions, audit and the change callback follow", async () => {
    const created = await call("POST", "/api/v1/sinks", { body: { config: sinkConfig() } });
    expect(created).toMatchObject({
      status: 201,
      etag: '"1"',
      location: "/api/v1/sinks/historian",
      body: { id: "historian", gateway_id: t.config.gateway_id, type: "postgres", name: "historian", enabled: true, version: 1 },
    });
    // Stored as given: no defaults, no brokers filled in.
    expect(created.body.config).toEqual(sinkConfig());
    expect(changed).toBe(1);
    expect((await call("POST", "/api/v1/sinks", { body: { config: sinkConfig() } })).status).toBe(409);

    const read = await call("GET", "/api/v1/sinks/historian", { token: t.tokens.Operator });
    expect(read).toMatchObject({ status: 200, etag: '"1"', body: { id: "historian", config: sinkConfig() } });
    // What a GET returns under `config` is what a PUT takes.
    const renamed = { name: "Plant historian", enabled: false, config: { ...read.body.config, batch: { max_rows: 100 } } };
    const updated = await call("PUT", "/api/v1/sinks/historian", { body: renamed, headers: { "if-match": '"1"' } });
    expect(updated).toMatchObject({ status: 200, etag: '"2"', body: { version: 2, name: "Plant historian", enabled: false, config: { batch: { max_rows: 100 } } } });
    expect(changed).toBe(2);
    expect(await call("PUT", "/api/v1/sinks/historian", { body: renamed })).toMatchObject({ status: 200, body: { version: 2 } });
    expect(changed).toBe(2); // unchanged: nothing stored, nothing to reconcile

    const stale = await call("PUT", "/api/v1/sinks/historian", { body: { config: sinkConfig() }, headers: { "if-match": '"1"' } });
    expect(stale).toMatchObject({ status: 412, body: { error: { code: "version_conflict", message: "sink historian is at version 2, expected 1" } } });
    expect((await call("DELETE", "/api/v1/sinks/historian", { headers: { "if-match": '"1"' } })).status).toBe(412);

    const versions = await call("GET", "/api/v1/sinks/historian/versions", { token: t.tokens.Operator });
    expect(versions.body.map((v: { version: number; name: string; created_by: string }) => [v.version, v.name, v.created_by])).toEqual([
      [2, "Plant historian", "engineer"],
      [1, "historian", "engineer"],
    ]);
    expect(versions.body[0].config.batch).toEqual({ max_rows: 100 });

    expect((await call("DELETE", "/api/v1/sinks/historian", { headers: { "if-match": '"2"' } })).status).toBe(204);
    expect(changed).toBe(3);
    expect((await call("GET", "/api/v1/sinks/historian")).status).toBe(404);
    expect((await call("DELETE", "/api/v1/sinks/historian")).status).toBe(404);

    const audit = await listAudit(t.db.db, { resourceType: "sink", resourceId: "historian" });
    expect(audit.map((a) => [a.action, a.actor])).toEqual([
      ["sink.delete", "engineer"],
      ["sink.update", "engineer"],
      ["sink.create", "engineer"],
    ]);
    expect(audit[1]!.changes).toEqual({
      name: { old: "historian", new: "Plant historian" },
      enabled: { old: true, new: false },
      "config.batch": { old: undefined, new: { max_rows: 100 } },
      version: { old: 1, new: 2 },
    });
  });

  test.skipIf(skip)("a PUT config takes the URL's id; secrets stay placeholders; the list pages by id and shows shared sinks, not another gateway's", async () => {
    const put = await call("PUT", "/api/v1/sinks/b_cloud", { body: { config: sinkConfig({ sink_id: undefined, target: { url: "postgres://gw:${secret:cloud_pg}@db:5432/x" } }) } });
    expect(put).toMatchObject({ status: 200, etag: '"1"', body: { id: "b_cloud", config: { sink_id: "b_cloud", target: { url: "postgres://gw:${secret:cloud_pg}@db:5432/x" } } } });
    await call("POST", "/api/v1/sinks", { body: { config: sinkConfig({ sink_id: "a_first" }) } });
    await ensureGateway(t.db.db, "other-gateway", "edge");
    const now = new Date();
    await t.db.db.insert(sinks).values([
      { id: "c_shared", gatewayId: null, type: "postgres", name: "shared", config: sinkConfig({ sink_id: "c_shared" }), createdAt: now, updatedAt: now },
      { id: "d_theirs", gatewayId: "other-gateway", type: "postgres", name: "theirs", config: sinkConfig({ sink_id: "d_theirs" }), createdAt: now, updatedAt: now },
    ]);

    const page = await call("GET", "/api/v1/sinks?limit=2&offset=1", { token: t.tokens.Operator });
    expect(page.body).toMatchObject({ total: 3, limit: 2, offset: 1 });
    expect(page.body.items.map((i: { id: string; gateway_id: string | null }) => [i.id, i.gateway_id])).toEqual([
      ["b_cloud", t.config.gateway_id],
      ["c_shared", null],
    ]);

    // Editing a shared sink keeps it shared.
    expect(await call("PUT", "/api/v1/sinks/c_shared", { body: { name: "shared, renamed", config: sinkConfig({ sink_id: "c_shared" }) } })).toMatchObject({
      status: 200,
      body: { gateway_id: null, version: 2 },
    });
    for (const [method, path, body] of [
      ["GET", "/api/v1/sinks/d_theirs", undefined],
      ["PUT", "/api/v1/sinks/d_theirs", { config: sinkConfig({ sink_id: "d_theirs" }) }],
      ["DELETE", "/api/v1/sinks/d_theirs", undefined],
      ["GET", "/api/v1/sinks/d_theirs/versions", undefined],
      ["POST", "/api/v1/sinks/d_theirs/test", undefined],
    ] as const) {
      expect([method, path, (await call(method, path, body ? { body } : {})).status]).toEqual([method, path, 404]);
    }
  });

  // Each bad body with every path the 422 must name (the parser of the appliance config's `sinks:`, nested under `config`).
  const INVALID: [string, unknown, string[]][] = [
    ["no config", { name: "x" }, ["config"]],
    ["config not an object", { config: [1] }, ["config"]],
    ["not an object", '"historian"', ["(root)"]],
    ["unknown field beside config", { config: sinkConfig(), enabeld: true }, ["enabeld"]],
    ["enabled not a boolean", { config: sinkConfig(), enabled: "yes" }, ["enabled"]],
    ["unknown type", { config: sinkConfig({ type: "mongodb" }) }, ["config.type"]],
    ["not a postgres URL", { config: sinkConfig({ target: { url: "mysql://db/x" } }) }, ["config.target.url"]],
    ["no sink_id", { config: sinkConfig({ sink_id: undefined }) }, ["config.sink_id"]],
    ["no topics, bad batch", { config: sinkConfig({ kafka: { topics: [] }, batch: { max_rows: 0 } }) }, ["config.kafka.topics", "config.batch.max_rows"]],
    ["topic with no row kind", { config: sinkConfig({ kafka: { topics: ["plant.misc"] } }) }, ["config.kafka.topics[0]"]],
  ];
  test.skipIf(skip).each(INVALID)("422 naming each failing field: %s", async (_case, body, paths) => {
    for (const [method, path] of [
      ["POST", "/api/v1/sinks"],
      ["POST", "/api/v1/sinks/test"],
    ]) {
      const response = await call(method!, path!, { body });
      expect([path, response.status, response.body.error.code]).toEqual([path, 422, "validation_failed"]);
      expect(response.body.error.fields.map((f: { path: string }) => f.path).sort()).toEqual([...paths].sort());
    }
  });

  test.skipIf(skip || !TARGET_DB)("the Sinks page tests a sink's connection in place, for those who may change sinks", async () => {
    await call("POST", "/api/v1/sinks", { body: { config: sinkConfig({ sink_id: "page_down" }) } });
    await call("POST", "/api/v1/sinks", { body: { config: sinkConfig({ sink_id: "page_up", target: { url: TARGET_DB } }) } });
    const pageAs = (token: string) => t.request("GET", "/sinks", { token }).then((r) => r.text());
    expect(await pageAs(t.tokens.Engineer)).toContain('hx-post="/sinks/page_down/test"');
    expect(await pageAs(t.tokens.Operator)).not.toContain("Test connection");
    const test = (id: string, token = t.tokens.Engineer) => t.request("POST", `/sinks/${id}/test`, { token, headers: { "hx-request": "true" } });
    const down = await test("page_down");
    expect(down.status).toBe(200);
    expect(await down.text()).toMatch(/failed.*ECONNREFUSED/s);
    expect(await (await test("page_up")).text()).toMatch(/reachable.*PostgreSQL \d+/s);
    expect((await test("page_up", t.tokens.Operator)).status).toBe(403);
  });

  test.skipIf(skip)("a PUT whose config names another sink_id is refused on that field", async () => {
    const response = await call("PUT", "/api/v1/sinks/one", { body: { config: sinkConfig({ sink_id: "other" }) } });
    expect(response).toMatchObject({ status: 422, body: { error: { fields: [{ path: "config.sink_id", message: 'expected "one" (the id in the URL), got "other"' }] } } });
  });

  test.skipIf(skip)("connection tests reach the target once: a stored sink and an unsaved body; a target that is down is ok: false, not an error", async () => {
    const down = await call("POST", "/api/v1/sinks/test", { body: { config: sinkConfig({ sink_id: "unsaved" }) } });
    expect(down).toMatchObject({ status: 200, body: { ok: false } });
    expect(down.body.detail).toContain("ECONNREFUSED");
    await call("POST", "/api/v1/sinks", { body: { config: sinkConfig({ sink_id: "down_db" }) } });
    expect(await call("POST", "/api/v1/sinks/down_db/test")).toMatchObject({ status: 200, body: { ok: false, detail: expect.stringContaining("ECONNREFUSED") } });
    expect((await call("POST", "/api/v1/sinks/no_such_sink/test")).status).toBe(404);
    expect((await call("POST", "/api/v1/sinks/down_db/test", { token: t.tokens.Operator })).status).toBe(403);
  });

  test.skipIf(skip || !TARGET_DB)("a stored sink whose password is a ${secret:...} placeholder is tested with the secret resolved", async () => {
    const url = new URL(TARGET_DB!);
    process.env.SECRET_SINKS_TEST_PG = decodeURIComponent(url.password);
    const placeholderUrl = `postgres://${url.username}:\${secret:sinks_test_pg}@${url.host}${url.pathname}`;
    try {
      await call("POST", "/api/v1/sinks", { body: { config: sinkConfig({ sink_id: "up_db", target: { url: placeholderUrl } }) } });
      expect((await call("GET", "/api/v1/sinks/up_db")).body.config.target.url).toBe(placeholderUrl);
      const up = await call("POST", "/api/v1/sinks/up_db/test");
      expect(up).toMatchObject({ status: 200, body: { ok: true, detail: expect.stringMatching(/^PostgreSQL \d+/) } });
    } finally {
      delete process.env.SECRET_SINKS_TEST_PG;
    }
    expect(await call("POST", "/api/v1/sinks/test", { body: { config: sinkConfig({ sink_id: "unsaved", target: { url: TARGET_DB } }) } })).toMatchObject({
      status: 200,
      body: { ok: true },
    });
  });

  test.skipIf(skip)("operators read sinks; engineers and admins change them", async () => {
    for (const [role, status] of [["Operator", 403], ["Copilot", 403], ["Engineer", 201], ["Admin", 201]] as const) {
      const response = await call("POST", "/api/v1/sinks", { token: t.tokens[role], body: { config: sinkConfig({ sink_id: `by_${role}` }) } });
      expect([role, response.status]).toEqual([role, status]);
    }
    expect((await call("GET", "/api/v1/sinks/by_Admin", { token: t.tokens.Operator })).status).toBe(200);
    expect((await call("DELETE", "/api/v1/sinks/by_Admin", { token: t.tokens.Operator })).status).toBe(403);
    expect((await call("GET", "/api/v1/sinks", { token: "" })).status).toBe(401);
  });
});
