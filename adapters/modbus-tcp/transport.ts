import ModbusRTU from "modbus-serial";
import type { ReadRequest } from "../modbus/plan.ts";
import { ModbusReadError, type ModbusTransport } from "../modbus/poller.ts";

const CONNECT_TIMEOUT_MS = 3000;

interface ModbusSerialError extends Error {
  errno?: string;
  modbusCode?: number;
}

function classify(error: ModbusSerialError, where: string): ModbusReadError {
  if (error.modbusCode !== undefined) {
    return new ModbusReadError("protocol", `${where}: exception ${error.modbusCode} (${error.message})`, error.modbusCode);
  }
  if (error.errno === "ETIMEDOUT" || /timed out/i.test(error.message)) {
    return new ModbusReadError("timeout", `${where}: no response (timed out)`);
  }
  return new ModbusReadError("connection", `${where}: ${error.message}`);
}

/** Modbus TCP through modbus-serial: one request in flight per connection, as most PLCs require. */
export class ModbusTcpTransport implements ModbusTransport {
  #client: ModbusRTU | undefined;
  readonly name: string;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {
    this.name = `${host}:${port}`;
  }

  get isOpen(): boolean {
    return this.#client?.isOpen ?? false;
  }

  async connect(): Promise<void> {
    await this.close();
    const client = new ModbusRTU();
    client.setTimeout(CONNECT_TIMEOUT_MS);
    try {
      await client.connectTCP(this.host, { port: this.port });
    } catch (error) {
      client.close(() => undefined);
      throw new ModbusReadError("connection", `${this.name}: ${(error as Error).message}`);
    }
    this.#client = client;
  }

  async close(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    if (client?.isOpen) await new Promise<void>((resolve) => client.close(() => resolve()));
  }

  async read(request: ReadRequest, timeoutMs: number): Promise<number[] | boolean[]> {
    const client = this.#client;
    const where = `${this.name} unit ${request.unitId}`;
    if (!client?.isOpen) throw new ModbusReadError("connection", `${where}: not connected`);
    client.setID(request.unitId);
    client.setTimeout(timeoutMs);
    try {
      switch (request.functionCode) {
        case 1:
          return (await client.readCoils(request.address, request.quantity)).data;
        case 2:
          return (await client.readDiscreteInputs(request.address, request.quantity)).data;
        case 3:
          return (await client.readHoldingRegisters(request.address, request.quantity)).data;
        case 4:
          return (await client.readInputRegisters(request.address, request.quantity)).data;
      }
    } catch (error) {
      throw classify(error as ModbusSerialError, where);
    }
  }
}
