// Modbus RTU simulator: a plant file's devices as slaves on one serial line, addressed by unit id.
// Registers come from the same waveform banks as the TCP simulator (plantBank + handleRequestPdu).
import { handleRequestPdu, type RegisterBank } from "../modbus/pdu.ts";
import { plantBank, type Plant, type PlantDevice } from "../modbus/plant.ts";
import { SerialPort } from "../serial/port.ts";
import { DEFAULT_LINE, type LineSettings } from "../serial/termios.ts";
import { encodeRtuFrame, hasValidCrc, requestFrameLength, RTU_MAX_ADU_LENGTH, RTU_MAX_UNIT_ID, RTU_MIN_UNIT_ID, rtuTiming } from "./frame.ts";

export interface ModbusRtuSimulatorOptions {
  /** Serial device the slaves listen on, e.g. one end of a socat pty pair or a USB RS-485 adapter. */
  device: string;
  plant: Plant;
  line?: Partial<LineSettings>;
  /** Plant time in seconds; default: seconds since the simulator started. */
  clock?: () => number;
  /** Extra delay before each reply, on top of the t3.5 turnaround (a slow device). */
  responseDelayMs?: number;
  onWarning?: (message: string) => void;
}

export interface ModbusRtuSimulatorStats {
  /** Valid requests addressed to one of our slaves. */
  requests: number;
  responses: number;
  /** Valid frames for other unit ids (another slave on the bus, or a dead one we simulate). */
  ignored: number;
  /** Frames dropped for a bad CRC or an impossible length. */
  badFrames: number;
  broadcasts: number;
}

export interface ModbusRtuSimulator {
  readonly line: LineSettings;
  readonly stats: ModbusRtuSimulatorStats;
  /** Takes a device (null = all) off the bus or back: an offline slave stays silent, like a dead one. */
  setOnline(deviceName: string | null, online: boolean): void;
  stop(): Promise<void>;
}

interface Slave {
  device: PlantDevice;
  bank: RegisterBank;
  online: boolean;
}

/** The unit ids of a plant on one bus; a plant may not reuse one (port_offset has no meaning on a serial line). */
export function slavesByUnitId(plant: Plant): Map<number, PlantDevice> {
  const units = new Map<number, PlantDevice>();
  const problems: string[] = [];
  for (const device of plant.devices) {
    if (device.unitId < RTU_MIN_UNIT_ID || device.unitId > RTU_MAX_UNIT_ID) {
      problems.push(`device ${device.name}: unit_id ${device.unitId} is not a serial slave address (${RTU_MIN_UNIT_ID}-${RTU_MAX_UNIT_ID})`);
    }
    const other = units.get(device.unitId);
    if (other) problems.push(`devices ${other.name} and ${device.name} share unit_id ${device.unitId} on one serial line`);
    units.set(device.unitId, device);
  }
  if (problems.length > 0) throw new Error(`plant ${plant.name}: ${problems.join("; ")}`);
  return units;
}

export async function startModbusRtuSimulator(options: ModbusRtuSimulatorOptions): Promise<ModbusRtuSimulator> {
  const started = performance.now();
  const clock = options.clock ?? (() => (performance.now() - started) / 1000);
  const slaves = new Map<number, Slave>();
  for (const [unitId, device] of slavesByUnitId(options.plant)) slaves.set(unitId, { device, bank: plantBank(device, clock), online: true });

  const port = await SerialPort.open({ path: options.device, ...DEFAULT_LINE, ...options.line });
  for (const warning of port.warnings) options.onWarning?.(warning);
  const timing = rtuTiming(port.line.baudRate);
  // A pty or a USB adapter delivers a frame in bursts with arbitrary gaps, so partial frames are
  // given far longer than t1.5 before being dropped; the spec's t3.5 still separates replies.
  const partialFrameTimeoutMs = Math.max(50, timing.interFrameMs * 4);
  const stats: ModbusRtuSimulatorStats = { requests: 0, responses: 0, ignored: 0, badFrames: 0, broadcasts: 0 };

  let rx: number[] = [];
  /** After a bad frame everything is dropped until the line goes quiet: the next frame starts after t3.5. */
  let discarding = false;
  let silenceTimer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let replies: Promise<void> = Promise.resolve();

  const onSilence = () => {
    silenceTimer = undefined;
    if (!discarding && rx.length > 0 && requestFrameLength(rx) === null) {
      // A function code of unknown length: the silence ended the frame.
      handleFrame(rx);
    } else if (!discarding && rx.length > 0) {
      stats.badFrames++; // a request cut short
    }
    rx = [];
    discarding = false;
  };

  const handleFrame = (frame: number[]) => {
    if (!hasValidCrc(frame)) {
      stats.badFrames++;
      discarding = true;
      return;
    }
    const unitId = frame[0]!;
    const pdu = Uint8Array.from(frame.slice(1, -2));
    if (unitId === 0) {
      // Broadcast: writes apply to every slave, nobody answers.
      stats.broadcasts++;
      for (const slave of slaves.values()) if (slave.online) handleRequestPdu(pdu, slave.bank);
      return;
    }
    const slave = slaves.get(unitId);
    if (!slave?.online) {
      stats.ignored++;
      return;
    }
    stats.requests++;
    const reply = encodeRtuFrame(unitId, handleRequestPdu(pdu, slave.bank));
    const delay = timing.interFrameMs + (options.responseDelayMs ?? 0);
    replies = replies.then(async () => {
      await Bun.sleep(delay);
      if (stopped || !port.isOpen) return;
      await port.write(reply).catch(() => undefined);
      stats.responses++;
    });
  };

  port.onData((chunk) => {
    clearTimeout(silenceTimer);
    silenceTimer = setTimeout(onSilence, partialFrameTimeoutMs);
    if (discarding) return;
    for (const byte of chunk) rx.push(byte);
    while (rx.length > 0 && !discarding) {
      const length = requestFrameLength(rx);
      if (length === undefined || length === null) break;
      if (length > RTU_MAX_ADU_LENGTH) {
        stats.badFrames++;
        discarding = true;
        break;
      }
      if (rx.length < length) break;
      handleFrame(rx.slice(0, length));
      rx = rx.slice(length);
    }
    if (discarding) rx = [];
  });

  const byName = new Map([...slaves.values()].map((s) => [s.device.name, s]));
  return {
    line: port.line,
    stats,
    setOnline(deviceName, online) {
      const targets = deviceName === null ? [...byName.values()] : [byName.get(deviceName)];
      for (const slave of targets) {
        if (!slave) throw new Error(`no device ${JSON.stringify(deviceName)} in plant ${options.plant.name}`);
        slave.online = online;
      }
    },
    async stop() {
      stopped = true;
      clearTimeout(silenceTimer);
      await replies;
      await port.close();
    },
  };
}
