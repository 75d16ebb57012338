/**
 * `gateway simulate opcua`: an OPC UA server (node-opcua-server) whose variables follow a plant
 * file's waveforms. Tests and benchmarks start it in process; stop/restart/rebuild exist for
 * the recovery tests.
 *
 * node-opcua-server is loaded on first use (server-loader.ts): it reads its own package.json
 * as it loads, which needs help inside the compiled binary.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import imagePath from "node-opcua-nodesets/nodesets/Opc.Ua.NodeSet2.ndjson.gz" with { type: "file" };
import { OPCUACertificateManager } from "node-opcua-certificate-manager";
import { MessageSecurityMode, SecurityPolicy, StatusCode, StatusCodes } from "node-opcua-client";
import type { OPCUAServer } from "node-opcua-server";
import { DataType, Variant } from "node-opcua-variant";
import type { Logger } from "../../src/log/logger.ts";
import { routeOpcuaLogs } from "./log.ts";
import { loadOpcuaServer } from "./server-loader.ts";
import { plantValue, tickOf, type OpcuaPlant, type PlantDataType, type PlantNode } from "./plant.ts";
import type { SecurityModeName, SecurityPolicyName } from "./schema.ts";

export interface OpcuaSimulatorSecurity {
  /** Default all three. */
  modes?: SecurityModeName[];
  /** Default all four (None only pairs with mode None). */
  policies?: SecurityPolicyName[];
  /** user name → password; with users set, anonymous is refused unless allowAnonymous. */
  users?: Record<string, string>;
  allowAnonymous?: boolean;
}

export interface OpcuaSimulatorOptions {
  plant: OpcuaPlant;
  /** 0 (default) picks a free port; restart() keeps the port. */
  port?: number;
  host?: string;
  security?: OpcuaSimulatorSecurity;
  /** Server certificate store; default a temporary folder, kept across restart() and removed by stop(). */
  pkiDir?: string;
  /** Operation limits, like a PLC's: monitored items per Create/Modify/Delete call and nodes per Read (0: none). */
  maxItemsPerCall?: number;
  /** Wall clock in ms; tests may freeze it. */
  clock?: () => number;
  log?: Logger;
}

export interface OpcuaSimulator {
  readonly port: number;
  /** opc.tcp://127.0.0.1:<port> (or the host given). */
  readonly endpoint: string;
  /** Folder holding the server certificate (own/certs). */
  readonly pkiDir: string;
  /** The server's certificate (DER), to put in a client's trust list. */
  certificate(): Buffer;
  stop(): Promise<void>;
  /**
   * Shuts the server down and starts a new one on the same port after `downMs`. With
   * extraNamespaces, those are registered before the plant's, so the plant's namespace
   * indices move (an address space rebuilt by a PLC download).
   */
  restart(options?: { downMs?: number; extraNamespaces?: string[] }): Promise<void>;
  /** Deletes every plant variable, then adds them back after `goneMs` (live, no restart). */
  rebuild(goneMs?: number): Promise<void>;
}

const MODES: Record<SecurityModeName, MessageSecurityMode> = {
  None: MessageSecurityMode.None,
  Sign: MessageSecurityMode.Sign,
  SignAndEncrypt: MessageSecurityMode.SignAndEncrypt,
};
const POLICIES: Record<SecurityPolicyName, SecurityPolicy> = {
  None: SecurityPolicy.None,
  Basic256Sha256: SecurityPolicy.Basic256Sha256,
  Aes128_Sha256_RsaOaep: SecurityPolicy.Aes128_Sha256_RsaOaep,
  Aes256_Sha256_RsaPss: SecurityPolicy.Aes256_Sha256_RsaPss,
};

const DATA_TYPES: Record<PlantDataType, DataType> = {
  Boolean: DataType.Boolean, SByte: DataType.SByte, Byte: DataType.Byte, Int16: DataType.Int16, UInt16: DataType.UInt16,
  Int32: DataType.Int32, UInt32: DataType.UInt32, Int64: DataType.Int64, UInt64: DataType.UInt64,
  Float: DataType.Float, Double: DataType.Double, String: DataType.String,
};

