import { and, asc, count, desc, eq, ilike, inArray, ne, sql, type SQL } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { appendAudit } from "../../db/repo.ts";
import { alarms, type AlarmRow, type NewAlarmRow } from "../../db/schema.ts";
import { UnknownAlarmError, type Alarm as UiAlarm, type AlarmFilter, type AlarmSource } from "../../live/alarms.ts";
import type { Logger } from "../../log/logger.ts";
import { ALARM_STATES, transition, type Alarm, type AlarmCommand, type AlarmEvent, type AlarmState, type OperatorAction } from "../../streams/alarms/lifecycle.ts";
import { SEVERITIES, type Severity } from "../../streams/alarms/rules.ts";
import type { CommandOutcome } from "../../streams/alarms/outcome.ts";
import { ApiError, invalid, notFound } from "../errors.ts";
import type { OutcomeSource } from "./outcomes.ts";

/** The API's view of an alarm: the read model row, snake_case like the Kafka record. */
export interface AlarmView {
  alarm_id: string;
  asset_id: string;
  parameter: string;
  type: string;
  severity: string;
  state: string;
  raised_at: string;
  acked_at: string | null;
  acked_by: string | null;
  cleared_at: string | null;
  suppressed_until: string | null;
  suppressed_by: string | null;
  message: string;
  value: unknown;
  threshold: number | null;
  unit: string | null;
  sequence: number;
  updated_at: string;
}

const isoOrNull = (d: Date | null) => (d ? d.toISOString() : null);

export function toAlarmView(r: AlarmRow): AlarmView {
  return {
    alarm_id: r.alarmId,
    asset_id: r.assetId,
    parameter: r.parameter,
    type: r.type,
    severity: r.severity,
    state: r.state,
    raised_at: r.raisedAt.toISOString(),
    acked_at: isoOrNull(r.ackedAt),
    acked_by: r.ackedBy,
    cleared_at: isoOrNull(r.clearedAt),
    suppressed_until: isoOrNull(r.suppressedUntil),
    suppressed_by: r.suppressedBy,
    message: r.message,
    value: r.value,
    threshold: r.threshold,
    unit: r.unit,
    sequence: r.sequence,
    updated_at: r.updatedAt.toISOString(),
  };
}

// ---------------------------------------------------------------------------------------------
// Read model writes (the projector)

const dateOrNull = (v: unknown) => {
  const ms = typeof v === "string" ? Date.parse(v) : NaN;
  return Number.isFinite(ms) ? new Date(ms) : null;
};

/** An alarms.clean record as a row; null for records that do not change an alarm (`escalated`). */
export function rowOf(e: Partial<AlarmEvent> & Pick<AlarmEvent, "alarm_id" | "asset_id" | "type" | "severity" | "state">): NewAlarmRow | null {
  if (e.event === "escalated") return null; // the router's note that it paged further: the alarm itself is unchanged
  return {
    alarmId: e.alarm_id,
    assetId: e.asset_id,
    parameter: e.parameter ?? "",
    type: e.type,
    severity: e.severity,
    state: e.state,
    raisedAt: dateOrNull(e.raised_at) ?? dateOrNull(e.event_at) ?? new Date(),
    ackedAt: dateOrNull(e.acked_at),
    ackedBy: e.acked_by ?? null,
    clearedAt: dateOrNull(e.cleared_at),
    suppressedUntil: dateOrNull(e.suppressed_until),
    suppressedBy: e.suppressed_by ?? null,
    message: e.message ?? "",
    value: (e.value ?? null) as AlarmRow["value"],
    threshold: typeof e.threshold === "number" ? e.threshold : null,
    unit: e.unit ?? null,
    // Records without one (not from our engine) count as the raise.
    sequence: typeof e.sequence === "number" ? e.sequence : 1,
    lastEvent: e as Record<string, unknown>,
    updatedAt: new Date(),
  };
}

/**
 * Idempotent upsert: a row only moves forward (`sequence` strictly greater), so replays and
 * out-of-order copies change nothing. One statement per call; repeats of an alarm are collapsed first.
 */
