import type { ConsumedRecord } from "../kafka/processor.ts";

/**
 * The alarm page's data source. The alarm engine arrives later; until then this in-memory source
 * shows whatever alarm records appear on alarms.clean / alarms.raw while the appliance runs, and
 * keeps acknowledgements and suppressions in memory. It never invents alarms.
 */
export interface Alarm {
  id: string;
  asset_id: string | null;
  parameter: string | null;
  severity: string | null;
  state: string;
  message: string | null;
  raised_at: string | null;
  updated_at: string;
  acked_by: string | null;
  acked_at: string | null;
  suppressed_until: string | null;
  suppressed_by: string | null;
  /** Only on the reply to ack/suppress: the command was sent but the evaluator has not confirmed it yet (why, what happens next). */
  pending?: string;
}

export interface AlarmFilter {
  /** "active" (default): not cleared; "all": everything seen. */
  state?: "active" | "all";
  q?: string;
}

export interface AlarmSource {
  list(filter: AlarmFilter): Promise<Alarm[]>;
  ack(id: string, user: string): Promise<Alarm>;
  suppress(id: string, user: string, until: Date): Promise<Alarm>;
}

export class UnknownAlarmError extends Error {
  override name = "UnknownAlarmError";
}

export const ALARM_TOPICS = ["alarms.clean", "alarms.raw"] as const;
const MAX_ALARMS = 5000;
const CLEARED = new Set(["cleared", "clear", "normal", "rtn", "inactive", "resolved"]);

const text = (v: unknown) => (typeof v === "string" && v.length > 0 ? v : typeof v === "number" ? String(v) : null);

export class InMemoryAlarmSource implements AlarmSource {
  readonly #alarms = new Map<string, Alarm>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Takes an alarm transition from Kafka; records that do not look like alarms are ignored. */
  ingest(record: Pick<ConsumedRecord, "key" | "value" | "timestamp">): boolean {
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(record.value ?? "") as Record<string, unknown>;
    } catch {
      return false;
    }
    if (typeof body !== "object" || body === null) return false;
    const id = text(body.alarm_id) ?? text(body.id) ?? record.key ?? null;
    if (!id) return false;
    const previous = this.#alarms.get(id);
    const ms = Number(record.timestamp);
    const at = Number.isFinite(ms) && ms > 0 ? new Date(ms).toISOString() : new Date(this.now()).toISOString();
    const alarm: Alarm = {
      id,
      asset_id: text(body.asset_id) ?? previous?.asset_id ?? null,
      parameter: text(body.parameter) ?? previous?.parameter ?? null,
      severity: text(body.severity) ?? text(body.priority) ?? previous?.severity ?? null,
      state: text(body.state) ?? text(body.status) ?? previous?.state ?? "active",
      message: text(body.message) ?? text(body.description) ?? previous?.message ?? null,
      raised_at: text(body.raised_at) ?? text(body.timestamp) ?? previous?.raised_at ?? at,
      updated_at: at,
      acked_by: text(body.acked_by) ?? previous?.acked_by ?? null,
      acked_at: text(body.acked_at) ?? previous?.acked_at ?? null,
      suppressed_until: text(body.suppressed_until) ?? previous?.suppressed_until ?? null,
      suppressed_by: text(body.suppressed_by) ?? previous?.suppressed_by ?? null,
    };
    this.#alarms.delete(id);
    this.#alarms.set(id, alarm);
    if (this.#alarms.size > MAX_ALARMS) this.#alarms.delete(this.#alarms.keys().next().value!);
    return true;
  }

  async list(filter: AlarmFilter = {}): Promise<Alarm[]> {
    const words = (filter.q ?? "").toLowerCase().split(/\s+/).filter(Boolean);
    return [...this.#alarms.values()]
      .filter((a) => filter.state === "all" || !CLEARED.has(a.state.toLowerCase()))
      .filter((a) => words.every((w) => `${a.id} ${a.asset_id ?? ""} ${a.parameter ?? ""} ${a.message ?? ""} ${a.severity ?? ""}`.toLowerCase().includes(w)))
      .sort((a, b) => (b.raised_at ?? "").localeCompare(a.raised_at ?? ""));
  }

  async ack(id: string, user: string): Promise<Alarm> {
    const alarm = this.#get(id);
    alarm.acked_by = user;
    alarm.acked_at = new Date(this.now()).toISOString();
    return alarm;
  }

  async suppress(id: string, user: string, until: Date): Promise<Alarm> {
    const alarm = this.#get(id);
    alarm.suppressed_by = user;
    alarm.suppressed_until = until.toISOString();
    return alarm;
  }

  #get(id: string): Alarm {
    const alarm = this.#alarms.get(id);
    if (!alarm) throw new UnknownAlarmError(`alarm ${id} not found`);
    return alarm;
  }
}
