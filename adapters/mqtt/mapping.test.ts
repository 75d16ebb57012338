import { describe, expect, test } from "bun:test";
import { parseAdapterConfig } from "../../src/adapter-runtime/config.ts";
import { ConfigError } from "../../src/config/schema-errors.ts";
import type { Sample } from "../../src/registry.ts";
import mqttAdapter, { withoutOverlaps } from "./index.ts";
import { evaluate, parseJsonPath } from "./jsonpath.ts";
import { compileRules, parseTimestamp, route } from "./mapping.ts";
import type { MqttConfig } from "./schema.ts";
import { DataType, SparkplugHost, decodePayload, encodePayload, parseSparkplugTopic, rebirthCommand, type SpPayload } from "./sparkplug.ts";
import { compileTemplate, filterCovers, matchTopic, parseTopicPattern, type TopicPattern } from "./topic.ts";

const pattern = (s: string): TopicPattern => {
  const p = parseTopicPattern(s);
  if ("error" in p) throw new Error(p.error);
  return p.pattern;
};

function config(topics: unknown[], source: Record<string, unknown> = {}): MqttConfig {
  return parseAdapterConfig(
    mqttAdapter.configSchema,
    { pipeline_id: "p", adapter_id: "a", protocol: "mqtt", source, mapping: { topics }, output: { asset_id: "default-asset" } },
    mqttAdapter.validate,
  ) as MqttConfig;
}

function configErrors(topics: unknown[], source: Record<string, unknown> = {}): string[] {
  try {
    config(topics, source);
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.fieldErrors.map((e) => `${e.path}: ${e.message}`);
  }
}

function decode(topics: unknown[], topic: string, payload: string | Uint8Array, arrival = new Date("2026-01-02T03:04:05.000Z")) {
  const { rules } = compileRules(config(topics));
  const found = route(rules, topic);
  if (!found) return { unmatched: true as const };
  return found.rule.decode(topic, found.captured, Buffer.from(payload), arrival);
}

const samplesOf = (d: ReturnType<typeof decode>): Sample[] => {
  if (!("samples" in d)) throw new Error(`expected samples, got ${JSON.stringify(d)}`);
  return d.samples;
};

describe("topic patterns with named wildcards", () => {
  test("named wildcards become a plain MQTT filter and capture their segments", () => {
    const p = pattern("site/+asset/+parameter");
    expect(p.filter).toBe("site/+/+");
    expect(p.names).toEqual(["asset", "parameter"]);
    expect(matchTopic(p, "site/pump-1/speed")).toEqual({ asset: "pump-1", parameter: "speed" });
    expect(matchTopic(p, "site/pump-1")).toBeUndefined();
    expect(matchTopic(p, "site/pump-1/speed/x")).toBeUndefined();
    expect(matchTopic(p, "other/pump-1/speed")).toBeUndefined();
  });

  test("# (named or not) matches the parent and any depth; $-topics never match a leading wildcard", () => {
    const p = pattern("plant/#rest");
    expect(p.filter).toBe("plant/#");
    expect(matchTopic(p, "plant/a/b/c")).toEqual({ rest: "a/b/c" });
    expect(matchTopic(p, "plant")).toEqual({ rest: "" });
    expect(matchTopic(pattern("#"), "$SYS/broker/uptime")).toBeUndefined();
    expect(matchTopic(pattern("+/x"), "$SYS/x")).toBeUndefined();
  });

  test("invalid patterns are rejected with a reason", () => {
    for (const bad of ["a/#/b", "a/b+/c", "a/+1x", "a/+x/+x", ""]) expect("error" in parseTopicPattern(bad)).toBe(true);
  });

  test("filter coverage, and overlapping subscriptions are merged at the higher QoS", () => {
    expect(filterCovers("a/#", pattern("a/+x/b"))).toBe(true);
    expect(filterCovers("a/+/b", pattern("a/+x/b"))).toBe(true);
    expect(filterCovers("a/+/c", pattern("a/+x/b"))).toBe(false);
    expect(filterCovers("a/+", pattern("a/#"))).toBe(false);
    expect(withoutOverlaps([{ filter: "a/+/+", qos: 0 }, { filter: "a/json/+", qos: 2 }, { filter: "b/x", qos: 1 }, { filter: "b/x", qos: 0 }])).toEqual([
      { filter: "a/+/+", qos: 2 },
      { filter: "b/x", qos: 1 },
    ]);
  });

  test("templates reject unknown placeholders", () => {
    const ok = compileTemplate("{asset}-{topic}", ["asset", "topic"]);
    expect("template" in ok && ok.template.render({ asset: "p1", topic: "t/x" })).toBe("p1-t/x");
    expect(compileTemplate("{nope}", ["asset"])).toEqual({ error: "unknown placeholder {nope}; available: {asset}" });
  });
});

