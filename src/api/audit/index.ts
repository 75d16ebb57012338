import { Elysia, t } from "elysia";
import type { Db } from "../../db/client.ts";
import { listAudit } from "../../db/repo.ts";

export function auditRoutes(db: () => Db) {
  return new Elysia({ prefix: "/api/v1/audit", detail: { tags: ["audit"] } }).get(
    "/",
    async ({ query }) => {
      const limit = query.limit ?? 100;
      const rows = await listAudit(db(), {
        ...(query.resource_type ? { resourceType: query.resource_type } : {}),
        ...(query.resource_id ? { resourceId: query.resource_id } : {}),
        limit,
        ...(query.before ? { before: query.before } : {}),
      });
      const items = rows.map((r) => ({
        id: r.id,
        timestamp: r.at.toISOString(),
        user: r.actor,
        action: r.action,
        resource_type: r.resourceType,
        resource_id: r.resourceId,
        changes: r.changes,
        ip_address: r.ip,
      }));
      return { items, next_before: items.length === limit ? items.at(-1)!.id : null };
    },
    {
      query: t.Object({
        resource_type: t.Optional(t.String()),
        resource_id: t.Optional(t.String()),
        limit: t.Optional(t.Integer({ minimum: 1, maximum: 1000, default: 100 })),
        before: t.Optional(t.Integer({ minimum: 1, description: "Cursor: the id of the last row of the previous page" })),
      }),
      detail: { summary: "The audit log, newest first, filterable by resource" },
    },
  );
}
