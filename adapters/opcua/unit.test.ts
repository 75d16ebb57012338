import { describe, expect, test } from "bun:test";
import { DataValue } from "node-opcua-data-value";
import { StatusCodes } from "node-opcua-status-code";
import { DataType, Variant, VariantArrayType } from "node-opcua-variant";
import { ConfigError } from "../../src/config/schema-errors.ts";
import { parseAdapterConfig } from "../../src/adapter-runtime/config.ts";
import adapter from "./index.ts";
import { NamespaceMap, parseNodeId } from "./nodes.ts";
import { parseOpcuaPlant, plantValue, tickOf } from "./plant.ts";
import { OpcuaConfigSchema } from "./schema.ts";
import { DuplicateFilter, qualityOf, sampleOf, variantValue } from "./values.ts";

const target = { assetId: "well", param: "pressure", unit: "bar" };
const source = new Date("2026-01-02T03:04:05.678Z");
const server = new Date("2026-01-02T03:04:06.000Z");
const now = new Date("2026-01-02T03:04:07.000Z");

describe("StatusCode → quality", () => {
  test("severity bits: Good, Uncertain, Bad (and the reserved 11 as Bad)", () => {
    expect(qualityOf(StatusCodes.Good.value)).toBe("GOOD");
    expect(qualityOf(StatusCodes.GoodClamped.value)).toBe("GOOD");
    expect(qualityOf(StatusCodes.UncertainLastUsableValue.value)).toBe("UNCERTAIN");
    expect(qualityOf(StatusCodes.UncertainSensorNotAccurate.value)).toBe("UNCERTAIN");
    expect(qualityOf(StatusCodes.BadNodeIdUnknown.value)).toBe("BAD");
    expect(qualityOf(StatusCodes.BadSensorFailure.value)).toBe("BAD");
    expect(qualityOf(0xc0000000)).toBe("BAD");
  });

  test("a sample: device_time is the source timestamp, server_time in metadata, status text kept", () => {
    const dv = new DataValue({ value: new Variant({ dataType: DataType.Double, value: 1.5 }), statusCode: StatusCodes.UncertainLastUsableValue, sourceTimestamp: source, serverTimestamp: server });
    expect(sampleOf(target, dv, now)).toEqual({
      asset_id: "well", parameter: "pressure", unit: "bar", value: 1.5, quality: "UNCERTAIN",
      device_time: source, time_source: "device", status_text: "UncertainLastUsableValue (0x40900000)",
      metadata: { server_time: server.toISOString() },
    });
  });

  test("Bad: value null whatever the server sent; no source timestamp: gateway time", () => {
    const dv = new DataValue({ value: new Variant({ dataType: DataType.Double, value: 7 }), statusCode: StatusCodes.BadSensorFailure });
    expect(sampleOf(target, dv, now)).toMatchObject({ value: null, quality: "BAD", device_time: now, time_source: "gateway", status_text: "BadSensorFailure (0x808c0000)" });
    expect(sampleOf(target, dv, now).metadata).toBeUndefined();
  });

  test("Good: no status text; NaN is no reading (BAD)", () => {
    const good = new DataValue({ value: new Variant({ dataType: DataType.Float, value: 2 }), sourceTimestamp: source });
    expect(sampleOf(target, good, now).status_text).toBeUndefined();
    const nan = new DataValue({ value: new Variant({ dataType: DataType.Double, value: Number.NaN }), sourceTimestamp: source });
    expect(sampleOf(target, nan, now)).toMatchObject({ value: null, quality: "BAD", error: "value is NaN" });
  });
});

describe("Variant → envelope value", () => {
  const v = (dataType: DataType, value: unknown, arrayType = VariantArrayType.Scalar) => variantValue(new Variant({ dataType, value, arrayType }));
  test("scalars", () => {
    expect(v(DataType.Boolean, true)).toBe(true);
    expect(v(DataType.Int16, -5)).toBe(-5);
    expect(v(DataType.String, "PUMP-07")).toBe("PUMP-07");
    expect(v(DataType.DateTime, source)).toBe(source.toISOString());
    expect(v(DataType.ByteString, Buffer.from("hi"))).toBe("aGk=");
    expect(v(DataType.LocalizedText, { text: "Running", locale: "en" })).toBe("Running");
  });
  test("64-bit integers exact, a decimal string past 2^53", () => {
    expect(v(DataType.Int64, [0xffffffff, 0xfffffffe])).toBe(-2);
    expect(v(DataType.UInt64, [0x00200000, 1])).toBe("9007199254740993");
    expect(v(DataType.UInt64, [0, 42])).toBe(42);
  });
  test("arrays as JSON text; null variant as null", () => {
    expect(v(DataType.Double, new Float64Array([1, 2.5]), VariantArrayType.Array)).toBe("[1,2.5]");
    expect(variantValue(new Variant({ dataType: DataType.Null }))).toBeNull();
  });
});

