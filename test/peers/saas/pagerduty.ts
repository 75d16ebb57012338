/**
 * PagerDuty Events API v2 stand-in: `POST /v2/enqueue`.
 * Validates what the real API requires (routing_key; event_action trigger|acknowledge|resolve; for a
 * trigger payload.summary ≤ 1024, payload.source, payload.severity critical|error|warning|info; dedup_key
 * for acknowledge/resolve) and answers like it: 202 {"status":"success","message":"Event processed","dedup_key"},
 * 400 {"status":"invalid event","message":"Event object is invalid","errors":[…]}.
 */
import { startFakeSaas, type FakeSaas } from "./fake.ts";

const SEVERITIES = ["critical", "error", "warning", "info"];
const ACTIONS = ["trigger", "acknowledge", "resolve"];

export interface PagerDutyFakeOptions {
  /** When given, other routing keys get 400 "Invalid routing key". */
  routingKeys?: string[];
}

export async function startPagerDutyFake(options: PagerDutyFakeOptions = {}): Promise<FakeSaas> {
  let n = 0;
  return startFakeSaas("pagerduty", (req) => {
    if (req.method !== "POST" || req.path !== "/v2/enqueue") return { status: 404, body: { status: "not found" } };
    const invalid = (...errors: string[]) => ({ status: 400, body: { status: "invalid event", message: "Event object is invalid", errors } });
    const e = req.json as Record<string, unknown> | undefined;
    if (!e || typeof e !== "object") return invalid("Event is not valid JSON");
    const errors: string[] = [];
    if (typeof e.routing_key !== "string" || e.routing_key.trim() === "") errors.push("'routing_key' is missing or blank");
    else if (options.routingKeys && !options.routingKeys.includes(e.routing_key)) errors.push("Invalid routing key");
    if (typeof e.event_action !== "string" || !ACTIONS.includes(e.event_action)) errors.push("'event_action' is invalid (must be one of: trigger, acknowledge, resolve)");
    if (e.dedup_key !== undefined && (typeof e.dedup_key !== "string" || e.dedup_key.length > 255)) errors.push("'dedup_key' must be a string of at most 255 characters");
    if (e.event_action === "trigger") {
      const p = e.payload as Record<string, unknown> | undefined;
      if (!p || typeof p !== "object") errors.push("'payload' is missing");
      else {
        if (typeof p.summary !== "string" || p.summary === "") errors.push("'payload.summary' is missing or blank");
        else if (p.summary.length > 1024) errors.push("'payload.summary' is too long");
        if (typeof p.source !== "string" || p.source === "") errors.push("'payload.source' is missing or blank");
        if (typeof p.severity !== "string" || !SEVERITIES.includes(p.severity)) errors.push("'payload.severity' is invalid (must be one of: critical, error, warning, info)");
        if (p.timestamp !== undefined && (typeof p.timestamp !== "string" || Number.isNaN(Date.parse(p.timestamp)))) errors.push("'payload.timestamp' is invalid");
      }
    } else if (e.event_action === "acknowledge" || e.event_action === "resolve") {
      if (typeof e.dedup_key !== "string" || e.dedup_key === "") errors.push("'dedup_key' is missing or blank");
    }
    if (errors.length > 0) return invalid(...errors);
    const dedup_key = typeof e.dedup_key === "string" ? e.dedup_key : `generated-${++n}`;
    return { status: 202, body: { status: "success", message: "Event processed", dedup_key } };
  });
}
