/**
 * Starts test/peers/pymodbus_rtu_server.py on one end of a pty pair: an independent Modbus RTU
 * slave, so the RTU adapter is tested against someone else's reading of the serial line spec.
 * Availability (the venv and pymodbus) is the TCP peer's: see test/peers/pymodbus.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PYMODBUS_PYTHON, pymodbusMissing, type ModbusTables } from "./pymodbus.ts";

const SERVER_SCRIPT = join(import.meta.dir, "pymodbus_rtu_server.py");
const READY_TIMEOUT_MS = 15_000;

export interface PymodbusRtuOptions {
  device: string;
  baudRate?: number;
  parity?: "N" | "E" | "O";
  stopBits?: 1 | 2;
  /** Tables served to every unit id without its own entry in `units`. */
  registers?: ModbusTables;
  units?: Record<number, ModbusTables>;
  /** Unit ids that answer; any other stays silent. Default [1]. */
  unitIds?: number[];
}

export interface PymodbusRtuServer {
  /** SIGTERM, then SIGKILL after 5 s. */
  stop(): Promise<void>;
}

export async function startPymodbusRtu(options: PymodbusRtuOptions): Promise<PymodbusRtuServer> {
  if (pymodbusMissing) throw new Error(`pymodbus test peer unavailable: ${pymodbusMissing}`);
  const dir = mkdtempSync(join(tmpdir(), "pymodbus-rtu-"));
  const file = join(dir, "registers.json");
  writeFileSync(file, JSON.stringify({ ...options.registers, units: options.units ?? {} }));
  const child = Bun.spawn(
    [
      PYMODBUS_PYTHON, SERVER_SCRIPT,
      "--device", options.device,
      "--baud", String(options.baudRate ?? 19200),
      "--parity", options.parity ?? "N",
      "--stopbits", String(options.stopBits ?? 1),
      "--unit-ids", (options.unitIds ?? [1]).join(","),
      "--registers", file,
    ],
    { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, PYTHONUNBUFFERED: "1" } },
  );
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let output = "";
  const killer = setTimeout(() => child.kill("SIGKILL"), READY_TIMEOUT_MS);
  try {
    while (!/^READY /m.test(output)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`pymodbus RTU server exited (${await child.exited}) before READY:\n${output}${await stderr}`);
      output += decoder.decode(value, { stream: true });
    }
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  } finally {
    clearTimeout(killer);
  }
  // Keep draining stdout so the server never blocks on a full pipe.
  void (async () => {
    while (!(await reader.read()).done);
  })().catch(() => undefined);
  let stopped: Promise<void> | undefined;
  return {
    stop() {
      stopped ??= (async () => {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await child.exited;
        clearTimeout(timer);
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