describe("JSONPath-lite", () => {
  const doc = { data: { v: 1.5, list: [{ x: 1 }, { x: 2 }], "odd.key": true }, n: null };
  const at = (p: string) => {
    const parsed = parseJsonPath(p);
    if ("error" in parsed) throw new Error(parsed.error);
    return evaluate(parsed.path, doc);
  };
  test("dotted paths, indexes, quoted keys, negatives", () => {
    expect(at("$")).toBe(doc);
    expect(at("$.data.v")).toBe(1.5);
    expect(at("$.data.list[1].x")).toBe(2);
    expect(at("$.data.list[-1].x")).toBe(2);
    expect(at("$.data['odd.key']")).toBe(true);
    expect(at("$.n")).toBeNull();
    expect(at("$.data.missing")).toBeUndefined();
    expect(at("$.data.v.deeper")).toBeUndefined();
    expect(at("$.data.list.x")).toBeUndefined();
    expect(at("$.toString")).toBeUndefined();
  });
  test("bad paths", () => {
    for (const bad of ["data.v", "$.", "$[x]", "$.a b"]) expect("error" in parseJsonPath(bad)).toBe(true);
  });
});

describe("timestamps", () => {
  const iso = (d: Date | string) => (typeof d === "string" ? d : d.toISOString());
  test("auto: ISO strings, and epoch numbers by magnitude", () => {
    expect(iso(parseTimestamp("2026-03-01T10:00:00Z", "auto"))).toBe("2026-03-01T10:00:00.000Z");
    expect(iso(parseTimestamp(1772359200, "auto"))).toBe("2026-03-01T10:00:00.000Z");
    expect(iso(parseTimestamp(1772359200123, "auto"))).toBe("2026-03-01T10:00:00.123Z");
    expect(iso(parseTimestamp(1772359200123456, "auto"))).toBe("2026-03-01T10:00:00.123Z");
    expect(iso(parseTimestamp("1772359200123", "auto"))).toBe("2026-03-01T10:00:00.123Z");
    expect(iso(parseTimestamp(1772359200123, "epoch_ms"))).toBe("2026-03-01T10:00:00.123Z");
  });
  test("garbage and implausible times are errors", () => {
    expect(typeof parseTimestamp("yesterday", "auto")).toBe("string");
    expect(typeof parseTimestamp(true, "auto")).toBe("string");
    expect(typeof parseTimestamp(1772359200123, "epoch_s")).toBe("string"); // year 58000
    expect(typeof parseTimestamp(5, "iso")).toBe("string");
  });
});

