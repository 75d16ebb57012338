import { and, asc, count, desc, eq, ilike, inArray, ne, sql, type SQL } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { appendAudit } from "../../db/repo.ts";
import { alarms, type AlarmRow, type NewAlarmRow } from "../../db/schema.ts";
import { UnknownAlarmError, type Alarm as UiAlarm, type AlarmFilter, type AlarmSource } from "../../live/alarms.ts";
import type { Logger } from "../../log/logger.ts";
import { ALARM_STATES, transition, type Alarm, type AlarmCommand, type AlarmEvent, type AlarmState, type OperatorAction } from "../../streams/alarms/lifecycle.ts";
import { SEVERITIES, type Severity } from "../../streams/alarms/rules.ts";
import { ApiError, invalid, notFound } from "../errors.ts";

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
  /** How long a command waits for the read model to show it before answering 202. */
  waitMs?: number;
  pollMs?: number;
  now?: () => number;
}

export type CommandReply = { status: 200; alarm: AlarmView } | { status: 202; alarm: AlarmView; command: AlarmCommand };

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
   * (refused → 409 with its reason), published to alarms.commands keyed by the alarm's tag, audited,
   * then awaited in the read model for up to `waitMs` (200 with the alarm) or accepted (202).
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
    };
    try {
      await this.#o.publisher.publish(`${row.assetId}/${row.parameter}`, command);
    } catch (error) {
      this.#o.log.error({ err: (error as Error).message, alarm_id: id, action }, "publishing an alarm command failed");
      throw new ApiError(503, "kafka_unavailable", `the command could not be sent to Kafka: ${(error as Error).message}`);
    }
    if (opts.audit !== false) {
      const changes: Record<string, { old?: unknown; new?: unknown }> = { state: { old: alarm.state, new: checked.alarm.state } };
      if (action === "suppress") changes.suppressed_until = { old: alarm.suppressed_until, new: checked.alarm.suppressed_until };
      if (body.note !== undefined) changes.note = { new: body.note };
      await appendAudit(db, { actor, ip, action: `alarm.${action}`, resourceType: "alarm", resourceId: id, changes });
    }
    const deadline = Date.now() + (this.#o.waitMs ?? DEFAULT_WAIT_MS);
    for (;;) {
      const now = await getAlarmRow(db, id);
      if (now && now.sequence > row.sequence) return { status: 200, alarm: toAlarmView(now) };
      if (Date.now() >= deadline) return { status: 202, alarm: toAlarmView(now ?? row), command };
      await Bun.sleep(this.#o.pollMs ?? 100);
    }
  }
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
 * refused transitions an ApiError 409 with the lifecycle's reason.
 */
export function dbAlarmSource(service: AlarmService): AlarmSource {
  const act = async (id: string, run: () => Promise<CommandReply>) => {
    try {
      return toUiAlarm((await run()).alarm);
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
