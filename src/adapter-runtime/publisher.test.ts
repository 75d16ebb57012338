import { describe, expect, test } from "bun:test";
import type { OutgoingRecord } from "../kafka/producer.ts";
import { Publisher, type RecordSender } from "./publisher.ts";

/** A sender whose link can be cut: stands in for the network, not for Kafka's semantics. */
class SwitchableLink implements RecordSender {
  up = true;
  delivered: OutgoingRecord[] = [];
  async send(records: OutgoingRecord[]): Promise<void> {
    await Bun.sleep(1);
    if (!this.up) throw new Error("connection refused");
    this.delivered.push(...records);
  }
}

const records = (from: number, count: number): OutgoingRecord[] =>
  Array.from({ length: count }, (_, i) => ({ topic: "t", key: "k", value: String(from + i) }));

function setup(maxRecords = 1000) {
  const link = new SwitchableLink();
  const log = { sent: 0, dropped: 0, states: [] as string[] };
  const publisher = new Publisher(link, { maxRecords, maxBatch: 50, lingerMs: 1 }, {
    sent: (n) => (log.sent += n),
    dropped: (n) => (log.dropped += n),
    kafkaState: (s) => log.states.push(s),
  });
  return { link, log, publisher };
}

describe("publisher buffer", () => {
  test("delivers everything in order", async () => {
    const { link, publisher, log } = setup();
    for (let i = 0; i < 10; i++) publisher.push(records(i * 30, 30));
    expect(await publisher.flush(2000)).toBe(true);
    expect(link.delivered.map((r) => Number(r.value))).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(log.sent).toBe(300);
  });

  test("buffers while the link is down and delivers after", async () => {
    const { link, publisher, log } = setup();
    link.up = false;
    publisher.push(records(0, 120));
    await Bun.sleep(50);
    expect(publisher.buffered).toBe(120);
    expect(log.states).toContain("down");
    link.up = true;
    expect(await publisher.flush(10_000)).toBe(true);
    expect(link.delivered).toHaveLength(120);
    expect(log.dropped).toBe(0);
    expect(log.states.at(-1)).toBe("ok");
  });

  test("drops the oldest past the bound and counts every one", async () => {
    const { link, publisher, log } = setup(100);
    link.up = false;
    for (let i = 0; i < 5; i++) publisher.push(records(i * 100, 100));
    link.up = true;
    expect(await publisher.flush(10_000)).toBe(true);
    expect(log.dropped + link.delivered.length).toBe(500);
    expect(link.delivered.at(-1)!.value).toBe("499");
    expect(new Set(link.delivered.map((r) => r.value)).size).toBe(link.delivered.length);
  });

  test("flush reports failure at the deadline", async () => {
    const { link, publisher } = setup();
    link.up = false;
    publisher.push(records(0, 10));
    expect(await publisher.flush(300)).toBe(false);
    expect(publisher.buffered).toBe(10);
  });
});
