import { Elysia } from "elysia";
import { ADAPTERS } from "../../adapters.ts";
import type { Db } from "../../db/client.ts";
import { listGateways } from "../../db/repo.ts";
import type { Gateway } from "../../db/schema.ts";
import { notFound } from "../errors.ts";

function view(g: Gateway) {
  return {
    gateway_id: g.id,
    name: g.name,
    mode: g.mode,
    status: g.status,
    last_seen_at: g.lastSeenAt?.toISOString() ?? null,
    applied_config_version: g.appliedConfigVersion,
    updated_at: g.updatedAt.toISOString(),
  };
}

export function gatewayRoutes(db: () => Db) {
  return new Elysia({ detail: { tags: ["gateways"] } })
    .get("/api/v1/gateways", async () => (await listGateways(db())).map(view), { detail: { summary: "Registered gateways" } })
    .get(
      "/api/v1/gateways/:id",
      async ({ params }) => {
        const gateway = (await listGateways(db())).find((g) => g.id === params.id);
        if (!gateway) throw notFound(`gateway ${params.id}`);
        return view(gateway);
      },
      { detail: { summary: "One gateway" } },
    );
}

/** The catalogue of adapter types, with the JSON Schema each one validates its CONFIG_JSON against. */
export function adapterCatalogueRoutes() {
  return new Elysia({ detail: { tags: ["adapters"] } }).get(
    "/api/v1/adapters",
    () =>
      ADAPTERS.map((a) => ({
        protocol: a.protocol,
        version: a.version,
        stability: a.stability,
        description: a.description,
        connection_test: Boolean(a.connectionTest),
        config_schema: a.configSchema,
      })),
    { detail: { summary: "Adapter types and their config schemas" } },
  );
}
