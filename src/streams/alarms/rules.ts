/**
 * Alarm rules: which readings raise which alarms. The rules live in the control DB (API
 * /api/v1/alarm-rules, one `AlarmRuleSchema` each) and reach evaluators over the `_gateway.alarm_rules`
 * topic; a YAML/JSON file (`streams.alarm_rules_file`) gives the set-wide settings and the rules a
 * fresh DB starts with. The schema is the contract everywhere.
 *
 * ```yaml
 * on_delay_s: 0                       # set-wide defaults (shown)
 * off_delay_s: 0
 * deadband: 0                         # level limits only; rate_of_change has its own
 * severities: { high_high: CRITICAL, high: HIGH, low: MEDIUM, low_low: CRITICAL, rate_of_change: HIGH }
 * evaluate_qualities: [GOOD, UNCERTAIN, SUSPECT]
 * rules:
 *   - id: reactor_pressure            # default "<asset_id>/<parameter>"
 *     asset_id: reactor_1             # glob: "reactor_*"
 *     parameter: pressure
 *     unit: psi                       # for messages; default the reading's unit
 *     on_delay_s: 5                   # rule-wide, each limit may override
 *     deadband: 5
 *     high: { value: 200, type: overpressure, message: "Reactor pressure exceeded threshold" }
 *     high_high: 250                  # a bare number = { value: 250 }
 *     low: 20
 *     rate_of_change: { max_change_per_s: 10, direction: rising }
 * ```
 */
import { Type, type Static } from "@sinclair/typebox";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { readYamlFile } from "../../config/load.ts";
import { ConfigError, parseWithSchema, type FieldError } from "../../config/schema-errors.ts";
import { globMatch, globRank } from "./glob.ts";

/** Same lists as `AlarmSchema` in quality/validator.ts (a test keeps them equal). */
export const SEVERITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"] as const;
export type Severity = (typeof SEVERITIES)[number];

export const LEVEL_LIMITS = ["high_high", "high", "low", "low_low"] as const;
export type LevelLimit = (typeof LEVEL_LIMITS)[number];
export const LIMITS = [...LEVEL_LIMITS, "rate_of_change"] as const;
export type LimitKind = (typeof LIMITS)[number];

/** The brief's defaults: HH → CRITICAL, H → HIGH, L → MEDIUM, LL → CRITICAL; rate of change → HIGH. */
export const DEFAULT_SEVERITIES: Record<LimitKind, Severity> = {
  high_high: "CRITICAL",
  high: "HIGH",
  low: "MEDIUM",
  low_low: "CRITICAL",
  rate_of_change: "HIGH",
};

export const QUALITY_NAMES = ["GOOD", "UNCERTAIN", "SUSPECT", "BAD"] as const;

/** Placeholders a message template may use. */
export const TEMPLATE_FIELDS = ["asset_id", "parameter", "type", "severity", "limit", "value", "threshold", "unit"] as const;

export const DEFAULT_MESSAGES: Record<LimitKind, string> = {
  high_high: "{asset_id} {parameter} high-high: {value} {unit} above {threshold} {unit}",
  high: "{asset_id} {parameter} high: {value} {unit} above {threshold} {unit}",
  low: "{asset_id} {parameter} low: {value} {unit} below {threshold} {unit}",
  low_low: "{asset_id} {parameter} low-low: {value} {unit} below {threshold} {unit}",
  rate_of_change: "{asset_id} {parameter} changing at {value} {unit}, limit {threshold} {unit}",
};

const SeverityField = Type.Union(
  SEVERITIES.map((s) => Type.Literal(s)),
  { description: "alarm severity" },
);
const DelayField = (what: string) => Type.Number({ minimum: 0, description: what });
const ON_DELAY = "seconds of device time the condition must hold before the alarm is raised";
const OFF_DELAY = "seconds of device time the value must be back to normal before the alarm clears";
const DEADBAND = "hysteresis: a high alarm at 200 with deadband 5 clears only below 195 (a low one only above limit + deadband)";
const TypeName = Type.String({ minLength: 1, maxLength: 128, pattern: "^[A-Za-z0-9_.:-]+$", description: "alarm type; default the limit name" });
const Template = Type.String({ minLength: 1, maxLength: 1024, description: `message template; placeholders {${TEMPLATE_FIELDS.join("} {")}}` });

