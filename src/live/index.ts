import type { KafkaConnection } from "../kafka/connection.ts";
import type { ConsumedRecord } from "../kafka/processor.ts";
import { tailTopics, type Tail } from "../kafka/tail.ts";
import type { Logger } from "../log/logger.ts";
import { ALARM_TOPICS, InMemoryAlarmSource, type AlarmSource } from "./alarms.ts";
import { DlqBrowser } from "./dlq-browser.ts";
import { RateCounter } from "./rate.ts";
import { TagCache } from "./tag-cache.ts";

export { formatSse, sseResponse, type SseEvent } from "./sse.ts";
export type { Alarm, AlarmFilter, AlarmSource } from "./alarms.ts";
export type { DlqEntry } from "./dlq-browser.ts";
export type { RateSeries } from "./rate.ts";
export type { TagView } from "./tag-cache.ts";

export const RAW_TOPIC = "telemetry.raw";
export const CLEAN_TOPIC = "telemetry.clean";
/** Topics the live views follow, when they exist on the broker. */
export const LIVE_TOPICS = [RAW_TOPIC, CLEAN_TOPIC, ...ALARM_TOPICS];
/** How often the topic list is re-read, to pick up a topic created after start. */
const TOPIC_RECHECK_MS = 30_000;
const TOPIC_RETRY_MS = 5000;

export interface LiveStatus {
  /** Topics being followed now. */
  following: string[];
  /** Why nothing is followed (Kafka unreachable, topics missing), if so. */
  problem: string | null;
}

export interface LiveServices {
  tags: TagCache;
  /** Readings/s on telemetry.raw. */
  rates: RateCounter;
  dlq: DlqBrowser;
  alarms: AlarmSource;
  status(): LiveStatus;
  /** Aborted by stop(): open event streams end, so the HTTP server can stop without waiting for them. */
  closing: AbortSignal;
  stop(): Promise<void>;
}

export interface LiveOptions {
  connection: KafkaConnection;
  listTopics: () => Promise<string[]>;
  log: Logger;
  tail?: typeof tailTopics;
}

/** Routes one tailed record to the view it feeds. Exported for tests. */
export function routeRecord(record: ConsumedRecord, tags: TagCache, rates: RateCounter, alarms: InMemoryAlarmSource): void {
  if (record.topic === RAW_TOPIC) {
    rates.add();
    tags.ingest(record, "raw");
  } else if (record.topic === CLEAN_TOPIC) tags.ingest(record, "clean");
  else if ((ALARM_TOPICS as readonly string[]).includes(record.topic)) alarms.ingest(record);
}

/**
 * The web UI's live data: one tail over the telemetry and alarm topics feeding the tag cache,
 * the rate counter and the alarm list. Kafka being down only leaves the views empty, with the
 * reason in status().
 */
export function startLive(options: LiveOptions): LiveServices {
  const tags = new TagCache();
  const rates = new RateCounter();
  const alarms = new InMemoryAlarmSource();
  const dlq = new DlqBrowser(options.connection, options.listTopics);
  const tail = options.tail ?? tailTopics;
  let current: { topics: string[]; tail: Tail } | undefined;
  let problem: string | null = "starting";
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const closing = new AbortController();

  const check = async () => {
    let next = TOPIC_RECHECK_MS;
    try {
      const present = new Set(await options.listTopics());
      const wanted = LIVE_TOPICS.filter((t) => present.has(t));
      problem = wanted.includes(RAW_TOPIC) ? null : `topic ${RAW_TOPIC} does not exist yet (gateway topics apply)`;
      if (wanted.join() !== current?.topics.join()) {
        await current?.tail.stop();
        current = undefined;
        if (wanted.length > 0 && !stopped) {
          current = { topics: wanted, tail: tail(options.connection, wanted, (r) => routeRecord(r, tags, rates, alarms), options.log) };
          options.log.info({ topics: wanted }, "web UI following live topics");
        }
      }
      if (wanted.length === 0) next = TOPIC_RETRY_MS;
    } catch (error) {
      problem = `Kafka unreachable: ${(error as Error).message}`;
      next = TOPIC_RETRY_MS;
    }
    if (!stopped) timer = setTimeout(check, next);
  };
  void check();

  return {
    tags,
    rates,
    dlq,
    alarms,
    status: () => ({ following: current?.topics ?? [], problem }),
    closing: closing.signal,
    async stop() {
      stopped = true;
      closing.abort();
      clearTimeout(timer);
      await current?.tail.stop();
      current = undefined;
    },
  };
}
