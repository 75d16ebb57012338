// Shared helpers for the benchmarks: process CPU/RSS from /proc, machine facts, free ports.
import { readdirSync, readFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";

/** Clock ticks per second for /proc/<pid>/stat utime/stime (USER_HZ; 100 on every Linux we run on). */
export const CLK_TCK = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;

/** CPU seconds (user + system, all threads) a live process has used so far. */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Field 2 (comm) is in parentheses and may contain spaces: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]); // field 14 overall
  const stime = Number(fields[12]); // field 15 overall
  return (utime + stime) / CLK_TCK;
}

/** Resident set size in MiB (VmRSS), or undefined once the process is gone. */
export function processRssMb(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Whole-machine busy and total jiffies from /proc/stat, to show how loaded the box was. */
export function machineJiffies(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = v[3]! + (v[4] ?? 0); // idle + iowait
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // user..steal; guest is already in user
  return { busy: total - idle, total };
}

/** pid of a process whose command line contains `needle` (read-only scan of /proc), if any. */
export function findPid(needle: string): number | undefined {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmdline.includes(needle)) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/**
 * Samples a process's CPU and RSS over a window. CPU % = (utime+stime delta) / wall time;
 * 100 % = one core fully busy.
 */
export class ProcessSampler {
  readonly #pid: number;
  readonly #rss: number[] = [];
  readonly #cpuPerSecond: number[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  #startCpu = 0;
  #startWall = 0;
  #lastCpu = 0;
  #lastWall = 0;

  constructor(pid: number) {
    this.#pid = pid;
  }

  start(intervalMs = 1000): void {
    this.#startCpu = this.#lastCpu = processCpuSeconds(this.#pid);
    this.#startWall = this.#lastWall = performance.now();
    const rss = processRssMb(this.#pid);
    if (rss !== undefined) this.#rss.push(rss);
    this.#timer = setInterval(() => this.#sample(), intervalMs);
  }

  #sample(): void {
    try {
      const cpu = processCpuSeconds(this.#pid);
      const wall = performance.now();
      this.#cpuPerSecond.push((100 * (cpu - this.#lastCpu)) / ((wall - this.#lastWall) / 1000));
      this.#lastCpu = cpu;
      this.#lastWall = wall;
      const rss = processRssMb(this.#pid);
      if (rss !== undefined) this.#rss.push(rss);
    } catch {
      // the process exited
    }
  }

  stop(): ProcessStats {
    clearInterval(this.#timer);
    this.#sample();
    const wallS = (this.#lastWall - this.#startWall) / 1000;
    const cpuS = this.#lastCpu - this.#startCpu;
    return {
      wall_s: round(wallS, 2),
      cpu_s: round(cpuS, 2),
      cpu_pct: round((100 * cpuS) / wallS, 1),
      cpu_pct_max_1s: round(Math.max(...this.#cpuPerSecond), 1),
      rss_mb_avg: round(mean(this.#rss), 1),
      rss_mb_max: round(Math.max(...this.#rss), 1),
      rss_mb_end: round(this.#rss.at(-1) ?? NaN, 1),
      rss_mb_series: this.#rss.map((v) => round(v)),
      cpu_pct_series: this.#cpuPerSecond.map((v) => round(v)),
    };
  }
}

export interface ProcessStats {
  wall_s: number;
  cpu_s: number;
  /** Average over the window; 100 = one core. */
  cpu_pct: number;
  /** Busiest one-second sample. */
  cpu_pct_max_1s: number;
  rss_mb_avg: number;
  rss_mb_max: number;
  rss_mb_end: number;
  /** One sample per interval, for spotting growth or spikes. */
  rss_mb_series: number[];
  cpu_pct_series: number[];
}

export function mean(values: number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function round(value: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** An ephemeral port the kernel reports free right now. */
export function freePort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

/** True when every port in [base, base + count) can be bound on 127.0.0.1 right now. */
export function portsFree(base: number, count: number): boolean {
  const opened: { stop(closeActive?: boolean): void }[] = [];
  try {
    for (let p = base; p < base + count; p++) opened.push(Bun.listen({ hostname: "127.0.0.1", port: p, socket: { data() {} } }));
    return true;
  } catch {
    return false;
  } finally {
    for (const l of opened) l.stop(true);
  }
}

/** A base port with `count` consecutive free ports above it, outside the ephemeral range. */
export function freePortRange(count: number): number {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * (32_000 - 20_000 - count));
    if (portsFree(base, count)) return base;
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

export interface MachineInfo {
  date_utc: string;
  cpu_model: string;
  nproc: number;
  memory_gb: number;
  kernel: string;
  bun: string;
  loadavg_1m_at_start: number;
}

export function machineInfo(): MachineInfo {
  const lscpu = Bun.spawnSync(["lscpu"]).stdout.toString();
  const model = /^Model name:\s+(.+)$/m.exec(lscpu)?.[1]?.trim() ?? cpus()[0]?.model ?? "unknown";
  return {
    date_utc: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    cpu_model: model,
    nproc: Number(Bun.spawnSync(["nproc"]).stdout.toString().trim()),
    memory_gb: round(totalmem() / 1024 ** 3, 1),
    kernel: Bun.spawnSync(["uname", "-r"]).stdout.toString().trim(),
    bun: Bun.version,
    loadavg_1m_at_start: round(loadavg()[0]!, 2),
  };
}

/** Reads a child's stdout line by line, handing each JSON log line to `onLine`; the text is kept. */
export function collectLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<string[]> {
  const lines: string[] = [];
  return (async () => {
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of stream) {
      buffer += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        lines.push(line);
        onLine(line);
      }
    }
    if (buffer) {
      lines.push(buffer);
      onLine(buffer);
    }
    return lines;
  })();
}

export function tryJson(line: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(line);
    return v && typeof v === "object" ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Resolves with the first value `probe` returns that is not undefined, polling every `everyMs`. */
export async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(everyMs);
  }
}

export function log(message: string): void {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

/** The code under test: HEAD and whether the working tree had local changes (others edit concurrently). */
export function gitInfo(cwd: string): { commit: string; dirty_files: number } {
  const commit = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd }).stdout.toString().trim();
  const dirty = Bun.spawnSync(["git", "status", "--porcelain"], { cwd }).stdout.toString().split("\n").filter(Boolean).length;
  return { commit, dirty_files: dirty };
}

/** A command-line option that must be a whole number of at least 0. */
export function nonNegativeInt(name: string, raw: unknown): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${raw}`);
  return n;
}
