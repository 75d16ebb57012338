/**
 * Workers speak in logical topic names (telemetry.raw, ...). A namespace maps them to physical
 * names, so tests and side-by-side deployments run the same code on prefixed topics.
 */
export interface TopicNamespace {
  physical(logical: string): string;
  logical(physical: string): string;
}

export function topicNamespace(prefix = ""): TopicNamespace {
  return {
    physical: (logical) => `${prefix}${logical}`,
    logical: (physical) => (physical.startsWith(prefix) ? physical.slice(prefix.length) : physical),
  };
}
