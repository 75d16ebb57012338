import { Counter, type Registry } from "prom-client";
import type { KafkaConnection } from "../../kafka/connection.ts";
import { singleActiveAssigner, TransactionalProcessor } from "../../kafka/processor.ts";
import type { OutgoingRecord } from "../../kafka/producer.ts";
import type { Logger } from "../../log/logger.ts";
import { ALARM_EVENTS, type AlarmEvent } from "../alarms/lifecycle.ts";
import { topicNamespace, type TopicNamespace } from "../namespace.ts";
import type { RoutingConfig } from "./config.ts";
import { recordOutcome, restoreRouterFromChanges, routeAlarm, takeRouterChanges, tickRouter, type Delivery, type DeliveryOutcome, type RouterOutput, type RouterState } from "./routing.ts";

export const ROUTER_GROUP = "gateway-alert-router";
export const ROUTER_CHANGELOG = "_gateway.alerts.changelog";
export const DELIVERIES_TOPIC = "_gateway.alerts.deliveries";
export const OUTCOMES_TOPIC = "_gateway.alerts.outcomes";
export const DELIVERED_TOPIC = "_gateway.alerts.delivered";
export const ALERT_DLQ_TOPIC = "dlq.alert_deliveries";
const ALARMS_IN = "alarms.clean";
const ESCALATIONS_OUT = "alarms.raw";
const DEFAULT_TICK_MS = 1000;

type WithoutAction<T> = T extends unknown ? Omit<T, "action"> : never;
/** A delivery as written to the jobs topic: the action by reference only, so no secret ever lands in Kafka. */
export type DeliveryJob = WithoutAction<Delivery>;

/** What the sender reports for one attempt of a job. */
export interface OutcomeMessage {
  delivery_id: string;
  attempt: number;
  outcome: DeliveryOutcome;
  at: string;
}

/** What the router can act on: engine events carry `event` and `sequence`; other alarm records (a device's own) do not. */
const isAlarmEvent = (b: unknown): b is AlarmEvent => {
  const e = b as Partial<AlarmEvent> | null;
  return typeof e?.alarm_id === "string" && typeof e.sequence === "number" && (ALARM_EVENTS as readonly unknown[]).includes(e.event);
};
const isOutcome = (b: unknown): b is OutcomeMessage => {
  const m = b as Partial<OutcomeMessage> | null;
  return typeof m?.delivery_id === "string" && typeof m.attempt === "number" && typeof m.outcome?.status === "string";
};

export function toJob(d: Delivery): DeliveryJob {
  const { action: _secretive, ...job } = d;
  return job;
}

export interface AlertRouterOptions {
  connection: KafkaConnection;
  config: RoutingConfig;
  log: Logger;
  instanceId: string;
  namespace?: TopicNamespace;
  /** The router's clock (dedup windows, escalation, digests, retry times); injectable for tests. */
  now?: () => number;
  tickMs?: number;
  metrics?: Registry;
}

/**
 * The alert router, exactly once: alarms.clean and the sender's outcomes in; delivery jobs,
 * `escalated` alarm events (alarms.raw) and dead letters out, with the router state in a compacted
 * changelog written in the same transaction. Dedup and digests need every alarm in one state, so one
 * member is active (the state follows the single outcomes partition) and any other stands by.
 */
export function createAlertRouterWorker(options: AlertRouterOptions): TransactionalProcessor {
  const ns = options.namespace ?? topicNamespace();
  const now = options.now ?? Date.now;
  const { config, log } = options;
  const changelog = ns.physical(ROUTER_CHANGELOG);
  const dlq = ns.physical(ALERT_DLQ_TOPIC);
  let state: RouterState | undefined;
  const deadLetters = options.metrics && counterOn(options.metrics, "gateway_alert_dead_letters_total", "Alert deliveries given up on and written to dlq.alert_deliveries", ["action_type"]);

  return new TransactionalProcessor({
    connection: options.connection,
    groupId: ns.physical(ROUTER_GROUP),
    transactionalId: ns.physical(`${ROUTER_GROUP}-${options.instanceId}`),
    inputTopics: [ns.physical(ALARMS_IN), ns.physical(OUTCOMES_TOPIC)],
    partitionAssigner: singleActiveAssigner,
    log,
    tickMs: options.tickMs ?? DEFAULT_TICK_MS,
    state: {
      changelogTopic: changelog,
      followsTopic: ns.physical(OUTCOMES_TOPIC),
      restore(_partition, records) {
        state = restoreRouterFromChanges(records.map((r) => ({ key: r.key ?? "", value: r.value ?? null })));
      },
      drop: () => (state = undefined),
    },
    onCommit(outputs) {
      for (const o of outputs) if (o.topic === dlq) deadLetters?.inc({ action_type: (JSON.parse(o.value) as { action_type: string | null }).action_type ?? "unknown" });
    },
    process(batch) {
      if (!state) {
        if (batch.length === 0) return [];
        // Only with a foreign assignor in the group: refuse rather than route without the state.
        throw new Error(`alert router: this member holds no router state (${ns.physical(OUTCOMES_TOPIC)}[0] is not assigned to it)`);
      }
      const s = state;
      const outputs: OutgoingRecord[] = [];
      const emit = (out: RouterOutput) => {
        for (const d of out.deliveries) outputs.push({ topic: ns.physical(DELIVERIES_TOPIC), key: d.delivery_id, value: JSON.stringify(toJob(d)) });
        for (const e of out.events) outputs.push({ topic: ns.physical(ESCALATIONS_OUT), key: e.alarm_id, value: JSON.stringify(e) });
        for (const d of out.dead) outputs.push({ topic: dlq, key: d.delivery_id, value: JSON.stringify(d) });
      };
      for (const record of batch) {
        let body: unknown;
        try {
          body = JSON.parse(record.value ?? "");
        } catch {
          log.error({ topic: record.topic, partition: record.partition, offset: String(record.offset) }, "unparsable record; skipped");
          continue;
        }
        const isAlarm = ns.logical(record.topic) === ALARMS_IN;
        if (isAlarm ? !isAlarmEvent(body) : !isOutcome(body)) {
          // Skipped, not thrown: a record the router cannot use must not stop every alert behind it.
          log.warn({ topic: record.topic, partition: record.partition, offset: String(record.offset) }, isAlarm ? "alarm record without event/sequence (not from the alarm engine); not routed" : "malformed outcome; skipped");
          continue;
        }
        if (isAlarm) {
          emit(routeAlarm(s, config, body as AlarmEvent, now()));
          continue;
        }
        const m = body as OutcomeMessage;
        const pending = s.pending[m.delivery_id];
        // An outcome of an older attempt (a sender replaying after a crash) says nothing about the current one; a delivery is a delivery.
        if (!pending || (m.outcome.status !== "delivered" && pending.attempt !== m.attempt)) continue;
        emit(recordOutcome(s, config, m.delivery_id, m.outcome, now()));
      }
      emit(tickRouter(s, config, now()));
      for (const c of takeRouterChanges(s)) outputs.push({ topic: changelog, partition: 0, key: c.key, value: c.value as string }); // null = tombstone
      return outputs;
    },
  });
}

/** One counter per registry, also when a worker is created again in the same process. */
export function counterOn(registry: Registry, name: string, help: string, labelNames: string[]): Counter {
  return (registry.getSingleMetric(name) as Counter | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
}
