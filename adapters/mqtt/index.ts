import { readFileSync } from "node:fs";
import type { IClientOptions } from "mqtt";
import type { FieldError } from "../../src/config/schema-errors.ts";
import type { Logger } from "../../src/log/logger.ts";
import { defineAdapter, type AdapterContext, type RawRecord, type Sample } from "../../src/registry.ts";
import { compileRules, route, type CompiledRule, type Dead } from "./mapping.ts";
import { MQTT_DEFAULT_PORT, MQTTS_DEFAULT_PORT, MqttConfigSchema, type MqttConfig } from "./schema.ts";
import { resolveSecrets, SecretError } from "../../src/config/secrets.ts";
import { MqttSession, type InboundMessage, type SubscriptionSpec } from "./session.ts";
import { SparkplugHost, decodePayload, parseSparkplugTopic, rebirthCommand } from "./sparkplug.ts";
import { compileTemplate, filterCovers, parseTopicPattern, type Template } from "./topic.ts";

export const MQTT_ADAPTER_VERSION = "1.0.0";
/** SIGTERM budget share for acknowledgements still waiting for Kafka (the runtime allows 10 s in all). */
const STOP_ACK_DEADLINE_MS = 6000;
/** At most one rebirth request per edge node in this window. */
const REBIRTH_INTERVAL_MS = 5000;

interface Plan {
  rules: CompiledRule[];
  subscriptions: SubscriptionSpec[];
  sparkplug?: { nodeAsset: Template; deviceAsset: Template; rebirth: boolean; includeControlMetrics: boolean };
  errors: FieldError[];
}

function plan(config: MqttConfig): Plan {
  const { rules, errors } = compileRules(config);
  const { source } = config;
  let subscriptions: SubscriptionSpec[] = [];
  if (source.subscriptions) {
    source.subscriptions.forEach((s, i) => {
      const parsed = parseTopicPattern(s.topic);
      if ("error" in parsed) errors.push({ path: `source.subscriptions[${i}].topic`, message: parsed.error });
      else subscriptions.push({ filter: parsed.pattern.filter, qos: s.qos });
    });
    if (errors.length === 0) {
      for (const rule of rules) {
        if (!subscriptions.some((s) => filterCovers(s.filter, rule.pattern))) {
          errors.push({ path: `mapping.topics[${rule.index}].topic`, message: `no subscription in source.subscriptions delivers ${rule.pattern.filter}` });
        }
      }
    }
  } else {
    // One subscription per distinct filter, at the highest QoS a rule asks for.
    const byFilter = new Map<string, 0 | 1 | 2>();
    for (const rule of rules) byFilter.set(rule.pattern.filter, Math.max(byFilter.get(rule.pattern.filter) ?? 0, rule.qos) as 0 | 1 | 2);
    subscriptions = [...byFilter].map(([filter, qos]) => ({ filter, qos }));
  }
  subscriptions = withoutOverlaps(subscriptions);
  const sparkplugRules = rules.filter((r) => r.format === "sparkplug_b");
  let sparkplug: Plan["sparkplug"];
  if (sparkplugRules.length > 0) {
    const first = sparkplugRules[0]!;
    const options = first.rule.sparkplug ?? { node_asset: "{group_id}/{edge_node_id}", device_asset: "{group_id}/{edge_node_id}/{device_id}", rebirth: true, include_control_metrics: false };
    const at = (f: string) => `mapping.topics[${first.index}].sparkplug.${f}`;
    const node = compileTemplate(options.node_asset ?? "{group_id}/{edge_node_id}", ["group_id", "edge_node_id"]);
    const device = compileTemplate(options.device_asset ?? "{group_id}/{edge_node_id}/{device_id}", ["group_id", "edge_node_id", "device_id"]);
    if ("error" in node) errors.push({ path: at("node_asset"), message: node.error });
    if ("error" in device) errors.push({ path: at("device_asset"), message: device.error });
    if (sparkplugRules.length > 1) errors.push({ path: `mapping.topics[${sparkplugRules[1]!.index}]`, message: "one sparkplug_b rule per adapter (its state spans all edge nodes)" });
    if ("template" in node && "template" in device) {
      sparkplug = { nodeAsset: node.template, deviceAsset: device.template, rebirth: options.rebirth ?? true, includeControlMetrics: options.include_control_metrics ?? false };
    }
  }
  if (source.password !== undefined) {
    try {
      resolveSecrets(source.password);
    } catch (error) {
      if (!(error instanceof SecretError)) throw error;
      errors.push({ path: "source.password", message: error.message });
    }
  }
  if (source.password !== undefined && source.username === undefined) errors.push({ path: "source.username", message: "a password needs a username" });
  if (source.tls?.cert !== undefined && source.tls.key === undefined) errors.push({ path: "source.tls.key", message: "a client certificate needs its key" });
  return { rules, subscriptions, ...(sparkplug ? { sparkplug } : {}), errors };
}

