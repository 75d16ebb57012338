import type { FieldError } from "../../src/config/schema-errors.ts";
import type { Logger } from "../../src/log/logger.ts";
import { defineAdapter } from "../../src/registry.ts";
import { routeOpcuaLogs } from "./log.ts";
import type { OpcuaReader } from "./reader.ts";
import { OpcuaConfigSchema, type OpcuaConfig } from "./schema.ts";

const SECRET_PLACEHOLDER = /\$\{secret:[A-Za-z0-9_.-]+\}/;

export function validateOpcuaConfig(config: OpcuaConfig): FieldError[] {
  const errors: FieldError[] = [];
  const { source } = config;
  if (source.security_mode === "None" && source.security_policy !== undefined && source.security_policy !== "None") {
    errors.push({ path: "source.security_policy", message: `security_mode None sends messages unsigned; policy ${source.security_policy} needs security_mode Sign or SignAndEncrypt` });
  }
  if (source.security_mode !== "None" && source.security_policy === "None") {
    errors.push({ path: "source.security_policy", message: `security_mode ${source.security_mode} needs a policy other than None, e.g. Basic256Sha256` });
  }
  if (typeof source.auth === "object" && /\$\{secret:/.test(source.auth.password) && !SECRET_PLACEHOLDER.test(source.auth.password)) {
    errors.push({ path: "source.auth.password", message: 'a placeholder must read "${secret:NAME}" (NAME: letters, digits, _ . -)' });
  }
  const seen = new Map<string, number>();
  config.mapping.nodes.forEach((node, i) => {
    const key = `${node.asset_id ?? config.output.asset_id}/${node.param}`;
    const first = seen.get(key);
    if (first !== undefined) {
      errors.push({ path: `mapping.nodes[${i}].param`, message: `${JSON.stringify(node.param)} is already used by mapping.nodes[${first}] for asset ${JSON.stringify(node.asset_id ?? config.output.asset_id)}` });
    } else {
      seen.set(key, i);
    }
  });
  return errors;
}

export default defineAdapter({
  protocol: "opcua",
  version: "1.0.0",
  stability: "beta",
  description: "OPC UA client: subscriptions (monitored items with deadbands) or batched polling, with security, user login and automatic session recovery",
  configSchema: OpcuaConfigSchema,
  validate: validateOpcuaConfig,
  create(config, context) {
    routeOpcuaLogs(context.log);
    let reader: OpcuaReader | undefined;
    return {
      // node-opcua is loaded here, not at import: every other adapter shares this registry and
      // should not carry its ~40 MB.
      async start() {
        const { OpcuaReader } = await import("./reader.ts");
        reader = new OpcuaReader(config, context);
        reader.start();
      },
      async stop() {
        await reader?.stop();
      },
    };
  },
  async connectionTest(config, log: Logger) {
    routeOpcuaLogs(log);
    const { OpcuaReader } = await import("./reader.ts");
    const reader = new OpcuaReader(config, {
      log,
      emit: () => undefined,
      recordError: () => undefined,
      readLatency: { observe: () => undefined } as never,
      heartbeat: () => undefined,
    });
    return reader.readOnce();
  },
  heartbeatTimeoutMs(config) {
    const { source } = config;
    const reconnect = 2 * source.timeout_ms + source.max_reconnect_delay_ms + 5000;
    const publish = source.subscription.publishing_interval_ms * source.subscription.keepalive_count * 3 + source.timeout_ms + 5000;
    return Math.max(30_000, reconnect, publish, config.poll_interval_ms * 5);
  },
});
