// Modbus TCP simulator for the demo, tests and benchmarks: serves a plant file's
// devices over Bun.listen, one listener per distinct port (base port + port_offset).
import type { Socket, TCPSocketListener } from "bun";
import {
  ExceptionCode, exceptionPdu, handleRequestPdu, MBAP_HEADER_LENGTH, MODBUS_PROTOCOL_ID, parseMbapFrames, writeMbap,
  type RegisterBank,
} from "../modbus/pdu.ts";
import { plantBank, type Plant, type PlantDevice } from "../modbus/plant.ts";

export interface ModbusTcpSimulatorOptions {
  /** Interface to listen on; default 127.0.0.1. */
  host?: string;
  /** Device ports are basePort + port_offset. 0 = an ephemeral port per distinct port_offset. */
  basePort: number;
  plant: Plant;
  /** Plant time in seconds; default: seconds since the simulator started. */
  clock?: () => number;
}

export interface ModbusTcpSimulator {
  /** The listening ports, one per distinct port_offset, in port_offset order. */
  ports: number[];
  /** The port a device listens on. */
  portOf(deviceName: string): number;
  /**
   * Takes a device (null = all) off the network or back. When every device on a port
   * is offline its listener stops and its connections close; coming back re-listens on
   * the same port. A device that is offline while others share its port answers
   * exception 0x0B, as a TCP-to-serial gateway does for a dead serial device.
   * Throws if another process took the port meanwhile; no-op after stop().
   */
  setOnline(deviceName: string | null, online: boolean): void;
  stop(): Promise<void>;
}

/** A client that pipelines requests but never reads replies is cut off past this backlog. */
const MAX_UNSENT_BYTES = 1 << 20;
const MAX_PORT = 65535;

interface SimulatedDevice {
  device: PlantDevice;
  bank: RegisterBank;
  online: boolean;
}

interface Endpoint {
  port: number;
  units: Map<number, SimulatedDevice>;
  listener: TCPSocketListener<Connection> | undefined;
  sockets: Set<Socket<Connection>>;
}

interface Connection {
  endpoint: Endpoint;
  /** Start of a request split across TCP segments. */
  partial: Uint8Array | undefined;
  /** Replies the kernel did not take yet (backpressure), flushed on drain. */
  unsent: Uint8Array[];
  unsentBytes: number;
}

export async function startModbusTcpSimulator(options: ModbusTcpSimulatorOptions): Promise<ModbusTcpSimulator> {
  const { host = "127.0.0.1", basePort, plant } = options;
  const started = performance.now();
  const clock = options.clock ?? (() => (performance.now() - started) / 1000);
  if (!Number.isInteger(basePort) || basePort < 0 || basePort > MAX_PORT) throw new RangeError(`basePort must be 0-${MAX_PORT}, got ${basePort}`);

  const byOffset = new Map<number, Endpoint>();
  const byName = new Map<string, { simulated: SimulatedDevice; endpoint: Endpoint }>();
  for (const device of [...plant.devices].sort((a, b) => a.portOffset - b.portOffset)) {
    if (basePort !== 0 && basePort + device.portOffset > MAX_PORT) {
      throw new RangeError(`device ${device.name}: port ${basePort} + ${device.portOffset} is above ${MAX_PORT}`);
    }
    let endpoint = byOffset.get(device.portOffset);
    if (!endpoint) {
      endpoint = { port: basePort === 0 ? 0 : basePort + device.portOffset, units: new Map(), listener: undefined, sockets: new Set() };
      byOffset.set(device.portOffset, endpoint);
    }
    const simulated = { device, bank: plantBank(device, clock), online: true };
    endpoint.units.set(device.unitId, simulated);
    byName.set(device.name, { simulated, endpoint });
  }
  const endpoints = [...byOffset.values()];

  const listen = (endpoint: Endpoint) => {
    endpoint.listener = Bun.listen<Connection>({ hostname: host, port: endpoint.port, socket: handlers(endpoint) });
    endpoint.port = endpoint.listener.port; // resolves ephemeral port 0 once; later re-listens reuse it
  };
  const close = (endpoint: Endpoint) => {
    endpoint.listener?.stop(true);
    endpoint.listener = undefined;
    for (const socket of endpoint.sockets) socket.terminate();
    endpoint.sockets.clear();
  };

  try {
    endpoints.forEach(listen);
  } catch (error) {
    endpoints.forEach(close);
    throw error;
  }

  let stopped = false;
  return {
    ports: endpoints.map((e) => e.port),
    portOf(deviceName) {
      const entry = byName.get(deviceName);
      if (!entry) throw new Error(`no device ${JSON.stringify(deviceName)} in plant ${plant.name}`);
      return entry.endpoint.port;
    },
    setOnline(deviceName, online) {
      if (stopped) return;
      const targets = deviceName === null ? [...byName.values()] : [byName.get(deviceName)];
      for (const entry of targets) {
        if (!entry) throw new Error(`no device ${JSON.stringify(deviceName)} in plant ${plant.name}`);
        entry.simulated.online = online;
      }
      for (const endpoint of endpoints) {
        const anyOnline = [...endpoint.units.values()].some((u) => u.online);
        if (anyOnline && !endpoint.listener) listen(endpoint);
        else if (!anyOnline && endpoint.listener) close(endpoint);
      }
    },
    async stop() {
      stopped = true;
      endpoints.forEach(close);
    },
  };
}

