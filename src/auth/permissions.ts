/**
 * The permission matrix, in one place: which role may do what, and which permission each route
 * needs. The guard (src/api/guard.ts) reads ROUTE_PERMISSIONS; a route missing from it is refused,
 * and the RBAC test fails, so a new route cannot ship without a decision here.
 */
export const ROLES = ["Operator", "Engineer", "Admin", "Copilot"] as const;
export type Role = (typeof ROLES)[number];

export const PERMISSIONS = [
  "dashboards:read",
  "topology:read",
  "pipelines:read",
  "pipelines:write",
  "pipelines:test",
  "gateways:read",
  "gateways:manage",
  "config:deploy",
  "sinks:read",
  "sinks:write",
  "alarms:read",
  "alarms:ack",
  "alarm_rules:write",
  "logs:read",
  "audit:read",
  "users:manage",
  "suggest:write",
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const VIEW: Permission[] = ["dashboards:read", "topology:read", "pipelines:read", "gateways:read", "sinks:read", "alarms:read", "logs:read"];

export const ROLE_PERMISSIONS: Record<Role, ReadonlySet<Permission>> = {
  Operator: new Set([...VIEW, "alarms:ack"]),
  Engineer: new Set([...VIEW, "alarms:ack", "pipelines:write", "pipelines:test", "sinks:write", "alarm_rules:write", "audit:read"]),
  Admin: new Set(PERMISSIONS),
  Copilot: new Set([...VIEW, "suggest:write"]),
};

export function can(role: Role, permission: Permission): boolean {
  return ROLE_PERMISSIONS[role].has(permission);
}

/** Reachable without credentials: signing in, liveness for load balancers, scraping, static assets. */
export const PUBLIC = "public" as const;
/** Any signed-in user, whatever the role (their own session). */
export const AUTHENTICATED = "authenticated" as const;
export type RouteRule = Permission | typeof PUBLIC | typeof AUTHENTICATED;

export const ROUTE_PERMISSIONS: Record<string, RouteRule> = {
  "GET /api/v1/health": PUBLIC,
  "GET /metrics": PUBLIC,
  "GET /api/docs": PUBLIC,
  "GET /api/docs/json": PUBLIC,
  "POST /api/v1/auth/login": PUBLIC,
  "POST /api/v1/auth/refresh": PUBLIC,
  "POST /api/v1/auth/logout": AUTHENTICATED,
  "GET /api/v1/auth/me": AUTHENTICATED,

  "GET /api/v1/adapters": "pipelines:read",
  "GET /api/v1/pipelines": "pipelines:read",
  "POST /api/v1/pipelines": "pipelines:write",
  "GET /api/v1/pipelines/:id": "pipelines:read",
  "PUT /api/v1/pipelines/:id": "pipelines:write",
  "DELETE /api/v1/pipelines/:id": "pipelines:write",
  "GET /api/v1/pipelines/:id/versions": "pipelines:read",
  "POST /api/v1/pipelines/:id/test": "pipelines:test",
  "POST /api/v1/pipelines/test": "pipelines:test",

  "GET /api/v1/gateways": "gateways:read",
  "GET /api/v1/gateways/:id": "gateways:read",

  "GET /api/v1/topology": "topology:read",
  "GET /api/v1/audit": "audit:read",

  "GET /api/v1/users": "users:manage",
  "POST /api/v1/users": "users:manage",
  "PATCH /api/v1/users/:id": "users:manage",
  "POST /api/v1/service-accounts": "users:manage",

  "GET /api/v1/alarms": "alarms:read",
  "GET /api/v1/alarms/:id": "alarms:read",
  "POST /api/v1/alarms/:id/ack": "alarms:ack",
  "POST /api/v1/alarms/:id/suppress": "alarms:ack",
  "POST /api/v1/alarms/:id/unsuppress": "alarms:ack",

  // Reading rules is part of viewing alarms; changing them is engineering, like pipelines.
  "GET /api/v1/alarm-rules": "alarms:read",
  "POST /api/v1/alarm-rules": "alarm_rules:write",
  "GET /api/v1/alarm-rules/:id": "alarms:read",
  "PUT /api/v1/alarm-rules/:id": "alarm_rules:write",
  "DELETE /api/v1/alarm-rules/:id": "alarm_rules:write",
  "GET /api/v1/alarm-rules/:id/versions": "alarms:read",

  // A connection test reaches the target with the sink's credentials: engineering, like changing the sink.
  "GET /api/v1/sinks": "sinks:read",
  "POST /api/v1/sinks": "sinks:write",
  "GET /api/v1/sinks/:id": "sinks:read",
  "PUT /api/v1/sinks/:id": "sinks:write",
  "DELETE /api/v1/sinks/:id": "sinks:write",
  "GET /api/v1/sinks/:id/versions": "sinks:read",
  "POST /api/v1/sinks/:id/test": "sinks:write",
  "POST /api/v1/sinks/test": "sinks:write",

  // Web UI (src/api/ui.ts, views/): pages, htmx partials, live streams and the assets they load.
  "GET /assets/htmx.min.js": PUBLIC,
  "GET /assets/sse.min.js": PUBLIC,
  "GET /assets/app.js": PUBLIC,
  "GET /assets/app.css": PUBLIC,
  "GET /login": PUBLIC,
  "POST /login": PUBLIC,
  "POST /logout": AUTHENTICATED,
  "POST /session/refresh": PUBLIC,
  "GET /": "dashboards:read",
  "GET /live/overview": "dashboards:read",
  "GET /pipelines": "pipelines:read",
  "GET /pipelines/new": "pipelines:write",
  "GET /pipelines/:id": "pipelines:read",
  "POST /pipelines/save": "pipelines:write",
  "POST /pipelines/test": "pipelines:test",
  "POST /pipelines/:id/enabled": "pipelines:write",
  "POST /pipelines/:id/delete": "pipelines:write",
  "GET /pipelines/builder/row": "pipelines:write",
  "GET /pipelines/builder/address": "pipelines:write",
  "POST /pipelines/builder/csv": "pipelines:write",
  "GET /topology": "topology:read",
  "GET /tags": "dashboards:read",
  "GET /tags/rows": "dashboards:read",
  "GET /live/tags": "dashboards:read",
  "GET /sinks": "sinks:read",
  "POST /sinks/:id/test": "sinks:write",
  "GET /alarms": "alarms:read",
  "POST /alarms/:id/ack": "alarms:ack",
  "POST /alarms/:id/suppress": "alarms:ack",
  "GET /dlq": "logs:read",
  "GET /audit": "audit:read",
  "GET /users": "users:manage",
  "POST /users": "users:manage",
  "POST /users/service-accounts": "users:manage",
  "POST /users/:id": "users:manage",
};

/** "GET /api/v1/pipelines/" and "GET /api/v1/pipelines" are the same route. */
export function routeKey(method: string, path: string): string {
  return `${method} ${path.length > 1 ? path.replace(/\/$/, "") : path}`;
}
