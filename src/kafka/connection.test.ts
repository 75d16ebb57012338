import { describe, expect, test } from "bun:test";
import { NetworkError, ResponseError } from "@platformatic/kafka";
import { retryTransactional, TRANSACTIONAL_RETRIES, transactionalRetryDelay } from "./connection.ts";

/** As the client reports a refused request: one protocol error per refused partition (Kafka API keys and error codes). */
const refused = (apiKey: number, ...codes: number[]) =>
  new ResponseError(apiKey, 4, Object.fromEntries(codes.map((code, i) => [`/topics/0/partitions/${i}`, [code, null]])), undefined);

const PRODUCE = 0;
const ADD_OFFSETS_TO_TXN = 25;
const TXN_OFFSET_COMMIT = 28;

const CONCURRENT_TRANSACTIONS = 51;
const COORDINATOR_LOAD_IN_PROGRESS = 14;
const NOT_ENOUGH_REPLICAS = 19;
const INVALID_RECORD = 87;

describe("transactionalRetryDelay", () => {
  test.each([
    ["CONCURRENT_TRANSACTIONS, first attempt", refused(ADD_OFFSETS_TO_TXN, CONCURRENT_TRANSACTIONS), 1, 3],
    ["CONCURRENT_TRANSACTIONS, fifth attempt", refused(ADD_OFFSETS_TO_TXN, CONCURRENT_TRANSACTIONS), 5, 3],
    ["CONCURRENT_TRANSACTIONS, sixth attempt", refused(ADD_OFFSETS_TO_TXN, CONCURRENT_TRANSACTIONS), 6, 10],
    ["CONCURRENT_TRANSACTIONS, 13th attempt", refused(ADD_OFFSETS_TO_TXN, CONCURRENT_TRANSACTIONS), 13, 10],
    ["CONCURRENT_TRANSACTIONS past the fast attempts", refused(ADD_OFFSETS_TO_TXN, CONCURRENT_TRANSACTIONS), 14, 250],
    ["COORDINATOR_LOAD_IN_PROGRESS", refused(TXN_OFFSET_COMMIT, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_LOAD_IN_PROGRESS), 1, 3],
    ["NOT_ENOUGH_REPLICAS on a transactional produce", refused(PRODUCE, NOT_ENOUGH_REPLICAS, NOT_ENOUGH_REPLICAS), 1, 3],
    ["a brief refusal among other errors", refused(PRODUCE, INVALID_RECORD, NOT_ENOUGH_REPLICAS), 1, 3],
    ["any other refusal", refused(PRODUCE, INVALID_RECORD), 1, 250],
    ["a network error", new NetworkError("Connection closed"), 1, 250],
  ])("%s", (_name, error, attempt, delay) => {
    expect(transactionalRetryDelay(attempt, error)).toBe(delay);
  });

  test("the fast retries fit in about 100 ms, and three more follow at the usual delay", () => {
    const brief = refused(ADD_OFFSETS_TO_TXN, CONCURRENT_TRANSACTIONS);
    let fast = 0;
    for (let attempt = 1; transactionalRetryDelay(attempt, brief) < 250; attempt++) fast += transactionalRetryDelay(attempt, brief);
    expect(fast).toBe(95);
    expect(TRANSACTIONAL_RETRIES).toBe(16);
  });
});

describe("retryTransactional", () => {
  const loading = refused(TXN_OFFSET_COMMIT, COORDINATOR_LOAD_IN_PROGRESS);
  test.each([
    ["a coordinator loading, within the attempts", loading, 5, 50, true],
    ["a coordinator loading past the attempts but within the budget (a broker just started)", loading, 20, 1_500, true],
    ["a coordinator loading past the attempts and the budget", loading, 40, 10_001, false],
    ["past the budget but within the attempts", loading, 3, 20_000, true],
    ["a refusal that says it may not be retried", refused(PRODUCE, INVALID_RECORD), 1, 0, false],
    ["a network error past the attempts, within the budget", new NetworkError("Connection closed"), 17, 5_000, true],
  ])("%s", (_name, error, attempt, elapsed, retried) => {
    expect(retryTransactional(attempt, elapsed, 10_000, error)).toBe(retried);
  });
});
