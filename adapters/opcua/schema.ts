import { Type, type Static } from "@sinclair/typebox";
import { adapterConfigSchema } from "../../src/adapter-runtime/config.ts";

export const SECURITY_MODES = ["None", "Sign", "SignAndEncrypt"] as const;
export type SecurityModeName = (typeof SECURITY_MODES)[number];
export const SECURITY_POLICIES = ["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"] as const;
export type SecurityPolicyName = (typeof SECURITY_POLICIES)[number];
export const OPCUA_MODES = ["subscription", "polling"] as const;

const literals = <T extends string>(values: readonly T[], options: Record<string, unknown>) =>
  Type.Union(values.map((v) => Type.Literal(v)), options);

export const UsernameAuthSchema = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 256, description: "User name sent in the UserNameIdentityToken" }),
    password: Type.String({
      maxLength: 1024,
      description: 'Password, or "${secret:NAME}": read from env SECRET_<NAME> or the file <data dir>/secrets/<NAME> at each connect',
    }),
  },
  { additionalProperties: false },
);

export const AuthSchema = Type.Union([Type.Literal("anonymous"), UsernameAuthSchema], {
  default: "anonymous",
  description: '"anonymous", or {username, password}',
});

export const SubscriptionSchema = Type.Object(
  {
    publishing_interval_ms: Type.Integer({ minimum: 10, maximum: 3_600_000, default: 1000, description: "How often the server sends the changes it collected" }),
    batch_size: Type.Integer({
      minimum: 1,
      maximum: 10_000,
      default: 100,
      description: "Monitored items created per CreateMonitoredItems call; some PLCs accept only about 100",
    }),
    keepalive_count: Type.Integer({ minimum: 1, maximum: 1000, default: 10, description: "Publishing intervals without data before the server sends a keep-alive" }),
    lifetime_count: Type.Integer({ minimum: 3, maximum: 100_000, default: 60, description: "Publishing intervals without a publish request before the server drops the subscription (at least 3 x keepalive_count)" }),
    max_notifications_per_publish: Type.Integer({
      minimum: 0,
      maximum: 1_000_000,
      default: 2000,
      description: "Larger publishes are split over several responses, keeping bursts (and memory) small; 0: as many as the server allows",
    }),
  },
  { additionalProperties: false, default: {} },
);

export const PollingSchema = Type.Object(
  {
    batch_size: Type.Integer({ minimum: 1, maximum: 10_000, default: 100, description: "Nodes per Read request; every poll_interval_ms all nodes are read" }),
  },
  { additionalProperties: false, default: {} },
);

export const OpcuaSourceSchema = Type.Object(
  {
    endpoint: Type.String({
      pattern: "^opc\\.tcp://[^\\s/:]+(:\\d{1,5})?(/\\S*)?$",
      description: "Server endpoint URL, e.g. opc.tcp://plc.local:4840",
    }),
    security_mode: literals(SECURITY_MODES, { default: "None", description: "Message security: None, Sign, or SignAndEncrypt" }),
    security_policy: Type.Optional(
      literals(SECURITY_POLICIES, { description: "Default None when security_mode is None, else Basic256Sha256" }),
    ),
    auth: AuthSchema,
    pki_dir: Type.Optional(Type.String({
      minLength: 1,
      description: "Client certificate store (own/, trusted/, rejected/); default <GATEWAY_DATA_DIR, else .data/gateway>/opcua-pki. The client certificate is made there on first start",
    })),
    trusted_server_certificates: Type.Optional(Type.String({
      minLength: 1,
      description: "Folder of server certificates (.der/.pem) to trust; copied into <pki_dir>/trusted/certs at start",
    })),
    auto_accept_server_certificate: Type.Boolean({
      default: false,
      description: "Trust any server certificate (test benches only): a man in the middle would be accepted too",
    }),
    application_name: Type.String({ minLength: 1, maxLength: 128, default: "IndustrialDataGateway", description: "Client application name; part of the certificate's application URI" }),
    mode: literals(OPCUA_MODES, { default: "subscription", description: "subscription: the server pushes changes; polling: Read requests every poll_interval_ms" }),
    subscription: SubscriptionSchema,
    polling: PollingSchema,
    timeout_ms: Type.Integer({ minimum: 100, maximum: 120_000, default: 10_000, description: "Per request, and for connecting" }),
    session_timeout_ms: Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 60_000, description: "Requested session timeout" }),
    max_reconnect_delay_ms: Type.Integer({
      minimum: 100,
      maximum: 600_000,
      default: 10_000,
      description: "Cap of the reconnect backoff (which starts at retry_policy.backoff_ms and doubles)",
    }),
    retry_unknown_nodes_ms: Type.Integer({
      minimum: 100,
      maximum: 3_600_000,
      default: 5000,
      description: "How often nodes the server does not know (BadNodeIdUnknown) are tried again",
    }),
    drop_duplicates: Type.Boolean({
      default: true,
      description: "Drop a sample whose source timestamp, value and status equal the last one delivered for that node (servers resend the current value after a reconnect)",
    }),
  },
  { additionalProperties: false },
);

export const DeadbandSchema = Type.Object(
  {
    type: literals(["absolute", "percent"] as const, { description: "percent needs the node's EURange property on the server" }),
    value: Type.Number({ minimum: 0, maximum: 1e12, description: "Change smaller than this is not reported (percent: 0-100 of EURange)" }),
  },
  { additionalProperties: false },
);

export const NodeSchema = Type.Object(
  {
    node_id: Type.String({
      minLength: 1,
      maxLength: 4096,
      description: 'e.g. "ns=2;s=Pressure", "ns=3;i=1001", or "nsu=urn:vendor:plant;s=Pressure" (namespace by URI)',
    }),
    param: Type.String({ minLength: 1, maxLength: 256, description: "Parameter name in the envelope" }),
    unit: Type.Optional(Type.String({ maxLength: 64, description: "Engineering unit, e.g. bar" })),
    asset_id: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: "Defaults to output.asset_id" })),
    sampling_interval_ms: Type.Optional(Type.Integer({
      minimum: 0,
      maximum: 86_400_000,
      description: "Subscription mode: how often the server samples the node (0: as fast as it can); default the publishing interval",
    })),
    queue_size: Type.Integer({ minimum: 1, maximum: 10_000, default: 1, description: "Samples the server keeps between publishes" }),
    discard_oldest: Type.Boolean({ default: true, description: "When the queue is full drop the oldest sample (else the newest)" }),
    deadband: Type.Optional(DeadbandSchema),
  },
  { additionalProperties: false },
);
export type NodeConfig = Static<typeof NodeSchema>;

export const OpcuaMappingSchema = Type.Object(
  {
    nodes: Type.Array(NodeSchema, { minItems: 1, maxItems: 100_000, description: "Variables read from the server" }),
  },
  { additionalProperties: false },
);

export const OpcuaConfigSchema = adapterConfigSchema("opcua", OpcuaSourceSchema, OpcuaMappingSchema);
export type OpcuaConfig = Static<typeof OpcuaConfigSchema>;
export type OpcuaSource = OpcuaConfig["source"];
