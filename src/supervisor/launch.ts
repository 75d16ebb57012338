import { join } from "node:path";
import { encodeConfigJson } from "../adapter-runtime/config.ts";
import type { PipelineRun } from "./plan.ts";

/** How to run this same program again: the compiled binary itself, or bun with our entry file. */
export function selfCommand(): string[] {
  const compiled = import.meta.path.startsWith("/$bunfs/") || import.meta.path.includes("~BUN");
  return compiled ? [process.execPath] : [process.execPath, join(import.meta.dir, "..", "main.ts")];
}

export interface Launch {
  command: string[];
  env: Record<string, string>;
}

/**
 * `process`: a child of the same binary (`gateway adapter`). `docker`: a third-party adapter image
 * under the same contract; host networking so its health port is reachable like a child's, and
 * CONFIG_JSON passed by name so the secret-bearing config never appears in `ps`.
 */
export function launchFor(run: PipelineRun, self: string[] = selfCommand()): Launch {
  const env = { CONFIG_JSON: encodeConfigJson(run.config) };
  if (run.runtime === "process") return { command: [...self, "adapter"], env };
  if (!run.image) throw new Error(`pipelines[${run.pipeline_id}].image: required when runtime is docker`);
  return {
    command: ["docker", "run", "--rm", "--name", `gateway-${run.pipeline_id}`, "--network", "host", "-e", "CONFIG_JSON", run.image],
    env,
  };
}
