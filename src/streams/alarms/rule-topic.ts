/**
 * The `_gateway.alarm_rules` topic: how alarm rules travel from the control DB to every evaluator.
 * Compacted, key = rule id, value = `{ gateway_id, version, rule }`, a null value (tombstone) = the
 * rule was deleted. Evaluators apply every record: they share one consumer group per broker, so
 * whichever evaluator holds a tag's partition must know every rule. A publisher only ever removes
 * records of its own gateway, so appliances sharing a broker (tests, a demo) leave each other's
 * rules alone. Pure: the publisher (src/api/alarm-rules/publisher.ts) and the follower
 * (rule-follower.ts) do the I/O.
 */
import { ConfigError } from "../../config/schema-errors.ts";
import { parseAlarmRule, type AlarmRule } from "./rules.ts";

export const ALARM_RULES_TOPIC = "_gateway.alarm_rules";

export interface RuleTopicRecord {
  key: string;
  /** null: a tombstone. */
  value: string | null;
}

export const ruleRecordValue = (gatewayId: string, rule: AlarmRule & { id: string }, version: number): string => JSON.stringify({ gateway_id: gatewayId, version, rule });

/**
 * What to send so a topic holding `published` (key → value, tombstones already applied) holds
 * `desired`: every new or changed value, and a tombstone for every key no longer desired.
 */
export function ruleTopicChanges(published: ReadonlyMap<string, string>, desired: ReadonlyMap<string, string>): RuleTopicRecord[] {
  const changes: RuleTopicRecord[] = [];
  for (const [key, value] of desired) if (published.get(key) !== value) changes.push({ key, value });
  for (const key of published.keys()) if (!desired.has(key)) changes.push({ key, value: null });
  return changes;
}

/**
 * Applies one topic record to `latest` (key → value of `gatewayId`'s records), the way compaction
 * will leave it: a record of another gateway under the same key replaces ours, so it is no longer ours.
 */
export function applyRuleTopicRecord(latest: Map<string, string>, record: RuleTopicRecord, gatewayId: string): void {
  if (record.value !== null && gatewayOf(record.value) === gatewayId) latest.set(record.key, record.value);
  else latest.delete(record.key);
}

function gatewayOf(value: string): unknown {
  try {
    return (JSON.parse(value) as { gateway_id?: unknown }).gateway_id;
  } catch {
    return undefined;
  }
}

export type DecodedRuleRecord = { ok: true; rule: AlarmRule & { id: string }; version: number } | { ok: false; error: string };

/**
 * A record's rule, checked with the same schema as the API. A bad record is refused with the reason
 * rather than thrown: the topic is shared, and one bad record must not stop evaluation.
 */
export function decodeRuleRecord(key: string, value: string): DecodedRuleRecord {
  let body: { version?: unknown; rule?: unknown };
  try {
    body = JSON.parse(value) as typeof body;
  } catch {
    return { ok: false, error: "value is not JSON" };
  }
  try {
    const rule = parseAlarmRule(body?.rule, `${ALARM_RULES_TOPIC} record ${key}`);
    if (rule.id !== key) return { ok: false, error: `rule id ${JSON.stringify(rule.id)} differs from the record key` };
    return { ok: true, rule, version: typeof body.version === "number" ? body.version : 0 };
  } catch (error) {
    if (error instanceof ConfigError) return { ok: false, error: error.message };
    throw error;
  }
}
