import { Elysia, t } from "elysia";
import { etag, expectedVersion } from "../etag.ts";
import { actorOf } from "../principal.ts";
import { SinkBodySchema } from "./model.ts";
import type { SinkService } from "./service.ts";

const Pagination = t.Object({
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 500, default: 50 })),
  offset: t.Optional(t.Integer({ minimum: 0, default: 0 })),
});

// The body is checked by the service (the config with the appliance's own sink parser), so the route only documents it.
const SINK_BODY = { requestBody: { required: true, content: { "application/json": { schema: SinkBodySchema as never } } } };

export function sinkRoutes(service: SinkService) {
  return new Elysia({ prefix: "/api/v1/sinks", detail: { tags: ["sinks"] } })
    .get("/", ({ query }) => service.list(query.limit ?? 50, query.offset ?? 0), {
      query: Pagination,
      detail: { summary: "Sinks of this gateway and those bound to none, paginated, by id" },
    })
    .post(
      "/",
      async (ctx) => {
        const view = await service.save(ctx.body, ...actorOf(ctx), { expectedVersion: 0 });
        ctx.set.status = 201;
        ctx.set.headers.etag = etag(view.version);
        ctx.set.headers.location = `/api/v1/sinks/${encodeURIComponent(view.id)}`;
        return view;
      },
      { detail: { summary: "Create a sink (id: config.sink_id); an existing id gives 409", ...SINK_BODY } },
    )
    .post("/test", ({ body }) => service.testUnsaved(body), {
      detail: { summary: "Connection test of an unsaved sink: reaches its target once, writes nothing; a target that is down is ok: false", ...SINK_BODY },
    })
    .get(
      "/:id",
      async ({ params, set }) => {
        const view = await service.get(params.id);
        set.headers.etag = etag(view.version);
        return view;
      },
      { detail: { summary: "One sink; the ETag is its version" } },
    )
    .put(
      "/:id",
      async (ctx) => {
        const view = await service.save(ctx.body, ...actorOf(ctx), { urlId: ctx.params.id, expectedVersion: expectedVersion(ctx.request.headers.get("if-match")) });
        ctx.set.headers.etag = etag(view.version);
        return view;
      },
      { detail: { summary: "Create or replace a sink (config.sink_id defaults to the URL's id); send If-Match with its ETag for optimistic concurrency", ...SINK_BODY } },
    )
    .delete(
      "/:id",
      async (ctx) => {
        await service.remove(ctx.params.id, ...actorOf(ctx), expectedVersion(ctx.request.headers.get("if-match")));
        ctx.set.status = 204;
      },
      { detail: { summary: "Delete a sink (its versions stay in history)" } },
    )
    .get("/:id/versions", ({ params }) => service.versions(params.id), { detail: { summary: "Sink history, newest first" } })
    .post("/:id/test", ({ params }) => service.testStored(params.id), {
      detail: { summary: "Connection test of a saved sink: reaches its target once, writes nothing; a target that is down is ok: false" },
    });
}
