import { Elysia } from "elysia";
import type { Supervisor } from "../../supervisor/supervisor.ts";
import type { PipelineService } from "../pipelines/service.ts";
import { buildTopology, type StreamStage } from "./service.ts";

export function topologyRoutes(pipelines: PipelineService, supervisor: Supervisor, stages: () => StreamStage[]) {
  return new Elysia({ detail: { tags: ["topology"] } }).get(
    "/api/v1/topology",
    async () => buildTopology((await pipelines.list(10_000, 0)).items, supervisor.status(), stages()),
    { detail: { summary: "Devices → adapters → topics → workers → sinks, with live rates" } },
  );
}
