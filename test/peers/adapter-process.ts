/**
 * The real adapter process (`bun src/main.ts adapter` with CONFIG_JSON), run as the supervisor
 * runs it, for the serial adapters' end-to-end tests: log lines, /metrics, SIGTERM, and the topic.
 */
import { join, resolve } from "node:path";
import { encodeConfigJson } from "../../src/adapter-runtime/config.ts";
import type { Reading } from "../../src/envelope/reading.ts";
import type { KafkaAdmin } from "../../src/kafka/admin.ts";
import type { ConsumedRecord } from "../../src/kafka/processor.ts";
import { readTopic } from "../../src/kafka/reader.ts";
import { kafkaConnection } from "../support/services.ts";

const repo = resolve(import.meta.dir, "../..");

export interface LogLine {
  msg?: string;
  level?: string;
  [key: string]: unknown;
}

export interface AdapterProcess {
  lines: LogLine[];
  /** Current value of a counter on /metrics (summed over label sets), 0 before the health port is known. */
  metric(name: string, labelFilter?: string): Promise<number>;
  /** Polls a metric until it reaches `value` or the time runs out; returns the last value. */
  waitForMetric(name: string, value: number, timeoutMs?: number, labelFilter?: string): Promise<number>;
  /** SIGTERM, then the exit code and the final log line's counters. */
  stop(): Promise<{ exitCode: number; stderr: string; summary: LogLine | undefined }>;
}

export function spawnAdapter(config: Record<string, unknown>): AdapterProcess {
  const child = Bun.spawn([process.execPath, join(repo, "src/main.ts"), "adapter"], {
    cwd: repo,
    env: { ...process.env, CONFIG_JSON: encodeConfigJson(config), LOG_LEVEL: "info" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const stderr = new Response(child.stderr).text();
  const lines: LogLine[] = [];
  let healthPort: number | undefined;
  const stdout = (async () => {
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of child.stdout) {
      buffered += decoder.decode(chunk, { stream: true });
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const text = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (!text) continue;
        const line = JSON.parse(text) as LogLine;
        lines.push(line);
        if (typeof line.health_port === "number") healthPort = line.health_port;
      }
    }
  })();

  const metric = async (name: string, labelFilter = "") => {
    if (healthPort === undefined) return 0;
    const text = await fetch(`http://127.0.0.1:${healthPort}/metrics`).then((r) => r.text()).catch(() => "");
    let total = 0;
    for (const match of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} ([0-9.e+]+)`, "gm"))) {
      if (match[1]!.includes(labelFilter)) total += Number(match[2]);
    }
    return total;
  };

  return {
    lines,
    metric,
    async waitForMetric(name, value, timeoutMs = 15_000, labelFilter = "") {
      const deadline = Date.now() + timeoutMs;
      let current = 0;
      while (Date.now() < deadline && child.exitCode === null) {
        current = await metric(name, labelFilter);
        if (current >= value) break;
        await Bun.sleep(50);
      }
      return current;
    },
    async stop() {
      child.kill("SIGTERM");
      const killTimer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      const exitCode = await child.exited;
      clearTimeout(killTimer);
      await stdout;
      return { exitCode, stderr: await stderr, summary: lines.find((l) => l.msg === "adapter stopped") };
    },
  };
}

/** Every record of a topic, counted by its end offsets (idempotent producer, no transactions: one offset per record). */
export async function readAll(admin: KafkaAdmin, topic: string): Promise<{ records: ConsumedRecord[]; readings: Reading[]; topicCount: number }> {
  const offsets = await admin.endOffsets(topic);
  const topicCount = Number([...offsets.values()].reduce((sum, offset) => sum + offset, 0n));
  const records = await readTopic(kafkaConnection("serial-test"), topic, { until: topicCount, idleMs: 3000, timeoutMs: 20_000 });
  return { records, readings: records.map((r) => JSON.parse(r.value!) as Reading), topicCount };
}