/**
 * A broker may deliver a message once per matching subscription (mosquitto does), so a filter
 * that another one covers is dropped; the broader one takes the higher QoS.
 */
export function withoutOverlaps(subscriptions: SubscriptionSpec[]): SubscriptionSpec[] {
  const kept: SubscriptionSpec[] = [];
  for (const s of subscriptions) {
    const parsed = parseTopicPattern(s.filter);
    const coverer = "pattern" in parsed ? subscriptions.find((o) => o !== s && filterCovers(o.filter, parsed.pattern) && !(o.filter === s.filter)) : undefined;
    if (!coverer) kept.push({ ...s });
  }
  for (const k of kept) {
    for (const s of subscriptions) {
      const parsed = parseTopicPattern(s.filter);
      if ("pattern" in parsed && filterCovers(k.filter, parsed.pattern)) k.qos = Math.max(k.qos, s.qos) as 0 | 1 | 2;
    }
  }
  return kept.filter((k, i) => kept.findIndex((o) => o.filter === k.filter) === i);
}

export function clientIdOf(config: MqttConfig): string {
  return config.source.client_id ?? `idg-${config.pipeline_id}`;
}

function clientOptions(config: MqttConfig, overrides: Partial<IClientOptions> = {}): { url: string; options: IClientOptions } {
  const { source } = config;
  const tls = source.tls !== undefined;
  const port = source.port ?? (tls ? MQTTS_DEFAULT_PORT : MQTT_DEFAULT_PORT);
  const v5 = source.protocol_version === "5";
  const read = (path: string | undefined) => (path === undefined ? undefined : readFileSync(path));
  const options: IClientOptions = {
    clientId: clientIdOf(config),
    protocolVersion: v5 ? 5 : 4,
    clean: source.clean_session,
    keepalive: source.keepalive_s,
    connectTimeout: source.connect_timeout_ms,
    reconnectPeriod: config.retry_policy.backoff_ms,
    ...(v5 ? { properties: { sessionExpiryInterval: source.clean_session ? 0 : source.session_expiry_s, receiveMaximum: source.receive_maximum } } : {}),
    ...(source.username !== undefined ? { username: source.username } : {}),
    ...(source.password !== undefined ? { password: resolveSecrets(source.password) } : {}),
    ...(tls
      ? {
          rejectUnauthorized: source.tls!.reject_unauthorized,
          ...(source.tls!.ca ? { ca: read(source.tls!.ca) } : {}),
          ...(source.tls!.cert ? { cert: read(source.tls!.cert) } : {}),
          ...(source.tls!.key ? { key: read(source.tls!.key) } : {}),
          ...(source.tls!.servername ? { servername: source.tls!.servername } : {}),
        }
      : {}),
    ...overrides,
  };
  const host = source.host.includes(":") ? `[${source.host}]` : source.host;
  return { url: `${tls ? "mqtts" : "mqtt"}://${host}:${port}`, options };
}

