import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { testApp } from "../../../test/support/app.ts";

type TestApp = Awaited<ReturnType<typeof testApp>>;

const pipeline = (id: string, overrides: Record<string, unknown> = {}) => ({
  id,
  name: "Well 12 RTU",
  adapter: {
    protocol: "modbus_tcp",
    source: { host: "127.0.0.1", port: 15020, unit_id: 1 },
    mapping: { registers: { "40001": { param: "pressure", unit: "psi", type: "float32" } } },
    output: { asset_id: "offshore_well_12" },
    poll_interval_ms: 1000,
    ...overrides,
  },
});

describe.each([["PGlite", undefined], ["PostgreSQL", process.env.TEST_DATABASE_URL]])("pipelines API on %s", (_name, databaseUrl) => {
  const skip = _name === "PostgreSQL" && !databaseUrl;
  let t: TestApp;
  beforeAll(async () => {
    if (!skip) t = await testApp(databaseUrl ? { databaseUrl: await freshDatabase(databaseUrl) } : {});
  }, 30_000);
  afterAll(() => t?.close());

  test.skipIf(skip)("create, read with ETag, update with If-Match, stale update refused, history and audit kept", async () => {
    const token = t.tokens.Engineer;
    const created = await t.request("POST", "/api/v1/pipelines", { token, body: pipeline("well-12") });
    expect(created.status).toBe(201);
    expect(created.headers.get("etag")).toBe('"1"');
    expect(created.headers.get("location")).toBe("/api/v1/pipelines/well-12");

    const again = await t.request("POST", "/api/v1/pipelines", { token, body: pipeline("well-12") });
    expect(again.status).toBe(409);

    const read = await t.request("GET", "/api/v1/pipelines/well-12", { token: t.tokens.Operator });
    expect(read.status).toBe(200);
    expect((await read.json()).adapter.source.port).toBe(15020);

    const updated = await t.request("PUT", "/api/v1/pipelines/well-12", { token, headers: { "if-match": '"1"' }, body: pipeline("well-12", { poll_interval_ms: 500 }) });
    expect(updated.status).toBe(200);
    expect(updated.headers.get("etag")).toBe('"2"');

    const stale = await t.request("PUT", "/api/v1/pipelines/well-12", { token, headers: { "if-match": '"1"' }, body: pipeline("well-12", { poll_interval_ms: 250 }) });
    expect(stale.status).toBe(412);
    expect((await stale.json()).error.code).toBe("version_conflict");

    const versions = await (await t.request("GET", "/api/v1/pipelines/well-12/versions", { token })).json();
    expect(versions.map((v: { version: number }) => v.version)).toEqual([2, 1]);

    const audit = await (await t.request("GET", "/api/v1/audit?resource_type=pipeline&resource_id=well-12", { token: t.tokens.Admin })).json();
    expect(audit.items[0]).toMatchObject({ user: "engineer", action: "pipeline.update", resource_id: "well-12" });
    expect(audit.items[0].changes["config.poll_interval_ms"]).toEqual({ old: 1000, new: 500 });
    expect(audit.items[1].action).toBe("pipeline.create");

    const list = await (await t.request("GET", "/api/v1/pipelines?limit=10&offset=0", { token })).json();
    expect(list).toMatchObject({ total: 1, limit: 10, offset: 0 });

    expect((await t.request("DELETE", "/api/v1/pipelines/well-12", { token, headers: { "if-match": '"1"' } })).status).toBe(412);
    expect((await t.request("DELETE", "/api/v1/pipelines/well-12", { token })).status).toBe(204);
    expect((await t.request("GET", "/api/v1/pipelines/well-12", { token })).status).toBe(404);
  });

  test.skipIf(skip)("422 lists each failing field path, from the body schema and from the adapter's own schema", async () => {
    const token = t.tokens.Engineer;
    const badBody = await t.request("POST", "/api/v1/pipelines", { token, body: { id: "bad id!", adapter: {} } });
    expect(badBody.status).toBe(422);
    const body = await badBody.json();
    expect(body.error.code).toBe("validation_failed");
    expect(body.error.fields.map((f: { path: string }) => f.path)).toContain("id");

    const badAdapter = await t.request("POST", "/api/v1/pipelines", {
      token,
      body: pipeline("bad-adapter", { source: { host: "127.0.0.1", port: 70000 }, mapping: { registers: { "4x001": { param: "p" } } } }),
    });
    expect(badAdapter.status).toBe(422);
    const paths = (await badAdapter.json()).error.fields.map((f: { path: string }) => f.path);
    expect(paths).toContain("adapter.source.port");
  });

  test.skipIf(skip)("malformed JSON is a 400, an oversized body a 413, an unknown route a JSON 404", async () => {
    const token = t.tokens.Engineer;
    const malformed = await t.request("POST", "/api/v1/pipelines", { token, body: "{not json" });
    expect(malformed.status).toBe(400);
    expect((await malformed.json()).error.code).toBe("malformed_body");
    const unknown = await t.request("GET", "/api/v1/nothing-here", { token });
    expect(unknown.status).toBe(404);
    expect((await unknown.json()).error).toBeDefined();
  });
});

