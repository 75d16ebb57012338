import { findErrorBy } from "@platformatic/kafka";
import type { KafkaConnection } from "../config/schema.ts";

export type { KafkaConnection };

const RETRY_DELAY_MS = 250;
/** Brief refusals are retried this often, every BRIEF_REFUSAL_DELAY_MS (then every BRIEF_REFUSAL_SLOWER_DELAY_MS), then at the usual delay. */
const BRIEF_REFUSAL_FAST_ATTEMPTS = 13;
const BRIEF_REFUSAL_DELAY_MS = 3;
const BRIEF_REFUSAL_SLOWER_AFTER = 5;
const BRIEF_REFUSAL_SLOWER_DELAY_MS = 10;
/** The fast retries (95 ms), then as many as every client makes at the usual delay. */
export const TRANSACTIONAL_RETRIES = BRIEF_REFUSAL_FAST_ATTEMPTS + 3;

/** Options shared by every client we create, so a broker setting changes in one place. */
export function baseClientOptions(connection: KafkaConnection, role: string) {
  return {
    clientId: `${connection.client_id}-${role}`,
    bootstrapBrokers: connection.bootstrap_servers,
    timeout: connection.request_timeout_ms,
    retries: 3,
    retryDelay: RETRY_DELAY_MS,
  };
}

/**
 * Refusals that last a few ms: a commit still writing its markers, a coordinator finishing a load,
 * and NOT_ENOUGH_REPLICAS, which is how Kafka 4 answers a transactional produce (before produce v12)
 * whose partition check with the transaction coordinator did not go through (0.1-0.5 % of
 * transactions on the bench, each of which then waited 250 ms). A partition really short of in-sync
 * replicas still fails once the retries are spent.
 */
const BRIEF_REFUSALS = ["CONCURRENT_TRANSACTIONS", "COORDINATOR_LOAD_IN_PROGRESS", "NOT_ENOUGH_REPLICAS"];

/**
 * For transactional work. The next transaction's first request often reaches the coordinator while
 * it is still writing the previous commit's markers (a few ms), and is refused with
 * CONCURRENT_TRANSACTIONS. Waiting the usual 250 ms for that put a 250 ms spike on every such batch,
 * and at 10 ms every second transaction waited 10 ms; retried after 3 ms, all but a few pass on the
 * second attempt (BENCHMARKS.md). A broker slower than that gets 10 ms steps, for 95 ms in all, then
 * the usual delay; other errors wait the usual delay. Kafka's Java client likewise retries this error
 * after 20 ms instead of its usual 100 ms.
 */
export function transactionalRetryDelay(attempt: number, error: Error): number {
  const brief = BRIEF_REFUSALS.some((id) => findErrorBy(error, "apiId", id));
  if (!brief || attempt > BRIEF_REFUSAL_FAST_ATTEMPTS) return RETRY_DELAY_MS;
  return attempt <= BRIEF_REFUSAL_SLOWER_AFTER ? BRIEF_REFUSAL_DELAY_MS : BRIEF_REFUSAL_SLOWER_DELAY_MS;
}

/** Whether a failed request may be sent again: every error in it says so (the client's own rule). */
export const retriable = (error: unknown): boolean => !findErrorBy(error as Error, "canRetry", false);

/**
 * Whether a failed transactional request is sent again: if it may be, for at least
 * TRANSACTIONAL_RETRIES attempts and, beyond them, until `budgetMs` has passed. On a broker that has
 * just started, the transaction coordinator answers COORDINATOR_LOAD_IN_PROGRESS for over a second,
 * longer than the attempts alone last (~850 ms).
 */
export function retryTransactional(attempt: number, elapsedMs: number, budgetMs: number, error: unknown): boolean {
  return retriable(error) && (attempt <= TRANSACTIONAL_RETRIES || elapsedMs <= budgetMs);
}

export function connectionFromBootstrap(bootstrap: string | string[], clientId = "gateway"): KafkaConnection {
  const servers = Array.isArray(bootstrap) ? bootstrap : bootstrap.split(",").map((s) => s.trim()).filter(Boolean);
  return { bootstrap_servers: servers, client_id: clientId, request_timeout_ms: 10_000 };
}
