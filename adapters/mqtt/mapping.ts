import type { FieldError } from "../../src/config/schema-errors.ts";
import { QUALITIES, type Quality } from "../../src/envelope/reading.ts";
import type { Sample } from "../../src/registry.ts";
import { evaluate, parseJsonPath, type JsonPath } from "./jsonpath.ts";
import type { MqttConfig, TopicRule } from "./schema.ts";
import { SPARKPLUG_NAMESPACE } from "./sparkplug.ts";
import { compileTemplate, literalTemplate, matchTopic, parseTopicPattern, type Template, type TopicPattern } from "./topic.ts";

/** Why a message went to the DLQ instead of Kafka's output topic. */
export type DeadReason =
  | "no_mapping"
  | "malformed_json"
  | "not_a_number"
  | "missing_field"
  | "bad_value"
  | "bad_timestamp"
  | "sparkplug_topic"
  | "sparkplug_decode"
  | "sparkplug_unknown_alias"
  | "internal_error";

export interface Dead {
  reason: DeadReason;
  message: string;
}

export type Decoded = { samples: Sample[] } | { dead: Dead };

type Extract<T> = { constant: T } | { path: JsonPath };

export interface CompiledRule {
  index: number;
  pattern: TopicPattern;
  format: TopicRule["format"];
  qos: 0 | 1 | 2;
  rule: TopicRule;
  /** Number and JSON rules; Sparkplug messages are decoded by SparkplugHost. */
  decode(topic: string, captured: Record<string, string>, payload: Buffer, arrival: Date): Decoded;
}

const NUMBER = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;
const QUALITY_SET = new Set<string>(QUALITIES);

/** Dates outside this range are almost always a wrong unit, not a real device clock. */
const MIN_TIME = Date.UTC(1990, 0, 1);
const MAX_TIME = Date.UTC(2200, 0, 1);

export function parseTimestamp(raw: unknown, format: TopicRule["timestamp_format"]): Date | string {
  let ms: number;
  const numeric = typeof raw === "number" ? raw : typeof raw === "string" && NUMBER.test(raw.trim()) ? Number(raw) : undefined;
  if (format === "iso" || (format === "auto" && numeric === undefined)) {
    if (typeof raw !== "string") return `expected an ISO 8601 string, got ${JSON.stringify(raw)}`;
    ms = Date.parse(raw);
    if (Number.isNaN(ms)) return `not an ISO 8601 time: ${JSON.stringify(raw)}`;
  } else {
    if (numeric === undefined || !Number.isFinite(numeric)) return `expected an epoch number, got ${JSON.stringify(raw)}`;
    const unit = format === "auto" ? (Math.abs(numeric) < 1e11 ? "epoch_s" : Math.abs(numeric) < 1e14 ? "epoch_ms" : Math.abs(numeric) < 1e17 ? "epoch_us" : "epoch_ns") : format;
    ms = unit === "epoch_s" ? numeric * 1000 : unit === "epoch_ms" ? numeric : unit === "epoch_us" ? numeric / 1000 : numeric / 1e6;
  }
  if (!(ms >= MIN_TIME && ms <= MAX_TIME)) return `time ${JSON.stringify(raw)} is outside 1990..2200 (wrong unit?)`;
  return new Date(Math.round(ms));
}

function qualityOf(raw: unknown, map: Record<string, Quality> | undefined): { quality: Quality; status_text?: string } {
  if (raw === undefined || raw === null) return { quality: "GOOD" };
  const mapped = map?.[String(raw)];
  if (mapped) return { quality: mapped };
  if (typeof raw === "string" && QUALITY_SET.has(raw.toUpperCase())) return { quality: raw.toUpperCase() as Quality };
  if (typeof raw === "boolean") return { quality: raw ? "GOOD" : "BAD" };
  return { quality: "UNCERTAIN", status_text: `unrecognized quality ${JSON.stringify(raw)}` };
}

const describeJson = (v: unknown) => (Array.isArray(v) ? "an array" : v === null ? "null" : typeof v === "object" ? "an object" : JSON.stringify(v));

/**
 * Compiles `mapping.topics` once: patterns, templates and paths, each error naming its field.
 * Rules are tried in order; the first whose pattern matches the topic wins.
 */