export async function upsertAlarmRows(db: Db, rows: NewAlarmRow[]): Promise<void> {
  const latest = new Map<string, NewAlarmRow>();
  for (const r of rows) if ((latest.get(r.alarmId)?.sequence ?? -1) < r.sequence) latest.set(r.alarmId, r);
  if (latest.size === 0) return;
  const excluded = (column: string) => sql.raw(`excluded.${column}`);
  await db
    .insert(alarms)
    .values([...latest.values()])
    .onConflictDoUpdate({
      target: alarms.alarmId,
      set: Object.fromEntries(
        (
          [
            ["assetId", "asset_id"], ["parameter", "parameter"], ["type", "type"], ["severity", "severity"], ["state", "state"], ["raisedAt", "raised_at"],
            ["ackedAt", "acked_at"], ["ackedBy", "acked_by"], ["clearedAt", "cleared_at"], ["suppressedUntil", "suppressed_until"], ["suppressedBy", "suppressed_by"],
            ["message", "message"], ["value", "value"], ["threshold", "threshold"], ["unit", "unit"], ["sequence", "sequence"], ["lastEvent", "last_event"], ["updatedAt", "updated_at"],
          ] as const
        ).map(([field, column]) => [field, excluded(column)]),
      ),
      setWhere: sql`${alarms.sequence} < excluded.sequence`,
    });
}

export async function getAlarmRow(db: Db, id: string): Promise<AlarmRow | undefined> {
  const [row] = await db.select().from(alarms).where(eq(alarms.alarmId, id));
  return row;
}

// ---------------------------------------------------------------------------------------------
// Queries and commands

export interface AlarmQuery {
  /** States, or "open" (anything but CLEARED). */
  state?: (AlarmState | "open")[];
  severity?: Severity[];
  asset_id?: string;
  /** Words that must all appear in id, asset, parameter, message or severity (the UI's search). */
  q?: string;
  limit?: number;
  offset?: number;
}

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

/** Comma-separated, case-insensitive; unknown values are a 422 naming the field. */
export function parseList<T extends string>(field: string, raw: string | undefined, allowed: readonly T[]): T[] | undefined {
  if (raw === undefined || raw.trim() === "") return undefined;
  const values = raw.split(",").map((v) => v.trim()).filter(Boolean);
  const bad = values.filter((v) => !allowed.some((a) => a.toLowerCase() === v.toLowerCase()));
  if (bad.length > 0) throw invalid([{ path: field, message: `expected one or more of ${allowed.join(", ")}, got ${bad.join(", ")}` }]);
  return values.map((v) => allowed.find((a) => a.toLowerCase() === v.toLowerCase())!);
}
export const STATE_FILTERS = [...ALARM_STATES, "open"] as const;
export { SEVERITIES };

/** Publishes an operator command; the alarm evaluator applies it (src/streams/alarms/worker.ts). */
export interface CommandPublisher {
  publish(key: string, command: AlarmCommand): Promise<void>;
}

export interface AlarmServiceOptions {
  db: () => Db;
  log: Logger;
  /** Absent where no Kafka producer is wired: commands answer 503 after their checks. */
  publisher?: CommandPublisher | undefined;
  /**
   * Outcomes reported by the evaluator (alarms.command_outcomes), one shared tail per process.
   * Absent: a command waits for the read model to move instead, and cannot learn of a refusal.
   */
  outcomes?: OutcomeSource | undefined;
  /** How long a command waits for its outcome (and the read model) before answering 202. */
  waitMs?: number;
  pollMs?: number;
  now?: () => number;
}

export type CommandReply = { status: 200; alarm: AlarmView } | { status: 202; alarm: AlarmView; command: AlarmCommand; message: string };

const DEFAULT_WAIT_MS = 5000;
const ACTION_VERB: Record<OperatorAction, string> = { acknowledge: "acknowledge", suppress: "suppress", unsuppress: "unsuppress" };

export class AlarmService {
  readonly #o: AlarmServiceOptions;

