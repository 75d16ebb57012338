import { readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * `${secret:NAME}` placeholders in sink settings (auth headers, passwords). NAME is looked up as
 * the env variable `SECRET_<NAME>` (upper-cased, non-alphanumerics → `_`), then as the file
 * `<SECRETS_DIR>/<NAME>` (default /run/secrets, the Docker/Kubernetes convention; trailing
 * newline trimmed). A placeholder that resolves to nothing is an error naming the secret, never
 * an empty string sent to a server. Secrets are resolved when a sink starts, not stored in config.
 */
const PLACEHOLDER = /\$\{secret:([A-Za-z0-9_.-]+)\}/g;

export class SecretError extends Error {
  constructor(readonly secret: string, message: string) {
    super(message);
    this.name = "SecretError";
  }
}

export interface SecretSources {
  env?: Record<string, string | undefined>;
  dir?: string;
}

export function secretEnvName(name: string): string {
  return `SECRET_${name.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
}

export function resolveSecret(name: string, sources: SecretSources = {}): string {
  const env = sources.env ?? process.env;
  const fromEnv = env[secretEnvName(name)];
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  const dir = sources.dir ?? env.SECRETS_DIR ?? "/run/secrets";
  try {
    const text = readFileSync(join(dir, name), "utf8").replace(/\r?\n$/, "");
    if (text !== "") return text;
  } catch {
    // fall through to the error below
  }
  throw new SecretError(name, `secret "${name}" not found: set ${secretEnvName(name)} or create ${join(dir, name)}`);
}

/** Replaces every `${secret:NAME}` in `text`; text without placeholders comes back unchanged. */
export function resolveSecrets(text: string, sources: SecretSources = {}): string {
  return text.replace(PLACEHOLDER, (_, name: string) => resolveSecret(name, sources));
}

export function hasSecretPlaceholder(text: string): boolean {
  PLACEHOLDER.lastIndex = 0;
  return PLACEHOLDER.test(text);
}
