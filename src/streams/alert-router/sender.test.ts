import { expect, test } from "bun:test";
import { DEFAULT_RETRY } from "./config.ts";
import type { DeliveryOutcome } from "./routing.ts";
import { retryWithinBudget } from "./sender.ts";

const T0 = Date.parse("2026-01-01T00:00:00Z");
const H = 3_600_000;
const retry = (reason: string, after_ms = 60_000): DeliveryOutcome => ({ status: "retry", after_ms, reason });
const job = (attempt: number) => ({ attempt, created_at: new Date(T0).toISOString() });

test.each([
  ["unreachable, attempt 50, 1 h in: keeps waiting for the link", retry("pagerduty unreachable: Unable to connect"), 50, H, "retry"],
  ["SMTP server away (no reply): keeps waiting", retry("SMTP ECONNECTION: connect ECONNREFUSED"), 30, 2 * H, "retry"],
  ["timeout: counts as unreachable", retry("slack unreachable: timed out after 10000 ms"), 20, H, "retry"],
  ["HTTP 503 within max_attempts: retry", retry("HTTP 503: Service Unavailable"), 3, 60_000, "retry"],
  ["HTTP 503 at max_attempts: failed", retry("HTTP 503: Service Unavailable"), DEFAULT_RETRY.max_attempts, 60_000, "failed"],
  ["SMTP 451 at max_attempts: failed", retry("SMTP 451: try later"), DEFAULT_RETRY.max_attempts, 60_000, "failed"],
  ["unreachable past the 24 h budget: failed", retry("webhook unreachable: Unable to connect"), 300, 24 * H, "failed"],
  ["delivered passes through", { status: "delivered" } as DeliveryOutcome, 1, 0, "delivered"],
  ["failed passes through", { status: "failed", reason: "HTTP 400: bad key" } as DeliveryOutcome, 1, 0, "failed"],
] as const)("%s", (_, outcome, attempt, elapsed, want) => {
  expect(retryWithinBudget(outcome, job(attempt), DEFAULT_RETRY, 24 * H, T0 + elapsed).status).toBe(want);
});

test("the last wait ends at the budget, and the reason says why it gave up", () => {
  const near = retryWithinBudget(retry("pagerduty unreachable: x", 300_000), job(90), DEFAULT_RETRY, 24 * H, T0 + 24 * H - 10_000);
  expect(near).toEqual({ status: "retry", after_ms: 10_000, reason: "pagerduty unreachable: x" });
  const over = retryWithinBudget(retry("pagerduty unreachable: x"), job(91), DEFAULT_RETRY, 24 * H, T0 + 24 * H);
  expect(over).toEqual({ status: "failed", reason: "gave up after 91 attempts over 24h (retry budget 24h): pagerduty unreachable: x" });
});
