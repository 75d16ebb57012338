import { describe, expect, test } from "bun:test";
import { defaultPartitioner, murmur2 as clientMurmur2 } from "@platformatic/kafka";
import { murmur2, partitionForKey } from "./partitioner.ts";

describe("partitioner", () => {
  test("murmur2 equals the client's for keys of every length and content", () => {
    const keys = [Buffer.alloc(0), Buffer.from("a"), Buffer.from("ab"), Buffer.from("abc"), Buffer.from("abcd"), Buffer.from("bench-device-0001/tag_001"), Buffer.from("ünïcødé/温度")];
    let seed = 7;
    for (let i = 0; i < 2000; i++) {
      const bytes = Buffer.alloc(i % 67);
      for (let j = 0; j < bytes.length; j++) bytes[j] = (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
      keys.push(bytes);
    }
    for (const key of keys) expect(murmur2(key)).toBe(clientMurmur2(key));
  });

  test("Kafka's published murmur2 vectors (Java client UtilsTest)", () => {
    expect(murmur2(Buffer.from("21"))).toBe(-973932308);
    expect(murmur2(Buffer.from("foobar"))).toBe(-790332482);
    expect(murmur2(Buffer.from("a-little-bit-long-string"))).toBe(-985981536);
    expect(murmur2(Buffer.from("a-little-bit-longer-string"))).toBe(-1486304829);
    expect(murmur2(Buffer.from("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"))).toBe(-58897971);
  });

  test("a keyed record gets the client default partitioner's partition", () => {
    for (const text of ["", "k", "asset0/p0", "bench-device-0099/tag_042", "ünï/温度"]) {
      const key = Buffer.from(text);
      for (const count of [1, 3, 6, 12]) expect(partitionForKey(key, count)).toBe(defaultPartitioner({ topic: "t", key: text }, key) % count);
    }
  });
});
