import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { envOverrides, loadApplianceConfig } from "./load.ts";
import { ConfigError } from "./schema-errors.ts";

function yamlFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "gw-config-"));
  const file = join(dir, "gateway.yaml");
  writeFileSync(file, text);
  return file;
}

describe("appliance config", () => {
  test("defaults need no file", () => {
    const config = loadApplianceConfig({ env: {} });
    expect(config.mode).toBe("standalone");
    expect(config.http.port).toBe(8080);
    expect(config.kafka.bootstrap_servers).toEqual(["127.0.0.1:9092"]);
    expect(config.database.url).toBeUndefined();
  });

  test("file, then environment, then flags", () => {
    const file = yamlFile("mode: edge\nhttp:\n  port: 9000\nkafka:\n  bootstrap_servers: [a:1]\n");
    const config = loadApplianceConfig({
      file,
      env: { GATEWAY_HTTP__PORT: "9100", KAFKA_BOOTSTRAP_SERVERS: "b:2, c:3" },
      overrides: { mode: "hub" },
    });
    expect(config.mode).toBe("hub");
    expect(config.http.port).toBe(9100);
    expect(config.kafka.bootstrap_servers).toEqual(["b:2", "c:3"]);
  });

  test("DATABASE_URL selects PostgreSQL", () => {
    const config = loadApplianceConfig({ env: { DATABASE_URL: "postgres://u:p@h:5432/db" } });
    expect(config.database.url).toBe("postgres://u:p@h:5432/db");
  });

  const invalid: Array<[string, string, Record<string, string>, RegExp]> = [
    ["bad mode", "mode: cloud\n", {}, /^mode: expected one of "standalone", "edge", "hub", got "cloud"$/m],
    ["port out of range", "http:\n  port: 70000\n", {}, /^http\.port: expected integer to be less or equal to 65535/m],
    ["port from env not a number", "", { GATEWAY_HTTP__PORT: "eighty" }, /^http\.port: expected integer/m],
    ["unknown key", "htp:\n  port: 1\n", {}, /htp/],
    ["bad broker", "kafka:\n  bootstrap_servers: [nohost]\n", {}, /^kafka\.bootstrap_servers\[0\]: /m],
    ["broken yaml", "http: [\n", {}, /line \d+, column \d+/],
    ["not a mapping", "- a\n- b\n", {}, /expected a mapping/],
  ];
  test.each(invalid)("%s names the field", (_name, yaml, env, pattern) => {
    const file = yamlFile(yaml);
    let error: unknown;
    try {
      loadApplianceConfig({ file, env });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(pattern);
  });

  test("missing explicit file is an error", () => {
    expect(() => loadApplianceConfig({ file: "/nonexistent/gateway.yaml", env: {} })).toThrow(/file not found/);
  });

  test("env names map to nested paths", () => {
    expect(envOverrides({ GATEWAY_KAFKA__CLIENT_ID: "x", GATEWAY_ADMIN_PASSWORD: "secret", OTHER: "y" })).toEqual({
      kafka: { client_id: "x" },
    });
  });
});
