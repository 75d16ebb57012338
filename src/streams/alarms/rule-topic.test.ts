import { describe, expect, test } from "bun:test";
import { applyRuleTopicRecord, decodeRuleRecord, ruleRecordValue, ruleTopicChanges, type RuleTopicRecord } from "./rule-topic.ts";
import { alarmRuleSetOf, loadAlarmRules, parseAlarmRule, resolveConditions, alarmRuleDefaultsOf } from "./rules.ts";

const GW = "gw-a";
const rule = (id: string, high = 200) => ({ id, asset_id: "a", parameter: "p", enabled: true, high });
const value = (id: string, high = 200, gateway = GW, version = 1) => ruleRecordValue(gateway, rule(id, high), version);

describe("ruleTopicChanges: what makes the topic hold the DB's rules", () => {
  const CASES: [string, [string, string][], [string, string][], RuleTopicRecord[]][] = [
    ["both empty", [], [], []],
    ["a new rule is sent", [], [["r1", value("r1")]], [{ key: "r1", value: value("r1") }]],
    ["an unchanged rule is not", [["r1", value("r1")]], [["r1", value("r1")]], []],
    ["a changed rule is sent again", [["r1", value("r1")]], [["r1", value("r1", 210)]], [{ key: "r1", value: value("r1", 210) }]],
    ["a rule gone from the DB gets a tombstone", [["r1", value("r1")], ["r2", value("r2")]], [["r2", value("r2")]], [{ key: "r1", value: null }]],
  ];
  test.each(CASES)("%s", (_name, published, desired, expected) => {
    expect(ruleTopicChanges(new Map(published), new Map(desired))).toEqual(expected);
  });
});

describe("applyRuleTopicRecord: a publisher's view of its own records", () => {
  const CASES: [string, RuleTopicRecord[], string[]][] = [
    ["own records are kept, the latest wins", [{ key: "r1", value: value("r1") }, { key: "r1", value: value("r1", 210) }], ["r1:210"]],
    ["a tombstone removes", [{ key: "r1", value: value("r1") }, { key: "r1", value: null }], []],
    ["another gateway's records are not ours", [{ key: "x", value: value("x", 1, "gw-b") }], []],
    ["another gateway writing our key takes it over", [{ key: "r1", value: value("r1") }, { key: "r1", value: value("r1", 5, "gw-b") }], []],
    ["an unreadable value is not ours", [{ key: "r1", value: "{" }], []],
  ];
  test.each(CASES)("%s", (_name, records, expected) => {
    const latest = new Map<string, string>();
    for (const r of records) applyRuleTopicRecord(latest, r, GW);
    expect([...latest].map(([k, v]) => `${k}:${JSON.parse(v).rule.high}`)).toEqual(expected);
  });
});

describe("decodeRuleRecord: what an evaluator accepts", () => {
  const CASES: [string, string, string, string | null][] = [
    ["a valid rule, whatever its gateway", "r1", value("r1", 200, "gw-b", 3), null],
    ["not JSON", "r1", "{", "value is not JSON"],
    ["a rule failing the schema", "r1", JSON.stringify({ version: 1, rule: { id: "r1", asset_id: "a", parameter: "p", high: { value: "x" } } }), "high.value"],
    ["a rule failing a semantic check", "r1", JSON.stringify({ version: 1, rule: { id: "r1", asset_id: "a", parameter: "p", low: 5, high: 1 } }), "high: must be above low (5), got 1"],
    ["no rule at all", "r1", JSON.stringify({ version: 1 }), "asset_id"],
    ["a key that is not the rule's id", "r2", value("r1"), 'rule id "r1" differs from the record key'],
  ];
  test.each(CASES)("%s", (_name, key, raw, error) => {
    const decoded = decodeRuleRecord(key, raw);
    if (error === null) expect(decoded).toEqual({ ok: true, rule: rule("r1"), version: 3 });
    else expect(decoded.ok ? "" : decoded.error).toContain(error);
  });
});

describe("rules stored one by one", () => {
  test("parseAlarmRule fills defaults and the id; paths are relative to the rule", () => {
    expect(parseAlarmRule({ asset_id: "pump_1", parameter: "temp", high: 90 })).toEqual({ id: "pump_1/temp", asset_id: "pump_1", parameter: "temp", enabled: true, high: 90 });
    expect(() => parseAlarmRule({ asset_id: "a", parameter: "p", high: { value: 1, message: "{nope}" } })).toThrow("high.message: unknown placeholder {nope}");
  });

  test("alarmRuleSetOf keeps the set-wide settings, and equal precedence goes to the id that sorts first", () => {
    const defaults = alarmRuleDefaultsOf(loadAlarmRules({ on_delay_s: 3, severities: { high: "LOW" } }));
    const set = alarmRuleSetOf(defaults, [
      { ...rule("zeta", 100), asset_id: "*" },
      { ...rule("alpha", 150), asset_id: "*" },
    ]);
    expect(set.rules.map((r) => r.id)).toEqual(["alpha", "zeta"]);
    expect(resolveConditions(set, "any", "p")).toMatchObject([{ rule_id: "alpha", threshold: 150, on_delay_ms: 3000, severity: "LOW" }]);
  });
});
