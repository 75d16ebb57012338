import { Consumer, FetchIsolationLevels, MessagesStreamModes, stringDeserializers } from "@platformatic/kafka";
import type { Logger } from "../log/logger.ts";
import { baseClientOptions, type KafkaConnection } from "./connection.ts";
import { toConsumed, type ConsumedRecord } from "./processor.ts";

export interface Tail {
  stop(): Promise<void>;
}

const RETRY_MS = 2000;

/**
 * Follows topics from their end (or beginning), for live views: the tag explorer, SSE feeds, DLQ
 * browsing. It commits nothing and belongs to a throwaway group, so it never affects workers.
 * A broken connection is retried; the view just misses what passed meanwhile.
 */
export function tailTopics(
  connection: KafkaConnection,
  topics: string[],
  onRecord: (record: ConsumedRecord) => void,
  log: Logger,
  from: "latest" | "earliest" = "latest",
  /** Called each time the tail has its positions (again, after a reconnect): records produced from then on reach onRecord. */
  onReady?: () => void,
): Tail {
  let stopped = false;
  let consumer: Consumer<string, string, string, string> | undefined;
  const run = async () => {
    while (!stopped) {
      try {
        consumer = new Consumer({
          ...baseClientOptions(connection, "tail"),
          groupId: `tail-${crypto.randomUUID()}`,
          deserializers: stringDeserializers,
          isolationLevel: FetchIsolationLevels.READ_COMMITTED,
          autocommit: false,
        });
        const stream = await consumer.consume({
          topics,
          mode: from === "latest" ? MessagesStreamModes.LATEST : MessagesStreamModes.EARLIEST,
          autocommit: false,
          maxWaitTime: 250,
        });
        await new Promise<void>((resolve, reject) => {
          if (onReady) stream.once("offsets", onReady);
          stream.on("data", (m) =>
            onRecord(toConsumed(m)),
          );
          stream.on("error", reject);
          stream.on("close", resolve);
        });
      } catch (error) {
        if (!stopped) log.warn({ topics, err: (error as Error).message }, "live tail interrupted; retrying");
      }
      await consumer?.close(true).catch(() => undefined);
      if (!stopped) await Bun.sleep(RETRY_MS);
    }
  };
  const running = run();
  return {
    async stop() {
      stopped = true;
      await consumer?.close(true).catch(() => undefined);
      await Promise.race([running, Bun.sleep(3000)]);
    },
  };
}
