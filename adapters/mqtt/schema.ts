import { Type, type Static } from "@sinclair/typebox";
import { adapterConfigSchema } from "../../src/adapter-runtime/config.ts";
import { QUALITIES } from "../../src/envelope/reading.ts";

export const MQTT_DEFAULT_PORT = 1883;
export const MQTTS_DEFAULT_PORT = 8883;
export const DEFAULT_DLQ_TOPIC = "dlq.invalid_telemetry";

const Qos = Type.Union([Type.Literal(0), Type.Literal(1), Type.Literal(2)], { default: 1, description: "Subscription QoS (0 at most once, 1/2 at least once into Kafka)" });

const TlsSchema = Type.Object(
  {
    ca: Type.Optional(Type.String({ minLength: 1, description: "PEM file of the CA(s) that signed the broker's certificate" })),
    cert: Type.Optional(Type.String({ minLength: 1, description: "PEM client certificate (mutual TLS)" })),
    key: Type.Optional(Type.String({ minLength: 1, description: "PEM private key of `cert`" })),
    reject_unauthorized: Type.Boolean({ default: true, description: "Verify the broker's certificate (only for labs: false)" }),
    servername: Type.Optional(Type.String({ minLength: 1, description: "SNI / name checked against the certificate; defaults to host" })),
  },
  { additionalProperties: false },
);

const SubscriptionSchema = Type.Object(
  {
    topic: Type.String({ minLength: 1, description: "MQTT topic filter; named wildcards (+name, #name) are allowed and stripped" }),
    qos: Qos,
  },
  { additionalProperties: false },
);

export const MqttSourceSchema = Type.Object(
  {
    host: Type.String({ minLength: 1, default: "127.0.0.1" }),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: "Defaults to 1883, or 8883 with tls" })),
    protocol_version: Type.Union([Type.Literal("5"), Type.Literal("3.1.1")], { default: "5" }),
    client_id: Type.Optional(
      Type.String({ minLength: 1, maxLength: 256, description: "Stable id the broker keeps the session under; defaults to idg-<pipeline_id>" }),
    ),
    clean_session: Type.Boolean({
      default: false,
      description: "false: persistent session, the broker queues QoS 1/2 messages while the adapter is down (MQTT 5: cleanStart=false)",
    }),
    session_expiry_s: Type.Integer({
      minimum: 0,
      maximum: 4_294_967_295,
      default: 86_400,
      description: "MQTT 5: how long the broker keeps the session after a disconnect",
    }),
    receive_maximum: Type.Integer({
      minimum: 1,
      maximum: 65_535,
      default: 1000,
      description: "MQTT 5: QoS 1/2 messages the broker may have unacknowledged at once (3.1.1: the broker's max_inflight_messages decides)",
    }),
    keepalive_s: Type.Integer({ minimum: 0, maximum: 65_535, default: 30 }),
    connect_timeout_ms: Type.Integer({ minimum: 100, maximum: 120_000, default: 10_000 }),
    username: Type.Optional(Type.String({ minLength: 1 })),
    password: Type.Optional(Type.String({ minLength: 1, description: "Use ${secret:name}: env SECRET_<NAME> or a file under $SECRETS_DIR" })),
    tls: Type.Optional(TlsSchema),
    subscriptions: Type.Optional(
      Type.Array(SubscriptionSchema, { minItems: 1, description: "Defaults to one subscription per mapping rule (its topic and qos)" }),
    ),
    dlq_topic: Type.String({ minLength: 1, default: DEFAULT_DLQ_TOPIC, description: "Where malformed or unmapped messages go, with the raw bytes" }),
    ack_timeout_ms: Type.Integer({
      minimum: 1000,
      maximum: 86_400_000,
      default: 600_000,
      description: "A QoS 1/2 message whose Kafka write is not confirmed within this forces a reconnect (the broker redelivers)",
    }),
  },
  { additionalProperties: false },
);

const Path = Type.String({ pattern: "^\\$", description: "JSON path: $, $.a.b, $.a[0].b, $['odd key']" });
const PathOrLiteral = Type.String({ minLength: 1, description: "A JSON path ($...) or a literal" });

export const TopicRuleSchema = Type.Object(
  {
    topic: Type.String({ minLength: 1, description: "Topic pattern; first matching rule wins. +name / #name capture segments for templates" }),
    qos: Qos,
    format: Type.Union([Type.Literal("number"), Type.Literal("json"), Type.Literal("sparkplug_b")], { default: "json" }),
    asset_id: Type.Optional(Type.String({ minLength: 1, description: "Template: {name} from named wildcards, {topic}. Default {asset} if captured, else output.asset_id" })),
    parameter: Type.Optional(Type.String({ minLength: 1, description: "Template. Default {parameter} if captured, else the topic" })),
    value: Type.Optional(Path),
    values: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Path, { description: "Several readings per message: parameter → path" })),
    timestamp: Type.Optional(Path),
    timestamp_format: Type.Union(
      [Type.Literal("auto"), Type.Literal("iso"), Type.Literal("epoch_s"), Type.Literal("epoch_ms"), Type.Literal("epoch_us"), Type.Literal("epoch_ns")],
      { default: "auto", description: "auto: strings are ISO 8601, numbers by magnitude (s, ms, us, ns)" },
    ),
    quality: Type.Optional(PathOrLiteral),
    quality_map: Type.Optional(Type.Record(Type.String(), Type.Union(QUALITIES.map((q) => Type.Literal(q))), { description: "Device quality codes → GOOD/BAD/..." })),
    unit: Type.Optional(PathOrLiteral),
    sparkplug: Type.Optional(
      Type.Object(
        {
          node_asset: Type.String({ default: "{group_id}/{edge_node_id}", description: "asset_id of node metrics" }),
          device_asset: Type.String({ default: "{group_id}/{edge_node_id}/{device_id}", description: "asset_id of device metrics" }),
          rebirth: Type.Boolean({ default: true, description: "Publish NCMD Node Control/Rebirth on a sequence gap or an unknown alias" }),
          include_control_metrics: Type.Boolean({ default: false, description: "Also emit bdSeq and Node Control/* metrics" }),
        },
        { additionalProperties: false, default: {} },
      ),
    ),
  },
  { additionalProperties: false },
);
export type TopicRule = Static<typeof TopicRuleSchema>;

export const MqttMappingSchema = Type.Object(
  {
    topics: Type.Array(TopicRuleSchema, { minItems: 1 }),
  },
  { additionalProperties: false },
);

export const MqttConfigSchema = adapterConfigSchema("mqtt", MqttSourceSchema, MqttMappingSchema);
export type MqttConfig = Static<typeof MqttConfigSchema>;
export type MqttSource = Static<typeof MqttSourceSchema>;
