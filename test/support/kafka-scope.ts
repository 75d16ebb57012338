import { afterAll } from "bun:test";
import { KafkaAdmin } from "../../src/kafka/admin.ts";
import { kafkaConnection } from "./services.ts";

/**
 * For a describe block against real Kafka: an admin client, the topics it creates and the things it
 * starts. After the block, what was started is stopped (last first), then the topics are deleted.
 */
export function kafkaTestScope(afterAllTimeoutMs = 30_000): { admin: KafkaAdmin; created: string[]; cleanup: (() => Promise<unknown>)[] } {
  const admin = new KafkaAdmin(kafkaConnection());
  const created: string[] = [];
  const cleanup: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const stop of cleanup.reverse()) await stop().catch(() => undefined);
    await admin.deleteTopics(created).catch(() => undefined);
    await admin.close();
  }, afterAllTimeoutMs);
  return { admin, created, cleanup };
}
