import { eq } from "drizzle-orm";
import { Elysia } from "elysia";
import { ApiError } from "../src/api/errors.ts";
import { actorOf } from "../src/api/principal.ts";
import { ROLES, type Role } from "../src/auth/permissions.ts";
import { AuthError } from "../src/auth/service.ts";
import { appendAudit } from "../src/db/repo.ts";
import { users, type User } from "../src/db/schema.ts";
import type { UiDeps, Viewer } from "./context.ts";
import { formatDateTime } from "./format.ts";
import { attr, html, type Html } from "./html.ts";
import { field, handle, page, readForm } from "./http.ts";
import { badge, htmlResponse } from "./layout.ts";

/** The same rules as POST /api/v1/users. */
const NAME_PATTERN = /^[A-Za-z0-9._@-]{1,128}$/;
const MIN_PASSWORD = 10;

interface FormErrors {
  [field: string]: string;
}

interface Outcome {
  notice?: Html;
  userForm?: { values: Record<string, string>; errors: FormErrors };
  serviceForm?: { values: Record<string, string>; errors: FormErrors };
}

const isUniqueViolation = (error: unknown) => {
  const e = error as { code?: string; cause?: { code?: string } };
  return e.code === "23505" || e.cause?.code === "23505";
};

function roleSelect(id: string, name: string, current: string, extra: Html = html``): Html {
  return html`<select id="${id}" name="${name}"${extra}>${ROLES.map((r) => html`<option${attr("selected", r === current)}>${r}</option>`)}</select>`;
}

function input(form: "u" | "s", name: string, label: string, values: Record<string, string>, errors: FormErrors, type = "text", hint?: string): Html {
  const id = `${form}-${name}`;
  const error = errors[name];
  const described = [hint ? `${id}-hint` : "", error ? `${id}-error` : ""].filter(Boolean).join(" ");
  return html`<div class="field${error ? " has-error" : ""}"><label for="${id}">${label}</label>
  <input id="${id}" name="${name}" type="${type}" value="${type === "password" ? "" : (values[name] ?? "")}" autocomplete="${type === "password" ? "new-password" : "off"}"${attr("aria-invalid", error ? "true" : undefined)}${attr("aria-describedby", described || undefined)}>
  ${hint ? html`<p class="hint" id="${id}-hint">${hint}</p>` : ""}${error ? html`<p class="field-error" id="${id}-error">${error}</p>` : ""}</div>`;
}

function userRow(u: User, viewer: Viewer): Html {
  const self = u.id === viewer.principal.id;
  return html`<tr>
  <th scope="row">${u.username}${self ? html` <span class="muted small">(you)</span>` : ""}</th>
  <td>${u.kind === "service" ? "service account" : "person"}</td>
  <td>${self ? u.role : roleSelect(`role-${u.id}`, "role", u.role, html` aria-label="Role of ${u.username}" hx-post="/users/${u.id}" hx-trigger="change" hx-target="#users" hx-swap="outerHTML"`)}</td>
  <td>${u.disabled ? badge("disabled", "muted") : badge("active", "ok")}</td>
  <td class="small">${formatDateTime(u.createdAt)}</td>
  <td class="small">${u.kind === "service" ? html`<span class="muted">token</span>` : formatDateTime(u.lastLoginAt)}</td>
  <td class="row-buttons">${
    self
      ? ""
      : html`<button type="button" class="btn btn-small${u.disabled ? "" : " btn-danger-quiet"}" hx-post="/users/${u.id}" hx-vals='${JSON.stringify({ disabled: u.disabled ? "false" : "true" })}'
        hx-target="#users" hx-swap="outerHTML"${attr("hx-confirm", u.disabled ? undefined : `Disable ${u.username}? Their sessions and tokens stop working.`)}>${u.disabled ? "Enable" : "Disable"}</button>`
  }</td>
</tr>`;
}

async function usersSection(deps: UiDeps, viewer: Viewer, outcome: Outcome = {}): Promise<Html> {
  const rows = await deps.db().select().from(users).orderBy(users.kind, users.username);
  const uf = outcome.userForm ?? { values: { role: "Operator" }, errors: {} };
  const sf = outcome.serviceForm ?? { values: { role: "Copilot" }, errors: {} };
  return html`<div id="users" data-errors>
  ${outcome.notice ?? ""}
  <p class="request-error" role="alert"></p>
  <section class="card">
    <table class="data">
      <thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Role</th><th scope="col">Status</th><th scope="col">Created (UTC)</th><th scope="col">Last sign-in</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>${rows.map((u) => userRow(u, viewer))}</tbody>
    </table>
  </section>
  <div class="split">
    <form class="card" hx-post="/users" hx-target="#users" hx-swap="outerHTML" novalidate>
      <h2>Add a person</h2>
      ${input("u", "username", "Username", uf.values, uf.errors, "text", "Letters, digits and . _ @ -")}
      ${input("u", "password", "Initial password", uf.values, uf.errors, "password", `At least ${MIN_PASSWORD} characters; tell it to them in person`)}
      <div class="field"><label for="u-role">Role</label>${roleSelect("u-role", "role", uf.values.role ?? "Operator")}</div>
      <button class="btn btn-primary" type="submit">Add user</button>
    </form>
    <form class="card" hx-post="/users/service-accounts" hx-target="#users" hx-swap="outerHTML" novalidate>
      <h2>Add a service account</h2>
      <p class="hint">For scripts and integrations: signs in with an API token, never a password.</p>
      ${input("s", "name", "Name", sf.values, sf.errors, "text", "e.g. historian-export")}
      <div class="field"><label for="s-role">Role</label>${roleSelect("s-role", "role", sf.values.role ?? "Copilot")}</div>
      <button class="btn btn-primary" type="submit">Create and show token</button>
    </form>
  </div>
</div>`;
}

