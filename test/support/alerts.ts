/** Shared by the alert-routing suites: prefixed topics, alarm events from the real lifecycle, waiting. */
import { topicSpec, TOPIC_CATALOGUE } from "../../src/kafka/catalogue.ts";
import type { KafkaAdmin } from "../../src/kafka/admin.ts";
import { ReliableProducer } from "../../src/kafka/producer.ts";
import { readTopic } from "../../src/kafka/reader.ts";
import { acknowledge, clearCondition, createAlarmStore, raiseAlarm, type AlarmEvent } from "../../src/streams/alarms/lifecycle.ts";
import type { Severity } from "../../src/streams/alarms/rules.ts";
import type { FakeSaas } from "../peers/saas/fake.ts";
import { kafkaConnection } from "./services.ts";

export const ALERT_TOPICS = ["alarms.clean", "alarms.raw", "_gateway.alerts.changelog", "_gateway.alerts.deliveries", "_gateway.alerts.outcomes", "_gateway.alerts.delivered", "dlq.alert_deliveries"];

/** Catalogue settings; data topics get 3 partitions (enough to interleave), single-partition ones stay single. */
export async function createPrefixedTopics(admin: KafkaAdmin, prefix: string, names: string[] = TOPIC_CATALOGUE.map((t) => t.name)): Promise<string[]> {
  for (const name of names) {
    const spec = topicSpec(name);
    await admin.createTopic(prefix + name, spec.partitions === 1 ? 1 : 3, spec.configs);
  }
  return names.map((n) => prefix + n);
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (got) return got;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(everyMs);
  }
}

export interface PdEvent {
  routing_key: string;
  event_action: "trigger" | "acknowledge" | "resolve";
  dedup_key: string;
  payload?: { summary: string; severity: string };
}
export const pdEvents = (pd: FakeSaas) => pd.accepted().map((r) => r.json as PdEvent);
export const pdBrief = (pd: FakeSaas) => pdEvents(pd).map((e) => `${e.routing_key}:${e.event_action}:${e.dedup_key.slice(0, 8)}`);

/** Alarm events as the engine makes them, for feeding alarms.clean directly. */
export class Plant {
  readonly store = createAlarmStore();
  raise(asset: string, type: string, severity: Severity, at: number, parameter = "pressure"): AlarmEvent {
    return raiseAlarm(this.store, { asset_id: asset, parameter, type, severity, message: `${asset} ${type}`, value: 210, threshold: 200, unit: "psi", condition: `${asset}/${parameter}|r|${type}`, rule_id: "r", limit: "high" }, at);
  }
  ack(e: AlarmEvent, at: number, by = "alice"): AlarmEvent {
    const r = acknowledge(this.store, e.alarm_id, by, at);
    if (!r.ok) throw r.error;
    return r.event;
  }
  clear(e: AlarmEvent, at: number): AlarmEvent {
    return clearCondition(this.store, e.condition, { at, value: 190 })!;
  }
}

export async function sendAlarms(prefix: string, events: AlarmEvent[]): Promise<void> {
  const producer = new ReliableProducer(kafkaConnection(), "test");
  try {
    await producer.send(events.map((e) => ({ topic: `${prefix}alarms.clean`, key: e.alarm_id, value: JSON.stringify(e) })));
  } finally {
    await producer.close();
  }
}

export async function readJson<T>(topic: string, idleMs = 300): Promise<T[]> {
  return (await readTopic(kafkaConnection(), topic, { idleMs })).map((r) => JSON.parse(r.value!) as T);
}
