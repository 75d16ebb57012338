import { Type, type Static } from "@sinclair/typebox";
import { parse as parseYaml } from "yaml";
import { ConfigError, parseWithSchema, type FieldError } from "../../config/schema-errors.ts";

/** Seed: duplicates are "the same asset_id + parameter + timestamp seen twice"; ten minutes of device time covers adapter retries and replays. */
export const DEFAULT_DEDUP_WINDOW_MS = 10 * 60_000;
/** Caps dedup memory per tag: at 1 Hz this holds the whole window; faster tags keep their latest 1,000 device times. */
export const DEFAULT_DEDUP_MAX_PER_TAG = 1_000;
/** Seed: "Large skew (> 5 seconds) triggers quality alert". */
export const DEFAULT_CLOCK_SKEW_WARNING_MS = 5_000;
/** Seed: "Alert if skew > 10 seconds (indicates NTP issues)". */
export const DEFAULT_NTP_WARNING_MS = 10_000;
/** A skewed gateway skews every tag on every poll; one clock event per tag per minute says it without doubling traffic. */
export const DEFAULT_CLOCK_EVENT_INTERVAL_MS = 60_000;

export const RANGE_ACTIONS = ["mark_bad", "mark_suspect"] as const;
export type RangeAction = (typeof RANGE_ACTIONS)[number];

const Selector = (what: string) => Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: `${what}; omitted = any` }));

export const RuleSchema = Type.Object(
  {
    asset_id: Selector("asset the rule applies to"),
    parameter: Selector("parameter the rule applies to"),
    unit: Selector("unit the rule applies to"),
    min: Type.Optional(Type.Number({ description: "range check: lowest valid value (inclusive)" })),
    max: Type.Optional(Type.Number({ description: "range check: highest valid value (inclusive)" })),
    action_on_violation: Type.Optional(
      Type.Union(
        RANGE_ACTIONS.map((a) => Type.Literal(a)),
        { description: "range check: mark_bad routes to the DLQ, mark_suspect forwards flagged; default mark_bad" },
      ),
    ),
    max_change_per_s: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: "rate-of-change check: largest |Δvalue| per second of device time" })),
    expected_interval_ms: Type.Optional(Type.Integer({ minimum: 1, description: "poll/publish interval, for gap detection and completeness" })),
  },
  { additionalProperties: false },
);
export type Rule = Static<typeof RuleSchema>;

export const RuleSetSchema = Type.Object(
  {
    expected_interval_ms: Type.Optional(Type.Integer({ minimum: 1, description: "interval for tags no rule gives one; unset = no gap detection for them" })),
    dedup_window_ms: Type.Integer({ minimum: 0, default: DEFAULT_DEDUP_WINDOW_MS, description: "device-time span remembered per tag for duplicate detection" }),
    dedup_max_per_tag: Type.Integer({ minimum: 1, default: DEFAULT_DEDUP_MAX_PER_TAG, description: "device times remembered per tag, at most" }),
    clock_skew_warning_ms: Type.Integer({ minimum: 0, default: DEFAULT_CLOCK_SKEW_WARNING_MS, description: "|gateway_time - device_time| above this emits a clock_skew event" }),
    ntp_warning_ms: Type.Integer({ minimum: 0, default: DEFAULT_NTP_WARNING_MS, description: "|gateway_time - device_time| above this emits an ntp_warning event instead" }),
    clock_event_interval_ms: Type.Integer({ minimum: 0, default: DEFAULT_CLOCK_EVENT_INTERVAL_MS, description: "at most one clock event per tag per this much gateway time" }),
    rules: Type.Array(RuleSchema, { default: [] }),
  },
  { additionalProperties: false },
);
export type RuleSet = Static<typeof RuleSetSchema>;

/** What applies to one tag once precedence is settled. */
export interface ResolvedRule {
  range: { min: number | null; max: number | null; action: RangeAction } | null;
  max_change_per_s: number | null;
  expected_interval_ms: number | null;
}

export interface TagIdentity {
  asset_id: string;
  parameter: string;
  unit?: string | undefined;
}

/**
 * Precedence: asset_id outweighs parameter, which outweighs unit (weights 4, 2, 1), so
 * asset+parameter+unit > asset+parameter > asset+unit > asset > parameter+unit > parameter > unit > none.
 * Each check (range, rate of change, expected interval) resolves on its own from the heaviest matching
 * rule that sets it, so a site-wide range still applies to an asset whose own rule only sets an interval.
 * Two matching rules of equal weight have identical selectors, and `loadRules` rejects those when they
 * set the same check, so the outcome never depends on rule order.
 */
