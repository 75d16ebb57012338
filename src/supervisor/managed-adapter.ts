import type { Subprocess } from "bun";
import type { AdapterHealthBody } from "../adapter-runtime/health.ts";
import { EXIT_BAD_CONFIG } from "../adapter-runtime/run.ts";
import type { Logger } from "../log/logger.ts";
import { backoffDelay } from "../util/backoff.ts";
import type { Launch } from "./launch.ts";

export type AdapterState = "starting" | "running" | "degraded" | "unhealthy" | "backoff" | "failed" | "stopping" | "stopped";

export interface SupervisorTiming {
  healthIntervalMs: number;
  /** Consecutive failed or unhealthy checks before a restart. */
  unhealthyChecks: number;
  restartBaseMs: number;
  restartMaxMs: number;
  /** A child that ran this long is considered recovered: its next crash starts backoff afresh. */
  stableAfterMs: number;
  stopGraceMs: number;
  /** How long a starting child may take to report its health port before it counts as hung. */
  startGraceMs: number;
}

export const DEFAULT_TIMING: SupervisorTiming = {
  healthIntervalMs: 10_000,
  unhealthyChecks: 2,
  restartBaseMs: 1000,
  restartMaxMs: 60_000,
  stableAfterMs: 60_000,
  stopGraceMs: 12_000,
  startGraceMs: 30_000,
};

const HEALTH_TIMEOUT_MS = 2000;

export interface AdapterStatus {
  pipeline_id: string;
  runtime: string;
  state: AdapterState;
  pid: number | null;
  restarts: number;
  last_exit_code: number | null;
  health_port: number | null;
  health: AdapterHealthBody | null;
  detail: string | null;
}

export interface ManagedAdapterEvents {
  restarted(pipelineId: string): void;
  stateChanged(pipelineId: string, state: AdapterState): void;
}

/** One adapter child: spawns it, watches /health, restarts it with capped backoff. */
export class ManagedAdapter {
  #child: Subprocess<"ignore", "pipe", "pipe"> | undefined;
  #state: AdapterState = "stopped";
  #restarts = 0;
  #failures = 0;
  #badChecks = 0;
  #startedAt = 0;
  #lastExit: number | null = null;
  #healthPort: number | null = null;
  #health: AdapterHealthBody | null = null;
  #detail: string | null = null;
  #healthTimer: ReturnType<typeof setInterval> | undefined;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #exited: Promise<void> = Promise.resolve();
  /** Once stop() is called nothing may start this adapter again, whatever timer is still pending. */
  #retired = false;

  constructor(
    readonly pipelineId: string,
    readonly runtime: string,
    private readonly launch: Launch,
    private readonly timing: SupervisorTiming,
    private readonly log: Logger,
    private readonly events: ManagedAdapterEvents,
  ) {}

  status(): AdapterStatus {
    return {
      pipeline_id: this.pipelineId,
      runtime: this.runtime,
      state: this.#state,
      pid: this.#child?.pid ?? null,
      restarts: this.#restarts,
      last_exit_code: this.#lastExit,
      health_port: this.#healthPort,
      health: this.#health,
      detail: this.#detail,
    };
  }

  #setState(state: AdapterState, detail: string | null = this.#detail): void {
    this.#detail = detail;
    if (state === this.#state) return;
    this.#state = state;
    this.events.stateChanged(this.pipelineId, state);
  }

