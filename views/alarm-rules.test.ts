import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { testApp } from "../test/support/app.ts";
import type { AlarmRule } from "../src/streams/alarms/rules.ts";
import { alarmRuleLimits, alarmRuleTiming } from "./alarm-rules.ts";

const base = { asset_id: "a", parameter: "p", enabled: true } as const;

describe("an alarm rule as the Alarms page lists it", () => {
  const CASES: [string, AlarmRule, string[], string][] = [
    ["bare thresholds, high to low", { ...base, low: 10, high: 90, high_high: 95, low_low: 5 }, ["HH > 95", "H > 90", "L < 10", "LL < 5"], ""],
    ["a limit with type and severity", { ...base, high: { value: 200, type: "overpressure", severity: "CRITICAL" } }, ["H > 200 (overpressure, CRITICAL)"], ""],
    ["rate of change, one direction", { ...base, rate_of_change: { max_change_per_s: 10, direction: "rising", severity: "HIGH" } }, ["rate rising > 10/s (HIGH)"], ""],
    ["rate of change, both directions", { ...base, rate_of_change: { max_change_per_s: 2, direction: "both" } }, ["rate > 2/s"], ""],
    ["rule-wide delays and deadband", { ...base, high: 1, on_delay_s: 2, off_delay_s: 0, deadband: 5 }, ["H > 1"], "on 2 s, off 0 s, deadband 5"],
  ];
  test.each(CASES)("%s", (_name, rule, limits, timing) => {
    expect(alarmRuleLimits(rule)).toEqual(limits);
    expect(alarmRuleTiming(rule)).toBe(timing);
  });
});

describe("Alarms page", () => {
  let t: Awaited<ReturnType<typeof testApp>>;
  beforeAll(async () => {
    t = await testApp();
  }, 30_000);
  afterAll(() => t?.close());
  const alarmsPage = async () => (await t.request("GET", "/alarms", { token: t.tokens.Operator })).text();

  test("lists this gateway's alarm rules, escaped, and says how to create the first", async () => {
    expect(await alarmsPage()).toContain("No alarm rules.");
    const body = { id: "well<1>", asset_id: "offshore_well_*", parameter: "pressure", unit: "psi", high: { value: 200, type: "overpressure", severity: "CRITICAL" }, on_delay_s: 2 };
    expect((await t.request("POST", "/api/v1/alarm-rules", { token: t.tokens.Engineer, body })).status).toBe(201);
    const page = await alarmsPage();
    expect(page).toContain("well&lt;1&gt;");
    expect(page).toContain("H &gt; 200 (overpressure, CRITICAL)");
    expect(page).toContain("on 2 s");
    expect(page).not.toContain("No alarm rules.");
  });
});
