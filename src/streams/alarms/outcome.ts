/**
 * Command outcomes: what the evaluator did with each operator command, as one record on
 * `alarms.command_outcomes` (keyed like the command, `asset_id/parameter`), written in the same
 * transaction as the transition it reports. The API waits on it to answer 200 / 409 / 202; the
 * topic keeps refusals for the audit trail. Pure: no Kafka, no clock.
 */
import type { AlarmCommand, AlarmEvent, AlarmState, CommandError, CommandResult, OperatorAction } from "./lifecycle.ts";

export const ALARM_COMMAND_OUTCOMES_TOPIC = "alarms.command_outcomes";

interface OutcomeBase {
  /** The API's id for the command; null for a command sent without one (then nobody waits for it). */
  command_id: string | null;
  alarm_id: string | null;
  action: OperatorAction | null;
  by: string | null;
  /** The command's own time (when the operator acted). */
  at: string | null;
}

export type CommandOutcome =
  | (OutcomeBase & { outcome: "applied"; state: AlarmState; event: AlarmEvent["event"]; sequence: number; alarm: AlarmEvent })
  | (OutcomeBase & { outcome: "refused"; state: AlarmState | null; error: Pick<CommandError, "code" | "message"> });

const str = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null);
const ACTIONS: readonly string[] = ["acknowledge", "suppress", "unsuppress"];

/**
 * The outcome of one command from `applyAlarmCommand`'s result. `command` is the record's body as
 * received (it may fail the schema: the outcome then says so, under whatever id it carried).
 */
export function commandOutcome(command: unknown, result: CommandResult): CommandOutcome {
  const c = (typeof command === "object" && command !== null ? command : {}) as Partial<Record<keyof AlarmCommand, unknown>>;
  const base: OutcomeBase = {
    command_id: str(c.command_id),
    alarm_id: str(c.alarm_id),
    action: ACTIONS.includes(c.action as string) ? (c.action as OperatorAction) : null,
    by: str(c.by),
    at: str(c.at),
  };
  if (result.error) return { ...base, outcome: "refused", state: result.error.state, error: { code: result.error.code, message: result.error.message } };
  const event = result.events[result.events.length - 1]!;
  return { ...base, outcome: "applied", state: event.state, event: event.event, sequence: event.sequence, alarm: event };
}

/** A record off the outcomes topic, or null when it is not one (then it is ignored). */
export function decodeCommandOutcome(value: string | null | undefined): CommandOutcome | null {
  if (!value) return null;
  let body: unknown;
  try {
    body = JSON.parse(value);
  } catch {
    return null;
  }
  const o = body as Partial<CommandOutcome> | null;
  if (typeof o !== "object" || o === null) return null;
  if (o.outcome === "applied") return typeof o.sequence === "number" && typeof o.state === "string" && typeof o.alarm === "object" && o.alarm !== null ? (o as CommandOutcome) : null;
  if (o.outcome === "refused") {
    const error = (o as { error?: { message?: unknown } }).error;
    return typeof error?.message === "string" ? (o as CommandOutcome) : null;
  }
  return null;
}
