import { readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * The gateway's data folder as an adapter process sees it: GATEWAY_DATA_DIR (the appliance's
 * data_dir override), else the appliance default.
 */
export function gatewayDataDir(env: Record<string, string | undefined> = process.env): string {
  return env.GATEWAY_DATA_DIR || ".data/gateway";
}

/**
 * `${secret:NAME}` in a config value. NAME is looked up as the env variable `SECRET_<NAME>`
 * (upper-cased, other characters than A-Z and 0-9 as `_`), then as the file
 * `<data dir>/secrets/<NAME>` (trailing newline trimmed). A placeholder that resolves to nothing
 * is an error naming both places, never an empty password sent to a server.
 */
const PLACEHOLDER = /\$\{secret:([A-Za-z0-9_.-]+)\}/g;

export class SecretError extends Error {
  override name = "SecretError";
}

export function secretEnvName(name: string): string {
  return `SECRET_${name.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
}

export function resolveSecret(name: string, env: Record<string, string | undefined> = process.env): string {
  const fromEnv = env[secretEnvName(name)];
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  const file = join(gatewayDataDir(env), "secrets", name);
  try {
    const text = readFileSync(file, "utf8").replace(/\r?\n$/, "");
    if (text !== "") return text;
  } catch {
    // reported below
  }
  throw new SecretError(`secret "${name}" not found: set ${secretEnvName(name)} or create ${file}`);
}

/** Replaces every `${secret:NAME}`; text without placeholders comes back unchanged. */
export function resolveSecrets(text: string, env: Record<string, string | undefined> = process.env): string {
  return text.replace(PLACEHOLDER, (_, name: string) => resolveSecret(name, env));
}
