/** Test helpers: the real adapter process (`gateway adapter`) with its log lines, /health and /metrics. */
import { join } from "node:path";
import { encodeConfigJson } from "../../src/adapter-runtime/config.ts";
import type { Reading } from "../../src/envelope/reading.ts";
import type { KafkaAdmin } from "../../src/kafka/admin.ts";
import { readTopic } from "../../src/kafka/reader.ts";
import { kafkaConnection } from "../../test/support/services.ts";

const repo = join(import.meta.dir, "../..");

export type LogLine = Record<string, unknown> & { msg?: string; level?: string };

export interface AdapterProcess {
  lines: LogLine[];
  healthPort: Promise<number>;
  health(): Promise<Record<string, unknown>>;
  metrics(): Promise<string>;
  /** Resolves when a log line matches; rejects after timeoutMs. */
  waitForLine(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number>;
}

export function spawnAdapter(config: Record<string, unknown>, env: Record<string, string> = {}): AdapterProcess {
  const child = Bun.spawn([process.execPath, "src/main.ts", "adapter"], {
    cwd: repo,
    env: { ...process.env, LOG_LEVEL: "info", ...env, CONFIG_JSON: encodeConfigJson(config) },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "inherit",
  });
  const lines: LogLine[] = [];
  const waiters = new Set<() => void>();
  let reportPort: (port: number) => void = () => {};
  const healthPort = new Promise<number>((resolve) => (reportPort = resolve));
  const reading = (async () => {
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of child.stdout) {
      buffered += decoder.decode(chunk, { stream: true });
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      for (const part of parts.filter(Boolean)) {
        let line: LogLine;
        try {
          line = JSON.parse(part) as LogLine;
        } catch {
          line = { msg: `(not JSON) ${part}`, level: "stdout" };
        }
        lines.push(line);
        if (typeof line.health_port === "number") reportPort(line.health_port);
      }
      for (const wake of waiters) wake();
    }
  })();
  const url = async (path: string) => `http://127.0.0.1:${await healthPort}${path}`;
  return {
    lines,
    healthPort,
    health: async () => (await fetch(await url("/health"))).json() as Promise<Record<string, unknown>>,
    metrics: async () => (await fetch(await url("/metrics"))).text(),
    waitForLine(match, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find(match);
          if (!found) return false;
          waiters.delete(wake);
          clearTimeout(timer);
          resolve(found);
          return true;
        };
        const wake = () => void check();
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`no matching log line within ${timeoutMs} ms; last lines:\n${lines.slice(-10).map((l) => JSON.stringify(l)).join("\n")}`));
        }, timeoutMs);
        if (!check()) waiters.add(wake);
      });
    },
    async stop() {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      const code = await child.exited;
      clearTimeout(timer);
      await reading;
      return code;
    },
  };
}

export function metricValue(text: string, name: string, labels = ""): number {
  const match = new RegExp(`^${name}\\{[^}]*${labels}[^}]*\\} (\\d+(?:\\.\\d+)?)`, "m").exec(text);
  return match ? Number(match[1]) : 0;
}

/** Every record of a topic, by its end offsets. */
export async function topicReadings(admin: KafkaAdmin, topic: string): Promise<Reading[]> {
  const offsets = await admin.endOffsets(topic);
  const count = Number([...offsets.values()].reduce((sum, offset) => sum + offset, 0n));
  const records = await readTopic(kafkaConnection("opcua-test"), topic, { until: count, idleMs: 3000, timeoutMs: 20_000 });
  return records.map((r) => JSON.parse(r.value!) as Reading);
}

/** Readings that repeat one already in the list: same tag, device time, value and quality. */
export function duplicates(readings: Reading[]): Reading[] {
  const seen = new Set<string>();
  const repeated: Reading[] = [];
  for (const r of readings) {
    if (r.metadata.time_source !== "device") continue;
    const key = `${r.asset_id}/${r.parameter}|${r.timestamps.device_time}|${JSON.stringify(r.value)}|${r.quality}`;
    if (seen.has(key)) repeated.push(r);
    seen.add(key);
  }
  return repeated;
}

export async function until(predicate: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return true;
    await Bun.sleep(stepMs);
  }
  return predicate();
}
