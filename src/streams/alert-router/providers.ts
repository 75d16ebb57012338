/**
 * Delivery clients: the real request formats as pure builders, and a sender that makes one attempt
 * (`attempt`, for a glue that keeps retries durable in the router state) or retries in process with
 * capped exponential backoff (`deliver`). fetch, sleep, clock and the SMTP mailer are injectable.
 *
 * Outcomes: 2xx → delivered. 429, 408, 5xx, timeouts and connection errors → retry (Retry-After
 * honoured, capped at max_backoff) until `retry.max_attempts` attempts in all, then failed. Any other
 * 4xx → failed at once (a bad key or payload does not get better): the router dead-letters it.
 * SMTP: 4xx replies and connection errors are transient, 5xx permanent.
 */
import type { AlarmEvent, AlarmEventName } from "../alarms/lifecycle.ts";
import type { Severity } from "../alarms/rules.ts";
import { DEFAULT_HTTP_TIMEOUT_MS, DEFAULT_RETRY, type EmailAction, type PagerDutyAction, type RetryPolicy, type SlackAction, type SmsAction, type WebhookAction } from "./config.ts";
import type { AlarmDelivery, Delivery, DeliveryOutcome, DigestDelivery } from "./routing.ts";
import { createSmtpMailer, type EmailMessage, type Mailer } from "./smtp.ts";

export type { DeliveryOutcome } from "./routing.ts";

export interface HttpRequest {
  method: "POST";
  url: string;
  headers: Record<string, string>;
  body: string;
}

// ---------------------------------------------------------------------------------------------
// Text

const STATE_WORD: Partial<Record<AlarmEventName, string>> = { cleared: "CLEARED", acknowledged: "ACKNOWLEDGED", suppressed: "SUPPRESSED", unsuppressed: "UNSUPPRESSED" };

function reading(a: AlarmEvent): string {
  const unit = a.unit ? ` ${a.unit}` : "";
  return `${a.value}${unit}, limit ${a.threshold}${unit}`;
}

/**
 * One line: "[CRITICAL] reactor_1 overpressure: Reactor pressure exceeded threshold (210.5 psi, limit 200 psi)";
 * "[ACKNOWLEDGED by alice] …", "[CLEARED] … (back to 190 psi, limit 200 psi)", "[ESCALATED L1 CRITICAL] …".
 */
export function summaryLine(alarm: AlarmEvent, event: AlarmEventName = alarm.event, level: number | null = null): string {
  const word = event === "escalated" ? `ESCALATED L${level ?? alarm.escalation_level ?? 1} ${alarm.severity}` : (STATE_WORD[event] ?? alarm.severity);
  const who = (event === "acknowledged" || event === "suppressed" || event === "unsuppressed") && alarm.event_by ? ` by ${alarm.event_by}` : "";
  const unit = alarm.unit ? ` ${alarm.unit}` : "";
  const values = event === "cleared" && alarm.cleared_value !== null ? `back to ${alarm.cleared_value}${unit}, limit ${alarm.threshold}${unit}` : reading(alarm);
  return `[${word}${who}] ${alarm.asset_id} ${alarm.type}: ${alarm.message} (${values})`;
}

// ---------------------------------------------------------------------------------------------
// PagerDuty Events API v2

/** critical | error | warning | info: the four PagerDuty knows. */
export const PAGERDUTY_SEVERITY: Record<Severity, "critical" | "error" | "warning" | "info"> = {
  CRITICAL: "critical",
  HIGH: "error",
  MEDIUM: "warning",
  LOW: "warning",
  INFO: "info",
};

export function pagerDutyEventAction(event: AlarmEventName): "trigger" | "acknowledge" | "resolve" {
  switch (event) {
    case "acknowledged":
    case "suppressed":
      return "acknowledge";
    case "cleared":
      return "resolve";
    default:
      return "trigger";
  }
}

