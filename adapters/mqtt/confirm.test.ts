import { describe, expect, test } from "bun:test";
import { NotConfirmedError, Publisher, type RecordSender } from "../../src/adapter-runtime/publisher.ts";
import type { OutgoingRecord } from "../../src/kafka/producer.ts";

/**
 * The runtime extension this adapter needs (Publisher.pushAndConfirm, behind
 * context.emitAndConfirm / context.emitRaw): a promise per push that settles with Kafka's ack.
 */
class Link implements RecordSender {
  up = true;
  delivered: OutgoingRecord[] = [];
  async send(records: OutgoingRecord[]): Promise<void> {
    await Bun.sleep(2);
    if (!this.up) throw new Error("connection refused");
    this.delivered.push(...records);
  }
}

const records = (from: number, count: number): OutgoingRecord[] => Array.from({ length: count }, (_, i) => ({ topic: "t", value: String(from + i) }));

function setup(maxRecords = 1000, maxBatch = 50) {
  const link = new Link();
  const sent: number[] = [];
  const publisher = new Publisher(link, { maxRecords, maxBatch, lingerMs: 1 }, { sent: (n) => sent.push(n), dropped: () => undefined, kafkaState: () => undefined });
  return { link, publisher, sent };
}

describe("Publisher.pushAndConfirm", () => {
  test("resolves only after the sender acknowledged every record of the push, across batches", async () => {
    const { link, publisher } = setup(1000, 7);
    let done = false;
    const confirmed = publisher.pushAndConfirm(records(0, 30)).then(() => (done = true));
    await Bun.sleep(0);
    expect(done).toBe(false);
    await confirmed;
    expect(link.delivered).toHaveLength(30);
  });

  test("waits while Kafka is down, resolves when it is back", async () => {
    const { link, publisher } = setup();
    link.up = false;
    let done = false;
    const confirmed = publisher.pushAndConfirm(records(0, 5)).then(() => (done = true));
    await Bun.sleep(300);
    expect(done).toBe(false);
    link.up = true;
    await confirmed;
    expect(done).toBe(true);
  });

  test("rejects when its records are dropped from a full buffer, and on close", async () => {
    const { link, publisher } = setup(100);
    link.up = false;
    const first = publisher.pushAndConfirm(records(0, 60));
    publisher.push(records(60, 100)); // the oldest go
    await expect(first).rejects.toBeInstanceOf(NotConfirmedError);
    const pending = publisher.pushAndConfirm(records(200, 5));
    publisher.close();
    await expect(pending).rejects.toThrow("publisher closed");
    await expect(publisher.pushAndConfirm(records(300, 1))).rejects.toThrow("publisher closed");
  });

  test("an ignored rejection is not an unhandled rejection; plain push is unchanged", async () => {
    const { link, publisher, sent } = setup(10);
    link.up = false;
    void publisher.pushAndConfirm(records(0, 10));
    publisher.push(records(10, 10));
    link.up = true;
    expect(await publisher.flush(5000)).toBe(true);
    expect(link.delivered.map((r) => r.value)).toEqual(records(10, 10).map((r) => r.value));
    expect(sent.reduce((a, b) => a + b, 0)).toBe(10);
  });
});