describe("duplicate filter", () => {
  const sample = (value: number, at = source) => sampleOf(target, new DataValue({ value: new Variant({ dataType: DataType.Double, value }), sourceTimestamp: at }), now);
  test("drops a resend of the last (source timestamp, value); a new timestamp or value passes", () => {
    const filter = new DuplicateFilter(2);
    expect(filter.admit(0, sample(1))).toBe(true);
    expect(filter.admit(0, sample(1))).toBe(false);
    expect(filter.admit(1, sample(1))).toBe(true); // another node
    expect(filter.admit(0, sample(2))).toBe(true);
    expect(filter.admit(0, sample(2, new Date(source.getTime() + 1)))).toBe(true);
    expect(filter.dropped).toBe(1);
  });
  test("samples without a device clock are never dropped", () => {
    const filter = new DuplicateFilter(1);
    const noClock = sampleOf(target, new DataValue({ value: new Variant({ dataType: DataType.Double, value: 1 }) }), now);
    expect(filter.admit(0, noClock)).toBe(true);
    expect(filter.admit(0, noClock)).toBe(true);
  });
});

describe("node ids", () => {
  test("parses ns=, i=, g=, nsu=; malformed ones get an error naming them", () => {
    expect((parseNodeId("ns=2;s=Pressure") as { nodeId: { toString(): string } }).nodeId.toString()).toBe("ns=2;s=Pressure");
    expect((parseNodeId("i=2258") as { nodeId: { toString(): string } }).nodeId.toString()).toBe("ns=0;i=2258");
    expect(parseNodeId("nsu=urn:plant;s=Pressure")).toMatchObject({ namespaceUri: "urn:plant" });
    expect(String(parseNodeId("ns=2;x=Foo"))).toContain('node_id "ns=2;x=Foo" is not an OPC UA node id');
    expect(String(parseNodeId("Pressure"))).toContain("not an OPC UA node id");
    expect(String(parseNodeId("ns=2;s="))).toContain("empty");
    expect(String(parseNodeId("nsu=urn:x;ns=2;s=A"))).toContain("either nsu= or ns=");
  });

  test("namespace indices follow their URI when the server's NamespaceArray changes", () => {
    const map = new NamespaceMap();
    const pressure = parseNodeId("ns=2;s=Pressure") as Exclude<ReturnType<typeof parseNodeId>, Error>;
    const byUri = parseNodeId("nsu=urn:plant;s=Flow") as Exclude<ReturnType<typeof parseNodeId>, Error>;
    map.update(["http://opcfoundation.org/UA/", "urn:server", "urn:plant"]);
    expect(String((map.resolve(pressure) as { nodeId: unknown }).nodeId)).toBe("ns=2;s=Pressure");
    expect(map.update(["http://opcfoundation.org/UA/", "urn:server", "urn:other", "urn:plant"])).toEqual([{ uri: "urn:plant", from: 2, to: 3 }]);
    expect(String((map.resolve(pressure) as { nodeId: unknown }).nodeId)).toBe("ns=3;s=Pressure");
    expect(String((map.resolve(byUri) as { nodeId: unknown }).nodeId)).toBe("ns=3;s=Flow");
    map.update(["http://opcfoundation.org/UA/", "urn:server"]);
    expect(map.resolve(pressure)).toEqual({ unknown: "namespace urn:plant (ns=2 when first seen) is no longer on the server" });
  });
});

