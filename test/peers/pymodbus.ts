/**
 * Starts test/peers/pymodbus_server.py: an independent Modbus TCP server (pymodbus), so the
 * adapter is tested against someone else's reading of the spec rather than our own simulator.
 *
 * The Python venv is made by scripts/setup.sh at ${GATEWAY_CACHE_DIR:-<repo>/.cache}/venv.
 * Without it, suites skip with the reason (locally) or fail (CI set), as for services.
 */
import type { Subprocess } from "bun";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { drain, PEER_PYTHON, peerMissing, readReady } from "./python.ts";

const SERVER_SCRIPT = join(import.meta.dir, "pymodbus_server.py");
const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;

export const PYMODBUS_PYTHON = PEER_PYTHON;

/** 0-based PDU addresses (what goes on the wire); a list fills consecutive addresses. */
export interface ModbusTables {
  /** FC3, raw 16-bit words. */
  holding?: Record<number, number | number[]>;
  /** FC4, raw 16-bit words. */
  input?: Record<number, number | number[]>;
  /** FC1. */
  coils?: Record<number, boolean | boolean[]>;
  /** FC2. */
  discrete?: Record<number, boolean | boolean[]>;
}

export interface PymodbusOptions {
  /** Tables served to every unit id without its own entry in `units`. */
  registers?: ModbusTables;
  /** Per unit id tables, replacing `registers` for that unit. */
  units?: Record<number, ModbusTables>;
  /** Unit ids the server answers; default [1]. Others get exception 4. */
  unitIds?: number[];
  /** 0 (default) picks a free port. */
  port?: number;
}

export interface PymodbusServer {
  port: number;
  /** SIGTERM, then SIGKILL if it has not exited within 5 s. */
  stop(): Promise<void>;
}

/** Why pymodbus suites cannot run here, or undefined when they can. */
export const pymodbusMissing: string | undefined = peerMissing("pymodbus", "pymodbus.server, pymodbus.simulator");
export const pymodbusAvailable = pymodbusMissing === undefined;

export async function startPymodbus(options: PymodbusOptions = {}): Promise<PymodbusServer> {
  if (pymodbusMissing) throw new Error(`pymodbus test peer unavailable: ${pymodbusMissing}`);
  const dir = mkdtempSync(join(tmpdir(), "pymodbus-"));
  const file = join(dir, "registers.json");
  const spec = { ...options.registers, units: Object.fromEntries(Object.entries(options.units ?? {})) };
  writeFileSync(file, JSON.stringify(spec));
  const unitIds = options.unitIds ?? [1];
  const child = Bun.spawn(
    [PYMODBUS_PYTHON, SERVER_SCRIPT, "--port", String(options.port ?? 0), "--unit-ids", unitIds.join(","), "--registers", file],
    { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, PYTHONUNBUFFERED: "1" } },
  );
  const stderr = { text: "" };
  drain(child.stderr, stderr);
  let port: number;
  try {
    port = await readReady("pymodbus", child, stderr, READY_TIMEOUT_MS);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  drain(child.stdout, { text: "" });
  let stopped: Promise<void> | undefined;
  return {
    port,
    stop() {
      stopped ??= (async () => {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
        await child.exited;
        clearTimeout(timer);
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
