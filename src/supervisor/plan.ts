/** What the supervisor runs for one pipeline. */
export interface PipelineRun {
  pipeline_id: string;
  runtime: "process" | "docker";
  image?: string | null;
  /** The adapter's CONFIG_JSON body. */
  config: Record<string, unknown>;
}

export interface ApplyPlan {
  start: PipelineRun[];
  restart: PipelineRun[];
  stop: string[];
  unchanged: string[];
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

export function sameRun(a: PipelineRun, b: PipelineRun): boolean {
  return canonical(a) === canonical(b);
}

/** The seed's apply_config diff: stop what went away, restart what changed, start what is new. */
export function planApply(current: ReadonlyMap<string, PipelineRun>, desired: readonly PipelineRun[]): ApplyPlan {
  const plan: ApplyPlan = { start: [], restart: [], stop: [], unchanged: [] };
  const desiredIds = new Set(desired.map((p) => p.pipeline_id));
  for (const id of current.keys()) if (!desiredIds.has(id)) plan.stop.push(id);
  for (const run of desired) {
    const existing = current.get(run.pipeline_id);
    if (!existing) plan.start.push(run);
    else if (!sameRun(existing, run)) plan.restart.push(run);
    else plan.unchanged.push(run.pipeline_id);
  }
  return plan;
}
