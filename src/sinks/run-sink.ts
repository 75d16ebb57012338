/**
 * One sink as a process: `gateway sink` (or `bun src/sinks/run-sink.ts`) with the config in SINK_CONFIG_JSON (JSON,
 * or base64 of JSON like the adapters' CONFIG_JSON) or `--config FILE`. SIGTERM/SIGINT stop it
 * gracefully (pending batch written and committed, group left). With `health` configured it
 * serves /health (status JSON; 503 while the target is down) and /metrics.
 *
 * SINK_FAULT=crash_after_write[:N] is a test seam: the process SIGKILLs itself right after its
 * N-th (default 1st) durable write, before committing it — the crash the sinks must survive.
 */
import type { Registry } from "prom-client";
import { decodeConfigJson } from "../adapter-runtime/config.ts";
import { ConfigError } from "../config/schema-errors.ts";
import { createLogger, type Logger } from "../log/logger.ts";
import { createMetricsRegistry } from "../metrics/registry.ts";
import type { SinkBatch } from "./define.ts";
import { parseSinkConfig } from "./registry.ts";
import { SinkRuntime } from "./runtime.ts";

export interface StartSinkOptions {
  log: Logger;
  metrics: Registry;
  hooks?: { afterWrite?(batch: SinkBatch<unknown>): void | Promise<void> };
  drainTimeoutMs?: number;
}

/** Parses the config, creates the sink's writer and starts its runtime. */
export async function startSink(input: unknown, options: StartSinkOptions): Promise<SinkRuntime> {
  const { definition, config } = parseSinkConfig(input);
  const log = options.log.child({ sink_type: config.type });
  const writer = await definition.create(config, { log: log.child({ sink: config.sink_id }), sinkId: config.sink_id });
  const runtime = new SinkRuntime({
    config,
    writer,
    log,
    metrics: options.metrics,
    ...(options.hooks ? { hooks: options.hooks } : {}),
    ...(options.drainTimeoutMs ? { drainTimeoutMs: options.drainTimeoutMs } : {}),
  });
  try {
    await runtime.start();
  } catch (error) {
    // The caller may try again (`gateway serve` does): each attempt must not leave a target connection behind.
    await writer.close().catch(() => undefined);
    throw error;
  }
  return runtime;
}

function faultHooks(fault: string | undefined, log: Logger): StartSinkOptions["hooks"] {
  const m = /^crash_after_write(?::(\d+))?$/.exec(fault ?? "");
  if (!m) return undefined;
  let left = Number(m[1] ?? 1);
  return {
    afterWrite(batch) {
      if (batch.items.length === 0 || --left > 0) return;
      log.warn({ ranges: batch.ranges.map((r) => `${r.topic}:${r.partition}:${r.first}-${r.last}`) }, "SINK_FAULT: crashing after a durable write, before its commit");
      process.kill(process.pid, "SIGKILL");
    },
  };
}

/** `gateway sink [--config FILE]`: runs until SIGTERM/SIGINT, then exits the process itself. */
export async function runSinkProcess(): Promise<void> {
  const log = createLogger("sink");
  const at = process.argv.indexOf("--config");
  const raw = at > 0 && process.argv[at + 1] ? await Bun.file(process.argv[at + 1]!).text() : process.env.SINK_CONFIG_JSON;
  let input: unknown;
  try {
    input = decodeConfigJson(raw);
  } catch (error) {
    // decodeConfigJson names CONFIG_JSON; here the variable is SINK_CONFIG_JSON.
    log.fatal({ err: (error as Error).message.replace("CONFIG_JSON", "SINK_CONFIG_JSON") }, "sink config missing or not JSON");
    process.exit(2);
  }
  const metrics = createMetricsRegistry({ component: "sink" });
  let runtime: SinkRuntime;
  try {
    const hooks = faultHooks(process.env.SINK_FAULT, log);
    runtime = await startSink(input, { log, metrics, ...(hooks ? { hooks } : {}) });
  } catch (error) {
    if (error instanceof ConfigError) {
      log.fatal({ errors: error.fieldErrors }, error.message);
      process.exit(2);
    }
    throw error;
  }
  const health = (input as { health?: { port?: number; host?: string } }).health;
  if (health) {
    const server = Bun.serve({
      port: health.port ?? 0,
      hostname: health.host ?? "127.0.0.1",
      async fetch(request) {
        const path = new URL(request.url).pathname;
        if (path === "/metrics") return new Response(await metrics.metrics(), { headers: { "Content-Type": metrics.contentType } });
        if (path === "/health") {
          const status = runtime.status();
          return Response.json(status, { status: status.state === "target_down" || status.state === "stopped" ? 503 : 200 });
        }
        return new Response("not found", { status: 404 });
      },
    });
    log.info({ port: server.port, host: server.hostname }, "sink health endpoint listening");
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "sink stopping");
    await runtime.stop();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

if (import.meta.main) await runSinkProcess();
