import { eq } from "drizzle-orm";
import { Elysia, t } from "elysia";
import { ROLES } from "../../auth/permissions.ts";
import type { AuthService } from "../../auth/service.ts";
import type { Db } from "../../db/client.ts";
import { appendAudit } from "../../db/repo.ts";
import { users } from "../../db/schema.ts";
import { ApiError, notFound } from "../errors.ts";
import { actorOf } from "../principal.ts";

const Role = t.Union(ROLES.map((r) => t.Literal(r)));

function view(row: typeof users.$inferSelect) {
  return {
    id: row.id,
    username: row.username,
    role: row.role,
    kind: row.kind,
    disabled: row.disabled,
    created_at: row.createdAt.toISOString(),
    last_login_at: row.lastLoginAt?.toISOString() ?? null,
  };
}

function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: string; cause?: { code?: string } };
  return e.code === "23505" || e.cause?.code === "23505";
}

export function userRoutes(db: () => Db, auth: AuthService) {
  return new Elysia({ detail: { tags: ["users"] } })
    .get("/api/v1/users", async () => (await db().select().from(users).orderBy(users.username)).map(view), {
      detail: { summary: "Users and service accounts" },
    })
    .post(
      "/api/v1/users",
      async (ctx) => {
        const [actor, ip] = actorOf(ctx);
        try {
          const created = await auth.createUser(ctx.body.username, ctx.body.password, ctx.body.role);
          await appendAudit(db(), { actor, ip, action: "user.create", resourceType: "user", resourceId: created.username, changes: { role: { old: null, new: created.role } } });
          ctx.set.status = 201;
          return created;
        } catch (error) {
          if (isUniqueViolation(error)) throw new ApiError(409, "already_exists", `user ${ctx.body.username} exists`);
          throw error;
        }
      },
      {
        body: t.Object({
          username: t.String({ minLength: 1, maxLength: 128, pattern: "^[A-Za-z0-9._@-]+$" }),
          password: t.String({ minLength: 10, maxLength: 1024, description: "At least 10 characters" }),
          role: Role,
        }),
        detail: { summary: "Create a user" },
      },
    )
    .patch(
      "/api/v1/users/:id",
      async (ctx) => {
        const [row] = await db().select().from(users).where(eq(users.id, ctx.params.id)).limit(1);
        if (!row) throw notFound(`user ${ctx.params.id}`);
        const [updated] = await db()
          .update(users)
          .set({ ...(ctx.body.role ? { role: ctx.body.role } : {}), ...(ctx.body.disabled === undefined ? {} : { disabled: ctx.body.disabled }) })
          .where(eq(users.id, row.id))
          .returning();
        const [actor, ip] = actorOf(ctx);
        await appendAudit(db(), {
          actor,
          ip,
          action: "user.update",
          resourceType: "user",
          resourceId: row.username,
          changes: { role: { old: row.role, new: updated!.role }, disabled: { old: row.disabled, new: updated!.disabled } },
        });
        return view(updated!);
      },
      { body: t.Object({ role: t.Optional(Role), disabled: t.Optional(t.Boolean()) }), detail: { summary: "Change a user's role, or disable it" } },
    )
    .post(
      "/api/v1/service-accounts",
      async (ctx) => {
        const [actor, ip] = actorOf(ctx);
        try {
          const { account, token } = await auth.createServiceAccount(ctx.body.name, ctx.body.role);
          await appendAudit(db(), { actor, ip, action: "service_account.create", resourceType: "user", resourceId: account.username, changes: { role: { old: null, new: account.role } } });
          ctx.set.status = 201;
          return { ...account, token, note: "The token is shown once; store it now." };
        } catch (error) {
          if (isUniqueViolation(error)) throw new ApiError(409, "already_exists", `account ${ctx.body.name} exists`);
          throw error;
        }
      },
      {
        body: t.Object({ name: t.String({ minLength: 1, maxLength: 128, pattern: "^[A-Za-z0-9._@-]+$" }), role: Role }),
        detail: { summary: "Create a service account; its API token is returned once" },
      },
    );
}
