import { describe, expect, test } from "bun:test";
import { ConfigError, type FieldError } from "../../config/schema-errors.ts";
import { DEFAULT_DEDUP_WINDOW_MS, loadRules, resolveRule, type RangeAction, type ResolvedRule, type TagIdentity } from "./rules.ts";

const SEED_RULE = { parameter: "temperature", unit: "celsius", min: -50, max: 500, action_on_violation: "mark_bad" };

function errorsOf(input: unknown): FieldError[] {
  try {
    loadRules(input);
  } catch (error) {
    if (error instanceof ConfigError) return error.fieldErrors;
    throw error;
  }
  throw new Error("expected loadRules to fail");
}

describe("loadRules", () => {
  test("seed rule loads, defaults filled", () => {
    const set = loadRules({ rules: [SEED_RULE] });
    expect(set.rules).toEqual([SEED_RULE] as never);
    expect(set.dedup_window_ms).toBe(DEFAULT_DEDUP_WINDOW_MS);
    expect(set.expected_interval_ms).toBeUndefined();
  });

  test("YAML text, with string numbers coerced", () => {
    const set = loadRules(`expected_interval_ms: 1000\nrules:\n  - parameter: flow\n    max: "40"\n    max_change_per_s: 2\n`);
    expect(set.expected_interval_ms).toBe(1000);
    expect(set.rules[0]).toEqual({ parameter: "flow", max: 40, max_change_per_s: 2 });
  });

  test("empty input is an empty rule set", () => {
    expect(loadRules(undefined).rules).toEqual([]);
  });

  const invalid: [name: string, input: unknown, paths: string[]][] = [
    ["bad type at a path", { rules: [{ parameter: "p", max: "high" }] }, ["rules[0].max"]],
    ["unknown action", { rules: [{ parameter: "p", max: 1, action_on_violation: "drop" }] }, ["rules[0].action_on_violation"]],
    ["unknown field", { rules: [{ parameter: "p", max: 1, maximum: 2 }] }, ["rules[0].maximum"]],
    ["non-positive rate", { rules: [{ parameter: "p", max_change_per_s: 0 }] }, ["rules[0].max_change_per_s"]],
    ["rule with no check", { rules: [{ parameter: "p" }] }, ["rules[0]"]],
    ["min above max", { rules: [{ parameter: "p", min: 5, max: 1 }] }, ["rules[0].min"]],
    ["action without range", { rules: [{ parameter: "p", max_change_per_s: 1, action_on_violation: "mark_bad" }] }, ["rules[0].action_on_violation"]],
    ["same check twice for one selector", { rules: [{ parameter: "p", max: 1 }, { parameter: "p", min: 0 }] }, ["rules[1]"]],
    ["ntp threshold below skew threshold", { clock_skew_warning_ms: 5000, ntp_warning_ms: 1000 }, ["ntp_warning_ms"]],
    ["unparseable YAML", "rules: [", ["(root)"]],
  ];
  test.each(invalid)("%s", (_name, input, paths) => {
    expect(errorsOf(input).map((e) => e.path)).toEqual(paths);
  });

  test("same selector, different checks is fine", () => {
    expect(loadRules({ rules: [{ parameter: "p", max: 1 }, { parameter: "p", expected_interval_ms: 500 }] }).rules).toHaveLength(2);
  });
});

describe("resolveRule precedence", () => {
  const set = loadRules({
    expected_interval_ms: 1000,
    rules: [
      { min: -1000, max: 1000 },
      { unit: "celsius", min: -50, max: 500 },
      { parameter: "temperature", max_change_per_s: 10, action_on_violation: "mark_suspect", max: 400 },
      { parameter: "temperature", unit: "celsius", expected_interval_ms: 2000 },
      { asset_id: "boiler", max: 900, action_on_violation: "mark_suspect" },
      { asset_id: "boiler", parameter: "temperature", max_change_per_s: 50 },
      { asset_id: "boiler", parameter: "temperature", unit: "celsius", expected_interval_ms: 100 },
    ],
  });
  const range = (min: number | null, max: number | null, action: RangeAction = "mark_bad") => ({ min, max, action });
  const cases: [name: string, tag: TagIdentity, want: ResolvedRule][] = [
    ["wildcard only", { asset_id: "x", parameter: "flow" }, { range: range(-1000, 1000), max_change_per_s: null, expected_interval_ms: 1000 }],
    ["unit beats wildcard", { asset_id: "x", parameter: "flow", unit: "celsius" }, { range: range(-50, 500), max_change_per_s: null, expected_interval_ms: 1000 }],
    ["parameter beats unit", { asset_id: "x", parameter: "temperature", unit: "celsius" }, { range: range(null, 400, "mark_suspect"), max_change_per_s: 10, expected_interval_ms: 2000 }],
    ["unit rule needs the unit", { asset_id: "x", parameter: "temperature" }, { range: range(null, 400, "mark_suspect"), max_change_per_s: 10, expected_interval_ms: 1000 }],
    ["asset beats parameter+unit", { asset_id: "boiler", parameter: "pressure", unit: "celsius" }, { range: range(null, 900, "mark_suspect"), max_change_per_s: null, expected_interval_ms: 1000 }],
    ["each check from its own heaviest rule", { asset_id: "boiler", parameter: "temperature", unit: "celsius" }, { range: range(null, 900, "mark_suspect"), max_change_per_s: 50, expected_interval_ms: 100 }],
  ];
  test.each(cases)("%s", (_name, tag, want) => {
    expect(resolveRule(set, tag)).toEqual(want);
  });

  test("no rules, no default interval: nothing applies", () => {
    expect(resolveRule(loadRules({}), { asset_id: "a", parameter: "b" })).toEqual({ range: null, max_change_per_s: null, expected_interval_ms: null });
  });
});
