/**
 * Topic patterns: MQTT filters whose wildcards may carry a name (`site/+asset/+parameter`,
 * `plant/#rest`). The name is for templates; the broker gets the plain filter (`site/+/+`).
 */
type Segment = { kind: "literal"; text: string } | { kind: "single"; name?: string } | { kind: "multi"; name?: string };

export interface TopicPattern {
  /** As configured. */
  source: string;
  /** The real MQTT filter, names stripped. */
  filter: string;
  segments: Segment[];
  names: string[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function parseTopicPattern(source: string): { pattern: TopicPattern } | { error: string } {
  if (source.length === 0) return { error: "empty topic pattern" };
  if (source.includes("\u0000")) return { error: "topic pattern contains NUL" };
  const parts = source.split("/");
  const segments: Segment[] = [];
  const names: string[] = [];
  for (const [i, part] of parts.entries()) {
    const wildcard = part[0];
    if (wildcard === "+" || wildcard === "#") {
      const name = part.slice(1);
      if (name && !NAME.test(name)) return { error: `segment ${i + 1} "${part}": a wildcard's name must match ${NAME.source}` };
      if (name && names.includes(name)) return { error: `wildcard name "${name}" used twice` };
      if (wildcard === "#" && i !== parts.length - 1) return { error: `"#" must be the last segment` };
      if (name) names.push(name);
      segments.push(wildcard === "+" ? { kind: "single", ...(name ? { name } : {}) } : { kind: "multi", ...(name ? { name } : {}) });
    } else {
      if (part.includes("+") || part.includes("#")) return { error: `segment ${i + 1} "${part}": "+" and "#" must be a whole segment` };
      segments.push({ kind: "literal", text: part });
    }
  }
  const filter = segments.map((s) => (s.kind === "literal" ? s.text : s.kind === "single" ? "+" : "#")).join("/");
  return { pattern: { source, filter, segments, names } };
}

/** The captured named segments when `topic` matches, else undefined. MQTT rules: `$`-topics never match a leading wildcard. */
export function matchTopic(pattern: TopicPattern, topic: string): Record<string, string> | undefined {
  const levels = topic.split("/");
  if (topic.startsWith("$") && pattern.segments[0]?.kind !== "literal") return undefined;
  const captured: Record<string, string> = {};
  for (let i = 0; i < pattern.segments.length; i++) {
    const segment = pattern.segments[i]!;
    if (segment.kind === "multi") {
      // "a/#" matches "a" as well as "a/b/c".
      if (segment.name) captured[segment.name] = levels.slice(i).join("/");
      return captured;
    }
    const level = levels[i];
    if (level === undefined) return undefined;
    if (segment.kind === "literal") {
      if (segment.text !== level) return undefined;
    } else if (segment.name) {
      captured[segment.name] = level;
    }
  }
  return levels.length === pattern.segments.length ? captured : undefined;
}

/** Does subscription filter `filter` deliver every topic `pattern` can match? (For "rule not covered" warnings.) */
export function filterCovers(filter: string, pattern: TopicPattern): boolean {
  const f = filter.split("/");
  for (let i = 0; i < pattern.segments.length; i++) {
    const fl = f[i];
    if (fl === "#") return true;
    if (fl === undefined) return false;
    const s = pattern.segments[i]!;
    if (s.kind === "multi") return false;
    if (fl === "+") continue;
    if (s.kind !== "literal" || s.text !== fl) return false;
  }
  return f.length === pattern.segments.length;
}

/** `{name}` placeholders, compiled once. */
export interface Template {
  render(values: Record<string, string>): string;
  names: string[];
}

export function compileTemplate(text: string, known: readonly string[]): { template: Template } | { error: string } {
  const parts: Array<string | { name: string }> = [];
  const names: string[] = [];
  const re = /\{([^{}]*)\}/g;
  let last = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const name = m[1]!;
    if (!known.includes(name)) return { error: `unknown placeholder {${name}}; available: ${known.map((k) => `{${k}}`).join(", ") || "none"}` };
    parts.push(text.slice(last, m.index), { name });
    names.push(name);
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  const literal = parts.every((p) => typeof p === "string");
  const constant = literal ? text : "";
  return {
    template: {
      names,
      render: literal ? () => constant : (values) => parts.map((p) => (typeof p === "string" ? p : (values[p.name] ?? ""))).join(""),
    },
  };
}

export function literalTemplate(text: string): Template {
  return { names: [], render: () => text };
}
