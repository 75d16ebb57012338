import type { AlarmRuleRow } from "../src/db/schema.ts";
import { LEVEL_LIMITS, type AlarmRule } from "../src/streams/alarms/rules.ts";
import { html, type Html } from "./html.ts";
import { badge, emptyState } from "./layout.ts";

const LIMIT_LABELS: Record<(typeof LEVEL_LIMITS)[number], string> = { high_high: "HH", high: "H", low: "L", low_low: "LL" };

/** "H > 200 (overpressure, CRITICAL)": one limit as an operator reads it. */
function limitText(label: string, comparison: string, limit: AlarmRule["high"]): string | undefined {
  if (limit === undefined) return undefined;
  if (typeof limit === "number") return `${label} ${comparison} ${limit}`;
  const details = [limit.type, limit.severity].filter(Boolean).join(", ");
  return `${label} ${comparison} ${limit.value}${details ? ` (${details})` : ""}`;
}

/** Every limit a rule sets, high to low, then the rate of change. Pure. */
export function alarmRuleLimits(rule: AlarmRule): string[] {
  const levels = LEVEL_LIMITS.map((l) => limitText(LIMIT_LABELS[l], l.startsWith("high") ? ">" : "<", rule[l]));
  const roc = rule.rate_of_change;
  const rate = roc ? `rate ${roc.direction && roc.direction !== "both" ? `${roc.direction} ` : ""}> ${roc.max_change_per_s}/s${roc.severity ? ` (${roc.severity})` : ""}` : undefined;
  return [...levels, rate].filter((t): t is string => t !== undefined);
}

/** Delays and deadband a rule sets for all its limits ("" when it leaves them to the set-wide settings). */
export function alarmRuleTiming(rule: AlarmRule): string {
  return [
    rule.on_delay_s !== undefined ? `on ${rule.on_delay_s} s` : "",
    rule.off_delay_s !== undefined ? `off ${rule.off_delay_s} s` : "",
    rule.deadband !== undefined ? `deadband ${rule.deadband}` : "",
  ]
    .filter(Boolean)
    .join(", ");
}

/** The Alarms page's list of this gateway's rules (read-only: rules are changed through /api/v1/alarm-rules). */
export function alarmRulesSection(rows: AlarmRuleRow[]): Html {
  const body =
    rows.length === 0
      ? emptyState("No alarm rules.", "Create them with POST /api/v1/alarm-rules; streams.alarm_rules_file seeds a gateway that never had any.")
      : html`<table class="data">
  <thead><tr><th scope="col">Rule</th><th scope="col">Tag</th><th scope="col">Limits</th><th scope="col">Delays, deadband</th><th scope="col">Version</th></tr></thead>
  <tbody>${rows.map((row) => {
    const rule = row.rule as AlarmRule;
    return html`<tr>
  <th scope="row" class="mono">${row.id}${rule.enabled ? "" : html` ${badge("disabled", "muted")}`}</th>
  <td class="mono">${rule.asset_id}/<strong>${rule.parameter}</strong>${rule.unit ? html` <span class="muted">${rule.unit}</span>` : ""}</td>
  <td>${alarmRuleLimits(rule).join(" · ")}</td>
  <td class="small">${alarmRuleTiming(rule) || html`<span class="muted">set-wide</span>`}</td>
  <td class="small">${row.version}</td>
</tr>`;
  })}</tbody>
  </table>`;
  return html`<section class="card" id="alarm-rules" aria-labelledby="alarm-rules-title">
  <h2 id="alarm-rules-title">Alarm rules</h2>
  <p class="hint">Stored in the control DB and published to every evaluator; changed through <code>/api/v1/alarm-rules</code> (engineers and admins), each change versioned and audited.</p>
  ${body}
</section>`;
}