describe("payload mapping", () => {
  test("plain number: asset and parameter from the topic, gateway time", () => {
    const [s] = samplesOf(decode([{ topic: "site/+asset/+parameter", format: "number", unit: "rpm" }], "site/pump-1/speed", " 1450.5\n"));
    expect(s).toEqual({
      asset_id: "pump-1",
      parameter: "speed",
      value: 1450.5,
      quality: "GOOD",
      device_time: new Date("2026-01-02T03:04:05.000Z"),
      time_source: "gateway",
      unit: "rpm",
    });
  });

  test("plain number: anything else is dead-lettered", () => {
    for (const bad of ["abc", "", "1,5", "NaN", "Infinity", "0x10"]) {
      expect(decode([{ topic: "t", format: "number" }], "t", bad)).toMatchObject({ dead: { reason: "not_a_number" } });
    }
  });

  test("JSON with value, timestamp, quality and unit paths: device time", () => {
    const rule = { topic: "plant/+asset", parameter: "temperature", value: "$.data.v", timestamp: "$.data.ts", quality: "$.q", unit: "$.meta.unit" };
    const [s] = samplesOf(decode([rule], "plant/boiler-1", JSON.stringify({ data: { v: 88.5, ts: "2026-01-02T03:00:00.000Z" }, q: "uncertain", meta: { unit: "degC" } })));
    expect(s).toMatchObject({ asset_id: "boiler-1", parameter: "temperature", value: 88.5, quality: "UNCERTAIN", unit: "degC", time_source: "device" });
    expect(s!.device_time.toISOString()).toBe("2026-01-02T03:00:00.000Z");
  });

  test("quality codes through quality_map, booleans, unknown codes", () => {
    const rule = { topic: "q", parameter: "p", value: "$.v", quality: "$.q", quality_map: { "192": "GOOD", "0": "BAD" } };
    expect(samplesOf(decode([rule], "q", '{"v":1,"q":192}'))[0]!.quality).toBe("GOOD");
    expect(samplesOf(decode([rule], "q", '{"v":1,"q":0}'))[0]!.quality).toBe("BAD");
    expect(samplesOf(decode([rule], "q", '{"v":1,"q":false}'))[0]!.quality).toBe("BAD");
    expect(samplesOf(decode([rule], "q", '{"v":1}'))[0]!.quality).toBe("GOOD");
    expect(samplesOf(decode([rule], "q", '{"v":1,"q":7}'))[0]).toMatchObject({ quality: "UNCERTAIN", status_text: "unrecognized quality 7" });
  });

  test("JSON values map: several readings per message; strings, booleans and null values", () => {
    const rule = { topic: "line/+asset/state", values: { running: "$.run", mode: "$.mode", speed: "$.s[0]" } };
    const samples = samplesOf(decode([rule], "line/l1/state", '{"run":true,"mode":"auto","s":[null]}'));
    expect(samples.map((s) => [s.asset_id, s.parameter, s.value, s.quality])).toEqual([
      ["l1", "running", true, "GOOD"],
      ["l1", "mode", "auto", "GOOD"],
      ["l1", "speed", null, "BAD"],
    ]);
  });

  test("defaults: asset from output.asset_id, parameter = topic, value = whole document", () => {
    const [s] = samplesOf(decode([{ topic: "raw/+" }], "raw/x", "42"));
    expect(s).toMatchObject({ asset_id: "default-asset", parameter: "raw/x", value: 42 });
  });

  test("malformed JSON payloads are dead-lettered with a reason", () => {
    const rule = { topic: "j", parameter: "p", value: "$.v", timestamp: "$.t" };
    expect(decode([rule], "j", "{not json")).toMatchObject({ dead: { reason: "malformed_json" } });
    expect(decode([rule], "j", '{"t":1772359200}')).toMatchObject({ dead: { reason: "missing_field", message: "value $.v not in payload" } });
    expect(decode([rule], "j", '{"v":{"a":1},"t":1772359200}')).toMatchObject({ dead: { reason: "bad_value" } });
    expect(decode([rule], "j", '{"v":1}')).toMatchObject({ dead: { reason: "missing_field", message: "timestamp $.t not in payload" } });
    expect(decode([rule], "j", '{"v":1,"t":"noon"}')).toMatchObject({ dead: { reason: "bad_timestamp" } });
  });

  test("an empty asset or parameter (empty topic segment) is dead-lettered, not sent", () => {
    expect(decode([{ topic: "s/+asset/+parameter", format: "number" }], "s//speed", "1")).toMatchObject({ dead: { reason: "missing_field", message: 'asset_id is empty (from topic "s//speed")' } });
    expect(decode([{ topic: "s/+asset/+parameter", format: "number" }], "s/a/", "1")).toMatchObject({ dead: { reason: "missing_field" } });
  });

  test("first matching rule wins", () => {
    const rules = [
      { topic: "s/special/+parameter", format: "number", asset_id: "special" },
      { topic: "s/+asset/+parameter", format: "number" },
    ];
    expect(samplesOf(decode(rules, "s/special/x", "1"))[0]!.asset_id).toBe("special");
    expect(samplesOf(decode(rules, "s/other/x", "1"))[0]!.asset_id).toBe("other");
    expect(decode(rules, "elsewhere", "1")).toEqual({ unmatched: true });
  });
});

