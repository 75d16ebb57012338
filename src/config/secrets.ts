import { readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * `${secret:NAME}` in any config the gateway reads (adapter CONFIG_JSON, sink config, alert
 * routing YAML). One lookup order everywhere, so a secret placed once works for every component:
 *
 * 1. the environment variable `SECRET_<NAME>` (upper-cased; characters other than A-Z and 0-9 as `_`);
 * 2. the file `<dir>/<NAME>` (one trailing newline dropped) in each secrets folder in turn:
 *    `$SECRETS_DIR` (default /run/secrets, the Docker/Kubernetes convention), then
 *    `<GATEWAY_DATA_DIR, else .data/gateway>/secrets`.
 *
 * An empty value counts as missing: a secret that resolves to nothing is an error naming every
 * place looked at, never an empty password sent to a server. Secrets are resolved when a component
 * starts and are never written back into stored config.
 */

type Env = Record<string, string | undefined>;

export interface SecretSources {
  env?: Env;
  /** Folders searched in order; default `defaultSecretDirs(env)`. */
  dirs?: readonly string[];
}

export class SecretError extends Error {
  constructor(
    readonly secret: string,
    message: string,
  ) {
    super(message);
    this.name = "SecretError";
  }
}

/** Names are file names inside a secrets folder, never paths. */
export const SECRET_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const PLACEHOLDER = /\$\{secret:([^}]*)\}/g;

export function secretEnvName(name: string): string {
  return `SECRET_${name.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
}

/** The gateway's data folder as a child process sees it: GATEWAY_DATA_DIR, else the appliance default. */
export function gatewayDataDir(env: Env = process.env): string {
  return env.GATEWAY_DATA_DIR || ".data/gateway";
}

export function defaultSecretDirs(env: Env = process.env): string[] {
  return [env.SECRETS_DIR || "/run/secrets", join(gatewayDataDir(env), "secrets")];
}

/** The secret's value, or undefined when no source has a non-empty one. */
export function lookupSecret(name: string, sources: SecretSources = {}): string | undefined {
  if (!SECRET_NAME.test(name)) return undefined;
  const env = sources.env ?? process.env;
  const fromEnv = env[secretEnvName(name)];
  if (fromEnv) return fromEnv;
  for (const dir of sources.dirs ?? defaultSecretDirs(env)) {
    try {
      const text = readFileSync(join(dir, name), "utf8").replace(/\r?\n$/, "");
      if (text !== "") return text;
    } catch {
      // not in this folder; the next one, then the error below
    }
  }
  return undefined;
}

export function secretNotFoundMessage(name: string, sources: SecretSources = {}): string {
  if (!SECRET_NAME.test(name)) return `\${secret:${name}}: a secret name is letters, digits, _ . - (no paths)`;
  const env = sources.env ?? process.env;
  const files = (sources.dirs ?? defaultSecretDirs(env)).map((dir) => join(dir, name));
  return `secret "${name}" not found: set ${secretEnvName(name)} or create ${files.join(" or ")}`;
}

export function resolveSecret(name: string, sources: SecretSources = {}): string {
  const value = lookupSecret(name, sources);
  if (value === undefined) throw new SecretError(name, secretNotFoundMessage(name, sources));
  return value;
}

/** Replaces every `${secret:NAME}` in `text`; text without placeholders comes back unchanged. */
export function resolveSecrets(text: string, sources: SecretSources = {}): string {
  return text.replace(PLACEHOLDER, (_, name: string) => resolveSecret(name, sources));
}

export function hasSecretPlaceholder(text: string): boolean {
  return text.includes("${secret:");
}
