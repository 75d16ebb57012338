/**
 * Alert routing rules: parse, substitute `${ENV}` / `${secret:name}`, validate (errors name each path),
 * resolve provider defaults into self-contained actions.
 *
 * ```yaml
 * dedup_window: 5min                 # same (asset_id, type) not re-sent within this (default 5min)
 * escalation:                        # default escalation for rules that give none (default: none)
 *   - after: 15min
 *     actions: [{ type: pagerduty, integration_key: ${secret:pd_oncall_lead} }]
 * retry: { max_attempts: 8, initial_backoff: 1s, max_backoff: 5min }
 * providers:                         # shared settings; an action may override any of them
 *   pagerduty: { base_url: https://events.pagerduty.com }
 *   slack: { webhook_url: ${secret:slack_webhook} }
 *   twilio: { account_sid: ${TWILIO_SID}, auth_token: ${secret:twilio_token}, from: "+15005550006" }
 *   smtp: { host: smtp.plant.local, port: 587, from: "gateway@plant.local" }
 * rules:
 *   - condition: { severity: CRITICAL }
 *     actions:
 *       - type: pagerduty
 *         integration_key: ${PAGERDUTY_KEY}
 *       - type: sms
 *         phone_numbers: ["+1234567890"]
 *   - condition: { severity: HIGH, asset_id: "reactor_*" }
 *     actions: [{ type: slack, channel: "#alerts" }]
 *     escalation: [{ after: 15min, actions: [{ type: sms, phone_numbers: ["+1234567890"] }] }]
 *   - condition: { severity: [MEDIUM, LOW] }
 *     actions: [{ type: email, recipients: ["ops@example.com"], digest_interval: 15min }]
 * ```
 */
import { readFileSync } from "node:fs";
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { ConfigError, schemaErrors, type FieldError } from "../../config/schema-errors.ts";
import { defaultSecretDirs, lookupSecret, secretNotFoundMessage, type SecretSources } from "../../config/secrets.ts";
import type { AlarmEventName } from "../alarms/lifecycle.ts";
import { SEVERITIES, type Severity } from "../alarms/rules.ts";

// ---------------------------------------------------------------------------------------------
// Durations

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|sec|secs|seconds?|m|min|mins|minutes?|h|hr|hrs|hours?|d|days?)$/i;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "15min", "5m", "30s", "1.5h", "500ms", "2d"; a bare number is seconds. Returns null when unreadable. */
export function parseDuration(value: string | number): number | null {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : null;
  const m = DURATION.exec(value.trim());
  if (!m) return null;
  const unit = m[2]!.toLowerCase();
  const key = unit === "ms" ? "ms" : unit.startsWith("mi") || unit === "m" ? "m" : unit[0]!;
  return Math.round(Number(m[1]) * UNIT_MS[key]!);
}

// ---------------------------------------------------------------------------------------------
// Substitution

/** Resolves `${secret:name}`; undefined = not found. */
export type SecretResolver = (name: string) => string | undefined;

/** The shared lookup (src/config/secrets.ts), with the routing config's own secrets folder searched first. */
function secretSources(env: Record<string, string | undefined>, secretsDir: string | undefined): SecretSources {
  return { env, dirs: [...(secretsDir ? [secretsDir] : []), ...defaultSecretDirs(env)] };
}

export interface SubstitutionOptions {
  env?: Record<string, string | undefined>;
  /** Default: the shared lookup (env `SECRET_<NAME>`, then `secrets_dir`, then the default folders); names only, no paths. */
  secret?: SecretResolver;
  secrets_dir?: string;
}

const PLACEHOLDER = /\$\$\{|\$\{([^}]*)\}/g;

/**
 * Replaces `${NAME}` (environment; `${NAME:-fallback}` when unset or empty), `${secret:name}` and `$${`
 * (a literal `${`) in every string of a parsed document. Unresolvable references are errors naming
 * the path, never empty strings.
 */