describe("config validation names each field", () => {
  test("bad rules", () => {
    expect(configErrors([{ topic: "a/#/b" }])).toEqual(['mapping.topics[0].topic: "#" must be the last segment']);
    expect(configErrors([{ topic: "a/+x", asset_id: "{y}" }])).toEqual(["mapping.topics[0].asset_id: unknown placeholder {y}; available: {x}, {topic}"]);
    expect(configErrors([{ topic: "a", format: "number", value: "$.v" }])).toEqual(["mapping.topics[0].value: needs format json (a number payload has no fields)"]);
    expect(configErrors([{ topic: "a", value: "v" }])[0]).toContain("mapping.topics[0].value");
    expect(configErrors([{ topic: "a", quality: "GREAT" }])[0]).toContain("mapping.topics[0].quality: expected a JSON path or one of GOOD");
    expect(configErrors([{ topic: "a", format: "sparkplug_b" }])[0]).toContain("must be under spBv1.0/");
    expect(configErrors([{ topic: "a/b" }], { subscriptions: [{ topic: "c/#" }] })).toEqual(["mapping.topics[0].topic: no subscription in source.subscriptions delivers a/b"]);
  });

  test("password secrets must resolve; TLS key with cert", () => {
    expect(configErrors([{ topic: "a" }], { username: "u", password: "${secret:mqtt_missing_for_test}" })[0]).toContain(
      "source.password: secret \"mqtt_missing_for_test\" not found: set SECRET_MQTT_MISSING_FOR_TEST",
    );
    expect(configErrors([{ topic: "a" }], { tls: { cert: "/x.pem" } })).toEqual(["source.tls.key: a client certificate needs its key"]);
  });
});

