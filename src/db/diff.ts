/** `{ "config.host": { old: "a", new: "b" } }`; `old`/`new` is undefined (and absent once stored as JSON) when the key is missing on that side. */
export type Diff = Record<string, { old?: unknown; new?: unknown }>;

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);

/**
 * Flat diff of two JSON-like objects keyed by dotted path. Only plain objects present on both
 * sides are descended into; arrays, dates, primitives and added/removed subtrees are compared as
 * whole values; `undefined` and a missing key are equal (JSON semantics). `null`/`undefined`
 * roots count as `{}` (creation / deletion).
 */
export function diffObjects(oldObj: Record<string, unknown> | null | undefined, newObj: Record<string, unknown> | null | undefined): Diff {
  const out: Diff = {};
  walk(oldObj ?? {}, newObj ?? {}, "", out);
  return out;
}

function walk(a: Record<string, unknown>, b: Record<string, unknown>, prefix: string, out: Diff): void {
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const path = prefix + key;
    const [x, y] = [a[key], b[key]];
    if (isPlainObject(x) && isPlainObject(y)) walk(x, y, `${path}.`, out);
    else if (!Bun.deepEquals(x, y)) out[path] = { old: x, new: y };
  }
}
