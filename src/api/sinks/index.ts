import { versionedResourceRoutes } from "../versioned-routes.ts";
import { SinkBodySchema } from "./model.ts";
import type { SinkService } from "./service.ts";

// The body is checked by the service (the config with the appliance's own sink parser), so the route only documents it.
const SINK_BODY = { requestBody: { required: true as const, content: { "application/json": { schema: SinkBodySchema as never } } } };

export function sinkRoutes(service: SinkService) {
  return versionedResourceRoutes("/api/v1/sinks", "sinks", service, {
    body: SINK_BODY,
    list: "Sinks of this gateway and those bound to none, paginated, by id",
    create: "Create a sink (id: config.sink_id); an existing id gives 409",
    get: "One sink; the ETag is its version",
    replace: "Create or replace a sink (config.sink_id defaults to the URL's id); send If-Match with its ETag for optimistic concurrency",
    remove: "Delete a sink (its versions stay in history)",
    versions: "Sink history, newest first",
  })
    .post("/test", ({ body }) => service.testUnsaved(body), {
      detail: { summary: "Connection test of an unsaved sink: reaches its target once, writes nothing; a target that is down is ok: false", ...SINK_BODY },
    })
    .post("/:id/test", ({ params }) => service.testStored(params.id), {
      detail: { summary: "Connection test of a saved sink: reaches its target once, writes nothing; a target that is down is ok: false" },
    });
}