export function substitute(input: unknown, options: SubstitutionOptions = {}): { value: unknown; errors: FieldError[] } {
  const env = options.env ?? process.env;
  const sources = secretSources(env, options.secrets_dir);
  const secret = options.secret ?? ((name: string) => lookupSecret(name, sources));
  const errors: FieldError[] = [];
  const walk = (node: unknown, path: string): unknown => {
    if (typeof node === "string") {
      return node.replace(PLACEHOLDER, (whole, inner: string | undefined) => {
        if (inner === undefined) return "${";
        if (inner.startsWith("secret:")) {
          const name = inner.slice("secret:".length);
          const v = secret(name);
          if (v === undefined) errors.push({ path: path || "(root)", message: options.secret ? `\${secret:${name}}: no such secret` : secretNotFoundMessage(name, sources) });
          return v ?? whole;
        }
        const m = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s.exec(inner);
        if (!m) {
          errors.push({ path: path || "(root)", message: `\${${inner}}: not a variable reference; use \${NAME}, \${NAME:-default} or \${secret:name} ($\${ for a literal)` });
          return whole;
        }
        const v = env[m[1]!];
        if (v !== undefined && v !== "") return v;
        if (m[2] !== undefined) return m[2];
        errors.push({ path: path || "(root)", message: `\${${m[1]}}: environment variable ${m[1]} is not set` });
        return whole;
      });
    }
    if (Array.isArray(node)) return node.map((v, i) => walk(v, `${path}[${i}]`));
    if (node !== null && typeof node === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(node)) out[k] = walk(v, /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? (path ? `${path}.${k}` : k) : `${path}[${JSON.stringify(k)}]`);
      return out;
    }
    return node;
  };
  return { value: walk(input, ""), errors };
}

// ---------------------------------------------------------------------------------------------
// Schema

export const ACTION_TYPES = ["pagerduty", "slack", "sms", "email", "webhook"] as const;
export type ActionType = (typeof ACTION_TYPES)[number];

/** Transitions an action can be told about (escalation is not one: an escalation level's actions are sent when it fires). */
export const NOTIFY_EVENTS = ["raised", "acknowledged", "cleared", "suppressed", "unsuppressed"] as const satisfies readonly AlarmEventName[];
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

/** What each action hears about unless it says `notify_on`. PagerDuty follows the incident through; a pager or a mailbox hears of raises only. */
export const DEFAULT_NOTIFY_ON: Record<ActionType, NotifyEvent[]> = {
  pagerduty: ["raised", "acknowledged", "cleared", "suppressed", "unsuppressed"],
  slack: ["raised", "acknowledged", "cleared"],
  sms: ["raised"],
  email: ["raised"],
  webhook: ["raised", "acknowledged", "cleared", "suppressed", "unsuppressed"],
};

const Duration = Type.Union([Type.String({ minLength: 1 }), Type.Number({ minimum: 0 })], {
  description: 'e.g. "15min", "30s", "1h"; a number is seconds',
});
const OneOrMany = (item: TSchema) => Type.Union([item, Type.Array(item, { minItems: 1 })]);
const NotifyOn = Type.Optional(Type.Array(Type.Union(NOTIFY_EVENTS.map((e) => Type.Literal(e))), { uniqueItems: true, description: "transitions this action is sent; default per type" }));
const Url = Type.String({ pattern: "^https?://[^\\s]+$", description: "http(s) URL" });
const E164 = Type.String({ pattern: "^\\+[1-9][0-9]{6,14}$", description: "E.164 phone number, e.g. +14155550100" });
const Email = Type.String({ pattern: "^[^\\s@<>]+@[^\\s@<>]+$", description: "e-mail address" });