const LimitObject = Type.Object(
  {
    value: Type.Number({ description: "threshold" }),
    severity: Type.Optional(SeverityField),
    type: Type.Optional(TypeName),
    message: Type.Optional(Template),
    on_delay_s: Type.Optional(DelayField(ON_DELAY)),
    off_delay_s: Type.Optional(DelayField(OFF_DELAY)),
    deadband: Type.Optional(DelayField(DEADBAND)),
  },
  { additionalProperties: false },
);
const LimitField = Type.Optional(Type.Union([Type.Number(), LimitObject], { description: "a threshold, or { value, severity, type, message, on_delay_s, off_delay_s, deadband }" }));

export const RATE_DIRECTIONS = ["both", "rising", "falling"] as const;
export type RateDirection = (typeof RATE_DIRECTIONS)[number];

const RateObject = Type.Object(
  {
    max_change_per_s: Type.Number({ exclusiveMinimum: 0, description: "largest |Δvalue| per second of device time between consecutive readings" }),
    direction: Type.Optional(Type.Union(RATE_DIRECTIONS.map((d) => Type.Literal(d)), { description: "default both" })),
    severity: Type.Optional(SeverityField),
    type: Type.Optional(TypeName),
    message: Type.Optional(Template),
    on_delay_s: Type.Optional(DelayField(ON_DELAY)),
    off_delay_s: Type.Optional(DelayField(OFF_DELAY)),
    deadband: Type.Optional(DelayField("hysteresis on the rate: clears only below max_change_per_s - deadband")),
  },
  { additionalProperties: false },
);

const Pattern = (what: string) => Type.String({ minLength: 1, maxLength: 256, description: `${what}; glob: * any characters, ? one` });

export const AlarmRuleSchema = Type.Object(
  {
    id: Type.Optional(Type.String({ minLength: 1, maxLength: 256, pattern: "^[^|]+$", description: "unique; default <asset_id>/<parameter>" })),
    asset_id: Pattern("asset the rule applies to"),
    parameter: Pattern("parameter the rule applies to"),
    unit: Type.Optional(Type.String({ maxLength: 64, description: "unit shown in alarms; default the reading's" })),
    enabled: Type.Boolean({ default: true }),
    on_delay_s: Type.Optional(DelayField(ON_DELAY)),
    off_delay_s: Type.Optional(DelayField(OFF_DELAY)),
    deadband: Type.Optional(DelayField(DEADBAND)),
    high_high: LimitField,
    high: LimitField,
    low: LimitField,
    low_low: LimitField,
    rate_of_change: Type.Optional(RateObject),
  },
  { additionalProperties: false },
);
export type AlarmRule = Static<typeof AlarmRuleSchema>;

const SeverityMap = Type.Object(
  {
    high_high: Type.Optional(SeverityField),
    high: Type.Optional(SeverityField),
    low: Type.Optional(SeverityField),
    low_low: Type.Optional(SeverityField),
    rate_of_change: Type.Optional(SeverityField),
  },
  { additionalProperties: false, default: {}, description: "severity per limit kind where a limit gives none" },
);

export const AlarmRuleSetSchema = Type.Object(
  {
    on_delay_s: Type.Number({ minimum: 0, default: 0, description: ON_DELAY }),
    off_delay_s: Type.Number({ minimum: 0, default: 0, description: OFF_DELAY }),
    deadband: Type.Number({ minimum: 0, default: 0, description: DEADBAND }),
    severities: SeverityMap,
    evaluate_qualities: Type.Array(Type.Union(QUALITY_NAMES.map((q) => Type.Literal(q))), {
      default: ["GOOD", "UNCERTAIN", "SUSPECT"],
      uniqueItems: true,
      description: "readings of other qualities neither raise nor clear alarms",
    }),
    rules: Type.Array(AlarmRuleSchema, { default: [] }),
  },
  { additionalProperties: false },
);
export type AlarmRuleSet = Static<typeof AlarmRuleSetSchema>;

/** One alarm condition as it applies to one tag, everything resolved. */
export interface ConditionSpec {
  rule_id: string;
  limit: LimitKind;
  /** `<rule_id>|<limit>`: with the tag, names the condition (`conditionKey`). */
  key: string;
  type: string;
  severity: Severity;
  /** Level limits: the threshold. Rate of change: max_change_per_s. */
  threshold: number;
  direction: RateDirection | null;
  on_delay_ms: number;
  off_delay_ms: number;
  deadband: number;
  message: string;
  unit: string | undefined;
}

export const ruleId = (rule: AlarmRule) => rule.id ?? `${rule.asset_id}/${rule.parameter}`;

