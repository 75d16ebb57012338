/**
 * The topic catalogue: every topic the appliance uses, with its retention. `gateway topics apply`
 * makes the broker match this file and nothing else decides topic settings.
 */
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const YEAR_MS = 365 * DAY_MS;

export interface TopicSpec {
  name: string;
  partitions: number;
  /** Only the keys listed here are managed; broker defaults apply to the rest. */
  configs: Record<string, string>;
  description: string;
}

const retention = (ms: number, extra: Record<string, string> = {}) => ({
  "cleanup.policy": "delete",
  "retention.ms": String(ms),
  ...extra,
});

const compacted = () => ({ "cleanup.policy": "compact", "min.compaction.lag.ms": String(HOUR_MS) });
/** State changelogs: compacted promptly (only the latest state per key matters) and never aged out. */
const CHANGELOG_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;
const changelog = () => ({
  "cleanup.policy": "compact",
  "min.compaction.lag.ms": "0",
  "segment.ms": String(HOUR_MS),
  "max.message.bytes": String(CHANGELOG_MAX_MESSAGE_BYTES),
});

/** Readings are keyed by asset_id+parameter; partitions bound the parallelism of workers and sinks. */
const DATA_PARTITIONS = 6;
const SMALL_PARTITIONS = 1;

export const TOPIC_CATALOGUE: readonly TopicSpec[] = [
  { name: "telemetry.raw", partitions: DATA_PARTITIONS, configs: retention(DAY_MS), description: "Raw telemetry from adapters (debugging, replay)" },
  { name: "telemetry.clean", partitions: DATA_PARTITIONS, configs: retention(7 * DAY_MS), description: "Validated, normalized telemetry" },
  { name: "telemetry.1s", partitions: DATA_PARTITIONS, configs: retention(7 * DAY_MS), description: "1-second aggregates (real-time dashboards)" },
  { name: "telemetry.10s", partitions: DATA_PARTITIONS, configs: retention(30 * DAY_MS), description: "10-second aggregates" },
  { name: "telemetry.1min", partitions: DATA_PARTITIONS, configs: retention(90 * DAY_MS), description: "1-minute aggregates (operational analytics)" },
  { name: "telemetry.1hour", partitions: DATA_PARTITIONS, configs: retention(2 * YEAR_MS), description: "1-hour aggregates (compliance, reporting)" },
  { name: "events.raw", partitions: DATA_PARTITIONS, configs: retention(7 * DAY_MS), description: "Raw discrete events" },
  { name: "events.clean", partitions: DATA_PARTITIONS, configs: retention(90 * DAY_MS), description: "Validated events, gap and clock events" },
  { name: "alarms.raw", partitions: DATA_PARTITIONS, configs: retention(7 * YEAR_MS), description: "Alarm transitions as evaluated" },
  { name: "alarms.clean", partitions: DATA_PARTITIONS, configs: retention(7 * YEAR_MS), description: "Validated alarms with lifecycle" },
  { name: "logs.adapters", partitions: SMALL_PARTITIONS, configs: retention(7 * DAY_MS), description: "Adapter logs" },
  { name: "logs.gateway", partitions: SMALL_PARTITIONS, configs: retention(7 * DAY_MS), description: "Gateway runtime logs" },
  { name: "logs.sinks", partitions: SMALL_PARTITIONS, configs: retention(7 * DAY_MS), description: "Sink service logs" },
  { name: "dlq.invalid_telemetry", partitions: SMALL_PARTITIONS, configs: retention(30 * DAY_MS), description: "Telemetry that failed validation" },
  { name: "dlq.invalid_events", partitions: SMALL_PARTITIONS, configs: retention(30 * DAY_MS), description: "Events that failed validation" },
  { name: "dlq.sinks", partitions: SMALL_PARTITIONS, configs: retention(30 * DAY_MS), description: "Records a sink could not write (rejected by the target, or retry budget spent)" },
  { name: "dlq.buffer_overflow", partitions: SMALL_PARTITIONS, configs: retention(90 * DAY_MS), description: "Records of data dropped for disk limits" },
  { name: "audit_trail", partitions: SMALL_PARTITIONS, configs: retention(7 * YEAR_MS), description: "Immutable configuration change history" },
  { name: "telemetry.completeness", partitions: DATA_PARTITIONS, configs: compacted(), description: "Per-tag completeness ledger, latest per window" },
  // Worker state: co-partitioned with the input the state follows, written in the workers' transactions.
  { name: "_gateway.quality.changelog", partitions: DATA_PARTITIONS, configs: changelog(), description: "Quality validator and ledger state per tag" },
  { name: "_gateway.aggregate.changelog", partitions: DATA_PARTITIONS, configs: changelog(), description: "Open aggregation windows per tag" },
  // Alarms. Commands are keyed asset_id/parameter and partitioned like telemetry.clean, so each reaches the evaluator partition that owns the alarm.
  { name: "alarms.commands", partitions: DATA_PARTITIONS, configs: retention(7 * DAY_MS), description: "Operator alarm commands (ack, suppress, unsuppress) from the API" },
  // Kept like alarms.raw: a refused command is part of the audit trail.
  { name: "alarms.command_outcomes", partitions: DATA_PARTITIONS, configs: retention(7 * YEAR_MS), description: "Outcome of every operator alarm command (applied with the new state, or refused with the reason), from the evaluator" },
  { name: "_gateway.alarms.changelog", partitions: DATA_PARTITIONS, configs: changelog(), description: "Alarm evaluator state per tag (conditions, open alarms)" },
  // Every evaluator reads all of it: one partition, latest rule per key (a tombstone deletes).
  { name: "_gateway.alarm_rules", partitions: SMALL_PARTITIONS, configs: compacted(), description: "Alarm rules from the control DB, key rule id, for the evaluators" },
  // Alert routing runs as one active instance (dedup and digests need every alarm in one state): one partition each.
  { name: "_gateway.alerts.changelog", partitions: SMALL_PARTITIONS, configs: changelog(), description: "Alert router state (tracked alarms, dedup, pending deliveries, digests)" },
  { name: "_gateway.alerts.deliveries", partitions: SMALL_PARTITIONS, configs: retention(7 * DAY_MS), description: "Delivery jobs from the router to the sender (action refs, no secrets)" },
  { name: "_gateway.alerts.outcomes", partitions: SMALL_PARTITIONS, configs: retention(7 * DAY_MS), description: "Delivery outcomes from the sender back to the router" },
  { name: "_gateway.alerts.delivered", partitions: SMALL_PARTITIONS, configs: { ...compacted(), "cleanup.policy": "compact,delete", "retention.ms": String(7 * DAY_MS) }, description: "Delivery ids already delivered: a restarted sender never sends one twice" },
  { name: "dlq.alert_deliveries", partitions: SMALL_PARTITIONS, configs: retention(90 * DAY_MS), description: "Alert deliveries given up on (permanent error, or retry budget spent)" },
];

export function topicSpec(name: string): TopicSpec {
  const spec = TOPIC_CATALOGUE.find((t) => t.name === name);
  if (!spec) throw new Error(`topic "${name}" is not in the catalogue (src/kafka/catalogue.ts)`);
  return spec;
}

export interface TopicDrift {
  key: string;
  actual: string | null;
  expected: string;
}

/** Pure: which managed settings differ from the catalogue. */
export function configDrift(spec: TopicSpec, actual: Record<string, string | null | undefined>): TopicDrift[] {
  return Object.entries(spec.configs)
    .filter(([key, expected]) => actual[key] !== expected)
    .map(([key, expected]) => ({ key, actual: actual[key] ?? null, expected }));
}
