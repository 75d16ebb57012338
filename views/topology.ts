import { Elysia } from "elysia";
import { PipelineService } from "../src/api/pipelines/service.ts";
import { buildTopology, type Topology, type TopologyNode } from "../src/api/topology/service.ts";
import type { UiDeps } from "./context.ts";
import { formatRate, toneOf } from "./format.ts";
import { html, type Html } from "./html.ts";
import { handle, page } from "./http.ts";

const COLUMNS: Array<{ kind: TopologyNode["kind"]; title: string; empty: string }> = [
  { kind: "device", title: "Devices", empty: "none" },
  { kind: "adapter", title: "Adapters", empty: "no pipelines" },
  { kind: "topic", title: "Topics", empty: "none" },
  { kind: "worker", title: "Workers", empty: "none reported" },
  { kind: "sink", title: "Sinks", empty: "none configured" },
];
const COL_W = 250;
const NODE_W = 178;
const NODE_H = 46;
const GAP = 18;
const TOP = 44;
const MAX_LABEL = 21;

const truncate = (text: string) => (text.length > MAX_LABEL ? `${text.slice(0, MAX_LABEL - 1)}…` : text);

interface Placed {
  node: TopologyNode;
  x: number;
  y: number;
  col: number;
}

/** Pure: node positions, one column per kind, each column centred vertically. */
export function layoutTopology(topology: Topology): { placed: Map<string, Placed>; width: number; height: number } {
  const byColumn = COLUMNS.map((c) => topology.nodes.filter((n) => n.kind === c.kind).sort((a, b) => a.label.localeCompare(b.label)));
  const rows = Math.max(1, ...byColumn.map((c) => c.length));
  const height = TOP + rows * (NODE_H + GAP) + 8;
  const placed = new Map<string, Placed>();
  byColumn.forEach((nodes, col) => {
    const offset = ((rows - nodes.length) * (NODE_H + GAP)) / 2;
    nodes.forEach((node, row) => placed.set(node.id, { node, col, x: 12 + col * COL_W, y: TOP + offset + row * (NODE_H + GAP) }));
  });
  return { placed, width: 12 + COLUMNS.length * COL_W - (COL_W - NODE_W) + 12, height };
}

function nodeSvg(p: Placed): Html {
  const { node } = p;
  const tone = node.status ? toneOf(node.status) : "none";
  const box = html`<rect x="${p.x}" y="${p.y}" width="${NODE_W}" height="${NODE_H}" rx="6" class="node node-${node.kind} tone-${tone}"></rect>
    <text x="${p.x + 12}" y="${p.y + (node.status ? 19 : 28)}" class="node-label">${truncate(node.label)}</text>
    ${node.status ? html`<text x="${p.x + 12}" y="${p.y + 36}" class="node-status">● ${node.status}</text>` : ""}
    <title>${node.label}${node.status ? ` (${node.status})` : ""}</title>`;
  if (node.kind === "adapter") {
    const id = node.id.slice("adapter:".length);
    return html`<a href="/pipelines/${encodeURIComponent(id)}" class="node-link">${box}</a>`;
  }
  return html`<g>${box}</g>`;
}

export function topologySvg(topology: Topology): Html {
  const { placed, width, height } = layoutTopology(topology);
  const edges = topology.edges
    .map((e) => ({ e, from: placed.get(e.from), to: placed.get(e.to) }))
    .filter((x): x is { e: (typeof topology.edges)[number]; from: Placed; to: Placed } => Boolean(x.from && x.to));
  return html`<svg class="topology" viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="topology-title">
  <title id="topology-title">Data flow: ${topology.nodes.length} nodes, ${topology.edges.length} connections</title>
  <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrow"></path></marker></defs>
  ${COLUMNS.map((c, col) => {
    const x = 12 + col * COL_W;
    const empty = !topology.nodes.some((n) => n.kind === c.kind);
    return html`<text x="${x}" y="22" class="col-title">${c.title}</text>${empty ? html`<text x="${x}" y="${TOP + 24}" class="col-empty">${c.empty}</text>` : ""}`;
  })}
  ${edges.map(({ e, from, to }) => {
    const forward = to.col > from.col;
    const sx = forward ? from.x + NODE_W : from.x;
    const tx = forward ? to.x : to.x + NODE_W;
    const sy = from.y + NODE_H / 2;
    const ty = to.y + NODE_H / 2;
    const dx = Math.max(40, Math.abs(tx - sx) / 2) * (forward ? 1 : -1);
    const label = e.rate === undefined ? "" : `${formatRate(e.rate)}/s`;
    return html`<path d="M${sx},${sy} C${sx + dx},${sy} ${tx - dx},${ty} ${tx},${ty}" class="edge${e.rate ? " edge-live" : ""}" marker-end="url(#arrow)"></path>
    ${label ? html`<text x="${(sx + tx) / 2}" y="${(sy + ty) / 2 - 6}" class="edge-rate" text-anchor="middle">${label}</text>` : ""}`;
  })}
  ${[...placed.values()].map(nodeSvg)}
</svg>`;
}

function edgeTable(topology: Topology): Html {
  const label = new Map(topology.nodes.map((n) => [n.id, n.label]));
  return html`<details class="as-table"><summary>The same as a table</summary>
  <table class="data compact"><thead><tr><th scope="col">From</th><th scope="col">To</th><th scope="col" class="num">Rate</th></tr></thead>
  <tbody>${topology.edges.map((e) => html`<tr><td>${label.get(e.from) ?? e.from}</td><td>${label.get(e.to) ?? e.to}</td><td class="num">${e.rate === undefined ? "—" : `${formatRate(e.rate)}/s`}</td></tr>`)}</tbody></table>
</details>`;
}

export function topologyPages(deps: UiDeps) {
  const service = new PipelineService(deps.db, deps.config, deps.log);
  return new Elysia({ name: "ui-topology", detail: { hide: true } }).get(
    "/topology",
    handle(deps, async (_ctx, viewer) => {
      const { items } = await service.list(500, 0);
      const topology = buildTopology(items, deps.supervisor.status(), deps.stages?.() ?? []);
      return page(
        viewer,
        "Topology",
        html`<section class="card topology-card">
  <div class="card-head"><h2>Devices → adapters → topics → workers → sinks</h2><span class="muted small">rates are readings/s reported by each adapter · select an adapter to open its pipeline</span></div>
  <div class="topology-scroll">${topologySvg(topology)}</div>
  ${edgeTable(topology)}
</section>`,
      );
    }),
  );
}