/** `<asset_id>/<parameter>|<rule_id>|<limit>`: the unit of condition tracking and of "one open alarm at a time". */
export function conditionKey(asset_id: string, parameter: string, spec: Pick<ConditionSpec, "key">): string {
  return `${asset_id}/${parameter}|${spec.key}`;
}

function limitOf(rule: AlarmRule, limit: LimitKind): { value: number; severity?: Severity; type?: string; message?: string; on_delay_s?: number; off_delay_s?: number; deadband?: number; direction?: RateDirection } | undefined {
  if (limit === "rate_of_change") {
    const r = rule.rate_of_change;
    return r ? { ...r, value: r.max_change_per_s } : undefined;
  }
  const l = rule[limit];
  return typeof l === "number" ? { value: l } : l;
}

const specOf = (set: AlarmRuleSet, rule: AlarmRule, limit: LimitKind): ConditionSpec | undefined => {
  const l = limitOf(rule, limit);
  if (!l) return undefined;
  const id = ruleId(rule);
  return {
    rule_id: id,
    limit,
    key: `${id}|${limit}`,
    type: l.type ?? limit,
    severity: l.severity ?? set.severities[limit] ?? DEFAULT_SEVERITIES[limit],
    threshold: l.value,
    direction: limit === "rate_of_change" ? (l.direction ?? "both") : null,
    on_delay_ms: Math.round((l.on_delay_s ?? rule.on_delay_s ?? set.on_delay_s) * 1000),
    off_delay_ms: Math.round((l.off_delay_s ?? rule.off_delay_s ?? set.off_delay_s) * 1000),
    // A level deadband is in the value's unit; the rate's is per second, so it is never inherited.
    deadband: limit === "rate_of_change" ? (l.deadband ?? 0) : (l.deadband ?? rule.deadband ?? set.deadband),
    message: l.message ?? DEFAULT_MESSAGES[limit],
    unit: rule.unit,
  };
};

const compiled = new WeakMap<AlarmRuleSet, Map<string, ConditionSpec[]>>();

/**
 * The conditions that apply to one tag. Each limit kind resolves on its own from the most specific
 * enabled rule that sets it: a literal asset_id outweighs a pattern, which outweighs `*`; then the
 * same for parameter; equal weight → the earlier rule. So a plant-wide `asset_id: "*"` high limit
 * still applies to an asset whose own rule only sets a low limit.
 */
export function resolveConditions(set: AlarmRuleSet, asset_id: string, parameter: string): ConditionSpec[] {
  let byTag = compiled.get(set);
  if (!byTag) compiled.set(set, (byTag = new Map()));
  const cacheKey = `${asset_id}\u0000${parameter}`;
  const cached = byTag.get(cacheKey);
  if (cached) return cached;
  const matching = set.rules
    .map((rule, index) => ({ rule, index, weight: globRank(rule.asset_id) * 3 + globRank(rule.parameter) }))
    .filter(({ rule }) => rule.enabled && globMatch(rule.asset_id, asset_id) && globMatch(rule.parameter, parameter))
    .sort((a, b) => b.weight - a.weight || a.index - b.index);
  const specs: ConditionSpec[] = [];
  for (const limit of LIMITS) {
    const winner = matching.find(({ rule }) => limitOf(rule, limit) !== undefined);
    const spec = winner && specOf(set, winner.rule, limit);
    if (spec) specs.push(spec);
  }
  byTag.set(cacheKey, specs);
  return specs;
}

/** Fills a message template; unknown placeholders are rejected at load, missing values (no unit) become empty. */
export function renderMessage(template: string, fields: Partial<Record<(typeof TEMPLATE_FIELDS)[number], string | number | undefined>>): string {
  return template
    .replace(/\{([a-z_]+)\}/g, (_, name: string) => {
      const v = fields[name as (typeof TEMPLATE_FIELDS)[number]];
      return v === undefined ? "" : String(v);
    })
    .replace(/[ \t]{2,}/g, " ")
    .replace(/ ([,.;:)])/g, "$1")
    .trim();
}

