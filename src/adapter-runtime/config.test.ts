import { expect, test } from "bun:test";
import { decodeConfigJson, encodeConfigJson } from "./config.ts";

test("CONFIG_JSON round-trips as base64, and large configs are gzipped to stay under the environment's size limit", () => {
  const small = { pipeline_id: "p", n: 1 };
  expect(decodeConfigJson(encodeConfigJson(small))).toEqual(small);
  expect(Buffer.from(encodeConfigJson(small), "base64").toString()).toBe(JSON.stringify(small));
  const large = { nodes: Array.from({ length: 10_000 }, (_, i) => ({ node_id: `ns=2;s=Tag${i}`, param: `tag_${i}` })) };
  const encoded = encodeConfigJson(large);
  expect(encoded.length).toBeLessThan(128 * 1024);
  expect(decodeConfigJson(encoded)).toEqual(large);
  expect(decodeConfigJson(JSON.stringify(small))).toEqual(small);
});
