import type { AdapterDefinition } from "./registry.ts";
import modbusTcp from "../adapters/modbus-tcp/index.ts";
import mqtt from "../adapters/mqtt/index.ts";
import opcua from "../adapters/opcua/index.ts";
import modbusRtu from "../adapters/modbus-rtu/index.ts";
import xbee from "../adapters/xbee/index.ts";

/** The adapter registry: one line per protocol. */
export const ADAPTERS: readonly AdapterDefinition[] = [modbusTcp, mqtt, opcua, modbusRtu, xbee] as AdapterDefinition[];