describe("auth", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await testApp({ bodyLimit: 2048 });
  }, 30_000);
  afterAll(() => t.close());

  test("login returns tokens and sets HttpOnly SameSite cookies; a cookie session needs the CSRF header", async () => {
    const login = await t.request("POST", "/api/v1/auth/login", { body: { username: "engineer", password: "correct horse battery" } });
    expect(login.status).toBe(200);
    const session = await login.json();
    expect(session.token_type).toBe("Bearer");
    const cookies = login.headers.getSetCookie();
    expect(cookies.find((c) => c.startsWith("gw_session="))).toMatch(/HttpOnly/i);
    expect(cookies.find((c) => c.startsWith("gw_session="))).toMatch(/SameSite=Strict/i);
    const jar = Object.fromEntries(cookies.map((c) => c.split(";")[0]!.split("=") as [string, string]));
    const cookieHeader = Object.entries(jar).map(([k, v]) => `${k}=${v}`).join("; ");
    const withoutCsrf = await t.request("POST", "/api/v1/pipelines/test", { headers: { cookie: cookieHeader }, body: pipeline("x") });
    expect(withoutCsrf.status).toBe(403);
    expect((await withoutCsrf.json()).error.code).toBe("csrf");
    const me = await t.request("GET", "/api/v1/auth/me", { headers: { cookie: cookieHeader } });
    expect((await me.json()).username).toBe("engineer");

    const refreshed = await t.request("POST", "/api/v1/auth/refresh", { body: { refresh_token: session.refresh_token } });
    expect(refreshed.status).toBe(200);
    expect(await t.request("GET", "/api/v1/auth/me", { token: session.refresh_token }).then((r) => r.status)).toBe(401);
  });

  test("wrong password is a 401 without saying which part was wrong, and logins are rate limited", async () => {
    const wrong = await t.request("POST", "/api/v1/auth/login", { body: { username: "engineer", password: "nope" }, headers: { "x-forwarded-for": "1" } });
    expect(wrong.status).toBe(401);
    expect((await wrong.json()).error.message).toBe("invalid username or password");
    let limited = 0;
    for (let i = 0; i < 12; i++) {
      const r = await t.request("POST", "/api/v1/auth/login", { body: { username: "ghost", password: "x" } });
      if (r.status === 429) limited++;
    }
    expect(limited).toBeGreaterThan(0);
  });

  test("a service account token is shown once, works as a bearer token, and carries its role", async () => {
    const created = await t.request("POST", "/api/v1/service-accounts", { token: t.tokens.Admin, body: { name: "sink-writer", role: "Operator" } });
    expect(created.status).toBe(201);
    const { token } = await created.json();
    expect(token).toStartWith("gw_");
    expect((await t.request("GET", "/api/v1/auth/me", { token })).status).toBe(200);
    expect((await t.request("POST", "/api/v1/pipelines", { token, body: pipeline("y") })).status).toBe(403);
    expect((await t.request("GET", "/api/v1/auth/me", { token: "gw_forged" })).status).toBe(401);
    const users = await (await t.request("GET", "/api/v1/users", { token: t.tokens.Admin })).json();
    expect(JSON.stringify(users)).not.toContain(token);
  });

  test("an oversized body is refused with 413", async () => {
    const big = await t.request("POST", "/api/v1/pipelines", { token: t.tokens.Engineer, body: pipeline("big", { padding: "x".repeat(4096) }) });
    expect(big.status).toBe(413);
  });

  test("the OpenAPI spec is served from the route schemas", async () => {
    const spec = await (await t.request("GET", "/api/docs/json")).json();
    expect(spec.paths["/api/v1/pipelines/"] ?? spec.paths["/api/v1/pipelines"]).toBeDefined();
  });
});

/** Each PostgreSQL run gets its own database, dropped by nobody: names are unique and the test DB is disposable. */
async function freshDatabase(url: string): Promise<string> {
  const { default: postgres } = await import("postgres");
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  const name = `gw_api_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`;
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const next = new URL(url);
  next.pathname = `/${name}`;
  return next.toString();
}