  constructor(options: AlarmServiceOptions) {
    this.#o = options;
  }

  #where(q: AlarmQuery): SQL | undefined {
    const conditions: SQL[] = [];
    const states = q.state?.filter((s): s is AlarmState => s !== "open");
    if (q.state?.includes("open")) conditions.push(states && states.length > 0 ? sql`(${ne(alarms.state, "CLEARED")} or ${inArray(alarms.state, states)})` : ne(alarms.state, "CLEARED"));
    else if (states && states.length > 0) conditions.push(inArray(alarms.state, states));
    if (q.severity && q.severity.length > 0) conditions.push(inArray(alarms.severity, q.severity));
    if (q.asset_id) conditions.push(eq(alarms.assetId, q.asset_id));
    const haystack = sql`(${alarms.alarmId} || ' ' || ${alarms.assetId} || ' ' || ${alarms.parameter} || ' ' || ${alarms.message} || ' ' || ${alarms.severity})`;
    for (const word of (q.q ?? "").split(/\s+/).filter(Boolean)) conditions.push(ilike(haystack, `%${word.replace(/[\\%_]/g, (c) => `\\${c}`)}%`));
    return conditions.length > 0 ? and(...conditions) : undefined;
  }

  /** Newest raise first. */
  async list(q: AlarmQuery = {}): Promise<Page<AlarmView>> {
    const limit = Math.min(Math.max(q.limit ?? 50, 1), 500);
    const offset = Math.max(q.offset ?? 0, 0);
    const db = this.#o.db();
    const where = this.#where(q);
    const [rows, [total]] = await Promise.all([
      db.select().from(alarms).where(where).orderBy(desc(alarms.raisedAt), asc(alarms.alarmId)).limit(limit).offset(offset),
      db.select({ n: count() }).from(alarms).where(where),
    ]);
    return { items: rows.map(toAlarmView), total: total?.n ?? 0, limit, offset };
  }

  async get(id: string): Promise<AlarmView> {
    const row = await getAlarmRow(this.#o.db(), id);
    if (!row) throw notFound(`alarm ${id}`);
    return toAlarmView(row);
  }

  /**
   * An operator action: checked against the read model with the lifecycle's own transition table
   * (refused → 409 with its reason), published to alarms.commands keyed by the alarm's tag with a
   * fresh `command_id`, audited, then its outcome awaited from the evaluator for up to `waitMs`:
   * applied → 200 with the alarm (from the read model once it shows the transition, else from the
   * outcome itself); refused (the alarm changed meanwhile) → 409 with the evaluator's reason, audited
   * as `alarm.<action>.refused`; nothing in time → 202, the command stays queued in Kafka.
   * Without an outcome source (tests, tools) the read model alone is watched, as before.
   */
  async command(
    id: string,
    action: OperatorAction,
    actor: string,
    ip: string | null,
    body: { until?: string | undefined; note?: string | undefined } = {},
    opts: { audit?: boolean } = {},
  ): Promise<CommandReply> {
    const db = this.#o.db();
    const row = await getAlarmRow(db, id);
    if (!row) throw notFound(`alarm ${id}`);
    const alarm = row.lastEvent as unknown as Alarm;
    const at = new Date((this.#o.now ?? Date.now)()).toISOString();
    const checked = transition(alarm, action, { by: actor, at, ...(action === "suppress" ? { until: body.until ?? null } : {}), ...(body.note !== undefined ? { note: body.note } : {}) });
    if (!checked.ok) {
      const e = checked.error;
      if (e.code === "invalid_argument") throw invalid([{ path: action === "suppress" && /until/.test(e.message) ? "until" : "", message: e.message }]);
      throw new ApiError(409, e.code, e.message);
    }
    if (!this.#o.publisher) throw new ApiError(503, "alarm_commands_unavailable", `cannot ${ACTION_VERB[action]} alarms here: no Kafka producer for alarms.commands on this appliance`);
    const command: AlarmCommand = {
      action,
      alarm_id: id,
      by: actor,
      at,
      ...(action === "suppress" && body.until !== undefined ? { until: new Date(body.until).toISOString() } : {}),
      ...(body.note !== undefined ? { note: body.note } : {}),
      command_id: crypto.randomUUID(),
    };
    const commandId = command.command_id!;
    // Watched before it is sent: an evaluator that answers at once must not be missed.
    const watch = this.#o.outcomes?.watch(commandId, (late) => void this.#auditLate(late, ip));
    try {
      await this.#o.publisher.publish(`${row.assetId}/${row.parameter}`, command);
    } catch (error) {
      watch?.cancel();
      this.#o.log.error({ err: (error as Error).message, alarm_id: id, action }, "publishing an alarm command failed");
      throw new ApiError(503, "kafka_unavailable", `the command could not be sent to Kafka: ${(error as Error).message}`);
    }
    if (opts.audit !== false) {
      const changes: Record<string, { old?: unknown; new?: unknown }> = { state: { old: alarm.state, new: checked.alarm.state }, command_id: { new: commandId } };
      if (action === "suppress") changes.suppressed_until = { old: alarm.suppressed_until, new: checked.alarm.suppressed_until };
      if (body.note !== undefined) changes.note = { new: body.note };
      await appendAudit(db, { actor, ip, action: `alarm.${action}`, resourceType: "alarm", resourceId: id, changes }).catch((error) => {
        watch?.release();
        throw error;
      });
    }
    const waitMs = this.#o.waitMs ?? DEFAULT_WAIT_MS;
    const deadline = Date.now() + waitMs;
    if (!watch) return this.#awaitReadModel(row, command, deadline, waitMs);

    try {
      let outcome: CommandOutcome | undefined;
      for (;;) {
        const tailReady = this.#o.outcomes!.ready();
        // While the shared tail is not following yet (API just started, Kafka or the topic missing) the
        // outcome may pass unseen: the read model moving on counts then, as it did before outcomes.
        outcome = await settledBy(watch.outcome, tailReady ? deadline : Math.min(deadline, Date.now() + (this.#o.pollMs ?? 100)));
        if (outcome) break;
        if (!tailReady) {
          const now = await getAlarmRow(db, id);
          if (now && now.sequence > row.sequence) return { status: 200, alarm: toAlarmView(now) };
        }
        if (Date.now() >= deadline) return { status: 202, alarm: toAlarmView((await getAlarmRow(db, id)) ?? row), command, message: pendingMessage(waitMs) };
      }
      if (outcome.outcome === "refused") {
        await this.#auditRefusal(outcome, ip);
        throw new ApiError(409, outcome.error.code, outcome.error.message);
      }
      // Applied. The read model (alarms.raw → validator → alarms.clean → projector) follows shortly:
      // wait for it within what is left of the budget, so a list read next shows the change too.
      for (;;) {
        const now = await getAlarmRow(db, id);
        if (now && now.sequence >= outcome.sequence) return { status: 200, alarm: toAlarmView(now) };
        if (Date.now() >= deadline) return { status: 200, alarm: outcomeView(outcome.alarm, now ?? row) };
        await Bun.sleep(this.#o.pollMs ?? 100);
      }
    } finally {
      // Not answered yet (202, or the request failed): an outcome that comes later is still matched.
      watch.release();
    }
  }

  /** No outcome source: the first later sequence in the read model counts as the command's. */
  async #awaitReadModel(row: AlarmRow, command: AlarmCommand, deadline: number, waitMs: number): Promise<CommandReply> {
    const db = this.#o.db();
    for (;;) {
      const now = await getAlarmRow(db, row.alarmId);
      if (now && now.sequence > row.sequence) return { status: 200, alarm: toAlarmView(now) };
      if (Date.now() >= deadline) return { status: 202, alarm: toAlarmView(now ?? row), command, message: pendingMessage(waitMs) };
      await Bun.sleep(this.#o.pollMs ?? 100);
    }
  }

  /** A refusal by the evaluator is audited under the operator who sent the command. */
  async #auditRefusal(outcome: Extract<CommandOutcome, { outcome: "refused" }>, ip: string | null): Promise<void> {
    await appendAudit(this.#o.db(), {
      actor: outcome.by ?? "unknown",
      ip,
      action: `alarm.${outcome.action ?? "command"}.refused`,
      resourceType: "alarm",
      resourceId: outcome.alarm_id ?? "",
      changes: { reason: { new: outcome.error.message }, code: { new: outcome.error.code }, state: { old: outcome.state }, command_id: { new: outcome.command_id } },
    }).catch((error) => this.#o.log.error({ err: (error as Error).message, command_id: outcome.command_id }, "auditing a refused alarm command failed"));
  }

  /** An outcome after the 202: refusals still reach the audit log (applied ones show in the read model). */
  async #auditLate(outcome: CommandOutcome, ip: string | null): Promise<void> {
    if (outcome.outcome === "refused") {
      this.#o.log.warn({ command_id: outcome.command_id, alarm_id: outcome.alarm_id, reason: outcome.error.message }, "an accepted alarm command was refused by the evaluator");
      await this.#auditRefusal(outcome, ip);
    }
  }
}

const pendingMessage = (waitMs: number) =>
  `no outcome from the alarm evaluator within ${waitMs / 1000} s (evaluator stopped or busy, or Kafka unreachable): the command is queued in Kafka and applies when the evaluator reads it; check the alarm later (a refusal is recorded in the audit log)`;

/** Resolves with the promise's value, or undefined at `deadline`, leaving no timer behind. */
async function settledBy<T>(promise: Promise<T>, deadline: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()))));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The alarm as the evaluator reports it, in the API's shape (the read model has not caught up). */
function outcomeView(alarm: AlarmEvent, row: AlarmRow): AlarmView {
  const next = rowOf(alarm);
  if (!next) return toAlarmView(row);
  return toAlarmView({ ...row, ...next, lastEvent: row.lastEvent, updatedAt: new Date(alarm.event_at) } as AlarmRow);
}

// ---------------------------------------------------------------------------------------------
// The web UI's alarm source (src/live/alarms.ts), backed by the read model and real commands

function toUiAlarm(v: AlarmView): UiAlarm {
  return {
    id: v.alarm_id,
    asset_id: v.asset_id,
    parameter: v.parameter,
    severity: v.severity,
    state: v.state,
    message: v.message,
    raised_at: v.raised_at,
    updated_at: v.updated_at,
    acked_by: v.acked_by,
    acked_at: v.acked_at,
    suppressed_until: v.suppressed_until,
    suppressed_by: v.suppressed_by,
  };
}

const UI_LIST_LIMIT = 500;

/**
 * Same method shapes as the UI's in-memory source. The UI page audits its own actions, so these
 * do not (pass through AlarmService.command for API semantics). Unknown ids throw UnknownAlarmError;
 * refused transitions (by the read model's state or by the evaluator) an ApiError 409 with the
 * lifecycle's reason; a command with no outcome in time comes back with `pending` set.
 */
export function dbAlarmSource(service: AlarmService): AlarmSource {
  const act = async (id: string, run: () => Promise<CommandReply>): Promise<UiAlarm> => {
    try {
      const reply = await run();
      return reply.status === 202 ? { ...toUiAlarm(reply.alarm), pending: reply.message } : toUiAlarm(reply.alarm);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) throw new UnknownAlarmError(`alarm ${id} not found`);
      throw error;
    }
  };
  return {
    async list(filter: AlarmFilter) {
      const page = await service.list({ ...(filter.state === "all" ? {} : { state: ["open"] }), q: filter.q ?? "", limit: UI_LIST_LIMIT });
      return page.items.map(toUiAlarm);
    },
    ack: (id, user) => act(id, () => service.command(id, "acknowledge", user, null, {}, { audit: false })),
    suppress: (id, user, until) => act(id, () => service.command(id, "suppress", user, null, { until: until.toISOString() }, { audit: false })),
  };
}
