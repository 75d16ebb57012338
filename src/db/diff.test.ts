import { describe, expect, test } from "bun:test";
import { type Diff, diffObjects } from "./diff.ts";

type Obj = Record<string, unknown> | null | undefined;
const cases: [name: string, old: Obj, next: Obj, want: Diff][] = [
  ["identical", { a: 1, b: { c: [1, 2] } }, { a: 1, b: { c: [1, 2] } }, {}],
  ["changed scalar", { a: 1 }, { a: 2 }, { a: { old: 1, new: 2 } }],
  ["nested path", { config: { plc: { host: "a", port: 502 } } }, { config: { plc: { host: "b", port: 502 } } }, { "config.plc.host": { old: "a", new: "b" } }],
  ["added key", { a: 1 }, { a: 1, b: "x" }, { b: { old: undefined, new: "x" } }],
  ["removed key", { a: 1, b: "x" }, { a: 1 }, { b: { old: "x", new: undefined } }],
  ["undefined equals missing", { a: 1, b: undefined }, { a: 1 }, {}],
  ["null vs missing", { a: null }, {}, { a: { old: null, new: undefined } }],
  ["arrays are leaves", { tags: [1, 2] }, { tags: [1, 3] }, { tags: { old: [1, 2], new: [1, 3] } }],
  ["equal arrays of objects", { r: [{ x: 1 }] }, { r: [{ x: 1 }] }, {}],
  ["object replaced by scalar", { a: { b: 1 } }, { a: 5 }, { a: { old: { b: 1 }, new: 5 } }],
  ["added subtree is one entry", { a: 1 }, { a: 1, s: { x: 1 } }, { s: { old: undefined, new: { x: 1 } } }],
  ["type change 1 -> '1'", { a: 1 }, { a: "1" }, { a: { old: 1, new: "1" } }],
  ["dates compared by value", { t: new Date(5) }, { t: new Date(5) }, {}],
  ["create (null old)", null, { a: 1, c: { d: 2 } }, { a: { old: undefined, new: 1 }, c: { old: undefined, new: { d: 2 } } }],
  ["delete (undefined new)", { a: 1 }, undefined, { a: { old: 1, new: undefined } }],
  ["both empty", null, undefined, {}],
];

describe("diffObjects", () => {
  test.each(cases)("%s", (_name, old, next, want) => {
    expect(diffObjects(old, next)).toEqual(want);
  });

  test("paths are flat and dotted; old/new keys survive a JSON round trip when defined", () => {
    const d = diffObjects({ a: { b: { c: 1 } } }, { a: { b: { c: 2 } } });
    expect(Object.keys(d)).toEqual(["a.b.c"]);
    expect(JSON.parse(JSON.stringify(d))).toEqual({ "a.b.c": { old: 1, new: 2 } });
  });
});
