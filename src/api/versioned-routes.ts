import { Elysia, t } from "elysia";
import { etag, expectedVersion } from "./etag.ts";
import type { Page } from "./pipelines/service.ts";
import { actorOf } from "./principal.ts";

/** What a versioned, audited resource of this gateway (alarm rules, sinks) offers its routes. */
export interface VersionedResourceService<View extends { id: string; version: number }> {
  list(limit: number, offset: number): Promise<Page<View>>;
  get(id: string): Promise<View>;
  /** expectedVersion 0: must not exist yet. urlId: the id of a PUT. */
  save(body: unknown, actor: string, ip: string | null, options: { expectedVersion?: number; urlId?: string }): Promise<View>;
  remove(id: string, actor: string, ip: string | null, expectedVersion?: number): Promise<void>;
  versions(id: string): Promise<unknown[]>;
}

export interface VersionedResourceDocs {
  /** The OpenAPI request body of POST and PUT (the service validates; this documents). */
  body: { requestBody: { required: true; content: { "application/json": { schema: never } } } };
  list: string;
  create: string;
  get: string;
  replace: string;
  remove: string;
  versions: string;
}

/** limit/offset of every paginated list. */
export const Pagination = t.Object({
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 500, default: 50 })),
  offset: t.Optional(t.Integer({ minimum: 0, default: 0 })),
});

/**
 * The routes every versioned resource shares: a paginated list, create (201, 409 when the id
 * exists), get with its version as ETag, create-or-replace honouring If-Match (412 when stale),
 * delete, and the version history.
 */
export function versionedResourceRoutes<View extends { id: string; version: number }>(prefix: string, tag: string, service: VersionedResourceService<View>, docs: VersionedResourceDocs) {
  return new Elysia({ prefix, detail: { tags: [tag] } })
    .get("/", ({ query }) => service.list(query.limit ?? 50, query.offset ?? 0), { query: Pagination, detail: { summary: docs.list } })
    .post(
      "/",
      async (ctx) => {
        const view = await service.save(ctx.body, ...actorOf(ctx), { expectedVersion: 0 });
        ctx.set.status = 201;
        ctx.set.headers.etag = etag(view.version);
        ctx.set.headers.location = `${prefix}/${encodeURIComponent(view.id)}`;
        return view;
      },
      { detail: { summary: docs.create, ...docs.body } },
    )
    .get(
      "/:id",
      async ({ params, set }) => {
        const view = await service.get(params.id);
        set.headers.etag = etag(view.version);
        return view;
      },
      { detail: { summary: docs.get } },
    )
    .put(
      "/:id",
      async (ctx) => {
        const view = await service.save(ctx.body, ...actorOf(ctx), { urlId: ctx.params.id, expectedVersion: expectedVersion(ctx.request.headers.get("if-match")) });
        ctx.set.headers.etag = etag(view.version);
        return view;
      },
      { detail: { summary: docs.replace, ...docs.body } },
    )
    .delete(
      "/:id",
      async (ctx) => {
        await service.remove(ctx.params.id, ...actorOf(ctx), expectedVersion(ctx.request.headers.get("if-match")));
        ctx.set.status = 204;
      },
      { detail: { summary: docs.remove } },
    )
    .get("/:id/versions", ({ params }) => service.versions(params.id), { detail: { summary: docs.versions } });
}