export function compileRules(config: MqttConfig): { rules: CompiledRule[]; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const rules: CompiledRule[] = [];
  config.mapping.topics.forEach((rule, index) => {
    const at = (field: string) => `mapping.topics[${index}].${field}`;
    const parsed = parseTopicPattern(rule.topic);
    if ("error" in parsed) {
      errors.push({ path: at("topic"), message: parsed.error });
      return;
    }
    const pattern = parsed.pattern;
    const before = errors.length;
    const path = (field: string, text: string | undefined): JsonPath | undefined => {
      if (text === undefined) return undefined;
      const p = parseJsonPath(text);
      if ("error" in p) {
        errors.push({ path: at(field), message: p.error });
        return undefined;
      }
      return p.path;
    };
    const template = (field: string, text: string): Template | undefined => {
      const t = compileTemplate(text, [...pattern.names, "topic"]);
      if ("error" in t) {
        errors.push({ path: at(field), message: t.error });
        return undefined;
      }
      return t.template;
    };

    if (rule.format === "sparkplug_b") {
      if (!pattern.filter.startsWith(`${SPARKPLUG_NAMESPACE}/`) && pattern.filter !== "#") {
        errors.push({ path: at("topic"), message: `a sparkplug_b rule's topic must be under ${SPARKPLUG_NAMESPACE}/ (e.g. ${SPARKPLUG_NAMESPACE}/#)` });
      }
      for (const field of ["value", "values", "timestamp", "quality", "unit", "asset_id", "parameter"] as const) {
        if (rule[field] !== undefined) errors.push({ path: at(field), message: "not used by sparkplug_b (names, units and times come from the payload); see sparkplug.*" });
      }
      if (errors.length === before) rules.push({ index, pattern, format: rule.format, qos: rule.qos, rule, decode: () => ({ samples: [] }) });
      return;
    }
    const assetTemplate =
      rule.asset_id !== undefined
        ? template("asset_id", rule.asset_id)
        : pattern.names.includes("asset")
          ? template("asset_id", "{asset}")
          : literalTemplate(config.output.asset_id);
    const parameterTemplate = template("parameter", rule.parameter ?? (pattern.names.includes("parameter") ? "{parameter}" : "{topic}"));
    const literalOrPath = (field: "quality" | "unit"): Extract<string> | undefined => {
      const text = rule[field];
      if (text === undefined) return undefined;
      if (text.startsWith("$")) {
        if (rule.format !== "json") {
          errors.push({ path: at(field), message: "a JSON path needs format json" });
          return undefined;
        }
        const p = path(field, text);
        return p ? { path: p } : undefined;
      }
      return { constant: text };
    };
    const quality = literalOrPath("quality");
    if (quality && "constant" in quality && !QUALITY_SET.has(quality.constant)) {
      errors.push({ path: at("quality"), message: `expected a JSON path or one of ${QUALITIES.join(", ")}, got ${JSON.stringify(quality.constant)}` });
    }
    const unit = literalOrPath("unit");

    let fields: Array<{ parameter: Template; path?: JsonPath }> = [];
    let timestamp: JsonPath | undefined;
    if (rule.format === "number") {
      for (const field of ["value", "values", "timestamp"] as const) {
        if (rule[field] !== undefined) errors.push({ path: at(field), message: "needs format json (a number payload has no fields)" });
      }
      if (parameterTemplate) fields = [{ parameter: parameterTemplate }];
    } else {
      if (rule.value !== undefined && rule.values !== undefined) errors.push({ path: at("values"), message: "use either value (one reading) or values (several), not both" });
      if (rule.values !== undefined && rule.parameter !== undefined) errors.push({ path: at("parameter"), message: "with values, the parameter names are the keys of values" });
      if (rule.values) {
        for (const [name, text] of Object.entries(rule.values)) {
          const p = path(`values[${JSON.stringify(name)}]`, text);
          const t = template(`values[${JSON.stringify(name)}]`, name);
          if (p && t) fields.push({ parameter: t, path: p });
        }
      } else {
        const p = path("value", rule.value ?? "$");
        if (p && parameterTemplate) fields = [{ parameter: parameterTemplate, path: p }];
      }
      timestamp = path("timestamp", rule.timestamp);
    }
    if (errors.length > before || !assetTemplate) return;

    const qualityMap = rule.quality_map;
    const format = rule.format;
    const timestampFormat = rule.timestamp_format;
    const decode = (topic: string, captured: Record<string, string>, payload: Buffer, arrival: Date): Decoded => {
      const vars = { ...captured, topic };
      const asset_id = assetTemplate.render(vars);
      const badName = (what: string, name: string): Dead | undefined =>
        name.length === 0 ? { reason: "missing_field", message: `${what} is empty (from topic ${JSON.stringify(topic)})` } : name.length > 256 ? { reason: "bad_value", message: `${what} is longer than 256 characters` } : undefined;
      const badAsset = badName("asset_id", asset_id);
      if (badAsset) return { dead: badAsset };
      const text = payload.toString("utf8");
      if (format === "number") {
        const trimmed = text.trim();
        if (!NUMBER.test(trimmed)) return { dead: { reason: "not_a_number", message: `payload is not a number: ${JSON.stringify(trimmed.slice(0, 64))}` } };
        const q = quality && "constant" in quality ? (quality.constant as Quality) : "GOOD";
        const parameter = fields[0]!.parameter.render(vars);
        const badParameter = badName("parameter", parameter);
        if (badParameter) return { dead: badParameter };
        return {
          samples: [
            {
              asset_id,
              parameter,
              value: Number(trimmed),
              quality: q,
              device_time: arrival,
              time_source: "gateway",
              ...(unit && "constant" in unit ? { unit: unit.constant } : {}),
            },
          ],
        };
      }
      let document: unknown;
      try {
        document = JSON.parse(text);
      } catch (error) {
        return { dead: { reason: "malformed_json", message: `payload is not JSON: ${(error as Error).message}` } };
      }
      let device_time = arrival;
      let time_source: Sample["time_source"] = "gateway";
      if (timestamp) {
        const raw = evaluate(timestamp, document);
        if (raw === undefined) return { dead: { reason: "missing_field", message: `timestamp ${timestamp.source} not in payload` } };
        const parsed = parseTimestamp(raw, timestampFormat);
        if (typeof parsed === "string") return { dead: { reason: "bad_timestamp", message: `timestamp ${timestamp.source}: ${parsed}` } };
        device_time = parsed;
        time_source = "device";
      }
      const judged = quality === undefined ? { quality: "GOOD" as Quality } : "constant" in quality ? { quality: quality.constant as Quality } : qualityOf(evaluate(quality.path, document), qualityMap);
      let unitValue: string | undefined;
      if (unit) {
        const u = "constant" in unit ? unit.constant : evaluate(unit.path, document);
        if (typeof u === "string" && u.length > 0) unitValue = u.slice(0, 64);
      }
      const samples: Sample[] = [];
      for (const field of fields) {
        const value = evaluate(field.path!, document);
        if (value === undefined) return { dead: { reason: "missing_field", message: `value ${field.path!.source} not in payload` } };
        if (value !== null && typeof value === "object") return { dead: { reason: "bad_value", message: `value ${field.path!.source} is ${describeJson(value)}, expected a number, boolean or string` } };
        const parameter = field.parameter.render(vars);
        const badParameter = badName("parameter", parameter);
        if (badParameter) return { dead: badParameter };
        const sample: Sample = {
          asset_id,
          parameter,
          value: value as Sample["value"],
          quality: value === null && quality === undefined ? "BAD" : judged.quality,
          device_time,
          time_source,
          ...(unitValue === undefined ? {} : { unit: unitValue }),
          ...(judged.status_text ? { status_text: judged.status_text } : {}),
          ...(value === null ? { error: `value ${field.path!.source} is null` } : {}),
        };
        samples.push(sample);
      }
      return { samples };
    };
    rules.push({ index, pattern, format: rule.format, qos: rule.qos, rule, decode });
  });
  return { rules, errors };
}

/** First rule whose pattern matches; the captured named wildcards go with it. */
export function route(rules: readonly CompiledRule[], topic: string): { rule: CompiledRule; captured: Record<string, string> } | undefined {
  for (const rule of rules) {
    const captured = matchTopic(rule.pattern, topic);
    if (captured) return { rule, captured };
  }
  return undefined;
}
