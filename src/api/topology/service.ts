import type { PipelineView } from "../pipelines/service.ts";
import type { AdapterStatus } from "../../supervisor/managed-adapter.ts";

export interface TopologyNode {
  id: string;
  kind: "device" | "adapter" | "topic" | "worker" | "sink";
  label: string;
  status?: string;
}

export interface TopologyEdge {
  from: string;
  to: string;
  /** Messages per second flowing along the edge, where known. */
  rate?: number;
}

export interface Topology {
  nodes: TopologyNode[];
  edges: TopologyEdge[];
}

export interface StreamStage {
  id: string;
  label: string;
  inputs: string[];
  outputs: string[];
  status?: string;
  /** The consumer groups of the stage and the topics each reads, for their lag in /api/v1/health. */
  consumers?: { group: string; topics: string[] }[];
}

function devicesOf(adapter: Record<string, unknown>): string[] {
  const source = (adapter.source ?? {}) as Record<string, unknown>;
  const connections = source.connections as Array<{ host: string; port?: number }> | undefined;
  if (connections) return connections.map((c) => `${c.host}:${c.port ?? ""}`.replace(/:$/, ""));
  for (const key of ["host", "endpoint", "url", "broker", "port", "device", "xbee_port"]) {
    const value = source[key];
    if (typeof value === "string" || typeof value === "number") {
      return [key === "host" && source.port ? `${value}:${source.port}` : String(value)];
    }
  }
  return [];
}

/** Pure: devices → adapters → topics → workers → sinks, with live adapter rates. */
export function buildTopology(pipelines: PipelineView[], adapters: AdapterStatus[], stages: StreamStage[] = []): Topology {
  const nodes = new Map<string, TopologyNode>();
  const edges: TopologyEdge[] = [];
  const add = (node: TopologyNode) => nodes.set(node.id, { ...nodes.get(node.id), ...node });
  const status = new Map(adapters.map((a) => [a.pipeline_id, a]));
  for (const p of pipelines) {
    const live = status.get(p.id);
    const adapterId = `adapter:${p.id}`;
    add({ id: adapterId, kind: "adapter", label: `${p.name ?? p.id} (${String(p.adapter.protocol ?? p.runtime)})`, status: p.enabled ? (live?.state ?? "stopped") : "disabled" });
    for (const device of devicesOf(p.adapter)) {
      add({ id: `device:${device}`, kind: "device", label: device });
      edges.push({ from: `device:${device}`, to: adapterId });
    }
    const topic = String(((p.adapter.output ?? {}) as Record<string, unknown>).topic ?? "telemetry.raw");
    add({ id: `topic:${topic}`, kind: "topic", label: topic });
    edges.push({ from: adapterId, to: `topic:${topic}`, ...(live?.health ? { rate: live.health.readings_per_sec } : {}) });
  }
  for (const stage of stages) {
    add({ id: stage.id, kind: stage.id.startsWith("sink:") ? "sink" : "worker", label: stage.label, ...(stage.status ? { status: stage.status } : {}) });
    for (const input of stage.inputs) {
      add({ id: `topic:${input}`, kind: "topic", label: input });
      edges.push({ from: `topic:${input}`, to: stage.id });
    }
    for (const output of stage.outputs) {
      add({ id: `topic:${output}`, kind: "topic", label: output });
      edges.push({ from: stage.id, to: `topic:${output}` });
    }
  }
  return { nodes: [...nodes.values()], edges };
}
