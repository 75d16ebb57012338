/**
 * The server's address space as a tree: what `gateway opcua browse` prints and what the UI's
 * node picker shows. Follows hierarchical references forward from a start node (Objects by
 * default), `depth` levels down, and reads each variable's data type and access level.
 */
import { AttributeIds, BrowseDirection, DataType, NodeClass, type ReferenceDescription } from "node-opcua-client";
import { closeSession, openSession, type ClientSession, type SessionOptions } from "./client.ts";

export interface BrowseNode {
  nodeId: string;
  browseName: string;
  displayName: string;
  nodeClass: string;
  /** Variables: the data type's name (e.g. Double), or its node id when the server does not name it. */
  dataType?: string;
  /** Variables: "R", "RW", "W" or "-" (the user's access level when the server reports it). */
  access?: string;
  children: BrowseNode[];
  /** True when depth or max_nodes stopped the walk below this node. */
  truncated?: boolean;
}

export interface BrowseOptions extends Omit<SessionOptions, "endpoint"> {
  /** Start node; default Objects (i=85). */
  nodeId?: string;
  /** Levels below the start node; default 3. */
  depth?: number;
  /** Stop after this many nodes; default 5000. */
  maxNodes?: number;
}

const HIERARCHICAL_REFERENCES = "i=33";

async function browseAll(session: ClientSession, nodeIds: string[]): Promise<ReferenceDescription[][]> {
  const results = await session.browse(
    nodeIds.map((nodeId) => ({
      nodeId,
      browseDirection: BrowseDirection.Forward,
      referenceTypeId: HIERARCHICAL_REFERENCES,
      includeSubtypes: true,
      nodeClassMask: 0,
      resultMask: 0x3f,
    })),
  );
  const out: ReferenceDescription[][] = [];
  for (const result of results) {
    const refs = [...(result.references ?? [])];
    let continuation = result.continuationPoint;
    while (continuation && continuation.length > 0) {
      const [next] = await session.browseNext([continuation], false);
      refs.push(...(next?.references ?? []));
      continuation = next?.continuationPoint ?? Buffer.alloc(0);
    }
    out.push(refs);
  }
  return out;
}

function accessText(level: number | undefined): string | undefined {
  if (level === undefined) return undefined;
  const read = (level & 1) !== 0;
  const write = (level & 2) !== 0;
  return read && write ? "RW" : read ? "R" : write ? "W" : "-";
}

/** Fills in data type names and access levels of the variables found. */
async function describeVariables(session: ClientSession, variables: BrowseNode[]): Promise<void> {
  const BATCH = 500;
  const typeIds = new Map<string, string | undefined>();
  for (let i = 0; i < variables.length; i += BATCH) {
    const batch = variables.slice(i, i + BATCH);
    const values = await session.read(
      batch.flatMap((v) => [
        { nodeId: v.nodeId, attributeId: AttributeIds.DataType },
        { nodeId: v.nodeId, attributeId: AttributeIds.UserAccessLevel },
      ]),
    );
    batch.forEach((v, j) => {
      const type = values[2 * j]?.value?.value as { toString(): string; namespace?: number; value?: unknown } | null | undefined;
      if (type) {
        const id = type.toString();
        const builtIn = type.namespace === 0 && typeof type.value === "number" ? DataType[type.value as number] : undefined;
        v.dataType = builtIn ?? id;
        if (!builtIn) typeIds.set(id, undefined);
      }
      const access = accessText(values[2 * j + 1]?.value?.value as number | undefined);
      if (access !== undefined) v.access = access;
    });
  }
  // Data types outside the built-in ones (ns=0 enumerations and structures, vendor types): their browse names.
  const ids = [...typeIds.keys()];
  for (let i = 0; i < ids.length; i += BATCH) {
    const names = await session.read(ids.slice(i, i + BATCH).map((nodeId) => ({ nodeId, attributeId: AttributeIds.BrowseName })));
    ids.slice(i, i + BATCH).forEach((id, j) => typeIds.set(id, (names[j]?.value?.value as { name?: string } | null)?.name ?? undefined));
  }
  for (const v of variables) if (v.dataType && typeIds.get(v.dataType)) v.dataType = typeIds.get(v.dataType);
}

