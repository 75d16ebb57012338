import { describe, expect, test } from "bun:test";
import { planApply, type PipelineRun } from "./plan.ts";

const run = (id: string, config: Record<string, unknown> = {}, runtime: PipelineRun["runtime"] = "process"): PipelineRun => ({
  pipeline_id: id,
  runtime,
  config: { pipeline_id: id, ...config },
});

describe("planApply", () => {
  const current = new Map([
    ["a", run("a", { poll_interval_ms: 1000 })],
    ["b", run("b")],
    ["c", run("c", { source: { host: "x", port: 502 } })],
  ]);
  const cases: Array<[string, PipelineRun[], { start: string[]; restart: string[]; stop: string[]; unchanged: string[] }]> = [
    ["nothing changed", [...current.values()], { start: [], restart: [], stop: [], unchanged: ["a", "b", "c"] }],
    ["key order is not a change", [run("a", { poll_interval_ms: 1000 }), run("b"), run("c", { source: { port: 502, host: "x" } })], { start: [], restart: [], stop: [], unchanged: ["a", "b", "c"] }],
    ["config change restarts", [run("a", { poll_interval_ms: 500 }), run("b"), run("c", { source: { host: "x", port: 502 } })], { start: [], restart: ["a"], stop: [], unchanged: ["b", "c"] }],
    ["runtime change restarts", [run("a", { poll_interval_ms: 1000 }), run("b", {}, "docker"), run("c", { source: { host: "x", port: 502 } })], { start: [], restart: ["b"], stop: [], unchanged: ["a", "c"] }],
    ["removed stops, new starts", [run("a", { poll_interval_ms: 1000 }), run("d")], { start: ["d"], restart: [], stop: ["b", "c"], unchanged: ["a"] }],
    ["empty stops all", [], { start: [], restart: [], stop: ["a", "b", "c"], unchanged: [] }],
  ];
  test.each(cases)("%s", (_name, desired, expected) => {
    const plan = planApply(current, desired);
    expect({
      start: plan.start.map((p) => p.pipeline_id),
      restart: plan.restart.map((p) => p.pipeline_id),
      stop: plan.stop,
      unchanged: plan.unchanged,
    }).toEqual(expected);
  });
});
