import type { AdapterDefinition } from "./registry.ts";
import modbusTcp from "../adapters/modbus-tcp/index.ts";

/** The adapter registry: one line per protocol. */
export const ADAPTERS: readonly AdapterDefinition[] = [modbusTcp] as AdapterDefinition[];
