import { Elysia, t } from "elysia";
import { AlarmRuleSchema } from "../../streams/alarms/rules.ts";
import { etag, expectedVersion } from "../etag.ts";
import { actorOf } from "../principal.ts";
import type { AlarmRuleService } from "./service.ts";

const Pagination = t.Object({
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 500, default: 50 })),
  offset: t.Optional(t.Integer({ minimum: 0, default: 0 })),
});

// The body is checked by the service with the rules file's own parser (schema defaults, then the
// checks the schema cannot express), so the route only documents it. (The cast: TypeBox writes
// JSON Schema's numeric exclusiveMinimum, the OpenAPI 3.0 types expect a boolean.)
const RULE_BODY = { requestBody: { required: true, content: { "application/json": { schema: AlarmRuleSchema as never } } } };

export function alarmRuleRoutes(service: AlarmRuleService) {
  return new Elysia({ prefix: "/api/v1/alarm-rules", detail: { tags: ["alarm rules"] } })
    .get("/", ({ query }) => service.list(query.limit ?? 50, query.offset ?? 0), {
      query: Pagination,
      detail: { summary: "Alarm rules of this gateway, paginated, by id" },
    })
    .post(
      "/",
      async (ctx) => {
        const view = await service.save(ctx.body, ...actorOf(ctx), { expectedVersion: 0 });
        ctx.set.status = 201;
        ctx.set.headers.etag = etag(view.version);
        ctx.set.headers.location = `/api/v1/alarm-rules/${encodeURIComponent(view.id)}`;
        return view;
      },
      { detail: { summary: "Create an alarm rule (id default <asset_id>/<parameter>); an existing id gives 409", ...RULE_BODY } },
    )
    .get(
      "/:id",
      async ({ params, set }) => {
        const view = await service.get(params.id);
        set.headers.etag = etag(view.version);
        return view;
      },
      { detail: { summary: "One alarm rule; the ETag is its version" } },
    )
    .put(
      "/:id",
      async (ctx) => {
        const view = await service.save(ctx.body, ...actorOf(ctx), { urlId: ctx.params.id, expectedVersion: expectedVersion(ctx.request.headers.get("if-match")) });
        ctx.set.headers.etag = etag(view.version);
        return view;
      },
      { detail: { summary: "Create or replace an alarm rule; send If-Match with its ETag for optimistic concurrency", ...RULE_BODY } },
    )
    .delete(
      "/:id",
      async (ctx) => {
        await service.remove(ctx.params.id, ...actorOf(ctx), expectedVersion(ctx.request.headers.get("if-match")));
        ctx.set.status = 204;
      },
      { detail: { summary: "Delete an alarm rule (its versions stay in history); its open alarms clear at the tag's next reading" } },
    )
    .get("/:id/versions", ({ params }) => service.versions(params.id), { detail: { summary: "Rule history, newest first" } });
}