const ACTION_SCHEMAS = {
  pagerduty: Type.Object(
    {
      type: Type.Literal("pagerduty"),
      integration_key: Type.Optional(Type.String({ minLength: 1, description: "Events API v2 routing key; default providers.pagerduty.integration_key" })),
      base_url: Type.Optional(Url),
      notify_on: NotifyOn,
    },
    { additionalProperties: false },
  ),
  slack: Type.Object(
    {
      type: Type.Literal("slack"),
      webhook_url: Type.Optional(Url),
      channel: Type.Optional(Type.String({ minLength: 1, description: "sent as `channel`: honoured by legacy webhooks; app webhooks post to their own channel" })),
      username: Type.Optional(Type.String({ minLength: 1 })),
      notify_on: NotifyOn,
    },
    { additionalProperties: false },
  ),
  sms: Type.Object(
    {
      type: Type.Literal("sms"),
      phone_numbers: Type.Array(E164, { minItems: 1 }),
      from: Type.Optional(E164),
      account_sid: Type.Optional(Type.String({ minLength: 1 })),
      auth_token: Type.Optional(Type.String({ minLength: 1 })),
      base_url: Type.Optional(Url),
      notify_on: NotifyOn,
    },
    { additionalProperties: false },
  ),
  email: Type.Object(
    {
      type: Type.Literal("email"),
      recipients: Type.Array(Email, { minItems: 1 }),
      digest_interval: Type.Optional(Duration),
      subject_prefix: Type.Optional(Type.String()),
      notify_on: NotifyOn,
    },
    { additionalProperties: false },
  ),
  webhook: Type.Object(
    {
      type: Type.Literal("webhook"),
      url: Url,
      headers: Type.Optional(Type.Record(Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" }), Type.String())),
      notify_on: NotifyOn,
    },
    { additionalProperties: false },
  ),
} satisfies Record<ActionType, TSchema>;

type RawAction = { [K in ActionType]: Static<(typeof ACTION_SCHEMAS)[K]> }[ActionType];

const ConditionSchema = Type.Object(
  {
    severity: Type.Optional(OneOrMany(Type.Union(SEVERITIES.map((s) => Type.Literal(s))))),
    asset_id: Type.Optional(OneOrMany(Type.String({ minLength: 1 }))),
    type: Type.Optional(OneOrMany(Type.String({ minLength: 1 }))),
    parameter: Type.Optional(OneOrMany(Type.String({ minLength: 1 }))),
  },
  { additionalProperties: false, description: "every field given must match; lists match any; asset_id/type/parameter take globs" },
);

const LevelSchema = Type.Object(
  {
    after: Duration,
    actions: Type.Array(Type.Unknown(), { minItems: 1 }),
  },
  { additionalProperties: false },
);

const RuleSchema = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1 })),
    condition: Type.Optional(ConditionSchema),
    actions: Type.Array(Type.Unknown(), { default: [] }),
    escalation: Type.Optional(Type.Array(LevelSchema, { description: "levels by time since the raise; [] = none, overriding the top-level escalation" })),
  },
  { additionalProperties: false },
);

const RetrySchema = Type.Object(
  {
    max_attempts: Type.Integer({ minimum: 1, default: 8 }),
    initial_backoff: Type.Optional(Duration),
    max_backoff: Type.Optional(Duration),
    multiplier: Type.Number({ minimum: 1, default: 2 }),
  },
  { additionalProperties: false },
);