/** The DLQ record: the quality validator's field names (reason, validation_failure_reason, raw_base64) plus the MQTT source. */
export function deadLetter(config: MqttConfig, message: InboundMessage, dead: Dead, now: Date): RawRecord {
  return {
    topic: config.source.dlq_topic,
    key: message.topic,
    value: JSON.stringify({
      reason: dead.reason,
      validation_failure_reason: dead.message,
      error_paths: [],
      raw_base64: message.payload.toString("base64"),
      source: "mqtt",
      source_topic: message.topic,
      mqtt: { qos: message.qos, retain: message.retain, dup: message.dup },
      pipeline_id: config.pipeline_id,
      adapter_id: config.adapter_id,
      failed_at: now.toISOString(),
    }),
    headers: { content_type: "application/json", reason: dead.reason, source: "mqtt" },
  };
}

/** Turns one MQTT message into readings and dead letters; shared by the adapter and the connection test. */
class MessageDecoder {
  readonly #sparkplug: SparkplugHost | undefined;
  readonly #lastRebirth = new Map<string, number>();

  constructor(
    private readonly plan: Plan,
    private readonly hooks: {
      error(type: "protocol" | "decode", source: string, message: string): void;
      rebirth(topic: string, payload: Uint8Array, reason: string): void;
    },
  ) {
    this.#sparkplug = plan.sparkplug ? new SparkplugHost(plan.sparkplug) : undefined;
  }