describe("config", () => {
  const base = {
    pipeline_id: "p",
    adapter_id: "a",
    protocol: "opcua",
    source: { endpoint: "opc.tcp://plc:4840" },
    mapping: { nodes: [{ node_id: "ns=2;s=A", param: "a" }] },
    output: { asset_id: "well" },
  };
  const parse = (patch: (c: typeof base & Record<string, unknown>) => void) => {
    const c = structuredClone(base) as typeof base & Record<string, unknown>;
    patch(c);
    return parseAdapterConfig(OpcuaConfigSchema, c, adapter.validate as never);
  };
  const errors = (patch: (c: typeof base & Record<string, unknown>) => void) => {
    try {
      parse(patch);
    } catch (error) {
      if (error instanceof ConfigError) return error.fieldErrors;
      throw error;
    }
    return [];
  };

  test("defaults", () => {
    const config = parse(() => undefined) as unknown as { source: Record<string, unknown>; mapping: { nodes: Array<Record<string, unknown>> } };
    expect(config.source).toMatchObject({
      security_mode: "None", auth: "anonymous", mode: "subscription", auto_accept_server_certificate: false, drop_duplicates: true,
      subscription: { publishing_interval_ms: 1000, batch_size: 100, keepalive_count: 10, lifetime_count: 60, max_notifications_per_publish: 2000 },
      polling: { batch_size: 100 },
    });
    expect(config.mapping.nodes[0]).toMatchObject({ queue_size: 1, discard_oldest: true });
  });

  test("errors name their path", () => {
    expect(errors((c) => (c.source.endpoint = "http://plc"))[0]?.path).toBe("source.endpoint");
    expect(errors((c) => Object.assign(c.source, { security_mode: "Sign", security_policy: "None" }))).toEqual([
      { path: "source.security_policy", message: "security_mode Sign needs a policy other than None, e.g. Basic256Sha256" },
    ]);
    expect(errors((c) => Object.assign(c.source, { security_policy: "Basic256Sha256" }))[0]?.path).toBe("source.security_policy");
    expect(errors((c) => Object.assign(c.source, { security_policy: "Basic128Rsa15" }))[0]?.path).toBe("source.security_policy");
    expect(errors((c) => c.mapping.nodes.push({ node_id: "ns=2;s=B", param: "a" }))).toEqual([
      { path: "mapping.nodes[1].param", message: '"a" is already used by mapping.nodes[0] for asset "well"' },
    ]);
    expect(errors((c) => Object.assign(c.mapping.nodes[0]!, { deadband: { type: "relative", value: 1 } }))[0]?.path).toBe("mapping.nodes[0].deadband.type");
    expect(errors((c) => Object.assign(c.source, { subscription: { batch_size: 0 } }))[0]?.path).toBe("source.subscription.batch_size");
    expect(errors((c) => Object.assign(c.source, { auth: { username: "op", password: "${secret:bad name}" } }))[0]?.path).toBe("source.auth.password");
  });

  test("a malformed node id is not a config error: that node alone reports BAD at run time", () => {
    expect(errors((c) => (c.mapping.nodes[0]!.node_id = "ns=2;x=oops"))).toEqual([]);
  });
});

describe("plant", () => {
  const plant = parseOpcuaPlant(
    {
      name: "p",
      epoch: "2024-01-01T00:00:00Z",
      namespaces: ["urn:p"],
      nodes: {
        "ns=2;s=Counter": { type: "Int16", update_ms: 1000, waveform: { kind: "counter", start: 32767, step: 1, every_s: 1 } },
        "ns=1;i=7": { type: "Boolean", waveform: { kind: "square", low: 0, high: 1, period_s: 2 } },
      },
    },
    "p",
  );

  test("values are the waveform at the held tick; integers wrap; timestamps are the tick", () => {
    const [counter, flag] = plant.nodes as [NonNullable<(typeof plant.nodes)[0]>, NonNullable<(typeof plant.nodes)[0]>];
    const epoch = plant.epochMs;
    expect(tickOf(counter, epoch + 1999)).toBe(epoch + 1000);
    expect(plantValue(counter, epoch, epoch)).toBe(32767);
    expect(plantValue(counter, epoch + 1000, epoch)).toBe(-32768);
    expect(plantValue(flag, epoch, epoch)).toBe(true);
    expect(plantValue(flag, epoch + 1000, epoch)).toBe(false);
    expect(flag.browseName).toBe("Node7");
  });

  test("errors name the node", () => {
    const fail = (nodes: Record<string, unknown>) => {
      try {
        parseOpcuaPlant({ name: "p", namespaces: ["urn:p"], nodes }, "plant.yaml");
      } catch (error) {
        return (error as ConfigError).fieldErrors;
      }
      return [];
    };
    expect(fail({ "ns=3;s=X": { type: "Double", waveform: { kind: "constant", value: 1 } } })[0]?.message).toContain("namespace index 3 is not served");
    expect(fail({ "ns=2;s=X": { type: "Double", waveform: { kind: "sine", min: 1 } } })[0]?.path).toBe('nodes["ns=2;s=X"].waveform.max');
    expect(fail({ "ns=2;s=X": { type: "Dub", waveform: { kind: "constant", value: 1 } } })[0]?.path).toBe('nodes["ns=2;s=X"].type');
    expect(fail({ "ns=2;s=X": { type: "String", waveform: { kind: "sine", min: 0, max: 1, period_s: 1 } } })[0]?.message).toContain("constant string");
  });
});
