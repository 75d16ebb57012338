/**
 * Test helpers for the sink suites and the sink benchmark: topics with readings, a sink run as a
 * child process (for kill -9), the scale-out scenario every sink runs, a TCP proxy to take a
 * target "down", moto's S3 server.
 */
import type { Subprocess } from "bun";
import { KafkaAdmin } from "../kafka/admin.ts";
import type { KafkaConnection } from "../kafka/connection.ts";
import { ReliableProducer, type OutgoingRecord } from "../kafka/producer.ts";
import { readTopic } from "../kafka/reader.ts";
import type { Logger } from "../log/logger.ts";
import { createMetricsRegistry } from "../metrics/registry.ts";
import { startSink } from "./run-sink.ts";
import type { SinkStatus } from "./runtime.ts";

export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await Bun.sleep(100);
  }
}

const BASE_TIME = Date.UTC(2025, 0, 10, 12, 0, 0);

/** A clean reading; tag `i % tags`, one second apart per tag; value = i (sum of 0..n-1 is checkable). */
export function readingValue(i: number, tags = 20): Record<string, unknown> {
  const tag = i % tags;
  const device = BASE_TIME + Math.floor(i / tags) * 1000;
  return {
    asset_id: `asset_${tag % 5}`,
    parameter: `param_${tag}`,
    value: i,
    unit: "degC",
    quality: "GOOD",
    classification: "TELEMETRY",
    timestamps: {
      device_time: new Date(device).toISOString(),
      gateway_time: new Date(device + 7).toISOString(),
      kafka_time: null,
      timezone: "UTC",
    },
    clock_skew_ms: 7,
    metadata: { adapter_id: "sim", adapter_version: "1", pipeline_id: "p1", hostname: "h" },
  };
}

export function readingRecords(topic: string, from: number, to: number, tags = 20): OutgoingRecord[] {
  const records: OutgoingRecord[] = [];
  for (let i = from; i < to; i++) {
    const v = readingValue(i, tags);
    records.push({ topic, key: `${v.asset_id}/${v.parameter}`, value: JSON.stringify(v) });
  }
  return records;
}

export async function produce(connection: KafkaConnection, records: OutgoingRecord[], chunk = 1000): Promise<void> {
  const producer = new ReliableProducer(connection, "test-producer");
  try {
    for (let i = 0; i < records.length; i += chunk) await producer.send(records.slice(i, i + chunk));
  } finally {
    await producer.close();
  }
}

export async function createTopics(connection: KafkaConnection, topics: Record<string, number>): Promise<void> {
  const admin = new KafkaAdmin(connection);
  try {
    for (const [name, partitions] of Object.entries(topics)) await admin.createTopic(name, partitions);
  } finally {
    await admin.close();
  }
}

export async function deleteTopics(connection: KafkaConnection, topics: string[]): Promise<void> {
  const admin = new KafkaAdmin(connection);
  try {
    await admin.deleteTopics(topics).catch(() => undefined);
  } finally {
    await admin.close();
  }
}

export async function readDlq(connection: KafkaConnection, topic: string, until: number): Promise<Record<string, unknown>[]> {
  const records = await readTopic(connection, topic, { until, idleMs: 2000, timeoutMs: 20_000 });
  return records.map((r) => JSON.parse(r.value ?? "null") as Record<string, unknown>);
}

// ---------------------------------------------------------------------------------------------------
// A sink as a child process
// ---------------------------------------------------------------------------------------------------

export interface SinkProcess {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Every log line so far (JSON lines of the sink). */
  lines: string[];
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  kill9(): Promise<void>;
  term(): Promise<number>;
}

const RUN_SINK = new URL("./run-sink.ts", import.meta.url).pathname;