  decode(message: InboundMessage, arrival: Date): { samples: Sample[]; dead?: Dead } {
    const found = route(this.plan.rules, message.topic);
    if (!found) return { samples: [], dead: { reason: "no_mapping", message: `no mapping.topics rule matches ${JSON.stringify(message.topic)}` } };
    if (found.rule.format !== "sparkplug_b") {
      const decoded = found.rule.decode(message.topic, found.captured, message.payload, arrival);
      return "dead" in decoded ? { samples: [], dead: decoded.dead } : decoded;
    }
    const topic = parseSparkplugTopic(message.topic);
    if ("error" in topic) return { samples: [], dead: { reason: "sparkplug_topic", message: topic.error } };
    if (topic.type === "STATE" || topic.type === "NCMD" || topic.type === "DCMD") return { samples: [] };
    let payload;
    try {
      payload = decodePayload(message.payload);
    } catch (error) {
      return { samples: [], dead: { reason: "sparkplug_decode", message: `not a Sparkplug B payload: ${(error as Error).message}` } };
    }
    const result = this.#sparkplug!.handle(topic, payload, arrival);
    for (const e of result.errors) this.hooks.error(e.type, message.topic, e.message);
    if (result.rebirth && this.plan.sparkplug?.rebirth) {
      const key = `${result.rebirth.group_id}/${result.rebirth.edge_node_id}`;
      const now = arrival.getTime();
      if (now - (this.#lastRebirth.get(key) ?? 0) >= REBIRTH_INTERVAL_MS) {
        this.#lastRebirth.set(key, now);
        const command = rebirthCommand(result.rebirth.group_id, result.rebirth.edge_node_id, now);
        this.hooks.rebirth(command.topic, command.payload, result.rebirth.reason);
      }
    }
    return result.dead ? { samples: result.samples, dead: result.dead as Dead } : { samples: result.samples };
  }
}

function createInstance(config: MqttConfig, context: AdapterContext) {
  const p = plan(config);
  const { log } = context;
  const emitAndConfirm = context.emitAndConfirm ?? ((s: Sample[]) => (context.emit(s), Promise.resolve()));
  const emitRaw =
    context.emitRaw ??
    ((records: RawRecord[]) => {
      log.error({ records: records.length }, "this runtime cannot write dead letters; dropped");
      return Promise.resolve();
    });
  if (!context.emitAndConfirm) log.warn("runtime without emitAndConfirm: QoS 1/2 messages are acknowledged before Kafka has them");
  let session: MqttSession | undefined;
  const decoder = new MessageDecoder(p, {
    error: (type, source, message) => context.recordError(type, source, new Error(message)),
    rebirth: (topic, payload, reason) => {
      log.warn({ topic, reason }, "requesting Sparkplug rebirth");
      session?.publish(topic, payload, 0);
    },
  });
  let heartbeat: ReturnType<typeof setInterval> | undefined;

  const onMessage = (message: InboundMessage): Promise<void> | undefined => {
    const arrival = new Date();
    let decoded: { samples: Sample[]; dead?: Dead };
    try {
      decoded = decoder.decode(message, arrival);
    } catch (error) {
      // A bug in a decoder must cost one message (to the DLQ), never the adapter.
      decoded = { samples: [], dead: { reason: "internal_error", message: `decoder failed: ${(error as Error).message}` } };
    }
    const confirm = message.qos > 0;
    const waits: Promise<void>[] = [];
    if (decoded.samples.length > 0) {
      if (confirm) waits.push(emitAndConfirm(decoded.samples));
      else context.emit(decoded.samples);
    }
    if (decoded.dead) {
      context.recordError("decode", message.topic, new Error(`${decoded.dead.reason}: ${decoded.dead.message}`));
      waits.push(emitRaw([deadLetter(config, message, decoded.dead, arrival)]));
    }
    if (!confirm) return undefined;
    return waits.length === 0 ? Promise.resolve() : waits.length === 1 ? waits[0] : Promise.all(waits).then(() => undefined);
  };

  return {
    async start() {
      const { url, options } = clientOptions(config);
      session = new MqttSession({
        url,
        client: options,
        subscriptions: p.subscriptions,
        log,
        onMessage,
        onConnectionError: (error) => context.recordError("connection", url, error),
      });
      log.info({ url, client_id: options.clientId, protocol_version: config.source.protocol_version, subscriptions: p.subscriptions }, "MQTT adapter started");
      // Event-driven: the loop is alive while timers fire; a broker outage shows as errors (degraded), not a stall.
      heartbeat = setInterval(() => context.heartbeat(), 1000);
      context.heartbeat();
    },
    async stop() {
      clearInterval(heartbeat);
      if (!session) return;
      const result = await session.stop(STOP_ACK_DEADLINE_MS);
      log.info({ ...session.stats, ...result }, "MQTT session closed");
    },
  };
}

export default defineAdapter({
  protocol: "mqtt",
  version: MQTT_ADAPTER_VERSION,
  stability: "beta",
  description: "Subscribes to MQTT 3.1.1/5 topics (plain numbers, JSON, Sparkplug B); QoS 1/2 messages are acknowledged only once Kafka has them",
  configSchema: MqttConfigSchema,
  validate: (config) => plan(config).errors,
  create: createInstance,
  heartbeatTimeoutMs: () => 30_000,
  /**
   * Subscribes with a throwaway clean session (never the pipeline's own, which would take over its
   * queued messages) and decodes what arrives: retained messages at once, else whatever comes
   * within 3 s. Returns after 300 ms without a new message once something arrived.
   */
  async connectionTest(config: MqttConfig, log: Logger) {
    const p = plan(config);
    const samples: Sample[] = [];
    const decoder = new MessageDecoder({ ...p, ...(p.sparkplug ? { sparkplug: { ...p.sparkplug, rebirth: false } } : {}) }, { error: () => undefined, rebirth: () => undefined });
    const { url, options } = clientOptions(config, {
      clientId: `${clientIdOf(config)}-test-${Math.random().toString(36).slice(2, 8)}`,
      clean: true,
      reconnectPeriod: 0,
      ...(config.source.protocol_version === "5" ? { properties: { sessionExpiryInterval: 0 } } : {}),
    });
    let failure: unknown;
    let lastMessageAt = 0;
    const session = new MqttSession({
      url,
      client: options,
      subscriptions: p.subscriptions.map((s) => ({ ...s, qos: 0 as const })),
      log,
      onMessage: (m) => {
        lastMessageAt = Date.now();
        samples.push(...decoder.decode(m, new Date()).samples);
        return undefined;
      },
      onConnectionError: (e) => (failure = e),
    });
    const connected = await Promise.race([session.connected.then(() => true), Bun.sleep(config.source.connect_timeout_ms).then(() => false)]);
    if (!connected) {
      await session.stop(0);
      throw new Error(`cannot connect to ${url}: ${(failure as Error)?.message ?? "timeout"}`);
    }
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline && !(lastMessageAt > 0 && Date.now() - lastMessageAt >= 300)) await Bun.sleep(50);
    await session.stop(0);
    return samples;
  },
});
