import { afterAll, describe, expect, test } from "bun:test";
import { kafkaConnection, kafkaUp, uniqueName } from "../../test/support/services.ts";
import { KafkaAdmin } from "../kafka/admin.ts";
import { ReliableProducer } from "../kafka/producer.ts";
import { DlqBrowser } from "./dlq-browser.ts";

describe.skipIf(!kafkaUp)("DLQ browser against Kafka", () => {
  const admin = new KafkaAdmin(kafkaConnection());
  const topic = uniqueName("dlq.ui-test");
  afterAll(async () => {
    await admin.deleteTopics([topic]).catch(() => undefined);
    await admin.close();
  });

  test("the newest records of a DLQ topic, newest first, nothing consumed", async () => {
    await admin.createTopic(topic, 2);
    const producer = new ReliableProducer(kafkaConnection(), "test");
    try {
      for (let i = 0; i < 5; i++) {
        await Bun.sleep(2); // distinct record times: "newest" orders by them across partitions
        await producer.send([{ topic, key: `k${i}`, partition: i % 2, value: JSON.stringify({ reason: "schema_invalid", validation_failure_reason: `bad ${i}`, raw_base64: Buffer.from(`{"n":${i}}`).toString("base64") }) }]);
      }
    } finally {
      await producer.close();
    }
    const browser = new DlqBrowser(kafkaConnection(), () => admin.listTopics());
    expect(await browser.topics()).toContain(topic);
    const latest = await browser.latest(topic, 2);
    expect(latest.map((e) => e.message)).toEqual(["bad 4", "bad 3"]);
    expect(latest[0]!.raw).toBe('{\n  "n": 4\n}');
    // Reading again gives the same: the browser does not consume.
    expect((await browser.latest(topic, 2)).map((e) => e.key)).toEqual(["k4", "k3"]);
    await expect(browser.latest("telemetry.raw", 1)).rejects.toThrow("not a DLQ topic");
  });
});
