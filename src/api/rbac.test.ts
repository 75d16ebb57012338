import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { testApp } from "../../test/support/app.ts";
import { can, PUBLIC, ROLES, ROUTE_PERMISSIONS, routeKey, type Role } from "../auth/permissions.ts";
import { GUARD_DENIAL_CODES } from "./guard.ts";

type TestApp = Awaited<ReturnType<typeof testApp>>;

function concretePath(path: string): string {
  return path.replace(/:id/g, "no-such-id").replace(/\*$/, "");
}

describe("RBAC: every route × every role, plus anonymous", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await testApp();
  }, 30_000);
  afterAll(() => t.close());

  const routes = () =>
    t.app.routes
      .filter((r) => r.method !== "OPTIONS" && r.method !== "HEAD")
      .map((r) => ({ method: r.method, path: r.path, key: routeKey(r.method, r.path) }));

  test("every registered route has a permission rule", () => {
    const missing = routes().filter((r) => !(r.key in ROUTE_PERMISSIONS)).map((r) => r.key);
    expect(missing).toEqual([]);
  });

  test("every rule belongs to a registered route", () => {
    const registered = new Set(routes().map((r) => r.key));
    expect(Object.keys(ROUTE_PERMISSIONS).filter((k) => !registered.has(k))).toEqual([]);
  });

  test("the matrix holds for every route and caller", async () => {
    const failures: string[] = [];
    for (const route of routes()) {
      const rule = ROUTE_PERMISSIONS[route.key]!;
      for (const caller of [...ROLES, "anonymous"] as Array<Role | "anonymous">) {
        const token = caller === "anonymous" ? undefined : t.tokens[caller];
        const response = await t.request(route.method, concretePath(route.path), {
          ...(token ? { token } : {}),
          ...(route.method === "GET" || route.method === "DELETE" ? {} : { body: {} }),
        });
        const code = response.headers.get("content-type")?.includes("json") ? ((await response.json()) as { error?: { code?: string } }).error?.code : undefined;
        // A web UI page (a GET outside /api/) sends an anonymous browser to sign in instead of a 401.
        const page = route.method === "GET" && !route.path.startsWith("/api/");
        const signIn = page && response.status === 303 && code === "sign_in" && (response.headers.get("location") ?? "").startsWith("/login?next=");
        const denied = signIn || ((response.status === 401 || response.status === 403) && GUARD_DENIAL_CODES.has(code ?? ""));
        const allowed = rule === PUBLIC || (caller !== "anonymous" && (rule === "authenticated" || can(caller, rule)));
        if (allowed === denied) failures.push(`${route.key} as ${caller}: status ${response.status}, expected ${allowed ? "allowed" : "denied"}`);
        if (caller === "anonymous" && !allowed && response.status !== (page ? 303 : 401)) failures.push(`${route.key} anonymous: ${response.status}, expected ${page ? 303 : 401}`);
      }
    }
    expect(failures).toEqual([]);
  }, 60_000);

  test("the seed's roles: an Operator acknowledges alarms but cannot edit pipelines", () => {
    expect(can("Operator", "alarms:ack")).toBe(true);
    expect(can("Operator", "pipelines:write")).toBe(false);
    expect(can("Engineer", "pipelines:write")).toBe(true);
    expect(can("Engineer", "users:manage")).toBe(false);
    expect(can("Admin", "users:manage")).toBe(true);
    expect(can("Copilot", "suggest:write")).toBe(true);
    expect(can("Copilot", "pipelines:write")).toBe(false);
  });
});
