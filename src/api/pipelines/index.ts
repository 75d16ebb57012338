import { Elysia } from "elysia";
import { DeclaredPipelineSchema } from "../../config/schema.ts";
import { ApiError } from "../errors.ts";
import { etag, expectedVersion } from "../etag.ts";
import { actorOf } from "../principal.ts";
import { Pagination } from "../versioned-routes.ts";
import type { PipelineService } from "./service.ts";

export function pipelineRoutes(service: PipelineService) {
  return new Elysia({ prefix: "/api/v1/pipelines", detail: { tags: ["pipelines"] } })
    .get("/", ({ query }) => service.list(query.limit ?? 50, query.offset ?? 0), {
      query: Pagination,
      detail: { summary: "Pipelines of this gateway, paginated" },
    })
    .post(
      "/",
      async (ctx) => {
        const { view } = await service.save(ctx.body, ...actorOf(ctx), 0);
        ctx.set.status = 201;
        ctx.set.headers.etag = etag(view.version);
        ctx.set.headers.location = `/api/v1/pipelines/${view.id}`;
        return view;
      },
      { body: DeclaredPipelineSchema, detail: { summary: "Create a pipeline; an existing id gives 409" } },
    )
    .post("/test", ({ body }) => service.connectionTest(body), {
      body: DeclaredPipelineSchema,
      detail: { summary: "Connection test of an unsaved pipeline: a few decoded live readings, nothing saved" },
    })
    .get(
      "/:id",
      async ({ params, set }) => {
        const view = await service.get(params.id);
        set.headers.etag = etag(view.version);
        return view;
      },
      { detail: { summary: "One pipeline; the ETag is its version" } },
    )
    .put(
      "/:id",
      async (ctx) => {
        if (ctx.body.id !== ctx.params.id) throw new ApiError(422, "validation_failed", "id in the body differs from the URL", [{ path: "id", message: `expected "${ctx.params.id}"` }]);
        const { view } = await service.save(ctx.body, ...actorOf(ctx), expectedVersion(ctx.request.headers.get("if-match")));
        ctx.set.headers.etag = etag(view.version);
        return view;
      },
      { body: DeclaredPipelineSchema, detail: { summary: "Replace a pipeline; send If-Match with its ETag for optimistic concurrency" } },
    )
    .delete(
      "/:id",
      async (ctx) => {
        await service.remove(ctx.params.id, ...actorOf(ctx), expectedVersion(ctx.request.headers.get("if-match")));
        ctx.set.status = 204;
      },
      { detail: { summary: "Delete a pipeline (its versions stay in history)" } },
    )
    .get("/:id/versions", ({ params }) => service.versions(params.id), { detail: { summary: "Config history, newest first" } })
    .post(
      "/:id/test",
      async ({ params }) => {
        const view = await service.get(params.id);
        return service.connectionTest(view);
      },
      { detail: { summary: "Connection test of a saved pipeline: a few decoded live readings, nothing saved" } },
    );
}