function handlers(endpoint: Endpoint) {
  return {
    open(socket: Socket<Connection>) {
      socket.data = { endpoint, partial: undefined, unsent: [], unsentBytes: 0 };
      endpoint.sockets.add(socket);
    },
    close(socket: Socket<Connection>) {
      endpoint.sockets.delete(socket);
    },
    drain: flushUnsent,
    data(socket: Socket<Connection>, chunk: Uint8Array) {
      const connection = socket.data;
      const input = connection.partial ? concat(connection.partial, chunk) : chunk;
      const { frames, rest, error } = parseMbapFrames(input);
      // Pipelined requests are answered in order with one write.
      const replies: { transactionId: number; unitId: number; pdu: Uint8Array }[] = [];
      let size = 0;
      for (const frame of frames) {
        if (frame.protocolId !== MODBUS_PROTOCOL_ID) continue; // not Modbus: servers drop it
        const unit = endpoint.units.get(frame.unitId);
        const pdu = unit?.online
          ? handleRequestPdu(frame.pdu, unit.bank)
          : exceptionPdu(frame.pdu[0] ?? 0, ExceptionCode.GATEWAY_TARGET_FAILED_TO_RESPOND);
        replies.push({ transactionId: frame.transactionId, unitId: frame.unitId, pdu });
        size += MBAP_HEADER_LENGTH + pdu.length;
      }
      if (replies.length > 0) {
        const out = new Uint8Array(size);
        let offset = 0;
        for (const r of replies) offset = writeMbap(out, offset, r.transactionId, r.unitId, r.pdu);
        send(socket, out);
      }
      if (error) {
        socket.end(); // a corrupt length leaves no way to find the next frame
        return;
      }
      // Copy: the chunk's memory may be reused after this callback returns.
      connection.partial = rest.length > 0 ? rest.slice() : undefined;
    },
  };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}

function send(socket: Socket<Connection>, bytes: Uint8Array): void {
  const connection = socket.data;
  if (connection.unsent.length === 0) {
    const written = socket.write(bytes);
    if (written < 0 || written === bytes.length) return; // -1: already closed
    bytes = bytes.subarray(written);
  }
  connection.unsent.push(bytes);
  connection.unsentBytes += bytes.length;
  if (connection.unsentBytes > MAX_UNSENT_BYTES) socket.terminate();
}

function flushUnsent(socket: Socket<Connection>): void {
  const connection = socket.data;
  while (connection.unsent.length > 0) {
    const head = connection.unsent[0]!;
    const written = socket.write(head);
    if (written < 0) return;
    connection.unsentBytes -= written;
    if (written < head.length) {
      connection.unsent[0] = head.subarray(written);
      return;
    }
    connection.unsent.shift();
  }
}
