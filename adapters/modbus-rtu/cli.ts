// `gateway simulate modbus-rtu --device PATH --plant FILE [--baud N] [--parity none|even|odd]`
import { choiceOption, intOption, UsageError } from "../../src/cli/command.ts";
import { createLogger } from "../../src/log/logger.ts";
import { loadPlantFile } from "../modbus/plant.ts";
import { PARITIES } from "../serial/termios.ts";
import { startModbusRtuSimulator } from "./simulator.ts";

/** Options `gateway simulate` accepts for the serial simulators (shared with xbee). */
export const modbusRtuSimulateOptions = {
  device: { type: "string" as const },
  baud: { type: "string" as const },
  parity: { type: "string" as const },
};
export const modbusRtuSimulateHelp = {
  device: "modbus-rtu, xbee: serial device, e.g. one end of `socat -d -d pty,raw,echo=0,link=/tmp/a pty,raw,echo=0,link=/tmp/b`",
  baud: "modbus-rtu, xbee: line speed (default 19200 for modbus-rtu, 9600 for xbee)",
  parity: "modbus-rtu, xbee: none, even or odd (default even for modbus-rtu, none for xbee)",
};

export function serialDevice(values: Record<string, unknown>, simulator: string): string {
  if (!values.device) throw new UsageError(`gateway simulate ${simulator}: --device PATH is required`);
  if (!values.plant) throw new UsageError(`gateway simulate ${simulator}: --plant FILE is required`);
  return String(values.device);
}

/** Serves the plant's devices as RTU slaves (by unit id) until SIGTERM/SIGINT. */
export async function runModbusRtuSimulatorCommand(values: Record<string, unknown>): Promise<number> {
  const device = serialDevice(values, "modbus-rtu");
  const baudRate = intOption(values, "baud", 50, 4_000_000) ?? 19200;
  const parity = choiceOption(values, "parity", PARITIES) ?? "even";
  const plant = loadPlantFile(String(values.plant));
  const log = createLogger("simulator");
  const simulator = await startModbusRtuSimulator({
    device, plant, line: { baudRate, parity, dataBits: 8, stopBits: 1 },
    onWarning: (message) => log.warn({ device }, message),
  });
  log.info({ plant: plant.name, device, line: simulator.line, units: plant.devices.map((d) => d.unitId) }, "Modbus RTU simulator listening");
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  await simulator.stop();
  log.info({ stats: simulator.stats }, "Modbus RTU simulator stopped");
  return 0;
}