/** Walks the tree breadth first, one Browse request per level. */
export async function browseSession(session: ClientSession, options: Pick<BrowseOptions, "nodeId" | "depth" | "maxNodes"> = {}): Promise<BrowseNode> {
  const depth = options.depth ?? 3;
  const maxNodes = options.maxNodes ?? 5000;
  const start = options.nodeId ?? "i=85";
  const [nameValue, classValue, displayValue] = await session.read([
    { nodeId: start, attributeId: AttributeIds.BrowseName },
    { nodeId: start, attributeId: AttributeIds.NodeClass },
    { nodeId: start, attributeId: AttributeIds.DisplayName },
  ]);
  if (nameValue && nameValue.statusCode.isBad()) throw new Error(`${start}: ${nameValue.statusCode.toString()}`);
  const root: BrowseNode = {
    nodeId: start,
    browseName: (nameValue?.value?.value as { name?: string } | null)?.name ?? start,
    displayName: (displayValue?.value?.value as { text?: string } | null)?.text ?? "",
    nodeClass: NodeClass[(classValue?.value?.value as number) ?? 0] ?? "Unspecified",
    children: [],
  };
  const variables: BrowseNode[] = root.nodeClass === "Variable" ? [root] : [];
  const seen = new Set<string>([start]);
  let level = [root];
  let count = 1;
  for (let d = 0; d < depth && level.length > 0; d++) {
    const next: BrowseNode[] = [];
    const results = await browseAll(session, level.map((n) => n.nodeId));
    level.forEach((parent, i) => {
      for (const ref of results[i] ?? []) {
        const nodeId = ref.nodeId.toString();
        if (seen.has(nodeId)) continue;
        if (count >= maxNodes) {
          parent.truncated = true;
          break;
        }
        seen.add(nodeId);
        count++;
        const child: BrowseNode = {
          nodeId,
          browseName: ref.browseName?.name ?? nodeId,
          displayName: ref.displayName?.text ?? "",
          nodeClass: NodeClass[ref.nodeClass] ?? "Unspecified",
          children: [],
        };
        parent.children.push(child);
        next.push(child);
        if (ref.nodeClass === NodeClass.Variable) variables.push(child);
      }
    });
    level = next;
  }
  if (level.length > 0) {
    // Nodes at the depth limit: say whether there is more below them.
    const results = await browseAll(session, level.map((n) => n.nodeId));
    level.forEach((node, i) => {
      if ((results[i]?.length ?? 0) > 0) node.truncated = true;
    });
  }
  await describeVariables(session, variables);
  return root;
}

/** Connects, browses, disconnects. */
export async function browse(endpoint: string, options: BrowseOptions = {}): Promise<BrowseNode> {
  const open = await openSession({ ...options, endpoint });
  try {
    return await browseSession(open.session, options);
  } finally {
    await closeSession(open);
  }
}

/** The tree as text: one node a line, with its node id, data type and access level. */
export function formatTree(root: BrowseNode): string {
  const lines: string[] = [];
  const describe = (n: BrowseNode) =>
    [n.browseName, `[${n.nodeId}]`, n.nodeClass, n.dataType, n.access, n.truncated ? "…" : undefined].filter(Boolean).join("  ");
  const walk = (node: BrowseNode, prefix: string, last: boolean, top: boolean) => {
    lines.push(top ? describe(node) : `${prefix}${last ? "└─ " : "├─ "}${describe(node)}`);
    const childPrefix = top ? "" : prefix + (last ? "   " : "│  ");
    node.children.forEach((child, i) => walk(child, childPrefix, i === node.children.length - 1, false));
  };
  walk(root, "", true, true);
  return lines.join("\n");
}