export function pagerDutyRequest(d: AlarmDelivery, action: PagerDutyAction): HttpRequest {
  const a = d.alarm;
  const event_action = pagerDutyEventAction(d.event);
  const body: Record<string, unknown> = { routing_key: action.integration_key, event_action, dedup_key: a.alarm_id };
  if (event_action === "trigger") {
    body.payload = {
      summary: summaryLine(a, d.event, d.escalation_level).slice(0, 1024),
      source: a.asset_id,
      severity: PAGERDUTY_SEVERITY[a.severity],
      timestamp: a.raised_at,
      component: a.parameter,
      class: a.type,
      custom_details: {
        alarm_id: a.alarm_id,
        state: a.state,
        message: a.message,
        value: a.value,
        threshold: a.threshold,
        unit: a.unit ?? null,
        raised_at: a.raised_at,
        condition: a.condition,
        ...(d.escalation_level !== null ? { escalation_level: d.escalation_level } : {}),
      },
    };
    body.client = "Industrial Data Gateway";
  }
  return { method: "POST", url: `${action.base_url}/v2/enqueue`, headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
}

// ---------------------------------------------------------------------------------------------
// Slack incoming webhook

const slackEscape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export function slackRequest(d: AlarmDelivery, action: SlackAction): HttpRequest {
  const a = d.alarm;
  const text = summaryLine(a, d.event, d.escalation_level);
  const details = [`${a.severity}`, `value ${reading(a)}`, `raised ${a.raised_at}`, a.acked_by ? `acked by ${a.acked_by}` : null, `alarm ${a.alarm_id}`].filter(Boolean).join(" · ");
  const body: Record<string, unknown> = {
    text: slackEscape(text),
    blocks: [
      { type: "section", text: { type: "mrkdwn", text: `*${slackEscape(text)}*` } },
      { type: "context", elements: [{ type: "mrkdwn", text: slackEscape(details) }] },
    ],
  };
  if (action.channel) body.channel = action.channel;
  if (action.username) body.username = action.username;
  return { method: "POST", url: action.webhook_url, headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
}

// ---------------------------------------------------------------------------------------------
// Twilio Programmable Messaging

export const SMS_MAX_CHARS = 1600;

export function twilioRequest(d: AlarmDelivery, action: SmsAction): HttpRequest {
  if (d.target === null) throw new Error(`SMS delivery ${d.delivery_id} has no phone number`);
  const form = new URLSearchParams({ To: d.target, From: action.from, Body: summaryLine(d.alarm, d.event, d.escalation_level).slice(0, SMS_MAX_CHARS) });
  return {
    method: "POST",
    url: `${action.base_url}/2010-04-01/Accounts/${encodeURIComponent(action.account_sid)}/Messages.json`,
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `Basic ${Buffer.from(`${action.account_sid}:${action.auth_token}`).toString("base64")}`,
    },
    body: form.toString(),
  };
}

// ---------------------------------------------------------------------------------------------
// Generic webhook

export function webhookRequest(d: Delivery, action: WebhookAction): HttpRequest {
  const body =
    d.kind === "alarm"
      ? { delivery_id: d.delivery_id, kind: d.kind, event: d.event, escalation_level: d.escalation_level, alarm: d.alarm }
      : { delivery_id: d.delivery_id, kind: d.kind, window_start: d.window_start, window_end: d.window_end, alarms: d.alarms };
  return { method: "POST", url: action.url, headers: { "content-type": "application/json", "x-delivery-id": d.delivery_id, ...action.headers }, body: JSON.stringify(body) };
}

/** The HTTP request for a delivery; null for e-mail (SMTP). */
export function buildHttpRequest(d: Delivery): HttpRequest | null {
  const action = d.action;
  if (action.type === "email") return null;
  if (action.type === "webhook") return webhookRequest(d, action);
  if (d.kind !== "alarm") throw new Error(`a ${action.type} action cannot take a digest (delivery ${d.delivery_id})`);
  switch (action.type) {
    case "pagerduty":
      return pagerDutyRequest(d, action);
    case "slack":
      return slackRequest(d, action);
    case "sms":
      return twilioRequest(d, action);
  }
}

// ---------------------------------------------------------------------------------------------
// E-mail

function alarmBlock(a: AlarmEvent): string {
  return [
    `${a.severity.padEnd(8)} ${a.asset_id} ${a.type} (${a.state}, ${a.event} ${a.event_at})`,
    `         ${a.message}`,
    `         value ${reading(a)}; raised ${a.raised_at}${a.cleared_at ? `; cleared ${a.cleared_at}` : ""}; alarm ${a.alarm_id}`,
  ].join("\n");
}

export function emailMessage(d: Delivery, action: EmailAction): EmailMessage {
  const from = action.smtp.from;
  const headers = { "Message-ID": `<${d.delivery_id}@industrial-data-gateway>`, "X-Delivery-Id": d.delivery_id };
  if (d.kind === "alarm") {
    const a = d.alarm;
    return {
      from,
      to: action.recipients,
      subject: `${action.subject_prefix} ${summaryLine(a, d.event, d.escalation_level).replace(/ \(.*\)$/, "")}`.trim(),
      text: `${summaryLine(a, d.event, d.escalation_level)}\n\n${alarmBlock(a)}\n`,
      headers,
    };
  }
  return digestMessage(d, action, headers);
}

function digestMessage(d: DigestDelivery, action: EmailAction, headers: Record<string, string>): EmailMessage {
  const counts = new Map<string, number>();
  for (const a of d.alarms) counts.set(a.severity, (counts.get(a.severity) ?? 0) + 1);
  const bySeverity = [...counts].map(([s, n]) => `${n} ${s}`).join(", ");
  const n = d.alarms.length;
  const span = `${d.window_start.slice(11, 16)}–${d.window_end.slice(11, 16)} UTC`;
  return {
    from: action.smtp.from,
    to: action.recipients,
    subject: `${action.subject_prefix} digest: ${n} alarm${n === 1 ? "" : "s"} (${bySeverity}), ${span}`.trim(),
    text: [`Alarm digest ${d.window_start} – ${d.window_end}`, `${n} alarm${n === 1 ? "" : "s"}: ${bySeverity}`, "", ...d.alarms.map(alarmBlock), ""].join("\n"),
    headers,
  };
}

// ---------------------------------------------------------------------------------------------
// Outcomes and retries

export function backoffMs(attempt: number, policy: RetryPolicy = DEFAULT_RETRY): number {
  return Math.min(policy.max_backoff_ms, Math.round(policy.initial_backoff_ms * policy.multiplier ** Math.max(0, attempt - 1)));
}

/** Retry-After: delta-seconds or an HTTP date. */
export function retryAfterMs(header: string | null, now: number): number | null {
  if (!header) return null;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isFinite(at) ? Math.max(0, at - now) : null;
}

/** A retry once the budget is spent becomes failed. */
export function withinBudget(outcome: DeliveryOutcome, attempt: number, policy: RetryPolicy): DeliveryOutcome {
  if (outcome.status !== "retry" || attempt < policy.max_attempts) return outcome;
  return { status: "failed", reason: `gave up after ${attempt} attempt${attempt === 1 ? "" : "s"}: ${outcome.reason}` };
}

export function classifyHttp(status: number, body: string, retryAfter: string | null, attempt: number, policy: RetryPolicy = DEFAULT_RETRY, now = Date.now()): DeliveryOutcome {
  const snippet = body.replace(/\s+/g, " ").trim().slice(0, 300);
  const reason = `HTTP ${status}${snippet ? `: ${snippet}` : ""}`;
  let outcome: DeliveryOutcome;
  if (status >= 200 && status < 300) outcome = { status: "delivered", detail: reason };
  else if (status === 429 || status === 408 || status >= 500) {
    const hinted = retryAfterMs(retryAfter, now);
    outcome = { status: "retry", after_ms: Math.min(policy.max_backoff_ms, hinted ?? backoffMs(attempt, policy)), reason };
  } else outcome = { status: "failed", reason };
  return withinBudget(outcome, attempt, policy);
}

/** Ids already delivered (e.g. kept in a compacted topic): a replayed delivery with one of them is skipped. */
export interface DeliveredLog {
  has(delivery_id: string): boolean | Promise<boolean>;
  add(delivery_id: string): void | Promise<void>;
}

export function memoryDeliveredLog(): DeliveredLog & { ids: Set<string> } {
  const ids = new Set<string>();
  return { ids, has: (id) => ids.has(id), add: (id) => void ids.add(id) };
}

export interface SenderOptions {
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  retry?: RetryPolicy;
  timeout_ms?: number;
  mailer?: Mailer;
  delivered?: DeliveredLog;
}

export interface Sender {
  /** One try; uses `delivery.attempt` against the retry budget. */
  attempt(delivery: Delivery): Promise<DeliveryOutcome>;
  /** Tries until delivered or failed, sleeping between tries. */
  deliver(delivery: Delivery): Promise<{ outcome: Exclude<DeliveryOutcome, { status: "retry" }>; attempts: number }>;
  close(): Promise<void>;
}

export function createSender(options: SenderOptions = {}): Sender {
  const doFetch = options.fetch ?? ((url: string, init: RequestInit) => fetch(url, init));
  const sleep = options.sleep ?? ((ms: number) => Bun.sleep(ms));
  const now = options.now ?? Date.now;
  const policy = options.retry ?? DEFAULT_RETRY;
  const timeout = options.timeout_ms ?? DEFAULT_HTTP_TIMEOUT_MS;
  let mailer = options.mailer;

  async function once(d: Delivery): Promise<DeliveryOutcome> {
    if (options.delivered && (await options.delivered.has(d.delivery_id))) return { status: "delivered", detail: "already delivered" };
    let outcome: DeliveryOutcome;
    if (d.action.type === "email") {
      mailer ??= createSmtpMailer({ timeout_ms: timeout });
      outcome = withinBudget(await mailer.send(d.action.smtp, emailMessage(d, d.action)), d.attempt, policy);
      if (outcome.status === "retry") outcome = { ...outcome, after_ms: backoffMs(d.attempt, policy) };
    } else {
      const req = buildHttpRequest(d)!;
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new Error(`timed out after ${timeout} ms`)), timeout);
      try {
        const res = await doFetch(req.url, { method: req.method, headers: req.headers, body: req.body, signal: controller.signal, redirect: "manual" });
        const text = await res.text().catch(() => "");
        outcome = classifyHttp(res.status, text, res.headers.get("retry-after"), d.attempt, policy, now());
      } catch (error) {
        const reason = `${d.action.type} unreachable: ${(error as Error).message ?? String(error)}`;
        outcome = withinBudget({ status: "retry", after_ms: backoffMs(d.attempt, policy), reason }, d.attempt, policy);
      } finally {
        clearTimeout(timer);
      }
    }
    if (outcome.status === "delivered" && options.delivered) await options.delivered.add(d.delivery_id);
    return outcome;
  }

  return {
    attempt: once,
    async deliver(delivery) {
      let d = delivery;
      for (;;) {
        const outcome = await once(d);
        if (outcome.status !== "retry") return { outcome, attempts: d.attempt };
        await sleep(outcome.after_ms);
        d = { ...d, attempt: d.attempt + 1 };
      }
    },
    async close() {
      mailer?.close();
    },
  };
}
