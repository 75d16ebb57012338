import { Type, type Static } from "@sinclair/typebox";

export const MODES = ["standalone", "edge", "hub"] as const;
export type Mode = (typeof MODES)[number];

const Port = (description: string, def: number) =>
  Type.Integer({ minimum: 0, maximum: 65535, default: def, description: `${description}; 0 picks a free port` });

export const KafkaConnectionSchema = Type.Object(
  {
    bootstrap_servers: Type.Array(Type.String({ pattern: "^[^:\\s]+:\\d+$", description: "host:port" }), {
      minItems: 1,
      default: ["127.0.0.1:9092"],
      description: "Kafka brokers the appliance produces to and consumes from",
    }),
    client_id: Type.String({ minLength: 1, default: "gateway", description: "Kafka client id prefix" }),
    request_timeout_ms: Type.Integer({ minimum: 100, maximum: 300_000, default: 10_000 }),
  },
  { additionalProperties: false, default: {} },
);
export type KafkaConnection = Static<typeof KafkaConnectionSchema>;

export const DeclaredPipelineSchema = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 128, pattern: "^[A-Za-z0-9._-]+$", description: "pipeline_id" }),
    name: Type.Optional(Type.String()),
    enabled: Type.Boolean({ default: true }),
    runtime: Type.Union([Type.Literal("process"), Type.Literal("docker")], { default: "process" }),
    image: Type.Optional(Type.String({ description: "Adapter image, for runtime: docker" })),
    adapter: Type.Record(Type.String(), Type.Unknown(), {
      description: "The adapter's CONFIG_JSON body (protocol, source, mapping, output, ...); pipeline_id and adapter_id are filled in",
    }),
  },
  { additionalProperties: false },
);
export type DeclaredPipeline = Static<typeof DeclaredPipelineSchema>;

export const ApplianceConfigSchema = Type.Object(
  {
    mode: Type.Union(MODES.map((m) => Type.Literal(m)), {
      default: "standalone",
      description: "standalone: one site with its own control plane; edge: takes config from a hub; hub: fleet view",
    }),
    gateway_id: Type.String({
      minLength: 1,
      maxLength: 128,
      pattern: "^[A-Za-z0-9._-]+$",
      default: "gateway-local",
      description: "This appliance's id; pipelines belong to a gateway",
    }),
    data_dir: Type.String({ minLength: 1, default: ".data/gateway", description: "Embedded DB, certificates, state" }),
    http: Type.Object(
      {
        host: Type.String({ default: "127.0.0.1" }),
        port: Port("Control API and web UI port", 8080),
        body_limit_bytes: Type.Integer({ minimum: 1024, maximum: 64 * 1024 * 1024, default: 1024 * 1024 }),
        alarm_command_wait_ms: Type.Integer({
          minimum: 0,
          maximum: 60_000,
          default: 5000,
          description: "How long POST /api/v1/alarms/{id}/ack|suppress|unsuppress waits for the alarm evaluator's outcome (200 applied / 409 refused) before answering 202 (still queued)",
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    kafka: KafkaConnectionSchema,
    database: Type.Object(
      {
        url: Type.Optional(
          Type.String({
            pattern: "^postgres(ql)?://",
            description: "PostgreSQL URL; when absent the embedded PGlite database under data_dir is used",
          }),
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    hub: Type.Object(
      {
        url: Type.Optional(Type.String({ pattern: "^https?://", description: "Hub control API (edge mode)" })),
        poll_interval_ms: Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 30_000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    pipelines: Type.Array(DeclaredPipelineSchema, {
      default: [],
      description: "Pipelines declared in the file; written to the control DB at start (versioned, audited)",
    }),
    sinks: Type.Array(Type.Record(Type.String(), Type.Unknown()), {
      default: [],
      description:
        "Sinks this appliance runs (PostgreSQL/TimescaleDB, HTTP cloud API, S3 Parquet): each the config `gateway sink` takes, checked at start; kafka.bootstrap defaults to this appliance's brokers, and their metrics are on its /metrics (`health` applies to `gateway sink` only)",
    }),
    streams: Type.Object(
      {
        enabled: Type.Optional(Type.Boolean({ description: "Run the quality validator and aggregator here (default: on in standalone and hub, off at the edge)" })),
        quality_rules_file: Type.Optional(Type.String({ description: "Quality rules YAML: ranges, rates of change, expected intervals" })),
        alarm_rules_file: Type.Optional(
          Type.String({
            description:
              "Alarm rules YAML: its set-wide settings (delays, deadband, severities, evaluated qualities) apply to every evaluator; its rules seed the control DB once, while this gateway has never had alarm rules there (then /api/v1/alarm-rules owns them)",
          }),
        ),
        alert_rules_file: Type.Optional(Type.String({ description: "Alert routing YAML (PagerDuty, Slack, SMS, e-mail, webhooks); without it the alert router and sender do not run" })),
        alert_secrets_dir: Type.Optional(Type.String({ description: "Folder of files for ${secret:name} in the alert routing YAML (else env SECRET_<NAME>)" })),
        alert_retry_budget_ms: Type.Integer({
          minimum: 1000,
          default: 24 * 3_600_000,
          description: "How long an alert delivery keeps being retried while its provider is unreachable (offline at the edge) before it goes to dlq.alert_deliveries",
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    supervisor: Type.Object(
      {
        health_interval_ms: Type.Integer({ minimum: 100, maximum: 600_000, default: 10_000 }),
        reconcile_interval_ms: Type.Integer({ minimum: 100, maximum: 600_000, default: 5000, description: "How often the pipeline table is re-read" }),
      },
      { additionalProperties: false, default: {} },
    ),
    log: Type.Object(
      {
        level: Type.Union(
          ["trace", "debug", "info", "warn", "error", "fatal"].map((l) => Type.Literal(l)),
          { default: "info" },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);
export type ApplianceConfig = Static<typeof ApplianceConfigSchema>;
