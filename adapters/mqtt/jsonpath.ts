/**
 * JSONPath-lite: `$`, `$.a.b`, `$.a[0].b`, `$.list[-1]` (from the end), `$['key.with dots']`.
 * No filters, slices or recursion: a path names exactly one value.
 */
export type PathStep = string | number;

export interface JsonPath {
  source: string;
  steps: PathStep[];
}

export function parseJsonPath(source: string): { path: JsonPath } | { error: string } {
  if (!source.startsWith("$")) return { error: `a path starts with "$", got ${JSON.stringify(source)}` };
  const steps: PathStep[] = [];
  let i = 1;
  while (i < source.length) {
    const c = source[i];
    if (c === ".") {
      const m = /^[A-Za-z0-9_$@-]+/.exec(source.slice(i + 1));
      if (!m) return { error: `expected a key after "." at ${i} in ${JSON.stringify(source)}` };
      steps.push(m[0]);
      i += 1 + m[0].length;
    } else if (c === "[") {
      const rest = source.slice(i);
      const index = /^\[(-?\d+)\]/.exec(rest);
      const quoted = /^\[(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\]/.exec(rest);
      if (index) {
        steps.push(Number(index[1]));
        i += index[0].length;
      } else if (quoted) {
        steps.push((quoted[1] ?? quoted[2] ?? "").replace(/\\(.)/g, "$1"));
        i += quoted[0].length;
      } else {
        return { error: `expected [index] or ['key'] at ${i} in ${JSON.stringify(source)}` };
      }
    } else {
      return { error: `unexpected ${JSON.stringify(c)} at ${i} in ${JSON.stringify(source)}` };
    }
  }
  return { path: { source, steps } };
}

/** The value at `path`, or undefined when any step is missing. */
export function evaluate(path: JsonPath, document: unknown): unknown {
  let node = document;
  for (const step of path.steps) {
    if (node === null || typeof node !== "object") return undefined;
    if (typeof step === "number") {
      if (!Array.isArray(node)) return undefined;
      node = node[step < 0 ? node.length + step : step];
    } else {
      if (Array.isArray(node)) return undefined;
      if (!Object.hasOwn(node, step)) return undefined;
      node = (node as Record<string, unknown>)[step];
    }
  }
  return node;
}
