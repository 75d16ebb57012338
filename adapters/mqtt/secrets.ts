import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * `${secret:name}` references in adapter config. There is no shared resolver yet
 * (src/config/secrets.ts); when one lands, this file should delegate to it.
 *
 * Lookup order: env `SECRET_<NAME>` (name upper-cased, anything not [A-Z0-9] → `_`), then the
 * file `<SECRETS_DIR>/<name>` (default /run/secrets, the Docker/Kubernetes convention), with one
 * trailing newline stripped. A value that is not exactly one reference is returned unchanged.
 */
const REFERENCE = /^\$\{secret:([A-Za-z0-9_.-]+)\}$/;

export type SecretResult = { ok: true; value: string } | { ok: false; message: string };

export function secretEnvName(name: string): string {
  return `SECRET_${name.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
}

export function resolveSecret(value: string, env: Record<string, string | undefined> = process.env): SecretResult {
  const match = REFERENCE.exec(value);
  if (!match) {
    if (value.includes("${secret:")) return { ok: false, message: `malformed secret reference ${JSON.stringify(value)} (expected \${secret:name})` };
    return { ok: true, value };
  }
  const name = match[1]!;
  const fromEnv = env[secretEnvName(name)];
  if (fromEnv !== undefined) return { ok: true, value: fromEnv };
  const dir = env.SECRETS_DIR ?? "/run/secrets";
  const file = join(dir, name);
  if (existsSync(file)) {
    try {
      return { ok: true, value: readFileSync(file, "utf8").replace(/\r?\n$/, "") };
    } catch (error) {
      return { ok: false, message: `secret "${name}": cannot read ${file}: ${(error as Error).message}` };
    }
  }
  return { ok: false, message: `secret "${name}" not found: set ${secretEnvName(name)} or create ${file}` };
}