const isRole = (value: string): value is Role => (ROLES as readonly string[]).includes(value);

export function userPages(deps: UiDeps) {
  return new Elysia({ name: "ui-users", detail: { hide: true } })
    .get(
      "/users",
      handle(deps, async (_ctx, viewer) => page(viewer, "Users and service accounts", await usersSection(deps, viewer))),
    )
    .post(
      "/users",
      handle(deps, async (ctx, viewer) => {
        const form = await readForm(ctx.request);
        const values = { username: field(form, "username").trim(), role: field(form, "role") };
        const password = field(form, "password");
        const errors: FormErrors = {};
        if (!NAME_PATTERN.test(values.username)) errors.username = "1-128 letters, digits or . _ @ -";
        if (password.length < MIN_PASSWORD) errors.password = `at least ${MIN_PASSWORD} characters`;
        if (!isRole(values.role)) errors.role = `one of ${ROLES.join(", ")}`;
        if (Object.keys(errors).length === 0) {
          try {
            const created = await deps.auth.createUser(values.username, password, values.role as Role);
            const [actor, ip] = actorOf(ctx);
            await appendAudit(deps.db(), { actor, ip, action: "user.create", resourceType: "user", resourceId: created.username, changes: { role: { old: null, new: created.role } } });
            return htmlResponse(await usersSection(deps, viewer, { notice: html`<p class="notice notice-ok" role="status">Added ${created.username} as ${created.role}.</p>` }));
          } catch (error) {
            if (isUniqueViolation(error)) errors.username = `${values.username} already exists`;
            else if (error instanceof AuthError) errors.role = error.message;
            else throw error;
          }
        }
        return htmlResponse(await usersSection(deps, viewer, { userForm: { values, errors } }), 422);
      }),
      { parse: "none" },
    )
    .post(
      "/users/service-accounts",
      handle(deps, async (ctx, viewer) => {
        const form = await readForm(ctx.request);
        const values = { name: field(form, "name").trim(), role: field(form, "role") };
        const errors: FormErrors = {};
        if (!NAME_PATTERN.test(values.name)) errors.name = "1-128 letters, digits or . _ @ -";
        if (!isRole(values.role)) errors.role = `one of ${ROLES.join(", ")}`;
        if (Object.keys(errors).length === 0) {
          try {
            const { account, token } = await deps.auth.createServiceAccount(values.name, values.role as Role);
            const [actor, ip] = actorOf(ctx);
            await appendAudit(deps.db(), { actor, ip, action: "service_account.create", resourceType: "user", resourceId: account.username, changes: { role: { old: null, new: account.role } } });
            const notice = html`<div class="notice notice-ok token-once" role="status" tabindex="-1" data-focus>
  <p><strong>${account.username}</strong> (${account.role}) created. Its API token is shown <strong>once</strong>; store it now:</p>
  <p><code class="token">${token}</code></p>
  <p class="hint">Send it as <code>Authorization: Bearer &lt;token&gt;</code>. Lost tokens cannot be shown again: disable the account and create a new one.</p>
</div>`;
            return htmlResponse(await usersSection(deps, viewer, { notice }));
          } catch (error) {
            if (!isUniqueViolation(error)) throw error;
            errors.name = `${values.name} already exists`;
          }
        }
        return htmlResponse(await usersSection(deps, viewer, { serviceForm: { values, errors } }), 422);
      }),
      { parse: "none" },
    )
    .post(
      "/users/:id",
      handle(deps, async (ctx, viewer) => {
        const form = await readForm(ctx.request);
        const [row] = await deps.db().select().from(users).where(eq(users.id, ctx.params.id!)).limit(1).catch(() => []);
        if (!row) throw new ApiError(404, "not_found", `user ${ctx.params.id} not found`);
        if (row.id === viewer.principal.id) throw new ApiError(409, "self_change", "you cannot change your own role or disable yourself; ask another Admin");
        const role = field(form, "role");
        const disabled = field(form, "disabled");
        const change = { ...(isRole(role) ? { role } : {}), ...(disabled === "true" || disabled === "false" ? { disabled: disabled === "true" } : {}) };
        if (Object.keys(change).length === 0) throw new ApiError(422, "validation_failed", "send a role or disabled=true|false");
        const [updated] = await deps.db().update(users).set(change).where(eq(users.id, row.id)).returning();
        const [actor, ip] = actorOf(ctx);
        await appendAudit(deps.db(), {
          actor,
          ip,
          action: "user.update",
          resourceType: "user",
          resourceId: row.username,
          changes: { role: { old: row.role, new: updated!.role }, disabled: { old: row.disabled, new: updated!.disabled } },
        });
        return htmlResponse(await usersSection(deps, viewer, { notice: html`<p class="notice notice-ok" role="status">${row.username}: ${updated!.disabled ? "disabled" : "active"}, ${updated!.role}.</p>` }));
      }),
      { parse: "none" },
    );
}