/** What the schema cannot say about one rule; paths start with `at` ("" for a rule on its own). */
function ruleErrors(rule: AlarmRule, at: string): FieldError[] {
  const errors: FieldError[] = [];
  const path = (field: string) => (at ? `${at}.${field}` : field);
  if (!LIMITS.some((l) => limitOf(rule, l) !== undefined)) {
    errors.push({ path: at || "(root)", message: "sets no limit: give high_high, high, low, low_low or rate_of_change" });
  }
  // Thresholds must be ordered low_low < low < high < high_high (among those given).
  const order = (["low_low", "low", "high", "high_high"] as const).filter((l) => limitOf(rule, l) !== undefined);
  for (let k = 1; k < order.length; k++) {
    const lo = order[k - 1]!;
    const hi = order[k]!;
    const a = limitOf(rule, lo)!.value;
    const b = limitOf(rule, hi)!.value;
    if (!(a < b)) errors.push({ path: path(hi), message: `must be above ${lo} (${a}), got ${b}` });
  }
  const roc = rule.rate_of_change;
  if (roc) {
    const db = roc.deadband ?? 0;
    if (db >= roc.max_change_per_s) {
      errors.push({ path: path("rate_of_change.deadband"), message: `must be below max_change_per_s (${roc.max_change_per_s}) or the alarm could never clear, got ${db}` });
    }
  }
  const types = new Map<string, LimitKind>();
  for (const l of LIMITS) {
    const lim = limitOf(rule, l);
    if (!lim) continue;
    const type = lim.type ?? l;
    const other = types.get(type);
    if (other) errors.push({ path: path(`${l}.type`), message: `repeats the type ${JSON.stringify(type)} of ${other}; alerts are deduplicated by (asset_id, type), so each limit needs its own` });
    else types.set(type, l);
    if (lim.message !== undefined) {
      for (const m of lim.message.matchAll(/\{([^}]*)\}/g)) {
        if (!(TEMPLATE_FIELDS as readonly string[]).includes(m[1]!)) {
          errors.push({ path: path(`${l}.message`), message: `unknown placeholder {${m[1]}}; use {${TEMPLATE_FIELDS.join("}, {")}}` });
        }
      }
    }
  }
  return errors;
}

function semanticErrors(set: AlarmRuleSet): FieldError[] {
  const errors: FieldError[] = [];
  const ids = new Map<string, number>();
  set.rules.forEach((rule, i) => {
    const at = `rules[${i}]`;
    const id = ruleId(rule);
    const first = ids.get(id);
    if (first !== undefined) errors.push({ path: rule.id !== undefined ? `${at}.id` : at, message: `repeats the id ${JSON.stringify(id)} of rules[${first}]; give each rule its own id` });
    else ids.set(id, i);
    errors.push(...ruleErrors(rule, at));
  });
  return errors;
}

/**
 * One rule on its own (an API body, a record of the rules topic): the same schema and checks as a
 * rule in a file, with paths relative to the rule. The result always carries its `id`.
 */
export function parseAlarmRule(input: unknown, source = "alarm rule"): AlarmRule & { id: string } {
  const rule = parseWithSchema(AlarmRuleSchema, input, source);
  const errors = ruleErrors(rule, "");
  if (errors.length > 0) throw new ConfigError(source, errors);
  return { ...rule, id: ruleId(rule) };
}

/** The set-wide settings: what a rule, then a limit, may override. */
export type AlarmRuleDefaults = Omit<AlarmRuleSet, "rules">;

/**
 * A rule set from set-wide settings and rules stored one by one. Stored rules have no file order,
 * so ties in precedence go to the rule whose id sorts first.
 */
export function alarmRuleSetOf(defaults: AlarmRuleDefaults, rules: Iterable<AlarmRule>): AlarmRuleSet {
  return { ...defaults, rules: [...rules].sort((a, b) => (ruleId(a) < ruleId(b) ? -1 : ruleId(a) > ruleId(b) ? 1 : 0)) };
}

/** The settings of a rule set without its rules. */
export function alarmRuleDefaultsOf({ rules: _rules, ...defaults }: AlarmRuleSet): AlarmRuleDefaults {
  return defaults;
}

/** Parses YAML text or an already parsed object; throws ConfigError naming every bad path. */
export function loadAlarmRules(input: string | unknown, source = "alarm rules"): AlarmRuleSet {
  let raw: unknown = input;
  if (typeof input === "string") {
    try {
      raw = parseYaml(input) ?? {};
    } catch (error) {
      if (error instanceof YAMLParseError) {
        const where = error.linePos?.[0];
        throw new ConfigError(source, [{ path: where ? `line ${where.line}, column ${where.col}` : "(file)", message: error.message.split("\n")[0]! }]);
      }
      throw error;
    }
  }
  const set = parseWithSchema(AlarmRuleSetSchema, raw, source);
  const errors = semanticErrors(set);
  if (errors.length > 0) throw new ConfigError(source, errors);
  return set;
}

export function loadAlarmRulesFile(path: string): AlarmRuleSet {
  return loadAlarmRules(readYamlFile(path), path);
}