  start(): void {
    if (this.#retired) return;
    this.#setState("starting", null);
    this.#healthPort = null;
    this.#health = null;
    this.#badChecks = 0;
    this.#startedAt = Date.now();
    let child: Subprocess<"ignore", "pipe", "pipe">;
    try {
      child = Bun.spawn(this.launch.command, {
        env: { ...process.env, ...this.launch.env },
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
      });
    } catch (error) {
      this.#onExit(-1, `cannot start ${this.launch.command[0]}: ${(error as Error).message}`);
      return;
    }
    this.#child = child;
    this.log.info({ pipeline_id: this.pipelineId, pid: child.pid, runtime: this.runtime }, "adapter started");
    void this.#pump(child.stdout, (line) => this.#onStdout(line));
    void this.#pump(child.stderr, (line) => this.log.warn({ pipeline_id: this.pipelineId, stderr: line }, "adapter stderr"));
    this.#exited = child.exited.then((code) => this.#onExit(code, null));
    this.#healthTimer = setInterval(() => void this.#checkHealth(), this.timing.healthIntervalMs);
  }

  async #pump(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of stream) {
      buffered += decoder.decode(chunk, { stream: true });
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line.trim()) onLine(line);
      }
    }
    if (buffered.trim()) onLine(buffered);
  }

  /** Adapter logs are already JSON lines: they pass through unchanged, and we learn the health port from them. */
  #onStdout(line: string): void {
    process.stdout.write(`${line}\n`);
    if (this.#healthPort !== null || !line.includes("health_port")) return;
    try {
      const port = (JSON.parse(line) as { health_port?: unknown }).health_port;
      if (typeof port === "number") {
        this.#healthPort = port;
        void this.#checkHealth();
      }
    } catch {
      // Not JSON: a third-party adapter's plain log line.
    }
  }

  async #checkHealth(): Promise<void> {
    if (!this.#child || this.#state === "stopping") return;
    if (this.#healthPort === null) {
      if (Date.now() - this.#startedAt > this.timing.startGraceMs) {
        this.#badCheck("no health port reported");
      }
      return;
    }
    try {
      const response = await fetch(`http://127.0.0.1:${this.#healthPort}/health`, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
      const body = (await response.json()) as AdapterHealthBody;
      this.#health = body;
      if (body.status === "unhealthy") {
        this.#badCheck("reports unhealthy");
        return;
      }
      this.#badChecks = 0;
      if (Date.now() - this.#startedAt > this.timing.stableAfterMs) this.#failures = 0;
      this.#setState(body.status === "degraded" ? "degraded" : "running", null);
    } catch (error) {
      this.#badCheck(`health endpoint: ${(error as Error).message}`);
    }
  }

  #badCheck(reason: string): void {
    this.#badChecks++;
    this.#setState("unhealthy", reason);
    if (this.#badChecks < this.timing.unhealthyChecks) return;
    this.log.warn({ pipeline_id: this.pipelineId, reason, checks: this.#badChecks }, "adapter unhealthy; restarting");
    this.#badChecks = 0;
    void this.#terminate();
  }

  #onExit(code: number, spawnError: string | null): void {
    clearInterval(this.#healthTimer);
    this.#child = undefined;
    this.#lastExit = code;
    if (this.#retired || this.#state === "stopping" || this.#state === "stopped") {
      this.#setState("stopped", null);
      return;
    }
    if (code === EXIT_BAD_CONFIG) {
      this.log.error({ pipeline_id: this.pipelineId, exit_code: code }, "adapter rejected its config; not restarting until the config changes");
      this.#setState("failed", "configuration rejected by the adapter (see its log)");
      return;
    }
    if (Date.now() - this.#startedAt > this.timing.stableAfterMs) this.#failures = 0;
    this.#failures++;
    const delay = backoffDelay(this.#failures, this.timing.restartBaseMs, this.timing.restartMaxMs);
    const reason = spawnError ?? `exited with code ${code}`;
    this.log.warn({ pipeline_id: this.pipelineId, exit_code: code, restart_in_ms: delay, failures: this.#failures }, `adapter ${reason}; restarting`);
    this.#setState("backoff", reason);
    this.#restartTimer = setTimeout(() => {
      if (this.#retired) return;
      this.#restarts++;
      this.events.restarted(this.pipelineId);
      this.start();
    }, delay);
  }

  async #terminate(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    child.kill("SIGTERM");
    const killed = await Promise.race([child.exited.then(() => true), Bun.sleep(this.timing.stopGraceMs).then(() => false)]);
    if (!killed) {
      this.log.warn({ pipeline_id: this.pipelineId, grace_ms: this.timing.stopGraceMs }, "adapter ignored SIGTERM; killing");
      child.kill("SIGKILL");
    }
  }

  /** Graceful: SIGTERM lets the adapter flush to Kafka; SIGKILL only past the grace period. */
  async stop(): Promise<void> {
    this.#retired = true;
    clearTimeout(this.#restartTimer);
    clearInterval(this.#healthTimer);
    this.#setState("stopping");
    await this.#terminate();
    await this.#exited;
    this.#setState("stopped", null);
  }
}