/** The standard nodeset as node-opcua's precompiled image: 190 KB, embedded in the binary with the code. */
let nodesetImage: Uint8Array | undefined;
const standardNodeset = () => (nodesetImage ??= readFileSync(imagePath));

function variant(node: PlantNode, value: number | boolean | string | bigint): Variant {
  if (typeof value === "bigint") {
    const words = [Number((value >> 32n) & 0xffffffffn), Number(value & 0xffffffffn)];
    return new Variant({ dataType: DATA_TYPES[node.type], value: words });
  }
  return new Variant({ dataType: DATA_TYPES[node.type], value });
}

interface LiveNode {
  node: PlantNode;
  variable: { setValueFromSource(value: Variant, status?: StatusCode, at?: Date): void };
  last: string | undefined;
}

class Instance {
  readonly server: OPCUAServer;
  readonly #timers: Array<ReturnType<typeof setTimeout>> = [];
  #live: LiveNode[] = [];
  #stopped = false;

  constructor(
    Server: typeof OPCUAServer,
    readonly options: OpcuaSimulatorOptions,
    port: number,
    cm: OPCUACertificateManager,
    readonly extraNamespaces: string[],
  ) {
    const security = options.security ?? {};
    const users = security.users;
    const modes = (security.modes ?? ["None", "Sign", "SignAndEncrypt"]).map((m) => MODES[m]);
    const policies = (security.policies ?? ["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]).map((p) => POLICIES[p]);
    const host = options.host ?? "127.0.0.1";
    this.server = new Server({
      port,
      host,
      hostname: host,
      nodesets: [standardNodeset()],
      securityModes: modes,
      securityPolicies: policies,
      allowAnonymous: users ? security.allowAnonymous === true : security.allowAnonymous !== false,
      ...(users && { userManager: { isValidUser: (name: string, password: string) => users[name] !== undefined && users[name] === password } }),
      serverCertificateManager: cm,
      buildInfo: { productName: `gateway simulator: ${options.plant.name}`, manufacturerName: "Industrial Data Gateway" },
      serverInfo: { applicationUri: "urn:industrial-data-gateway:simulator", productUri: "urn:industrial-data-gateway:simulator" },
      maxConnectionsPerEndpoint: 100,
      serverCapabilities: {
        maxSessions: 100,
        ...(options.maxItemsPerCall && { operationLimits: { maxMonitoredItemsPerCall: options.maxItemsPerCall, maxNodesPerRead: options.maxItemsPerCall } }),
      },
    });
  }

  async start(): Promise<void> {
    await this.server.initialize();
    const addressSpace = this.server.engine.addressSpace!;
    for (const uri of this.extraNamespaces) addressSpace.registerNamespace(uri);
    for (const uri of this.options.plant.namespaces) addressSpace.registerNamespace(uri);
    this.#addNodes();
    await this.server.start();
  }

  #addNodes(): void {
    const { plant } = this.options;
    const addressSpace = this.server.engine.addressSpace!;
    const own = addressSpace.getOwnNamespace();
    const namespaces = [own, ...plant.namespaces.map((uri) => addressSpace.getNamespace(uri)!)];
    const root = own.addFolder(addressSpace.rootFolder.objects, { browseName: plant.name, nodeId: `s=${plant.name}` });
    const folders = new Map<string, typeof root>();
    const folderOf = (path: string | undefined) => {
      if (!path) return root;
      let parent = root;
      let at = "";
      for (const part of path.split("/")) {
        at = at ? `${at}/${part}` : part;
        let folder = folders.get(at);
        if (!folder) {
          folder = own.addFolder(parent, { browseName: part, nodeId: `s=${plant.name}/${at}` });
          folders.set(at, folder);
        }
        parent = folder;
      }
      return parent;
    };
    this.#live = plant.nodes.map((node) => {
      const namespace = namespaces[node.namespace - 1]!;
      const variable = namespace.addVariable({
        componentOf: folderOf(node.folder),
        browseName: node.browseName,
        nodeId: typeof node.identifier === "number" ? `i=${node.identifier}` : `s=${node.identifier}`,
        dataType: node.type,
        minimumSamplingInterval: 0,
        accessLevel: node.writable ? "CurrentRead | CurrentWrite" : "CurrentRead",
        userAccessLevel: node.writable ? "CurrentRead | CurrentWrite" : "CurrentRead",
        ...(node.description !== undefined && { description: node.description }),
      });
      return { node, variable: variable as unknown as LiveNode["variable"], last: undefined };
    });
    this.#update(true);
  }

  #removeNodes(): void {
    const addressSpace = this.server.engine.addressSpace!;
    for (const live of this.#live) addressSpace.deleteNode((live.variable as unknown as { nodeId: never }).nodeId);
    this.#live = [];
  }

  /** Sets every node whose held value changed; schedules itself for the next tick of each update rate. */
  #update(first = false): void {
    const now = (this.options.clock ?? Date.now)();
    for (const live of this.#live) {
      const tick = tickOf(live.node, now);
      const value = plantValue(live.node, tick, this.options.plant.epochMs);
      const key = String(value);
      if (key === live.last) continue;
      live.last = key;
      const status = live.node.status ? (StatusCodes as unknown as Record<string, StatusCode>)[live.node.status] ?? StatusCodes.Good : StatusCodes.Good;
      live.variable.setValueFromSource(variant(live.node, value), status, new Date(tick));
    }
    if (first) this.#schedule();
  }

  #schedule(): void {
    const rates = [...new Set(this.options.plant.nodes.map((n) => n.updateMs))];
    for (const rate of rates) {
      const loop = () => {
        if (this.#stopped) return;
        this.#update();
        const now = Date.now();
        this.#timers.push(setTimeout(loop, rate - (now % rate) + 1));
      };
      this.#timers.push(setTimeout(loop, rate - (Date.now() % rate) + 1));
    }
  }

  async rebuild(goneMs: number): Promise<void> {
    this.#removeNodes();
    await Bun.sleep(goneMs);
    const addressSpace = this.server.engine.addressSpace!;
    const own = addressSpace.getOwnNamespace();
    const root = addressSpace.findNode(`ns=${own.index};s=${this.options.plant.name}`);
    if (root) addressSpace.deleteNode(root);
    this.#addNodes();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    await this.server.shutdown(0);
  }
}

