import { ConfigError } from "../../config/schema-errors.ts";
import type { Db } from "../../db/client.ts";
import { deleteAlarmRuleVersioned, getAlarmRule, listAlarmRules, listConfigVersions, upsertAlarmRuleVersioned } from "../../db/repo.ts";
import type { AlarmRuleRow } from "../../db/schema.ts";
import { parseAlarmRule, type AlarmRule } from "../../streams/alarms/rules.ts";
import { invalid, notFound } from "../errors.ts";
import { versionConflictAnswer } from "../etag.ts";
import type { Page } from "../pipelines/service.ts";

/**
 * The API's view of an alarm rule. The rule itself is nested, so what a GET returns under `rule` is
 * exactly what a PUT takes.
 */
export interface AlarmRuleView {
  id: string;
  gateway_id: string;
  version: number;
  rule: AlarmRule;
  created_at: string;
  updated_at: string;
}

export function toAlarmRuleView(row: AlarmRuleRow): AlarmRuleView {
  return {
    id: row.id,
    gateway_id: row.gatewayId,
    version: row.version,
    rule: row.rule as AlarmRule,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

/** The same schema and checks as a rule in `streams.alarm_rules_file`; 422 names every failing path. */
export function validateAlarmRule(body: unknown): AlarmRule & { id: string } {
  try {
    return parseAlarmRule(body);
  } catch (error) {
    if (error instanceof ConfigError) throw invalid(error.fieldErrors);
    throw error;
  }
}

/**
 * Alarm rules of this gateway, versioned and audited like pipelines. `changed` runs after every
 * stored change: it publishes the rules to the evaluators, and must not wait for Kafka.
 */
export class AlarmRuleService {
  constructor(
    private readonly db: () => Db,
    private readonly gatewayId: string,
    private readonly changed: () => void = () => {},
  ) {}

  async list(limit: number, offset: number): Promise<Page<AlarmRuleView>> {
    const all = await listAlarmRules(this.db(), { gatewayId: this.gatewayId });
    return { items: all.slice(offset, offset + limit).map(toAlarmRuleView), total: all.length, limit, offset };
  }

  async get(id: string): Promise<AlarmRuleView> {
    const row = await getAlarmRule(this.db(), id);
    if (!row || row.gatewayId !== this.gatewayId) throw notFound(`alarm rule ${id}`);
    return toAlarmRuleView(row);
  }

  /**
   * Creates (expectedVersion 0) or replaces a rule. `urlId` is the id of a PUT: a body without an id
   * takes it, a body with another id is refused.
   */
  async save(body: unknown, actor: string, ip: string | null, options: { expectedVersion?: number; urlId?: string }): Promise<AlarmRuleView> {
    const { urlId, expectedVersion } = options;
    if (urlId !== undefined && body !== null && typeof body === "object" && !Array.isArray(body)) {
      const given = (body as { id?: unknown }).id;
      if (given !== undefined && given !== urlId) throw invalid([{ path: "id", message: `expected ${JSON.stringify(urlId)} (the id in the URL), got ${JSON.stringify(given)}` }]);
      body = { ...body, id: urlId };
    }
    const rule = validateAlarmRule(body);
    if (urlId !== undefined) {
      // A rule of another gateway is not this API's to overwrite.
      const existing = await getAlarmRule(this.db(), rule.id);
      if (existing && existing.gatewayId !== this.gatewayId) throw notFound(`alarm rule ${rule.id}`);
    }
    try {
      const result = await upsertAlarmRuleVersioned(this.db(), { id: rule.id, gatewayId: this.gatewayId, rule }, actor, ip, expectedVersion === undefined ? {} : { expectedVersion });
      if (result.changed) this.changed();
      return toAlarmRuleView(result.row);
    } catch (error) {
      throw versionConflictAnswer(error, `alarm rule ${rule.id}`, expectedVersion === 0);
    }
  }

  async remove(id: string, actor: string, ip: string | null, expectedVersion?: number): Promise<void> {
    await this.get(id);
    try {
      const removed = await deleteAlarmRuleVersioned(this.db(), id, actor, ip, expectedVersion === undefined ? {} : { expectedVersion });
      if (!removed) throw notFound(`alarm rule ${id}`);
    } catch (error) {
      throw versionConflictAnswer(error, `alarm rule ${id}`, false);
    }
    this.changed();
  }

  async versions(id: string) {
    await this.get(id);
    return (await listConfigVersions(this.db(), "alarm_rule", id)).map((v) => ({
      version: v.version,
      rule: (v.config as { rule: AlarmRule }).rule,
      created_by: v.createdBy,
      created_at: v.createdAt.toISOString(),
      comment: v.comment,
    }));
  }
}
