import { expect, test } from "bun:test";
import { RateLimiter } from "./rate-limit.ts";

test("a bucket allows its capacity, then refills at its rate, per key", () => {
  let now = 0;
  const limiter = new RateLimiter(3, 1, () => now);
  expect([limiter.take("a"), limiter.take("a"), limiter.take("a")]).toEqual([0, 0, 0]);
  expect(limiter.take("a")).toBe(1);
  expect(limiter.take("b")).toBe(0);
  now = 1000;
  expect(limiter.take("a")).toBe(0);
  expect(limiter.take("a")).toBe(1);
  now = 100_000;
  expect([limiter.take("a"), limiter.take("a"), limiter.take("a"), limiter.take("a")]).toEqual([0, 0, 0, 1]);
});