export async function startOpcuaSimulator(options: OpcuaSimulatorOptions): Promise<OpcuaSimulator> {
  if (options.log) routeOpcuaLogs(options.log);
  const pkiDir = options.pkiDir ?? mkdtempSync(join(tmpdir(), "opcua-sim-pki-"));
  const cm = new OPCUACertificateManager({ rootFolder: pkiDir, automaticallyAcceptUnknownCertificate: true });
  await cm.initialize();
  let port = options.port ?? 0;
  if (port === 0) port = await freePort(options.host ?? "127.0.0.1");
  const { OPCUAServer: Server } = await loadOpcuaServer();
  let instance = new Instance(Server, options, port, cm, []);
  await instance.start();
  const endpoint = `opc.tcp://${options.host ?? "127.0.0.1"}:${port}`;
  let stopped = false;
  return {
    port,
    endpoint,
    pkiDir,
    certificate: () => instance.server.getCertificate(),
    async stop() {
      if (stopped) return;
      stopped = true;
      await instance.stop();
      await cm.dispose();
      if (!options.pkiDir) rmSync(pkiDir, { recursive: true, force: true });
    },
    async restart({ downMs = 0, extraNamespaces = [] } = {}) {
      await instance.stop();
      if (downMs > 0) await Bun.sleep(downMs);
      instance = new Instance(Server, options, port, cm, extraNamespaces);
      await instance.start();
    },
    rebuild: (goneMs = 1000) => instance.rebuild(goneMs),
  };
}

async function freePort(host: string): Promise<number> {
  const server = Bun.listen({ hostname: host, port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}