describe("Sparkplug B", () => {
  const host = () =>
    new SparkplugHost({
      nodeAsset: (compileTemplate("{group_id}/{edge_node_id}", ["group_id", "edge_node_id"]) as { template: never }).template,
      deviceAsset: (compileTemplate("{edge_node_id}/{device_id}", ["group_id", "edge_node_id", "device_id"]) as { template: never }).template,
      includeControlMetrics: false,
    });
  const t = (topic: string) => {
    const parsed = parseSparkplugTopic(topic);
    if ("error" in parsed) throw new Error(parsed.error);
    return parsed;
  };
  const roundTrip = (p: SpPayload) => decodePayload(encodePayload(p));
  const arrival = new Date("2026-01-02T00:00:00Z");
  const T0 = Date.UTC(2026, 0, 1);

  const nbirth = roundTrip({
    timestamp: T0,
    seq: 0,
    metrics: [
      { name: "bdSeq", datatype: DataType.Int64, long_value: 3 },
      { name: "Node Control/Rebirth", datatype: DataType.Boolean, boolean_value: false },
      { name: "Temperature", alias: 1, datatype: DataType.Float, float_value: 20.5, properties: { keys: ["engUnit"], values: [{ type: 12, string_value: "degC" }] } },
      { name: "Count", alias: 2, datatype: DataType.Int16, int_value: 0xfffe },
      { name: "Big", alias: 3, datatype: DataType.Int64, long_value: "-5" },
    ],
  });

  test("topics", () => {
    expect(parseSparkplugTopic("spBv1.0/G/DDATA/N/D")).toEqual({ group_id: "G", type: "DDATA", edge_node_id: "N", device_id: "D" });
    expect("error" in parseSparkplugTopic("spBv1.0/G/DDATA/N")).toBe(true);
    expect("error" in parseSparkplugTopic("spBv1.0/G/NDATA/N/D")).toBe(true);
    expect("error" in parseSparkplugTopic("spBv1.0/G/XDATA/N")).toBe(true);
  });

  test("NBIRTH: values with units and signed types; control metrics left out; aliases resolve NDATA", () => {
    const h = host();
    const birth = h.handle(t("spBv1.0/G/NBIRTH/N"), nbirth, arrival);
    expect(birth.errors).toEqual([]);
    expect(birth.samples.map((s) => [s.asset_id, s.parameter, s.value, s.unit])).toEqual([
      ["G/N", "Temperature", 20.5, "degC"],
      ["G/N", "Count", -2, undefined],
      ["G/N", "Big", -5, undefined],
    ]);
    expect(birth.samples[0]!.device_time.getTime()).toBe(T0);
    expect(birth.samples[0]!.time_source).toBe("device");

    const data = h.handle(t("spBv1.0/G/NDATA/N"), roundTrip({ timestamp: T0 + 1000, seq: 1, metrics: [{ alias: 1, timestamp: T0 + 900, float_value: 21 }] }), arrival);
    expect(data.errors).toEqual([]);
    expect(data.rebirth).toBeUndefined();
    expect(data.samples).toEqual([
      { asset_id: "G/N", parameter: "Temperature", value: 21, quality: "GOOD", device_time: new Date(T0 + 900), time_source: "device", unit: "degC" },
    ]);
  });

  test("DBIRTH/DDATA on the node's sequence; a gap is an error plus a rebirth request; seq wraps at 255", () => {
    const h = host();
    h.handle(t("spBv1.0/G/NBIRTH/N"), roundTrip({ ...nbirth, seq: 254 }), arrival);
    const dbirth = h.handle(t("spBv1.0/G/DBIRTH/N/D1"), roundTrip({ seq: 255, metrics: [{ name: "Flow", alias: 10, datatype: DataType.Double, double_value: 1.25 }] }), arrival);
    expect(dbirth.samples.map((s) => [s.asset_id, s.parameter, s.value, s.time_source])).toEqual([["N/D1", "Flow", 1.25, "gateway"]]);
    const ok = h.handle(t("spBv1.0/G/DDATA/N/D1"), roundTrip({ seq: 0, metrics: [{ alias: 10, double_value: 2.5 }] }), arrival);
    expect(ok.errors).toEqual([]);
    expect(ok.samples[0]).toMatchObject({ asset_id: "N/D1", parameter: "Flow", value: 2.5 });
    const gap = h.handle(t("spBv1.0/G/DDATA/N/D1"), roundTrip({ seq: 3, metrics: [{ alias: 10, double_value: 3.5 }] }), arrival);
    expect(gap.errors).toEqual([{ type: "protocol", message: "sequence gap from G/N: expected seq 1, got 3 (DDATA)" }]);
    expect(gap.rebirth).toEqual({ group_id: "G", edge_node_id: "N", reason: "sequence gap: expected 1, got 3" });
    expect(gap.samples[0]!.value).toBe(3.5); // the data itself is still good
    expect(h.handle(t("spBv1.0/G/DDATA/N/D1"), roundTrip({ seq: 4, metrics: [{ alias: 10, double_value: 4 }] }), arrival).errors).toEqual([]);
  });

  test("an unknown alias (no birth seen) dead-letters the message and asks for a rebirth", () => {
    const h = host();
    const r = h.handle(t("spBv1.0/G/NDATA/N"), roundTrip({ seq: 7, metrics: [{ alias: 1, float_value: 1 }] }), arrival);
    expect(r.dead).toEqual({ reason: "sparkplug_unknown_alias", message: "NDATA from G/N: alias 1 not in a birth certificate" });
    expect(r.rebirth?.reason).toBe("metric alias not known from a birth");
    // Named metrics need no birth.
    expect(h.handle(t("spBv1.0/G/NDATA/N"), roundTrip({ seq: 8, metrics: [{ name: "X", datatype: DataType.Boolean, boolean_value: true }] }), arrival).samples[0]).toMatchObject({ parameter: "X", value: true });
  });

  test("DDEATH and NDEATH mark the known metrics BAD; a stale NDEATH (other bdSeq) is ignored", () => {
    const h = host();
    h.handle(t("spBv1.0/G/NBIRTH/N"), nbirth, arrival);
    h.handle(t("spBv1.0/G/DBIRTH/N/D1"), roundTrip({ seq: 1, metrics: [{ name: "Flow", alias: 10, datatype: DataType.Double, double_value: 1 }] }), arrival);
    const ddeath = h.handle(t("spBv1.0/G/DDEATH/N/D1"), roundTrip({ seq: 2 }), arrival);
    expect(ddeath.samples).toEqual([{ asset_id: "N/D1", parameter: "Flow", value: null, quality: "BAD", device_time: arrival, time_source: "gateway", error: "device offline (DDEATH)" }]);
    expect(h.handle(t("spBv1.0/G/NDEATH/N"), roundTrip({ metrics: [{ name: "bdSeq", datatype: DataType.Int64, long_value: 2 }] }), arrival).samples).toEqual([]);
    const ndeath = h.handle(t("spBv1.0/G/NDEATH/N"), roundTrip({ metrics: [{ name: "bdSeq", datatype: DataType.Int64, long_value: 3 }] }), arrival);
    expect(ndeath.samples.map((s) => [s.parameter, s.quality, s.error])).toEqual([
      ["Temperature", "BAD", "edge node offline (NDEATH)"],
      ["Count", "BAD", "edge node offline (NDEATH)"],
      ["Big", "BAD", "edge node offline (NDEATH)"],
    ]);
  });

  test("is_null, UInt64 beyond 2^53, DateTime, unsupported types reported once", () => {
    const h = host();
    const r = h.handle(
      t("spBv1.0/G/NBIRTH/N"),
      roundTrip({
        seq: 0,
        metrics: [
          { name: "N", datatype: DataType.Double, is_null: true },
          { name: "U", datatype: DataType.UInt64, long_value: "18446744073709551615" },
          { name: "When", datatype: DataType.DateTime, long_value: T0 },
          { name: "Blob", datatype: DataType.Bytes, bytes_value: new Uint8Array([1]) },
        ],
      }),
      arrival,
    );
    expect(r.samples.map((s) => [s.parameter, s.value, s.quality])).toEqual([
      ["N", null, "BAD"],
      ["U", "18446744073709551615", "GOOD"],
      ["When", "2026-01-01T00:00:00.000Z", "GOOD"],
    ]);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]!.message).toContain('"Blob" skipped');
  });

  test("the rebirth command is an NCMD with Node Control/Rebirth = true", () => {
    const cmd = rebirthCommand("G", "N", T0);
    expect(cmd.topic).toBe("spBv1.0/G/NCMD/N");
    const decoded = decodePayload(cmd.payload);
    expect(decoded.metrics?.[0]).toMatchObject({ name: "Node Control/Rebirth", datatype: DataType.Boolean, boolean_value: true });
  });

  test("garbage bytes do not decode", () => {
    expect(() => decodePayload(new Uint8Array([0x0a, 0xff, 0xff, 0xff]))).toThrow();
  });
});
