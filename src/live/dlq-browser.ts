import { TOPIC_CATALOGUE } from "../kafka/catalogue.ts";
import type { KafkaConnection } from "../kafka/connection.ts";
import type { ConsumedRecord } from "../kafka/processor.ts";
import { readLast } from "../kafka/reader.ts";

export const DLQ_PREFIX = "dlq.";
export const DLQ_DEFAULT_COUNT = 50;
export const DLQ_MAX_COUNT = 500;

export interface DlqEntry {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  /** Kafka's record time, ISO. */
  timestamp: string | null;
  reason: string | null;
  message: string | null;
  /** The record value, parsed as JSON when it is JSON. */
  payload: unknown;
  /** raw_base64 decoded (the bytes that failed), pretty-printed when they are JSON. */
  raw: string | null;
  headers: Record<string, string>;
}

const text = (v: unknown) => (typeof v === "string" && v.length > 0 ? v : null);

function decodeRaw(base64: unknown): string | null {
  if (typeof base64 !== "string" || base64.length === 0) return null;
  const decoded = Buffer.from(base64, "base64").toString("utf8");
  try {
    return JSON.stringify(JSON.parse(decoded), null, 2);
  } catch {
    return decoded;
  }
}

/** Pure: what the DLQ browser shows of one record. */
export function describeDlqRecord(record: ConsumedRecord): DlqEntry {
  let payload: unknown = record.value ?? null;
  try {
    if (record.value) payload = JSON.parse(record.value);
  } catch {
    // not JSON: shown as text
  }
  const body = (typeof payload === "object" && payload !== null ? payload : {}) as Record<string, unknown>;
  const headers = Object.fromEntries(record.headers ?? new Map());
  const ms = Number(record.timestamp);
  return {
    topic: record.topic,
    partition: record.partition,
    offset: String(record.offset),
    key: record.key ?? null,
    timestamp: Number.isFinite(ms) && ms > 0 ? new Date(ms).toISOString() : null,
    reason: text(body.reason) ?? text(headers.reason) ?? null,
    message: text(body.validation_failure_reason) ?? text(body.message) ?? text(body.error) ?? text(headers.error) ?? null,
    payload,
    raw: decodeRaw(body.raw_base64),
    headers,
  };
}

/** Reads the tail of the dlq.* topics on demand; nothing is consumed or committed. */
export class DlqBrowser {
  constructor(
    private readonly connection: KafkaConnection,
    private readonly listTopics: () => Promise<string[]>,
    private readonly read: typeof readLast = readLast,
  ) {}

  /** The catalogue's DLQ topics plus any other dlq.* topic on the broker. */
  async topics(): Promise<string[]> {
    const known = TOPIC_CATALOGUE.map((t) => t.name).filter((n) => n.startsWith(DLQ_PREFIX));
    const present = (await this.listTopics()).filter((n) => n.startsWith(DLQ_PREFIX));
    return [...new Set([...known, ...present])].sort();
  }

  /** Newest first. */
  async latest(topic: string, count = DLQ_DEFAULT_COUNT): Promise<DlqEntry[]> {
    if (!topic.startsWith(DLQ_PREFIX)) throw new Error(`${topic} is not a DLQ topic (${DLQ_PREFIX}*)`);
    const n = Math.min(Math.max(1, Math.trunc(count)), DLQ_MAX_COUNT);
    const records = await this.read(this.connection, topic, n);
    return records
      .sort((a, b) => Number(b.timestamp - a.timestamp) || Number(b.offset - a.offset))
      .slice(0, n)
      .map(describeDlqRecord);
  }
}
