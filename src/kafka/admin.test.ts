import { afterAll, describe, expect, test } from "bun:test";
import { kafkaConnection, kafkaUp, uniqueName } from "../../test/support/services.ts";
import { createLogger } from "../log/logger.ts";
import { KafkaAdmin } from "./admin.ts";
import { ReliableProducer } from "./producer.ts";
import { configDrift, TOPIC_CATALOGUE, type TopicSpec } from "./catalogue.ts";

const log = createLogger("test", "silent");

describe("catalogue drift (pure)", () => {
  const spec: TopicSpec = { name: "t", partitions: 1, configs: { "retention.ms": "100", "cleanup.policy": "delete" }, description: "" };
  test.each([
    [{ "retention.ms": "100", "cleanup.policy": "delete", "segment.ms": "5" }, []],
    [{ "retention.ms": "200", "cleanup.policy": "delete" }, [{ key: "retention.ms", actual: "200", expected: "100" }]],
    [{ "cleanup.policy": "delete" }, [{ key: "retention.ms", actual: null, expected: "100" }]],
  ])("%o", (actual, drift) => {
    expect(configDrift(spec, actual)).toEqual(drift);
  });

  test("the seed's retention policies", () => {
    const retention = (name: string) => Number(TOPIC_CATALOGUE.find((t) => t.name === name)!.configs["retention.ms"]);
    const day = 86_400_000;
    expect(retention("telemetry.raw")).toBe(day);
    expect(retention("telemetry.1s")).toBe(7 * day);
    expect(retention("telemetry.1min")).toBe(90 * day);
    expect(retention("telemetry.1hour")).toBe(730 * day);
    expect(retention("alarms.raw")).toBe(7 * 365 * day);
    expect(retention("alarms.clean")).toBe(7 * 365 * day);
  });
});

describe.skipIf(!kafkaUp)("topics apply against Kafka", () => {
  const admin = new KafkaAdmin(kafkaConnection());
  const name = uniqueName("test.catalogue");
  const catalogue: TopicSpec[] = [{ name, partitions: 2, configs: { "cleanup.policy": "delete", "retention.ms": "3600000" }, description: "test" }];
  afterAll(async () => {
    await admin.deleteTopics([name]).catch(() => undefined);
    await admin.close();
  });

  test("the real catalogue applies and a second run changes nothing", async () => {
    await admin.applyCatalogue(log);
    const second = await admin.applyCatalogue(log);
    expect(second.every((r) => r.action === "unchanged")).toBe(true);
    const configs = await admin.topicConfigs(TOPIC_CATALOGUE.map((t) => t.name));
    for (const spec of TOPIC_CATALOGUE) expect(configDrift(spec, configs.get(spec.name) ?? {})).toEqual([]);
  });

  test("creates, leaves alone, and corrects drift", async () => {
    expect((await admin.applyCatalogue(log, catalogue))[0]!.action).toBe("created");
    expect((await admin.partitionCounts([name])).get(name)).toBe(2);
    expect((await admin.applyCatalogue(log, catalogue))[0]!.action).toBe("unchanged");
    await admin.setTopicConfig(name, "retention.ms", "60000");
    // A config change reaches describeConfigs a moment after the alter call returns.
    for (let i = 0; i < 50 && (await admin.topicConfigs([name])).get(name)!["retention.ms"] !== "60000"; i++) await Bun.sleep(100);
    const corrected = await admin.applyCatalogue(log, catalogue);
    expect(corrected[0]).toEqual({ topic: name, action: "corrected", drift: [{ key: "retention.ms", actual: "60000", expected: "3600000" }] });
    expect((await admin.topicConfigs([name])).get(name)!["retention.ms"]).toBe("3600000");
  });

  test("group lag of a group that never committed: every record, per topic; a missing topic is left out", async () => {
    await admin.applyCatalogue(log, catalogue);
    const producer = new ReliableProducer(kafkaConnection(), "test-lag");
    await producer.send(Array.from({ length: 5 }, (_, i) => ({ topic: name, key: `k${i}`, value: String(i) })));
    await producer.close();
    const missing = uniqueName("test.missing");
    expect(await admin.groupLags([{ group: uniqueName("test-lag-group"), topics: [name, missing] }, { group: uniqueName("test-lag-other"), topics: [missing] }])).toEqual([new Map([[name, 5n]]), new Map()]);
  });

  test("ping names the brokers when Kafka is unreachable", async () => {
    const dead = new KafkaAdmin({ bootstrap_servers: ["127.0.0.1:1"], client_id: "t", request_timeout_ms: 1000 });
    await expect(dead.ping(2000)).rejects.toThrow(/Kafka unreachable at 127\.0\.0\.1:1/);
    await dead.close().catch(() => undefined);
  });
});