function specificity(rule: Rule): number {
  return (rule.asset_id !== undefined ? 4 : 0) + (rule.parameter !== undefined ? 2 : 0) + (rule.unit !== undefined ? 1 : 0);
}

function matches(rule: Rule, tag: TagIdentity): boolean {
  return (
    (rule.asset_id === undefined || rule.asset_id === tag.asset_id) &&
    (rule.parameter === undefined || rule.parameter === tag.parameter) &&
    (rule.unit === undefined || rule.unit === tag.unit)
  );
}

const hasRange = (r: Rule) => r.min !== undefined || r.max !== undefined;
const CHECKS = [
  ["range", hasRange],
  ["rate of change", (r: Rule) => r.max_change_per_s !== undefined],
  ["expected interval", (r: Rule) => r.expected_interval_ms !== undefined],
] as const;

/** Rules sorted heaviest first, and resolutions per tag: resolving runs once per tag, not per reading. */
const compiled = new WeakMap<RuleSet, { sorted: Rule[]; byTag: Map<string, ResolvedRule> }>();

export function resolveRule(rules: RuleSet, tag: TagIdentity): ResolvedRule {
  let entry = compiled.get(rules);
  if (!entry) {
    entry = { sorted: [...rules.rules].sort((a, b) => specificity(b) - specificity(a)), byTag: new Map() };
    compiled.set(rules, entry);
  }
  const cacheKey = `${tag.asset_id}\u0000${tag.parameter}\u0000${tag.unit ?? ""}`;
  const cached = entry.byTag.get(cacheKey);
  if (cached) return cached;

  const matching = entry.sorted.filter((r) => matches(r, tag));
  const rangeRule = matching.find(hasRange);
  const resolved: ResolvedRule = {
    range: rangeRule ? { min: rangeRule.min ?? null, max: rangeRule.max ?? null, action: rangeRule.action_on_violation ?? "mark_bad" } : null,
    max_change_per_s: matching.find((r) => r.max_change_per_s !== undefined)?.max_change_per_s ?? null,
    expected_interval_ms: matching.find((r) => r.expected_interval_ms !== undefined)?.expected_interval_ms ?? rules.expected_interval_ms ?? null,
  };
  entry.byTag.set(cacheKey, resolved);
  return resolved;
}

const selectorText = (r: Rule) =>
  (["asset_id", "parameter", "unit"] as const).map((k) => `${k}=${r[k] === undefined ? "*" : JSON.stringify(r[k])}`).join(", ");

/** Checks the schema cannot express: every rule does something, min ≤ max, no two rules contest one check. */
function semanticErrors(set: RuleSet): FieldError[] {
  const errors: FieldError[] = [];
  if (set.ntp_warning_ms < set.clock_skew_warning_ms) {
    errors.push({ path: "ntp_warning_ms", message: `must be at least clock_skew_warning_ms (${set.clock_skew_warning_ms}), got ${set.ntp_warning_ms}` });
  }
  const owners = new Map<string, number>();
  set.rules.forEach((rule, i) => {
    const at = `rules[${i}]`;
    if (!CHECKS.some(([, has]) => has(rule))) {
      errors.push({ path: at, message: "sets no check: give min/max, max_change_per_s or expected_interval_ms" });
    }
    if (rule.min !== undefined && rule.max !== undefined && rule.min > rule.max) {
      errors.push({ path: `${at}.min`, message: `must not exceed max (${rule.max}), got ${rule.min}` });
    }
    if (rule.action_on_violation !== undefined && !hasRange(rule)) {
      errors.push({ path: `${at}.action_on_violation`, message: "applies to a range check: give min and/or max" });
    }
    for (const [check, has] of CHECKS) {
      if (!has(rule)) continue;
      const key = `${check}|${selectorText(rule)}`;
      const first = owners.get(key);
      if (first === undefined) owners.set(key, i);
      else errors.push({ path: at, message: `repeats the ${check} check of rules[${first}] for ${selectorText(rule)}; keep one` });
    }
  });
  return errors;
}

/**
 * Validate a rule set given as a parsed YAML/JSON object, or as YAML/JSON text. Applies defaults; throws
 * ConfigError naming each failing path (`rules[2].max: expected number, got "high"`).
 */
export function loadRules(input: unknown, source = "quality rules"): RuleSet {
  let parsed = input;
  if (typeof input === "string") {
    try {
      parsed = parseYaml(input);
    } catch (error) {
      throw new ConfigError(source, [{ path: "(root)", message: `not YAML/JSON: ${(error as Error).message}` }]);
    }
  }
  const set = parseWithSchema(RuleSetSchema, parsed, source);
  const errors = semanticErrors(set);
  if (errors.length > 0) throw new ConfigError(source, errors);
  return set;
}
