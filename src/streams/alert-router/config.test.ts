import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../config/schema-errors.ts";
import { loadRoutingConfig, loadRoutingConfigFile, parseDuration, substitute, type LoadRoutingOptions } from "./config.ts";

const SEED = `
rules:
  - condition: { severity: CRITICAL }
    actions:
      - type: pagerduty
        integration_key: \${PAGERDUTY_KEY}
      - type: sms
        phone_numbers: ["+1234567890"]
  - condition: { severity: HIGH }
    actions:
      - type: slack
        channel: "#alerts"
  - condition: { severity: [MEDIUM, LOW] }
    actions:
      - type: email
        recipients: ["ops@example.com"]
        digest_interval: 15min
`;

const PROVIDERS = `
providers:
  slack: { webhook_url: "\${secret:slack_webhook}" }
  twilio: { account_sid: AC123, auth_token: "\${secret:twilio_token}", from: "+15005550006" }
  smtp: { host: localhost, port: 2525, from: gateway@plant.example }
`;

const env = { PAGERDUTY_KEY: "pd-key-123", SECRET_SLACK_WEBHOOK: "https://hooks.slack.com/services/T/B/X", SECRET_TWILIO_TOKEN: "tok" };

function errorsOf(text: string | unknown, options: LoadRoutingOptions = { env }): string[] {
  try {
    loadRoutingConfig(text, options);
  } catch (error) {
    if (error instanceof ConfigError) return error.fieldErrors.map((e) => `${e.path}: ${e.message}`);
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("the seed's rules", () => {
  test("load with providers configured; defaults filled", () => {
    const config = loadRoutingConfig(SEED + PROVIDERS, { env });
    expect(config.dedup_window_ms).toBe(300_000);
    expect(config.retry).toEqual({ max_attempts: 8, initial_backoff_ms: 1000, max_backoff_ms: 300_000, multiplier: 2 });
    expect(config.rules.map((r) => r.condition.severity)).toEqual([["CRITICAL"], ["HIGH"], ["MEDIUM", "LOW"]]);
    expect(config.rules[0]!.actions).toEqual([
      { type: "pagerduty", integration_key: "pd-key-123", base_url: "https://events.pagerduty.com", notify_on: ["raised", "acknowledged", "cleared", "suppressed", "unsuppressed"] },
      { type: "sms", phone_numbers: ["+1234567890"], from: "+15005550006", account_sid: "AC123", auth_token: "tok", base_url: "https://api.twilio.com", notify_on: ["raised"] },
    ]);
    expect(config.rules[1]!.actions[0]).toEqual({ type: "slack", webhook_url: env.SECRET_SLACK_WEBHOOK, channel: "#alerts", notify_on: ["raised", "acknowledged", "cleared"] });
    expect(config.rules[2]!.actions[0]).toMatchObject({ type: "email", recipients: ["ops@example.com"], digest_interval_ms: 900_000, smtp: { host: "localhost", port: 2525, secure: false, from: "gateway@plant.example" } });
    expect(config.rules.every((r) => r.escalation.length === 0)).toBe(true);
  });

  test("without providers: every missing setting is named", () => {
    expect(errorsOf(SEED, { env: {} })).toEqual([
      "rules[0].actions[0].integration_key: ${PAGERDUTY_KEY}: environment variable PAGERDUTY_KEY is not set",
      "rules[0].actions[1].from: required: set it here or in providers.twilio.from",
      "rules[0].actions[1].account_sid: required: set it here or in providers.twilio.account_sid",
      "rules[0].actions[1].auth_token: required: set it here or in providers.twilio.auth_token",
      "rules[1].actions[0].webhook_url: required: set it here or in providers.slack.webhook_url",
      "rules[2].actions[0]: e-mail needs providers.smtp (host, port, from)",
    ]);
  });
});

describe("substitution", () => {
  test.each([
    ["${HOME_DIR}", { HOME_DIR: "/x" }, "/x"],
    ["a-${A}-${B}", { A: "1", B: "2" }, "a-1-2"],
    ["${MISSING:-fallback}", {}, "fallback"],
    ["${EMPTY:-fallback}", { EMPTY: "" }, "fallback"],
    ["${SET:-fallback}", { SET: "v" }, "v"],
    ["$${NOT_A_VAR}", {}, "${NOT_A_VAR}"],
    ["${secret:db.pass}", { SECRET_DB_PASS: "s3" }, "s3"],
    ["${secret:pd-key}", { SECRET_PD_KEY: "k" }, "k"],
    ["plain", {}, "plain"],
  ])("%s", (text, vars, want) => {
    expect(substitute({ v: text }, { env: vars })).toEqual({ value: { v: want }, errors: [] });
  });

  test("errors name the path", () => {
    const { errors } = substitute({ a: [{ b: "${NOPE}" }], c: "${secret:../etc/passwd}", d: "${1abc}", e: "${secret:gone}" }, { env: {} });
    expect(errors.map((e) => `${e.path}: ${e.message}`)).toEqual([
      "a[0].b: ${NOPE}: environment variable NOPE is not set",
      "c: ${secret:../etc/passwd}: a secret name is letters, digits, _ . - (no paths)",
      "d: ${1abc}: not a variable reference; use ${NAME}, ${NAME:-default} or ${secret:name} ($${ for a literal)",
      "e: secret \"gone\" not found: set SECRET_GONE or create /run/secrets/gone or .data/gateway/secrets/gone",
    ]);
  });

  test("secrets: the routing config's secrets dir is searched before the default folders; the resolver is injectable", () => {
    const dir = mkdtempSync(join(tmpdir(), "secrets-"));
    writeFileSync(join(dir, "pd_key"), "from-file\n");
    const withKey = (env: Record<string, string>) =>
      loadRoutingConfig({ rules: [{ actions: [{ type: "pagerduty", integration_key: "${secret:pd_key}" }] }] }, { env, secrets_dir: dir });
    expect(withKey({}).rules[0]!.actions[0]).toMatchObject({ integration_key: "from-file" });
    expect(withKey({ SECRET_PD_KEY: "from-env" }).rules[0]!.actions[0]).toMatchObject({ integration_key: "from-env" });
    const injected = loadRoutingConfig(
      { rules: [{ actions: [{ type: "pagerduty", integration_key: "${secret:vault/pd}" }] }] },
      { env: {}, secret: (name) => (name === "vault/pd" ? "x" : undefined) },
    );
    expect(injected.rules[0]!.actions[0]).toMatchObject({ integration_key: "x" });
  });
});

describe("validation", () => {
  test.each([
    ["unknown action type", { rules: [{ actions: [{ type: "fax", number: "1" }] }] }, ['rules[0].actions[0].type: expected one of "pagerduty", "slack", "sms", "email", "webhook", got "fax"']],
    ["bad phone number", { rules: [{ actions: [{ type: "sms", phone_numbers: ["555-1234"], from: "+15005550006", account_sid: "a", auth_token: "b" }] }] }, ["rules[0].actions[0].phone_numbers[0]:"]],
    ["unknown field", { rules: [{ actions: [{ type: "webhook", url: "http://x", method: "PUT" }] }] }, ["rules[0].actions[0].method:"]],
    ["bad severity", { rules: [{ condition: { severity: "URGENT" }, actions: [{ type: "webhook", url: "http://x" }] }] }, ["rules[0].condition.severity:"]],
    ["bad duration", { dedup_window: "soon", rules: [] }, ['dedup_window: not a duration: "soon"']],
    ["digest too short", { providers: { smtp: { host: "h", from: "a@b" } }, rules: [{ actions: [{ type: "email", recipients: ["a@b"], digest_interval: "10ms" }] }] }, ['rules[0].actions[0].digest_interval: must be at least 1s, got "10ms"']],
    [
      "escalation out of order",
      { rules: [{ actions: [{ type: "webhook", url: "http://x" }], escalation: [{ after: "30min", actions: [{ type: "webhook", url: "http://y" }] }, { after: "15min", actions: [{ type: "webhook", url: "http://z" }] }] }] },
      ['rules[0].escalation[1].after: must be later than the level before (1800s), got "15min"'],
    ],
    ["a rule that does nothing", { rules: [{ condition: { severity: "LOW" } }] }, ["rules[0].actions: no actions and no escalation: the rule would do nothing"]],
    ["bad YAML", "rules: [\n", ["line "]],
  ])("%s", (_, input, want) => {
    const errors = errorsOf(input);
    expect(errors).toHaveLength(want.length);
    want.forEach((w, i) => expect(errors[i]!.startsWith(w)).toBe(true));
  });

  test("top-level escalation applies to rules without their own; [] turns it off", () => {
    const config = loadRoutingConfig(
      {
        escalation: [{ after: "15min", actions: [{ type: "webhook", url: "http://lead" }] }],
        rules: [
          { actions: [{ type: "webhook", url: "http://a" }] },
          { actions: [{ type: "webhook", url: "http://b" }], escalation: [] },
          { actions: [{ type: "webhook", url: "http://c" }], escalation: [{ after: 600, actions: [{ type: "webhook", url: "http://own" }] }] },
        ],
      },
      { env: {} },
    );
    expect(config.rules.map((r) => r.escalation.map((l) => [l.after_ms, (l.actions[0] as { url: string }).url]))).toEqual([[[900_000, "http://lead"]], [], [[600_000, "http://own"]]]);
  });

  test("a file loads, and its path names the errors", () => {
    const dir = mkdtempSync(join(tmpdir(), "routing-"));
    const file = join(dir, "alerts.yaml");
    writeFileSync(file, "rules:\n  - actions: [{ type: webhook, url: 'http://x' }]\n");
    expect(loadRoutingConfigFile(file, { env: {} }).rules).toHaveLength(1);
    expect(() => loadRoutingConfigFile(join(dir, "nope.yaml"))).toThrow(ConfigError);
  });
});

test.each([
  ["15min", 900_000],
  ["5m", 300_000],
  ["30s", 30_000],
  ["1.5h", 5_400_000],
  ["500ms", 500],
  ["2d", 172_800_000],
  ["10 minutes", 600_000],
  [90, 90_000],
  ["soon", null],
  ["-5s", null],
] as [string | number, number | null][])("duration %p → %p", (text, ms) => {
  expect(parseDuration(text)).toBe(ms);
});
