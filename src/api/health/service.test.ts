import { describe, expect, test } from "bun:test";
import { checkHealth, pingProbe, type HealthProbe } from "./service.ts";

const ok = (name: string, critical = true) => pingProbe(name, critical, async () => {});
const down = (name: string, critical = true) =>
  pingProbe(name, critical, async () => {
    throw new Error(`${name} refused`);
  });
const degraded = (name: string): HealthProbe => ({ name, critical: false, check: async () => ({ status: "degraded" }) });

describe("health aggregation", () => {
  const cases: Array<[string, HealthProbe[], string]> = [
    ["all ok", [ok("kafka"), ok("db")], "healthy"],
    ["critical down", [ok("kafka"), down("db")], "unhealthy"],
    ["non-critical down", [ok("kafka"), down("adapter:x", false)], "degraded"],
    ["non-critical degraded", [ok("kafka"), degraded("adapter:x")], "degraded"],
  ];
  test.each(cases)("%s", async (_name, probes, expected) => {
    expect((await checkHealth(probes)).status as string).toBe(expected);
  });

  test("the reason of a failed probe is reported", async () => {
    const report = await checkHealth([down("db")]);
    expect(report.components.db).toMatchObject({ status: "down", detail: "db refused" });
  });
});
