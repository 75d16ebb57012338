import type { FieldError } from "../../src/config/schema-errors.ts";
import type { Logger } from "../../src/log/logger.ts";
import { defineAdapter, type Sample } from "../../src/registry.ts";
import { compileUnits, type CompiledUnit, type UnitInput } from "../modbus/mapping.ts";
import { ConnectionPoller, type PollerOptions } from "../modbus/poller.ts";
import { ModbusTcpConfigSchema, type ModbusTcpConfig } from "./schema.ts";
import { ModbusTcpTransport } from "./transport.ts";

interface PlannedConnection {
  host: string;
  port: number;
  units: CompiledUnit[];
}

function plan(config: ModbusTcpConfig): { connections: PlannedConnection[]; errors: FieldError[] } {
  const { source, mapping } = config;
  const errors: FieldError[] = [];
  const connections = source.connections ?? (source.host ? [{ host: source.host, port: source.port, units: [{ unit_id: source.unit_id }] }] : []);
  if (connections.length === 0) errors.push({ path: "source", message: "expected source.host (one device) or source.connections (several)" });
  if (source.host && source.connections) errors.push({ path: "source.host", message: "use either source.host or source.connections, not both" });
  const planned = connections.map((connection, c) => {
    const inputs: UnitInput[] = connection.units.map((unit, u) => ({
      unitId: unit.unit_id,
      assetId: unit.asset_id ?? config.output.asset_id,
      registers: unit.registers ?? mapping.registers,
      path: unit.registers ? `source.connections[${c}].units[${u}].registers` : "mapping.registers",
    }));
    const compiled = compileUnits(inputs, mapping.addressing, source.workarounds, source, "source.max_read_registers");
    errors.push(...compiled.errors);
    return { host: connection.host, port: connection.port, units: compiled.units };
  });
  if (errors.length === 0 && planned.every((c) => c.units.every((u) => u.fields.size === 0))) {
    errors.push({ path: "mapping.registers", message: "expected at least one register" });
  }
  // Units sharing mapping.registers would report the same mistake once per unit.
  const unique = [...new Map(errors.map((e) => [`${e.path}\n${e.message}`, e])).values()];
  return { connections: planned, errors: unique };
}

function pollerOptions(config: ModbusTcpConfig): PollerOptions {
  return {
    pollIntervalMs: config.poll_interval_ms,
    timeoutMs: config.source.timeout_ms,
    maxRetries: config.retry_policy.max_retries,
    backoffMs: config.retry_policy.backoff_ms,
    // Reconnect at least once per poll interval, so a device that comes back is read again within two.
    maxBackoffMs: Math.max(config.retry_policy.backoff_ms, config.poll_interval_ms),
    workarounds: config.source.workarounds,
  };
}

export default defineAdapter({
  protocol: "modbus_tcp",
  version: "1.0.0",
  stability: "stable",
  description: "Polls Modbus TCP devices (function codes 1-4), merging registers into as few reads as the device allows",
  configSchema: ModbusTcpConfigSchema,
  validate: (config) => plan(config).errors,
  create(config, context) {
    const pollers = plan(config).connections.map(
      (c) => new ConnectionPoller(new ModbusTcpTransport(c.host, c.port), c.units, pollerOptions(config), context),
    );
    return {
      async start() {
        for (const poller of pollers) poller.start();
      },
      async stop() {
        await Promise.all(pollers.map((p) => p.stop()));
      },
    };
  },
  async connectionTest(config, log: Logger) {
    const samples: Sample[] = [];
    const options = { ...pollerOptions(config), maxRetries: 0 };
    for (const connection of plan(config).connections) {
      const transport = new ModbusTcpTransport(connection.host, connection.port);
      const poller = new ConnectionPoller(transport, connection.units, options, {
        log,
        emit: (s) => samples.push(...s),
        recordError: () => undefined,
        readLatency: { observe: () => undefined } as never,
        heartbeat: () => undefined,
      });
      await poller.pollOnce();
    }
    return samples;
  },
});
