import type { ConsumedRecord } from "../kafka/processor.ts";

/** Enough for a large plant; past it the least recently updated tag is forgotten. */
export const TAG_CACHE_MAX_TAGS = 20_000;

export type TagStage = "raw" | "clean";

export interface TagValue {
  asset_id: string;
  parameter: string;
  value: unknown;
  unit?: string;
  quality: string;
  device_time: string | null;
  gateway_time: string | null;
  kafka_time: string | null;
  pipeline_id?: string;
  error?: string;
  /** When this process received it (ms), for "updated n s ago". */
  received_at: number;
}

export interface TagEntry {
  key: string;
  raw?: TagValue;
  clean?: TagValue;
}

/** What the tag explorer shows: the validated reading when there is one, else the raw one. */
export interface TagView extends TagValue {
  key: string;
  stage: TagStage;
}

const asString = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v : undefined);

/** Pure: a Kafka record of telemetry.raw/clean as a tag value, or undefined when it is not a reading. */
export function tagValueOf(record: Pick<ConsumedRecord, "value" | "timestamp">, receivedAt: number): TagValue | undefined {
  if (!record.value) return undefined;
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(record.value) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof body !== "object" || body === null) return undefined;
  const asset = asString(body.asset_id);
  const parameter = asString(body.parameter);
  if (!asset || !parameter) return undefined;
  const timestamps = (body.timestamps ?? {}) as Record<string, unknown>;
  const metadata = (body.metadata ?? {}) as Record<string, unknown>;
  const kafkaMs = Number(record.timestamp);
  const unit = asString(body.unit);
  const pipeline = asString(metadata.pipeline_id);
  const error = asString(metadata.error);
  return {
    asset_id: asset,
    parameter,
    value: body.value ?? null,
    ...(unit ? { unit } : {}),
    quality: asString(body.quality) ?? "UNCERTAIN",
    device_time: asString(timestamps.device_time) ?? null,
    gateway_time: asString(timestamps.gateway_time) ?? null,
    kafka_time: asString(timestamps.kafka_time) ?? (Number.isFinite(kafkaMs) && kafkaMs > 0 ? new Date(kafkaMs).toISOString() : null),
    ...(pipeline ? { pipeline_id: pipeline } : {}),
    ...(error ? { error } : {}),
    received_at: receivedAt,
  };
}

/** Latest reading per tag (asset_id/parameter), bounded, from the live tail of the telemetry topics. */
export class TagCache {
  readonly #entries = new Map<string, TagEntry>();
  #version = 0;
  #ignored = 0;

  constructor(
    readonly maxTags = TAG_CACHE_MAX_TAGS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Bumped on every change, so a live view can skip sending an unchanged table. */
  get version(): number {
    return this.#version;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Records that were not readings (malformed JSON, no asset_id/parameter). */
  get ignored(): number {
    return this.#ignored;
  }

  ingest(record: ConsumedRecord, stage: TagStage): boolean {
    const value = tagValueOf(record, this.now());
    if (!value) {
      this.#ignored++;
      return false;
    }
    const key = `${value.asset_id}/${value.parameter}`;
    const entry = this.#entries.get(key) ?? { key };
    // Re-inserting moves the tag to the end: the Map's order is least recently updated first.
    this.#entries.delete(key);
    entry[stage] = value;
    this.#entries.set(key, entry);
    if (this.#entries.size > this.maxTags) this.#entries.delete(this.#entries.keys().next().value!);
    this.#version++;
    return true;
  }

  /** Tags whose key, unit or pipeline contains every word of `filter`, sorted by key. */
  list(filter = "", limit = Infinity): { tags: TagView[]; matched: number } {
    const words = filter.toLowerCase().split(/\s+/).filter(Boolean);
    const tags: TagView[] = [];
    for (const entry of this.#entries.values()) {
      const stage: TagStage = entry.clean ? "clean" : "raw";
      const value = entry.clean ?? entry.raw;
      if (!value) continue;
      const haystack = `${entry.key} ${value.unit ?? ""} ${value.pipeline_id ?? ""} ${value.quality}`.toLowerCase();
      if (words.every((w) => haystack.includes(w))) tags.push({ ...value, key: entry.key, stage });
    }
    tags.sort((a, b) => a.key.localeCompare(b.key));
    return { tags: tags.slice(0, limit), matched: tags.length };
  }
}