export function spawnSink(config: unknown, env: Record<string, string> = {}): SinkProcess {
  const proc = Bun.spawn([process.execPath, RUN_SINK], {
    env: { ...process.env, SINK_CONFIG_JSON: JSON.stringify(config), LOG_LEVEL: "info", ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const lines: string[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of stream) {
      buffered += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        lines.push(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    }
    if (buffered) lines.push(buffered);
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  return {
    proc,
    lines,
    async waitForLog(pattern, timeoutMs = 20_000) {
      let found: string | undefined;
      await waitFor(
        () => {
          found = lines.find((l) => pattern.test(l));
          if (!found && proc.exitCode !== null) throw new Error(`sink exited (${proc.exitCode}) before logging ${pattern}:\n${lines.slice(-20).join("\n")}`);
          return found !== undefined;
        },
        timeoutMs,
        `log line ${pattern}`,
      );
      return found!;
    },
    async kill9() {
      proc.kill("SIGKILL");
      await proc.exited;
    },
    async term() {
      proc.kill("SIGTERM");
      return proc.exited;
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Scale-out: two instances of one sink in one group, one leaving mid-stream
// ---------------------------------------------------------------------------------------------------

export interface ScaleOutOptions {
  connection: KafkaConnection;
  /** A 6-partition input topic, empty at the start. */
  input: string;
  /** Readings 0..n-1, produced in chunks of 1000 while the instances run. */
  n: number;
  /** The sink's config for instance `id`; every id must get the same group_id. */
  config(id: "a" | "b"): unknown;
  /** Distinct records the target holds so far (rows, elements, ...), read from the target itself. */
  delivered(): Promise<number>;
  log: Logger;
}

/**
 * The scenario every sink must pass: instances a and b join one group and share the 6 partitions
 * 3/3; the first third of the readings is written by both, then a stops (drains, commits, leaves)
 * while the rest keeps arriving, and b takes all partitions over. Returns once the target holds n
 * distinct records (plus a moment for stray duplicates to land), with both instances' final
 * status; the caller checks the target for losses and duplicates.
 */
export async function runScaleOut(o: ScaleOutOptions): Promise<{ a: SinkStatus; b: SinkStatus }> {
  const produceRange = async (from: number, to: number) => {
    for (let i = from; i < to; i += 1000) {
      await produce(o.connection, readingRecords(o.input, i, Math.min(to, i + 1000)));
      await Bun.sleep(100);
    }
  };
  const a = await startSink(o.config("a"), { log: o.log, metrics: createMetricsRegistry() });
  const b = await startSink(o.config("b"), { log: o.log, metrics: createMetricsRegistry() });
  try {
    await waitFor(() => a.status().assigned.length === 3 && b.status().assigned.length === 3, 20_000, "partitions shared 3/3");
    const third = Math.floor(o.n / 3);
    await produceRange(0, third);
    await waitFor(async () => (await o.delivered()) >= third, 30_000, "the first third delivered");
    if (a.status().rows_written === 0 || b.status().rows_written === 0) throw new Error("one instance wrote nothing while sharing the partitions");
    await Promise.all([a.stop(), produceRange(third, o.n)]);
    await waitFor(() => b.status().assigned.length === 6, 20_000, "b owns all partitions");
    await waitFor(async () => (await o.delivered()) >= o.n, 40_000, "every record delivered");
    await Bun.sleep(500);
    return { a: a.status(), b: b.status() };
  } finally {
    await a.stop();
    await b.stop();
  }
}

// ---------------------------------------------------------------------------------------------------
// A TCP proxy that can be taken down and brought back on the same port
// ---------------------------------------------------------------------------------------------------

export interface TcpProxy {
  port: number;
  /** Stops listening and cuts every open connection. */
  down(): void;
  up(): void;
  stop(): void;
}

export function tcpProxy(targetHost: string, targetPort: number, port = 0): TcpProxy {
  type Pair = { client: import("bun").Socket<Pair>; upstream?: import("bun").Socket<unknown>; queued: Uint8Array[] };
  const open = new Set<Pair>();
  let listener: import("bun").TCPSocketListener<Pair> | undefined;
  const listen = (p: number) =>
    Bun.listen<Pair>({
      hostname: "127.0.0.1",
      port: p,
      socket: {
        open(client) {
          const pair: Pair = { client, queued: [] };
          client.data = pair;
          open.add(pair);
          void Bun.connect({
            hostname: targetHost,
            port: targetPort,
            socket: {
              open(upstream) {
                pair.upstream = upstream;
                for (const chunk of pair.queued) upstream.write(chunk);
                pair.queued = [];
              },
              data(_s, chunk) {
                pair.client.write(chunk);
              },
              close() {
                pair.client.end();
              },
              error() {
                pair.client.end();
              },
            },
          }).catch(() => pair.client.end());
        },
        data(client, chunk) {
          const pair = client.data;
          if (pair.upstream) pair.upstream.write(chunk);
          else pair.queued.push(new Uint8Array(chunk));
        },
        close(client) {
          client.data.upstream?.end();
          open.delete(client.data);
        },
        error(client) {
          client.data.upstream?.end();
          open.delete(client.data);
        },
      },
    });
  listener = listen(port);
  const boundPort = listener.port;
  return {
    port: boundPort,
    down() {
      listener?.stop(true);
      listener = undefined;
      for (const pair of open) {
        pair.client.terminate();
        pair.upstream?.terminate();
      }
      open.clear();
    },
    up() {
      listener ??= listen(boundPort);
    },
    stop() {
      this.down();
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// moto's S3 server
// ---------------------------------------------------------------------------------------------------

export const VENV_PYTHON = new URL("../../.cache/venv/bin/python", import.meta.url).pathname;

export async function motoAvailable(): Promise<boolean> {
  if (!(await Bun.file(VENV_PYTHON).exists())) return false;
  const check = Bun.spawnSync([VENV_PYTHON, "-c", "import moto.server"], { stdout: "ignore", stderr: "ignore" });
  return check.exitCode === 0;
}

export async function freePort(): Promise<number> {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}

export interface Moto {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** moto keeps buckets in memory: a restart loses them, so `start` recreates the bucket given. */
export async function startMoto(bucket: string, port?: number): Promise<Moto> {
  const p = port ?? (await freePort());
  const endpoint = `http://127.0.0.1:${p}`;
  let proc: Subprocess | undefined;
  const start = async () => {
    proc = Bun.spawn([VENV_PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", String(p)], { stdout: "ignore", stderr: "ignore" });
    await waitFor(
      async () => {
        try {
          return (await fetch(`${endpoint}/moto-api/`)).status < 500;
        } catch {
          return false;
        }
      },
      20_000,
      "moto server",
    );
    const created = await fetch(`${endpoint}/${bucket}`, { method: "PUT" });
    if (created.status >= 300 && created.status !== 409) throw new Error(`creating bucket ${bucket}: HTTP ${created.status}`);
  };
  await start();
  return {
    endpoint,
    port: p,
    start,
    async stop() {
      proc?.kill("SIGKILL");
      await proc?.exited;
      proc = undefined;
    },
  };
}
