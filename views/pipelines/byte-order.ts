/**
 * The byte-order preview: the raw words of each multi-register field, read once from the device,
 * decoded in all four byte/word orders side by side, so an engineer sees which one gives the
 * plausible value. Reads exactly like the adapter (same planner, same codec) but publishes nothing.
 */
import { BYTE_ORDERS, decodeField, type ByteOrder, type FieldSpec } from "../../adapters/modbus/codec.ts";
import { compileUnits, type CompiledField } from "../../adapters/modbus/mapping.ts";
import { splitResponse } from "../../adapters/modbus/plan.ts";
import type { ModbusTcpConfig } from "../../adapters/modbus-tcp/schema.ts";
import { ModbusTcpTransport } from "../../adapters/modbus-tcp/transport.ts";
import { formatValue } from "../format.ts";

export interface OrderPreview {
  /** Config key of the register, e.g. "40001". */
  key: string;
  /** Position of the field in its key's list (0 for a single field). */
  index: number;
  param: string;
  words: number[];
  configured: ByteOrder;
  orders: Array<{ order: ByteOrder; value: string }>;
}

/** Fields whose value depends on the byte order: registers, not coils; not single bits. */
export function ordersMatter(spec: FieldSpec, functionCode: number): boolean {
  return (functionCode === 3 || functionCode === 4) && spec.type !== "bool" && spec.bit === undefined && spec.bits === undefined;
}

/** Pure: one field's words in each order. A decode that fails shows why instead of a value. */
export function decodeAllOrders(spec: FieldSpec, words: number[]): Array<{ order: ByteOrder; value: string }> {
  return BYTE_ORDERS.map((order) => {
    try {
      return { order, value: formatValue(decodeField({ ...spec, byteOrder: order }, words)) };
    } catch (error) {
      return { order, value: `(${(error as Error).message})` };
    }
  });
}

const fieldIndex = (field: CompiledField) => Number(field.id.slice(field.id.lastIndexOf("#") + 1));

/** Reads the first device of a Modbus TCP config once. Throws on a connection failure. */
export async function previewByteOrders(config: ModbusTcpConfig): Promise<OrderPreview[]> {
  const { source, mapping } = config;
  const connection = source.connections?.[0];
  const host = connection?.host ?? source.host;
  if (!host) return [];
  const port = connection?.port ?? source.port;
  const unit = connection?.units[0];
  const compiled = compileUnits(
    [{ unitId: unit?.unit_id ?? source.unit_id, assetId: config.output.asset_id, registers: unit?.registers ?? mapping.registers, path: "mapping.registers" }],
    mapping.addressing,
    source.workarounds,
    source,
    "source.max_read_registers",
  );
  const planned = compiled.units[0];
  if (!planned) return [];
  const transport = new ModbusTcpTransport(host, port);
  const previews: OrderPreview[] = [];
  try {
    await transport.connect();
    if (source.workarounds.pause_after_connect_ms > 0) await Bun.sleep(source.workarounds.pause_after_connect_ms);
    for (const request of planned.requests) {
      const fields = request.fields.map((slice) => planned.fields.get(slice.id)!).filter((f) => ordersMatter(f.spec, f.functionCode));
      if (fields.length === 0) continue;
      let slices: Map<string, number[]>;
      try {
        slices = splitResponse(request, (await transport.read(request, source.timeout_ms)) as number[]);
      } catch {
        continue; // a rejected read shows up in the connection test's own result
      }
      for (const field of fields) {
        const words = slices.get(field.id) ?? [];
        previews.push({ key: field.key, index: fieldIndex(field), param: field.param, words, configured: field.spec.byteOrder, orders: decodeAllOrders(field.spec, words) });
      }
      if (source.workarounds.pause_between_requests_ms > 0) await Bun.sleep(source.workarounds.pause_between_requests_ms);
    }
  } finally {
    await transport.close();
  }
  return previews;
}