const ProvidersSchema = Type.Object(
  {
    pagerduty: Type.Optional(Type.Object({ integration_key: Type.Optional(Type.String({ minLength: 1 })), base_url: Type.Optional(Url) }, { additionalProperties: false })),
    slack: Type.Optional(Type.Object({ webhook_url: Type.Optional(Url), username: Type.Optional(Type.String()) }, { additionalProperties: false })),
    twilio: Type.Optional(
      Type.Object(
        { account_sid: Type.Optional(Type.String({ minLength: 1 })), auth_token: Type.Optional(Type.String({ minLength: 1 })), from: Type.Optional(E164), base_url: Type.Optional(Url) },
        { additionalProperties: false },
      ),
    ),
    smtp: Type.Optional(
      Type.Object(
        {
          host: Type.String({ minLength: 1 }),
          port: Type.Integer({ minimum: 1, maximum: 65535, default: 25 }),
          secure: Type.Boolean({ default: false, description: "TLS from the start (port 465); otherwise STARTTLS when offered" }),
          require_tls: Type.Boolean({ default: false, description: "refuse to send without STARTTLS" }),
          user: Type.Optional(Type.String()),
          pass: Type.Optional(Type.String()),
          from: Email,
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false, default: {} },
);

export const RoutingFileSchema = Type.Object(
  {
    dedup_window: Type.Optional(Duration),
    escalation: Type.Optional(Type.Array(LevelSchema)),
    http_timeout: Type.Optional(Duration),
    retry: Type.Optional(RetrySchema),
    providers: ProvidersSchema,
    rules: Type.Array(RuleSchema, { default: [] }),
  },
  { additionalProperties: false },
);

// ---------------------------------------------------------------------------------------------
// Resolved config

export const DEFAULT_DEDUP_WINDOW_MS = 5 * 60_000;
export const DEFAULT_PAGERDUTY_BASE_URL = "https://events.pagerduty.com";
export const DEFAULT_TWILIO_BASE_URL = "https://api.twilio.com";
export const DEFAULT_HTTP_TIMEOUT_MS = 10_000;

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  max_attempts: number;
  initial_backoff_ms: number;
  max_backoff_ms: number;
  multiplier: number;
}
export const DEFAULT_RETRY: RetryPolicy = { max_attempts: 8, initial_backoff_ms: 1_000, max_backoff_ms: 5 * 60_000, multiplier: 2 };

export interface SmtpSettings {
  host: string;
  port: number;
  secure: boolean;
  require_tls: boolean;
  user?: string;
  pass?: string;
  from: string;
}

interface ActionCommon {
  notify_on: NotifyEvent[];
}
export type PagerDutyAction = ActionCommon & { type: "pagerduty"; integration_key: string; base_url: string };
export type SlackAction = ActionCommon & { type: "slack"; webhook_url: string; channel?: string; username?: string };
export type SmsAction = ActionCommon & { type: "sms"; phone_numbers: string[]; from: string; account_sid: string; auth_token: string; base_url: string };
export type EmailAction = ActionCommon & { type: "email"; recipients: string[]; digest_interval_ms: number | null; subject_prefix: string; smtp: SmtpSettings };
export type WebhookAction = ActionCommon & { type: "webhook"; url: string; headers: Record<string, string> };
export type Action = PagerDutyAction | SlackAction | SmsAction | EmailAction | WebhookAction;

export interface RouteCondition {
  severity: Severity[] | null;
  asset_id: string[] | null;
  type: string[] | null;
  parameter: string[] | null;
}

export interface EscalationLevel {
  after_ms: number;
  actions: Action[];
}

export interface RouteRule {
  name: string;
  condition: RouteCondition;
  actions: Action[];
  escalation: EscalationLevel[];
}

export interface RoutingConfig {
  dedup_window_ms: number;
  http_timeout_ms: number;
  retry: RetryPolicy;
  rules: RouteRule[];
}

const list = <T>(v: T | T[] | undefined): T[] | null => (v === undefined ? null : Array.isArray(v) ? v : [v]);

type Providers = Static<typeof ProvidersSchema>;

function validateWith<T extends TSchema>(schema: T, value: unknown, root: string, errors: FieldError[]): Static<T> | undefined {
  const converted = Value.Convert(schema, Value.Default(schema, Value.Clone(value)));
  const found = schemaErrors(schema, converted, root);
  if (found.length > 0) {
    errors.push(...found);
    return undefined;
  }
  return converted as Static<T>;
}

function resolveAction(raw: unknown, at: string, providers: Providers, errors: FieldError[]): Action | undefined {
  const type = (raw as { type?: unknown } | null)?.type;
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    errors.push({ path: at, message: `expected an action object, got ${JSON.stringify(raw)}` });
    return undefined;
  }
  if (typeof type !== "string" || !(ACTION_TYPES as readonly string[]).includes(type)) {
    errors.push({ path: `${at}.type`, message: `expected one of ${ACTION_TYPES.map((t) => JSON.stringify(t)).join(", ")}, got ${JSON.stringify(type) ?? "nothing"}` });
    return undefined;
  }
  const a = validateWith(ACTION_SCHEMAS[type as ActionType], raw, at, errors) as RawAction | undefined;
  if (!a) return undefined;
  const notify_on = a.notify_on ?? DEFAULT_NOTIFY_ON[a.type];
  const need = (value: string | undefined, field: string, provider: string): string => {
    if (value === undefined) errors.push({ path: `${at}.${field}`, message: `required: set it here or in providers.${provider}` });
    return value ?? "";
  };
  switch (a.type) {
    case "pagerduty":
      return {
        type: "pagerduty",
        integration_key: need(a.integration_key ?? providers.pagerduty?.integration_key, "integration_key", "pagerduty.integration_key"),
        base_url: (a.base_url ?? providers.pagerduty?.base_url ?? DEFAULT_PAGERDUTY_BASE_URL).replace(/\/+$/, ""),
        notify_on,
      };
    case "slack": {
      const username = a.username ?? providers.slack?.username;
      return {
        type: "slack",
        webhook_url: need(a.webhook_url ?? providers.slack?.webhook_url, "webhook_url", "slack.webhook_url"),
        ...(a.channel !== undefined ? { channel: a.channel } : {}),
        ...(username !== undefined ? { username } : {}),
        notify_on,
      };
    }
    case "sms":
      return {
        type: "sms",
        phone_numbers: a.phone_numbers,
        from: need(a.from ?? providers.twilio?.from, "from", "twilio.from"),
        account_sid: need(a.account_sid ?? providers.twilio?.account_sid, "account_sid", "twilio.account_sid"),
        auth_token: need(a.auth_token ?? providers.twilio?.auth_token, "auth_token", "twilio.auth_token"),
        base_url: (a.base_url ?? providers.twilio?.base_url ?? DEFAULT_TWILIO_BASE_URL).replace(/\/+$/, ""),
        notify_on,
      };
    case "email": {
      let digest: number | null = null;
      if (a.digest_interval !== undefined) {
        digest = parseDuration(a.digest_interval);
        if (digest === null || digest < 1000) errors.push({ path: `${at}.digest_interval`, message: `must be at least 1s, got ${JSON.stringify(a.digest_interval)}` });
      }
      if (!providers.smtp) errors.push({ path: at, message: "e-mail needs providers.smtp (host, port, from)" });
      return {
        type: "email",
        recipients: a.recipients,
        digest_interval_ms: digest,
        subject_prefix: a.subject_prefix ?? "[alarm]",
        smtp: providers.smtp as SmtpSettings,
        notify_on,
      };
    }
    case "webhook":
      return { type: "webhook", url: a.url, headers: a.headers ?? {}, notify_on };
  }
}

function resolveLevels(raw: Static<typeof LevelSchema>[], at: string, providers: Providers, errors: FieldError[]): EscalationLevel[] {
  const levels: EscalationLevel[] = [];
  let previous = 0;
  raw.forEach((level, k) => {
    const after = parseDuration(level.after);
    if (after === null || after <= 0) errors.push({ path: `${at}[${k}].after`, message: `must be a positive duration, got ${JSON.stringify(level.after)}` });
    else if (after <= previous) errors.push({ path: `${at}[${k}].after`, message: `must be later than the level before (${previous / 1000}s), got ${JSON.stringify(level.after)}` });
    if (after !== null && after > previous) previous = after;
    const actions = level.actions.map((a, j) => resolveAction(a, `${at}[${k}].actions[${j}]`, providers, errors)).filter((a): a is Action => a !== undefined);
    levels.push({ after_ms: after ?? 0, actions });
  });
  return levels;
}

function durationOr(value: string | number | undefined, fallback: number, path: string, errors: FieldError[]): number {
  if (value === undefined) return fallback;
  const ms = parseDuration(value);
  if (ms === null) {
    errors.push({ path, message: `not a duration: ${JSON.stringify(value)}` });
    return fallback;
  }
  return ms;
}

export interface LoadRoutingOptions extends SubstitutionOptions {
  source?: string;
}

/** YAML text or a parsed object → RoutingConfig. Throws ConfigError naming every bad path. */
export function loadRoutingConfig(input: string | unknown, options: LoadRoutingOptions = {}): RoutingConfig {
  const source = options.source ?? "alert routing rules";
  let parsed: unknown = input;
  if (typeof input === "string") {
    try {
      parsed = parseYaml(input) ?? {};
    } catch (error) {
      if (error instanceof YAMLParseError) {
        const where = error.linePos?.[0];
        throw new ConfigError(source, [{ path: where ? `line ${where.line}, column ${where.col}` : "(file)", message: error.message.split("\n")[0]! }]);
      }
      throw error;
    }
  }
  const { value, errors } = substitute(parsed, options);
  const file = validateWith(RoutingFileSchema, value ?? {}, "", errors);
  if (!file) throw new ConfigError(source, errors);

  const providers = file.providers;
  const defaultLevels = resolveLevels(file.escalation ?? [], "escalation", providers, errors);
  const rules: RouteRule[] = file.rules.map((r, i) => {
    const at = `rules[${i}]`;
    const c = r.condition ?? {};
    if (r.actions.length === 0 && (r.escalation ?? file.escalation ?? []).length === 0) errors.push({ path: `${at}.actions`, message: "no actions and no escalation: the rule would do nothing" });
    return {
      name: r.name ?? at,
      condition: { severity: list(c.severity as Severity | Severity[] | undefined), asset_id: list(c.asset_id as string | string[] | undefined), type: list(c.type as string | string[] | undefined), parameter: list(c.parameter as string | string[] | undefined) },
      actions: r.actions.map((a, j) => resolveAction(a, `${at}.actions[${j}]`, providers, errors)).filter((a): a is Action => a !== undefined),
      escalation: r.escalation ? resolveLevels(r.escalation, `${at}.escalation`, providers, errors) : defaultLevels,
    };
  });
  const retry: RetryPolicy = {
    max_attempts: file.retry?.max_attempts ?? DEFAULT_RETRY.max_attempts,
    initial_backoff_ms: durationOr(file.retry?.initial_backoff, DEFAULT_RETRY.initial_backoff_ms, "retry.initial_backoff", errors),
    max_backoff_ms: durationOr(file.retry?.max_backoff, DEFAULT_RETRY.max_backoff_ms, "retry.max_backoff", errors),
    multiplier: file.retry?.multiplier ?? DEFAULT_RETRY.multiplier,
  };
  const config: RoutingConfig = {
    dedup_window_ms: durationOr(file.dedup_window, DEFAULT_DEDUP_WINDOW_MS, "dedup_window", errors),
    http_timeout_ms: durationOr(file.http_timeout, DEFAULT_HTTP_TIMEOUT_MS, "http_timeout", errors),
    retry,
    rules,
  };
  if (errors.length > 0) throw new ConfigError(source, errors);
  return config;
}

export function loadRoutingConfigFile(path: string, options: Omit<LoadRoutingOptions, "source"> = {}): RoutingConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(path, [{ path: "(file)", message: `cannot read: ${(error as Error).message}` }]);
  }
  return loadRoutingConfig(text, { ...options, source: path });
}
