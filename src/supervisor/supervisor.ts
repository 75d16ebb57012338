import { Counter, Gauge, type Registry } from "prom-client";
import type { Logger } from "../log/logger.ts";
import { launchFor, selfCommand } from "./launch.ts";
import { DEFAULT_TIMING, ManagedAdapter, type AdapterState, type AdapterStatus, type SupervisorTiming } from "./managed-adapter.ts";
import { planApply, type ApplyPlan, type PipelineRun } from "./plan.ts";

const STATES: AdapterState[] = ["starting", "running", "degraded", "unhealthy", "backoff", "failed", "stopping", "stopped"];

export interface SupervisorOptions {
  log: Logger;
  metrics?: Registry;
  timing?: Partial<SupervisorTiming>;
  /** The command that runs this program; tests and the compiled binary differ. */
  self?: string[];
}

/** Runs one adapter per enabled pipeline and keeps the set equal to the desired config. */
export class Supervisor {
  readonly #adapters = new Map<string, { run: PipelineRun; managed: ManagedAdapter }>();
  readonly #timing: SupervisorTiming;
  readonly #stateGauge: Gauge<string> | undefined;
  readonly #restartCounter: Counter<string> | undefined;
  #applying: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: SupervisorOptions) {
    this.#timing = { ...DEFAULT_TIMING, ...options.timing };
    if (options.metrics) {
      const registers = [options.metrics];
      this.#stateGauge = new Gauge({ name: "gateway_adapter_state", help: "1 for the state each adapter is in", labelNames: ["pipeline_id", "state"], registers });
      this.#restartCounter = new Counter({ name: "gateway_adapter_restarts_total", help: "Adapter restarts by the supervisor", labelNames: ["pipeline_id"], registers });
    }
  }

  /** Serialised, so two config changes never interleave their stops and starts. */
  apply(desired: readonly PipelineRun[]): Promise<ApplyPlan> {
    const next = this.#applying.then(() => this.#apply(desired));
    this.#applying = next.catch(() => undefined);
    return next;
  }

  async #apply(desired: readonly PipelineRun[]): Promise<ApplyPlan> {
    const current = new Map([...this.#adapters].map(([id, a]) => [id, a.run]));
    const plan = planApply(current, desired);
    if (plan.start.length + plan.restart.length + plan.stop.length > 0) {
      this.options.log.info(
        { start: plan.start.map((p) => p.pipeline_id), restart: plan.restart.map((p) => p.pipeline_id), stop: plan.stop },
        "applying pipeline config",
      );
    }
    await Promise.all([...plan.stop, ...plan.restart.map((r) => r.pipeline_id)].map((id) => this.#remove(id)));
    for (const run of [...plan.restart, ...plan.start]) this.#add(run);
    return plan;
  }

  #add(run: PipelineRun): void {
    const managed = new ManagedAdapter(run.pipeline_id, run.runtime, launchFor(run, this.options.self ?? selfCommand()), this.#timing, this.options.log, {
      restarted: (id) => this.#restartCounter?.inc({ pipeline_id: id }),
      stateChanged: (id, state) => {
        for (const s of STATES) this.#stateGauge?.set({ pipeline_id: id, state: s }, s === state ? 1 : 0);
      },
    });
    this.#adapters.set(run.pipeline_id, { run, managed });
    managed.start();
  }

  async #remove(id: string): Promise<void> {
    const entry = this.#adapters.get(id);
    if (!entry) return;
    await entry.managed.stop();
    this.#adapters.delete(id);
    for (const s of STATES) this.#stateGauge?.remove({ pipeline_id: id, state: s });
  }

  status(): AdapterStatus[] {
    return [...this.#adapters.values()].map((a) => a.managed.status());
  }

  async stop(): Promise<void> {
    await this.apply([]);
  }
}
