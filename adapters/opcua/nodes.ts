/**
 * Node ids from the config, and their namespace indices on the server.
 *
 * A namespace index is the position of a namespace URI in the server's NamespaceArray, and a
 * server that rebuilds its address space (a PLC download, a new model) may hand out other
 * positions. So the URI behind each configured index is pinned on the first session, and later
 * sessions map it to wherever that URI is now. `nsu=<uri>;s=...` names the URI directly.
 */
import { coerceNodeId, NodeId } from "node-opcua-nodeid";

export interface ParsedNodeId {
  /** As written in the config. */
  text: string;
  /** With the configured namespace index (0 for the nsu= form until resolved). */
  nodeId: NodeId;
  namespaceUri?: string;
}

const NSU = /^nsu=([^;]+);(.+)$/s;

/** Parses "ns=2;s=Pressure", "i=2258", "nsu=urn:x;s=Pressure"; an Error says what is wrong. */
export function parseNodeId(text: string): ParsedNodeId | Error {
  const trimmed = text.trim();
  const nsu = NSU.exec(trimmed);
  const rest = nsu ? nsu[2]! : trimmed;
  if (nsu && /^ns=/.test(rest)) return new Error(`node_id ${JSON.stringify(text)}: give either nsu= or ns=, not both`);
  let nodeId: NodeId;
  try {
    nodeId = coerceNodeId(rest);
  } catch (error) {
    return new Error(
      `node_id ${JSON.stringify(text)} is not an OPC UA node id (expected e.g. "ns=2;s=Pressure", "ns=3;i=1001", "nsu=urn:plant;s=Pressure"): ${(error as Error).message.split("\n")[0]}`,
    );
  }
  if (nodeId.identifierType === NodeId.NodeIdType.STRING && nodeId.value === "") {
    return new Error(`node_id ${JSON.stringify(text)}: the string identifier is empty`);
  }
  return nsu ? { text, nodeId, namespaceUri: nsu[1]! } : { text, nodeId };
}

export function withNamespace(nodeId: NodeId, namespace: number): NodeId {
  return namespace === nodeId.namespace ? nodeId : new NodeId(nodeId.identifierType, nodeId.value, namespace);
}

export type Resolution = { nodeId: NodeId } | { unknown: string };

/** Maps configured node ids to the server's current namespace indices; one per adapter, kept across sessions. */
export class NamespaceMap {
  /** Configured index → URI, learned on the first session that had the index. */
  readonly #pinned = new Map<number, string>();
  #indexOf = new Map<string, number>();
  #array: string[] = [];

  /** Takes the NamespaceArray of a new session; returns the indices whose URI moved (for the log). */
  update(namespaceArray: string[]): Array<{ uri: string; from: number; to: number | undefined }> {
    this.#array = namespaceArray;
    this.#indexOf = new Map(namespaceArray.map((uri, i) => [uri, i]));
    const moved: Array<{ uri: string; from: number; to: number | undefined }> = [];
    for (const [index, uri] of this.#pinned) {
      const now = this.#indexOf.get(uri);
      if (now !== index) moved.push({ uri, from: index, to: now });
    }
    return moved;
  }

  resolve(parsed: ParsedNodeId): Resolution {
    if (parsed.namespaceUri !== undefined) {
      const index = this.#indexOf.get(parsed.namespaceUri);
      return index === undefined ? { unknown: `namespace ${parsed.namespaceUri} is not on the server` } : { nodeId: withNamespace(parsed.nodeId, index) };
    }
    const configured = parsed.nodeId.namespace;
    if (configured === 0) return { nodeId: parsed.nodeId };
    let uri = this.#pinned.get(configured);
    if (uri === undefined) {
      uri = this.#array[configured];
      if (uri === undefined) return { unknown: `namespace index ${configured} is not on the server (it has ${this.#array.length})` };
      this.#pinned.set(configured, uri);
    }
    const index = this.#indexOf.get(uri);
    return index === undefined ? { unknown: `namespace ${uri} (ns=${configured} when first seen) is no longer on the server` } : { nodeId: withNamespace(parsed.nodeId, index) };
  }
}
