// Helpers for the MQTT adapter's integration tests: the adapter as a real process, an MQTT
// publisher, Kafka topics and reads. Not a test file itself.
import { join } from "node:path";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { encodeConfigJson } from "../../src/adapter-runtime/config.ts";
import type { Reading } from "../../src/envelope/reading.ts";
import { KafkaAdmin } from "../../src/kafka/admin.ts";
import { readTopic } from "../../src/kafka/reader.ts";
import { KAFKA_BOOTSTRAP, MQTT_URL, kafkaConnection, serviceAvailable, uniqueName } from "../../test/support/services.ts";

export const repo = join(import.meta.dir, "../..");
export const mqttHostPort = new URL(MQTT_URL).host;
export const mqttUp = await serviceAvailable("Mosquitto", mqttHostPort);

export type LogLine = Record<string, unknown> & { msg?: string };

export interface AdapterProcess {
  child: ReturnType<typeof Bun.spawn>;
  lines: LogLine[];
  healthPort: Promise<number>;
  /** Resolves with the first log line (past or future) that satisfies `predicate`. */
  waitFor(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  metrics(): Promise<string>;
  exited: Promise<number>;
}

export function startAdapter(config: Record<string, unknown>, env: Record<string, string> = {}): AdapterProcess {
  const child = Bun.spawn([process.execPath, "src/main.ts", "adapter"], {
    cwd: repo,
    env: { ...process.env, ...env, CONFIG_JSON: encodeConfigJson(config) },
    stdout: "pipe",
    stderr: "inherit",
  });
  const lines: LogLine[] = [];
  const waiters: Array<{ predicate: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
  const pump = (async () => {
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of child.stdout as ReadableStream<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      for (const part of parts.filter(Boolean)) {
        let line: LogLine;
        try {
          line = JSON.parse(part) as LogLine;
        } catch {
          continue;
        }
        lines.push(line);
        for (const w of [...waiters]) {
          if (w.predicate(line)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(line);
          }
        }
      }
    }
  })();
  const waitFor = (predicate: (l: LogLine) => boolean, timeoutMs = 15_000) => {
    const seen = lines.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise<LogLine>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for a log line; last: ${JSON.stringify(lines.slice(-5))}`)), timeoutMs);
      waiters.push({ predicate, resolve: (l) => (clearTimeout(timer), resolve(l)) });
    });
  };
  const healthPort = waitFor((l) => typeof l.health_port === "number").then((l) => l.health_port as number);
  return {
    child,
    lines,
    healthPort,
    waitFor,
    metrics: async () => (await fetch(`http://127.0.0.1:${await healthPort}/metrics`)).text(),
    exited: child.exited.then(async (code) => (await pump, code)),
  };
}

export const subscribed = (a: AdapterProcess) => a.waitFor((l) => l.msg === "MQTT subscribed");

export async function publisher(options: IClientOptions = {}, url = MQTT_URL): Promise<MqttClient> {
  return mqtt.connectAsync(url, { clientId: uniqueName("test-pub"), protocolVersion: 5, reconnectPeriod: 0, ...options });
}

/** Removes a persistent session left on the broker by a test (a clean connect under the same id). */
export async function purgeSession(clientId: string, protocolVersion: 4 | 5 = 5, url = MQTT_URL): Promise<void> {
  const c = await mqtt.connectAsync(url, { clientId, protocolVersion, clean: true, reconnectPeriod: 0, ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: 0 } } : {}) });
  await c.endAsync();
}

export class Topics {
  readonly admin = new KafkaAdmin(kafkaConnection());
  readonly #created: string[] = [];
  async create(prefix: string, partitions = 1): Promise<string> {
    const name = uniqueName(prefix);
    await this.admin.createTopic(name, partitions);
    this.#created.push(name);
    return name;
  }
  async cleanup(): Promise<void> {
    await this.admin.deleteTopics(this.#created).catch(() => undefined);
    await this.admin.close();
  }
}

export async function readReadings(topic: string, until: number, timeoutMs = 20_000): Promise<Reading[]> {
  const records = await readTopic(kafkaConnection(), topic, { until, idleMs: until === Infinity ? 1500 : 8000, timeoutMs });
  return records.map((r) => JSON.parse(r.value!) as Reading);
}

export async function readJson<T = Record<string, unknown>>(topic: string, until: number, timeoutMs = 20_000) {
  const records = await readTopic(kafkaConnection(), topic, { until, idleMs: until === Infinity ? 1500 : 8000, timeoutMs });
  return records.map((r) => ({ key: r.key, headers: r.headers, value: JSON.parse(r.value!) as T }));
}

export function baseConfig(pipelineId: string, out: string, dlq: string, topics: unknown[], source: Record<string, unknown> = {}) {
  return {
    pipeline_id: pipelineId,
    adapter_id: `mqtt-${pipelineId}`,
    protocol: "mqtt",
    source: { host: "127.0.0.1", port: Number(mqttHostPort.split(":")[1] ?? 1883), dlq_topic: dlq, session_expiry_s: 300, ...source },
    mapping: { topics },
    output: { kafka_bootstrap: KAFKA_BOOTSTRAP, topic: out, asset_id: "unused" },
    buffer: { linger_ms: 5 },
    retry_policy: { backoff_ms: 200 },
  };
}

export async function freePort(): Promise<number> {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}
