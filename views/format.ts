/** Display formatting shared by the pages; times are UTC, as the envelope's are. */

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/** "03:20:15.123" (UTC), the date too when it is not today. */
export function formatTime(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}`;
  const today = new Date(now).toISOString().slice(0, 10);
  const day = d.toISOString().slice(0, 10);
  return day === today ? time : `${day} ${time}`;
}

/** "2025-11-27 03:20:15" (UTC). */
export function formatDateTime(value: string | Date | null | undefined): string {
  if (!value) return "—";
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 19)}`;
}

/** "4 s ago", "3 min ago", "2 h ago". */
export function formatAge(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "—";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} d ago`;
}

export function formatRate(perSecond: number | null | undefined): string {
  if (perSecond === null || perSecond === undefined || !Number.isFinite(perSecond)) return "—";
  if (perSecond >= 100) return perSecond.toFixed(0);
  if (perSecond >= 10) return perSecond.toFixed(1).replace(/\.0$/, "");
  return perSecond.toFixed(2).replace(/\.?0+$/, "") || "0";
}

/** A reading's value as an engineer reads it: numbers as sent, booleans as words. */
export function formatValue(value: unknown): string {
  if (value === null || value === undefined) return "—";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(10)));
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

export type Tone = "ok" | "warn" | "bad" | "muted" | "info";

/** One colour scheme for every status word in the UI. */
export function toneOf(status: string | null | undefined): Tone {
  switch ((status ?? "").toLowerCase()) {
    case "ok":
    case "healthy":
    case "running":
    case "good":
    case "clean":
      return "ok";
    case "degraded":
    case "starting":
    case "backoff":
    case "paused":
    case "suspect":
    case "uncertain":
    case "stopping":
      return "warn";
    case "down":
    case "target_down":
    case "unhealthy":
    case "failed":
    case "bad":
      return "bad";
    case "active":
      return "bad";
    default:
      return "muted";
  }
}

/** "poll_interval_ms" → "Poll interval (ms)". */
export function humanize(key: string): string {
  const units: Record<string, string> = { ms: "ms", s: "s", bytes: "bytes" };
  const parts = key.split("_");
  const last = parts.at(-1)!;
  const unit = parts.length > 1 && units[last] ? ` (${units[last]})` : "";
  const words = (unit ? parts.slice(0, -1) : parts).join(" ").replace(/\bid\b/g, "ID");
  return words.charAt(0).toUpperCase() + words.slice(1) + unit;
}
