// `gateway simulate xbee --device PATH --plant FILE [--noise RATE] [--baud N] [--parity P]`
import { choiceOption, intOption, UsageError } from "../../src/cli/command.ts";
import { createLogger } from "../../src/log/logger.ts";
import { serialDevice } from "../modbus-rtu/cli.ts";
import { PARITIES } from "../serial/termios.ts";
import { loadXBeePlantFile } from "./plant.ts";
import { startXBeeSimulator } from "./simulator.ts";

export const xbeeSimulateOptions = {
  noise: { type: "string" as const },
  seed: { type: "string" as const },
};
export const xbeeSimulateHelp = {
  noise: "xbee: probability (0-1) of garbage, a bad-checksum or a truncated frame after each frame (default 0)",
  seed: "xbee: noise seed (default the plant's noise_seed), so a noisy run replays exactly",
};

/** Sends the plant's XBee frames on their intervals until SIGTERM/SIGINT. */
export async function runXBeeSimulatorCommand(values: Record<string, unknown>): Promise<number> {
  const device = serialDevice(values, "xbee");
  const baudRate = intOption(values, "baud", 50, 4_000_000) ?? 9600;
  const parity = choiceOption(values, "parity", PARITIES) ?? "none";
  const noise = values.noise === undefined ? 0 : Number(values.noise);
  if (!(noise >= 0 && noise <= 1)) throw new UsageError(`--noise: expected a probability from 0 to 1, got "${values.noise}"`);
  const seed = intOption(values, "seed", 0, 2 ** 32 - 1);
  const plant = loadXBeePlantFile(String(values.plant));
  const log = createLogger("simulator");
  const simulator = await startXBeeSimulator({
    device, plant, noise, ...(seed === undefined ? {} : { seed }), line: { baudRate, parity, dataBits: 8, stopBits: 1 },
    onWarning: (message) => log.warn({ device }, message),
  });
  log.info({ plant: plant.name, device, api_mode: plant.apiMode, noise, nodes: plant.nodes.map((n) => n.address64) }, "XBee simulator sending");
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  await simulator.stop();
  log.info({ stats: simulator.stats }, "XBee simulator stopped");
  return 0;
}
