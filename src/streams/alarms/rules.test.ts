import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../config/schema-errors.ts";
import { globMatch } from "./glob.ts";
import { loadAlarmRules, loadAlarmRulesFile, renderMessage, resolveConditions } from "./rules.ts";

function errorsOf(input: unknown): string[] {
  try {
    loadAlarmRules(input as string);
  } catch (error) {
    if (error instanceof ConfigError) return error.fieldErrors.map((e) => `${e.path}: ${e.message}`);
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("loading", () => {
  test("defaults and shorthand", () => {
    const set = loadAlarmRules(`
rules:
  - asset_id: reactor_1
    parameter: pressure
    high: 200
`);
    expect(set).toMatchObject({ on_delay_s: 0, off_delay_s: 0, deadband: 0, evaluate_qualities: ["GOOD", "UNCERTAIN", "SUSPECT"] });
    expect(resolveConditions(set, "reactor_1", "pressure")).toEqual([
      {
        rule_id: "reactor_1/pressure",
        limit: "high",
        key: "reactor_1/pressure|high",
        type: "high",
        severity: "HIGH",
        threshold: 200,
        direction: null,
        on_delay_ms: 0,
        off_delay_ms: 0,
        deadband: 0,
        message: "{asset_id} {parameter} high: {value} {unit} above {threshold} {unit}",
        unit: undefined,
      },
    ]);
  });

  test("severity: limit > set-wide map > built-in (HH CRITICAL, H HIGH, L MEDIUM, LL CRITICAL, ROC HIGH)", () => {
    const set = loadAlarmRules({
      severities: { low: "LOW" },
      rules: [{ asset_id: "a", parameter: "p", high_high: 100, high: { value: 90, severity: "MEDIUM" }, low: 10, low_low: 5, rate_of_change: { max_change_per_s: 1 } }],
    });
    const sev = Object.fromEntries(resolveConditions(set, "a", "p").map((c) => [c.limit, c.severity]));
    expect(sev).toEqual({ high_high: "CRITICAL", high: "MEDIUM", low: "LOW", low_low: "CRITICAL", rate_of_change: "HIGH" });
  });

  test("delays and deadband: limit > rule > set; rate of change never inherits a level deadband", () => {
    const set = loadAlarmRules({
      on_delay_s: 1,
      off_delay_s: 2,
      deadband: 3,
      rules: [{ asset_id: "a", parameter: "p", on_delay_s: 10, deadband: 5, high: { value: 90, off_delay_s: 0.5 }, low: 10, rate_of_change: { max_change_per_s: 2 } }],
    });
    const got = Object.fromEntries(resolveConditions(set, "a", "p").map((c) => [c.limit, [c.on_delay_ms, c.off_delay_ms, c.deadband]]));
    expect(got).toEqual({ high: [10_000, 500, 5], low: [10_000, 2_000, 5], rate_of_change: [10_000, 2_000, 0] });
  });

  test("precedence: literal asset > pattern > *, then parameter; each limit on its own; disabled rules ignored", () => {
    const set = loadAlarmRules({
      rules: [
        { id: "plant", asset_id: "*", parameter: "temperature", high: 500, low: 0 },
        { id: "boilers", asset_id: "boiler_*", parameter: "temperature", high: 600 },
        { id: "boiler_1", asset_id: "boiler_1", parameter: "temperature", high: 650 },
        { id: "off", asset_id: "boiler_1", parameter: "temperature", high: 1, enabled: false },
      ],
    });
    const view = (asset: string) => resolveConditions(set, asset, "temperature").map((c) => `${c.limit}=${c.threshold}@${c.rule_id}`);
    expect(view("boiler_1")).toEqual(["high=650@boiler_1", "low=0@plant"]);
    expect(view("boiler_2")).toEqual(["high=600@boilers", "low=0@plant"]);
    expect(view("pump_1")).toEqual(["high=500@plant", "low=0@plant"]);
    expect(resolveConditions(set, "pump_1", "flow")).toEqual([]);
  });

  test("a JSON file loads too", () => {
    const dir = mkdtempSync(join(tmpdir(), "alarm-rules-"));
    const file = join(dir, "rules.json");
    writeFileSync(file, JSON.stringify({ rules: [{ asset_id: "a", parameter: "p", low_low: 1 }] }));
    expect(loadAlarmRulesFile(file).rules).toHaveLength(1);
  });
});

describe("validation names each bad path", () => {
  test.each([
    ["no limit", { rules: [{ asset_id: "a", parameter: "p" }] }, ["rules[0]: sets no limit: give high_high, high, low, low_low or rate_of_change"]],
    ["unordered limits", { rules: [{ asset_id: "a", parameter: "p", low: 50, high: 40, high_high: 40 }] }, ["rules[0].high: must be above low (50), got 40", "rules[0].high_high: must be above high (40), got 40"]],
    ["duplicate ids", { rules: [{ asset_id: "a", parameter: "p", high: 1 }, { asset_id: "a", parameter: "p", low: 0 }] }, ['rules[1]: repeats the id "a/p" of rules[0]; give each rule its own id']],
    [
      "duplicate types",
      { rules: [{ asset_id: "a", parameter: "p", high: { value: 1, type: "over" }, high_high: { value: 2, type: "over" } }] },
      ['rules[0].high.type: repeats the type "over" of high_high; alerts are deduplicated by (asset_id, type), so each limit needs its own'],
    ],
    ["unknown placeholder", { rules: [{ asset_id: "a", parameter: "p", high: { value: 1, message: "{asset} is {value}" } }] }, ["rules[0].high.message: unknown placeholder {asset}; use {asset_id}, {parameter}, {type}, {severity}, {limit}, {value}, {threshold}, {unit}"]],
    ["rate deadband too wide", { rules: [{ asset_id: "a", parameter: "p", rate_of_change: { max_change_per_s: 2, deadband: 2 } }] }, ["rules[0].rate_of_change.deadband: must be below max_change_per_s (2) or the alarm could never clear, got 2"]],
  ])("%s", (_, input, want) => {
    expect(errorsOf(input)).toEqual(want);
  });

  test("schema errors", () => {
    const errors = errorsOf({ on_delay_s: -1, rules: [{ asset_id: "", parameter: "p", high: { value: 1, severity: "URGENT" }, extra: 1 }] });
    expect(errors).toContain("on_delay_s: expected number to be greater or equal to 0, got -1");
    expect(errors.some((e) => e.startsWith("rules[0].asset_id:"))).toBe(true);
    expect(errors).toContain('rules[0].high.severity: expected one of "CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO", got "URGENT"');
    expect(errors.some((e) => e.startsWith("rules[0].extra:") || e.startsWith("rules[0]:"))).toBe(true);
  });

  test("bad YAML points at the line", () => {
    expect(errorsOf("rules: [\n  - a: b\n")[0]).toMatch(/^line \d+, column \d+: /);
  });
});

describe("helpers", () => {
  test.each([
    ["reactor_*", "reactor_1", true],
    ["reactor_*", "pump_1", false],
    ["pump_?", "pump_7", true],
    ["pump_?", "pump_17", false],
    ["a.b", "aXb", false],
    ["*", "anything", true],
    ["exact", "exact", true],
  ])("glob %s vs %s → %s", (pattern, value, want) => {
    expect(globMatch(pattern, value)).toBe(want);
  });

  test("messages drop missing units cleanly", () => {
    expect(renderMessage("{asset_id} {parameter} high: {value} {unit} above {threshold} {unit}", { asset_id: "r", parameter: "p", value: 5, threshold: 4 })).toBe("r p high: 5 above 4");
    expect(renderMessage("{asset_id} changing at {value} {unit}, limit {threshold} {unit}", { asset_id: "r", value: 5, threshold: 4 })).toBe("r changing at 5, limit 4");
  });
});
