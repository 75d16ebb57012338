/**
 * `gateway opcua browse` and `gateway simulate opcua`. The simulator (node-opcua-server) is
 * imported only when it runs.
 */
import { choiceOption, defineCommand, intOption, UsageError } from "../../src/cli/command.ts";
import { createLogger } from "../../src/log/logger.ts";
import { routeOpcuaLogs } from "./log.ts";
import { SECURITY_MODES, SECURITY_POLICIES } from "./schema.ts";

export const opcuaCommand = defineCommand({
  name: "opcua",
  summary: "OPC UA tools: browse a server's address space (node ids, data types, access levels).",
  usage: "opcua browse <endpoint> [--node ID] [--depth N] [--security-mode M] [--security-policy P] [--username U --password P] [--json]",
  options: {
    node: { type: "string" },
    depth: { type: "string" },
    "max-nodes": { type: "string" },
    "security-mode": { type: "string" },
    "security-policy": { type: "string" },
    username: { type: "string" },
    password: { type: "string" },
    "pki-dir": { type: "string" },
    "auto-accept": { type: "boolean" },
    json: { type: "boolean" },
  },
  optionHelp: {
    node: 'start node (default Objects, "i=85"), e.g. "ns=2;s=Line1"',
    depth: "levels below the start node (default 3)",
    "max-nodes": "stop after this many nodes (default 5000)",
    "security-mode": "None (default), Sign or SignAndEncrypt",
    "security-policy": "None, Basic256Sha256 (default when signing), Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss",
    username: "log in as this user (default anonymous)",
    password: 'password, or "${secret:NAME}"',
    "pki-dir": "client certificate store (default $GATEWAY_DATA_DIR/opcua-pki)",
    "auto-accept": "trust the server's certificate without checking it",
    json: "print the tree as JSON (the UI's format)",
  },
  positionals: { min: 2, max: 2 },
  async run({ values, positionals }) {
    const [action, endpoint] = positionals as [string, string];
    if (action !== "browse") throw new UsageError(`gateway opcua: unknown action "${action}" (expected: browse)`);
    if (!/^opc\.tcp:\/\//.test(endpoint)) throw new UsageError(`gateway opcua browse: expected an opc.tcp:// endpoint, got "${endpoint}"`);
    if (values.username !== undefined && values.password === undefined) throw new UsageError("--username needs --password");
    const log = createLogger("opcua", process.env.LOG_LEVEL ?? "error");
    routeOpcuaLogs(log);
    const securityMode = choiceOption(values, "security-mode", SECURITY_MODES);
    const securityPolicy = choiceOption(values, "security-policy", SECURITY_POLICIES);
    // node-opcua is loaded only by the commands that use it: every other command starts lighter.
    const { browse, formatTree } = await import("./browse.ts");
    const tree = await browse(endpoint, {
      ...(values.node !== undefined && { nodeId: String(values.node) }),
      depth: intOption(values, "depth", 0, 100) ?? 3,
      maxNodes: intOption(values, "max-nodes", 1, 1_000_000) ?? 5000,
      ...(securityMode && { security_mode: securityMode }),
      ...(securityPolicy && { security_policy: securityPolicy }),
      ...(values.username !== undefined && { auth: { username: String(values.username), password: String(values.password) } }),
      ...(values["pki-dir"] !== undefined && { pki_dir: String(values["pki-dir"]) }),
      auto_accept_server_certificate: values["auto-accept"] === true,
    });
    console.log(values.json ? JSON.stringify(tree, null, 2) : formatTree(tree));
    return 0;
  },
});

/** `gateway simulate opcua --port N --plant FILE [--host ADDR]`: runs until SIGTERM/SIGINT. */
export async function runOpcuaSimulatorCommand(values: Record<string, unknown>): Promise<number> {
  if (!values.plant) throw new UsageError("gateway simulate: --plant FILE is required");
  const port = intOption(values, "port", 0, 65535) ?? 4840;
  const { loadOpcuaPlantFile } = await import("./plant.ts");
  const { startOpcuaSimulator } = await import("./simulator.ts");
  const plant = loadOpcuaPlantFile(String(values.plant));
  const log = createLogger("simulator");
  const simulator = await startOpcuaSimulator({ plant, port, host: (values.host as string | undefined) ?? "127.0.0.1", log });
  log.info({ plant: plant.name, endpoint: simulator.endpoint, nodes: plant.nodes.length, pki_dir: simulator.pkiDir }, "OPC UA simulator listening");
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  await simulator.stop();
  return 0;
}
