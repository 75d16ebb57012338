import type { FieldError } from "../../src/config/schema-errors.ts";
import type { Logger } from "../../src/log/logger.ts";
import { defineAdapter, type AdapterContext, type Sample } from "../../src/registry.ts";
import { compileUnits, type CompiledUnit, type UnitInput } from "../modbus/mapping.ts";
import { ConnectionPoller, type PollerOptions } from "../modbus/poller.ts";
import type { SerialPortOptions } from "../serial/port.ts";
import { ModbusRtuConfigSchema, type ModbusRtuConfig } from "./schema.ts";
import { ModbusRtuTransport } from "./transport.ts";

/** A dead slave is probed at most once per this many response timeouts, so it costs the bus ≤ 10 %. */
const DEAD_UNIT_PROBE_TIMEOUTS = 10;

interface PlannedBus {
  units: CompiledUnit[];
  timeouts: Map<number, number>;
}

function plan(config: ModbusRtuConfig): { bus: PlannedBus; errors: FieldError[] } {
  const { source, mapping } = config;
  const errors: FieldError[] = [];
  if (source.unit_id !== undefined && source.units) errors.push({ path: "source.unit_id", message: "use either source.unit_id or source.units, not both" });
  const units: NonNullable<typeof source.units> = source.units ?? (source.unit_id === undefined ? [] : [{ unit_id: source.unit_id }]);
  if (units.length === 0) errors.push({ path: "source", message: "expected source.unit_id (one slave) or source.units (several on the bus)" });
  const seen = new Set<number>();
  const timeouts = new Map<number, number>();
  units.forEach((unit, u) => {
    if (seen.has(unit.unit_id)) errors.push({ path: `source.units[${u}].unit_id`, message: `unit ${unit.unit_id} is listed twice` });
    seen.add(unit.unit_id);
    if (unit.timeout_ms !== undefined) timeouts.set(unit.unit_id, unit.timeout_ms);
  });
  const inputs: UnitInput[] = units.map((unit, u) => ({
    unitId: unit.unit_id,
    assetId: unit.asset_id ?? config.output.asset_id,
    registers: unit.registers ?? mapping.registers,
    path: unit.registers ? `source.units[${u}].registers` : "mapping.registers",
  }));
  const compiled = compileUnits(inputs, mapping.addressing, source.workarounds, source, "source.max_read_registers");
  errors.push(...compiled.errors);
  if (errors.length === 0 && compiled.units.every((u) => u.fields.size === 0)) errors.push({ path: "mapping.registers", message: "expected at least one register" });
  // Units sharing mapping.registers would report the same mistake once per unit.
  const unique = [...new Map(errors.map((e) => [`${e.path}\n${e.message}`, e])).values()];
  return { bus: { units: compiled.units, timeouts }, errors: unique };
}

function slowestTimeout(config: ModbusRtuConfig, bus: PlannedBus): number {
  return Math.max(config.source.timeout_ms, ...bus.timeouts.values());
}

function pollerOptions(config: ModbusRtuConfig, bus: PlannedBus): PollerOptions {
  return {
    pollIntervalMs: config.poll_interval_ms,
    timeoutMs: config.source.timeout_ms,
    maxRetries: config.retry_policy.max_retries,
    backoffMs: config.retry_policy.backoff_ms,
    // Unlike TCP, where each device has its own connection, every probe of a dead slave holds up
    // the whole bus for a timeout: probe it at most once per 10 timeouts.
    maxBackoffMs: Math.max(config.retry_policy.backoff_ms, config.poll_interval_ms, DEAD_UNIT_PROBE_TIMEOUTS * slowestTimeout(config, bus)),
    workarounds: config.source.workarounds,
  };
}

function serialOptions(config: ModbusRtuConfig): SerialPortOptions {
  const { source } = config;
  return { path: source.device, baudRate: source.baud_rate, parity: source.parity, dataBits: source.data_bits, stopBits: source.stop_bits };
}

function transport(config: ModbusRtuConfig, bus: PlannedBus, log: Logger): ModbusRtuTransport {
  return new ModbusRtuTransport({
    serial: serialOptions(config),
    unitTimeoutsMs: bus.timeouts,
    ...(config.source.inter_frame_delay_ms === undefined ? {} : { interFrameMs: config.source.inter_frame_delay_ms }),
    // After a request and its retries all time out, the slave's other reads in that pass are skipped.
    presumeDeadAfterTimeouts: config.retry_policy.max_retries + 1,
    deadUnitWindowMs: Math.min(config.retry_policy.backoff_ms, config.poll_interval_ms) / 2,
    onWarning: (message) => log.warn({ device: config.source.device }, message),
  });
}

export default defineAdapter({
  protocol: "modbus_rtu",
  version: "1.0.0",
  stability: "beta",
  description: "Polls Modbus RTU slaves on a serial line (RS-485/RS-232, function codes 1-4), sharing the Modbus TCP adapter's decoding and request merging",
  configSchema: ModbusRtuConfigSchema,
  validate: (config) => plan(config).errors,
  create(config, context: AdapterContext) {
    const { bus } = plan(config);
    const wire = transport(config, bus, context.log);
    context.log.info({ bus: wire.describe(), units: bus.units.map((u) => u.unitId) }, "Modbus RTU bus");
    const poller = new ConnectionPoller(wire, bus.units, pollerOptions(config, bus), context);
    return {
      async start() {
        poller.start();
      },
      async stop() {
        await poller.stop();
      },
    };
  },
  async connectionTest(config, log: Logger) {
    const samples: Sample[] = [];
    const { bus } = plan(config);
    const poller = new ConnectionPoller(transport(config, bus, log), bus.units, { ...pollerOptions(config, bus), maxRetries: 0 }, {
      log,
      emit: (s) => samples.push(...s),
      recordError: () => undefined,
      readLatency: { observe: () => undefined } as never,
      heartbeat: () => undefined,
    });
    await poller.pollOnce();
    return samples;
  },
  // One pass over the bus can take a timeout per slave and retry when every slave is silent.
  heartbeatTimeoutMs(config) {
    const { bus } = plan(config);
    const worstPass = bus.units.length * (config.retry_policy.max_retries + 1) * slowestTimeout(config, bus);
    return Math.max(30_000, config.poll_interval_ms * 5, 2 * worstPass + config.poll_interval_ms);
  },
});
