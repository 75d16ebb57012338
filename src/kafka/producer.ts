import { Producer, ProduceAcks, stringSerializers } from "@platformatic/kafka";
import { baseClientOptions, type KafkaConnection } from "./connection.ts";

export interface OutgoingRecord {
  topic: string;
  key?: string;
  value: string;
  headers?: Record<string, string>;
  partition?: number;
}

/**
 * acks=all and idempotence: a send resolves only once every in-sync replica has the records,
 * and broker-side dedup means a retried batch never duplicates them.
 */
export class ReliableProducer {
  readonly #producer: Producer<string, string, string, string>;

  constructor(connection: KafkaConnection, role: string) {
    this.#producer = new Producer({
      ...baseClientOptions(connection, role),
      idempotent: true,
      acks: ProduceAcks.ALL,
      serializers: stringSerializers,
      autocreateTopics: false,
    });
  }

  async send(records: OutgoingRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.#producer.send({ messages: records });
  }

  close(): Promise<void> {
    return this.#producer.close();
  }
}
