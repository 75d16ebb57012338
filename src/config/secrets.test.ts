import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultSecretDirs, hasSecretPlaceholder, lookupSecret, resolveSecret, resolveSecrets, SecretError } from "./secrets.ts";

const root = mkdtempSync(join(tmpdir(), "secrets-"));
const secretsDir = join(root, "run-secrets");
const dataDir = join(root, "data");
mkdirSync(secretsDir);
mkdirSync(join(dataDir, "secrets"), { recursive: true });
writeFileSync(join(secretsDir, "db.pass"), "from-secrets-dir\n");
writeFileSync(join(dataDir, "secrets", "db.pass"), "from-data-dir\n");
writeFileSync(join(dataDir, "secrets", "plc.pw"), "from-data-dir\n");
writeFileSync(join(secretsDir, "empty"), "\n");
afterAll(() => rmSync(root, { recursive: true, force: true }));

const folders = { SECRETS_DIR: secretsDir, GATEWAY_DATA_DIR: dataDir };

describe("lookup order: env, then $SECRETS_DIR, then <data dir>/secrets", () => {
  test.each([
    ["env wins over files", "db.pass", { ...folders, SECRET_DB_PASS: "from-env" }, "from-env"],
    ["$SECRETS_DIR before the data dir", "db.pass", folders, "from-secrets-dir"],
    ["the data dir when $SECRETS_DIR lacks it", "plc.pw", folders, "from-data-dir"],
    ["names map to SECRET_<UPPER, non-alphanumerics as _>", "pd-key.v2", { SECRET_PD_KEY_V2: "k" }, "k"],
    ["an empty env value counts as missing", "plc.pw", { ...folders, SECRET_PLC_PW: "" }, "from-data-dir"],
    ["an empty file counts as missing", "empty", folders, undefined],
    ["absent everywhere", "absent", folders, undefined],
    ["a path is never a name (it would reach <root>/data/secrets/plc.pw)", "../data/secrets/plc.pw", folders, undefined],
  ])("%s", (_, name, env, want) => {
    expect(lookupSecret(name, { env })).toBe(want);
  });

  test("explicit folders replace the defaults", () => {
    expect(lookupSecret("plc.pw", { env: folders, dirs: [secretsDir] })).toBeUndefined();
    expect(defaultSecretDirs({})).toEqual(["/run/secrets", ".data/gateway/secrets"]);
  });
});

describe("placeholders", () => {
  test.each([
    ["Bearer ${secret:db.pass}", "Bearer from-secrets-dir"],
    ["${secret:db.pass}:${secret:plc.pw}", "from-secrets-dir:from-data-dir"],
    ["no placeholders", "no placeholders"],
  ])("%s", (text, want) => {
    expect(resolveSecrets(text, { env: folders })).toBe(want);
  });

  test("a missing secret is an error naming the env variable and every file looked at", () => {
    expect(() => resolveSecret("nope", { env: folders })).toThrow(
      `secret "nope" not found: set SECRET_NOPE or create ${join(secretsDir, "nope")} or ${join(dataDir, "secrets", "nope")}`,
    );
    expect(() => resolveSecrets("x-${secret:nope}", { env: folders })).toThrow(SecretError);
    expect(() => resolveSecret("../etc/passwd", { env: folders })).toThrow("a secret name is letters, digits, _ . - (no paths)");
  });

  test("hasSecretPlaceholder", () => {
    expect(hasSecretPlaceholder("https://h/${secret:t}")).toBe(true);
    expect(hasSecretPlaceholder("https://h/")).toBe(false);
  });
});
