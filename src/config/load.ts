import { existsSync, readFileSync } from "node:fs";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { ConfigError, parseWithSchema } from "./schema-errors.ts";
import { ApplianceConfigSchema, type ApplianceConfig } from "./schema.ts";

export const ENV_PREFIX = "GATEWAY_";

/** Well-known variables that deployments already set, mapped onto config paths. */
const ENV_ALIASES: Record<string, string[]> = {
  DATABASE_URL: ["database", "url"],
  KAFKA_BOOTSTRAP_SERVERS: ["kafka", "bootstrap_servers"],
  LOG_LEVEL: ["log", "level"],
};

const LIST_PATHS = new Set(["kafka.bootstrap_servers"]);

function setPath(target: Record<string, unknown>, path: string[], raw: string): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== "object" || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  const leaf = path[path.length - 1]!;
  node[leaf] = LIST_PATHS.has(path.join(".")) ? raw.split(",").map((s) => s.trim()).filter(Boolean) : raw;
}

/**
 * GATEWAY_HTTP__PORT=8081 sets http.port: double underscore separates levels, so that
 * field names keep their single underscores (GATEWAY_KAFKA__BOOTSTRAP_SERVERS).
 */
export function envOverrides(env: Record<string, string | undefined>): Record<string, unknown> {
  const overrides: Record<string, unknown> = {};
  for (const [name, path] of Object.entries(ENV_ALIASES)) {
    const value = env[name];
    if (value) setPath(overrides, path, value);
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined || name === "GATEWAY_CONFIG") continue;
    if (name.startsWith("GATEWAY_ADMIN_")) continue;
    const path = name.slice(ENV_PREFIX.length).toLowerCase().split("__");
    setPath(overrides, path, value);
  }
  return overrides;
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] =
      value && typeof value === "object" && !Array.isArray(value) && current && typeof current === "object" && !Array.isArray(current)
        ? deepMerge(current as Record<string, unknown>, value as Record<string, unknown>)
        : value;
  }
  return out;
}

export function readYamlFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(path, [{ path: "(file)", message: `cannot read: ${(error as Error).message}` }]);
  }
  try {
    const parsed = parseYaml(text) ?? {};
    if (typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new ConfigError(path, [{ path: "(root)", message: "expected a mapping of settings" }]);
    }
    return parsed as Record<string, unknown>;
  } catch (error) {
    if (error instanceof YAMLParseError) {
      const where = error.linePos?.[0];
      const at = where ? `line ${where.line}, column ${where.col}` : "(file)";
      throw new ConfigError(path, [{ path: at, message: error.message.split("\n")[0]! }]);
    }
    throw error;
  }
}

export interface LoadOptions {
  file?: string;
  env?: Record<string, string | undefined>;
  overrides?: Record<string, unknown>;
}

/** File, then environment, then CLI flags: later sources win. */
export function loadApplianceConfig(options: LoadOptions = {}): ApplianceConfig {
  const env = options.env ?? process.env;
  const file = options.file ?? env.GATEWAY_CONFIG;
  if (options.file && !existsSync(options.file)) {
    throw new ConfigError(options.file, [{ path: "(file)", message: "file not found" }]);
  }
  const fromFile = file && existsSync(file) ? readYamlFile(file) : {};
  const merged = deepMerge(deepMerge(fromFile, envOverrides(env)), options.overrides ?? {});
  return parseWithSchema(ApplianceConfigSchema, merged, file ?? "appliance config");
}
