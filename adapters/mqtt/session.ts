import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient, type Packet } from "mqtt";
import type { Logger } from "../../src/log/logger.ts";

export interface InboundMessage {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  dup: boolean;
}

export interface SubscriptionSpec {
  filter: string;
  qos: 0 | 1 | 2;
}

export interface SessionOptions {
  url: string;
  client: IClientOptions;
  subscriptions: SubscriptionSpec[];
  log: Logger;
  /**
   * Called for every PUBLISH as it arrives, in order. For QoS 1/2 the returned promise gates the
   * acknowledgement: PUBACK / PUBREC goes to the broker only after it resolves (the data is in
   * Kafka). A rejection means "not written": the connection is dropped so the broker redelivers.
   */
  onMessage(message: InboundMessage): Promise<void> | undefined;
  onConnectionError(error: unknown): void;
  /** Reconnect delay: `client.reconnectPeriod` first, doubling per failed attempt up to this. */
  maxReconnectMs?: number;
}

type SendPacket = (packet: Packet, cb?: (error?: Error) => void, ...rest: unknown[]) => void;

interface Gate {
  generation: number;
  confirmed: Promise<void> | undefined;
}

/**
 * One MQTT connection (mqtt.js) whose QoS 1/2 acknowledgements wait for Kafka.
 *
 * mqtt.js acknowledges a message as soon as its handler returns; its `customHandleAcks` (MQTT 5
 * only) and `handleMessage` hooks can delay that, but they hold up the whole inbound stream:
 * one message at a time, one Kafka round trip each. Here messages are processed the moment they
 * arrive (`packetreceive`), and the outgoing PUBACK / PUBREC is held back until Kafka confirmed
 * that message (and every one before it, so acknowledgements leave in arrival order, as MQTT
 * requires). The broker keeps unacknowledged messages in its persistent session and sends them
 * again after a reconnect, so a crash anywhere before the acknowledgement loses nothing: at
 * least once, duplicates possible. The broker's in-flight window (MQTT 5 receive maximum, or
 * mosquitto's max_inflight_messages for 3.1.1) bounds how many wait.
 *
 * QoS 2 is handled the same way at PUBREC: after it, the broker only holds the PUBREL, so the
 * message must already be in Kafka by then.
 */
export class MqttSession {
  readonly #client: MqttClient;
  readonly #send: SendPacket;
  readonly #gates = new Map<number, Gate>();
  /** Bumped whenever a connection ends: acknowledgements held for it are then dropped (the broker redelivers). */
  #generation = 0;
  /** Tail of the ordered acknowledgement chain; never rejects. */
  #ackTail: Promise<void> = Promise.resolve();
  #pendingAcks = 0;
  #stopping = false;
  #subscribedOnce = false;
  #connectedOnce: (() => void) | undefined;
  readonly #firstReconnectMs: number;
  readonly connected: Promise<void>;
  stats = { received: 0, acked: 0, withheld: 0, unconfirmed: 0, connects: 0 };

  constructor(private readonly options: SessionOptions) {
    this.connected = new Promise((resolve) => (this.#connectedOnce = resolve));
    // log: mqtt.js formats a debug() call per packet even when DEBUG is off; a no-op saves ~3 % CPU.
    this.#client = mqtt.connect(options.url, { log: () => undefined, ...options.client, resubscribe: false });
    this.#firstReconnectMs = options.client.reconnectPeriod ?? 1000;
    const client = this.#client as unknown as { _sendPacket: SendPacket };
    this.#send = client._sendPacket.bind(this.#client);
    client._sendPacket = (packet, cb, ...rest) => {
      if (packet.cmd === "puback" || packet.cmd === "pubrec") {
        this.#hold(packet, cb);
        return;
      }
      this.#send(packet, cb, ...rest);
    };
    this.#client.on("packetreceive", (packet) => {
      if (packet.cmd === "publish") this.#receive(packet);
    });
    this.#client.on("connect", (connack) => {
      this.stats.connects++;
      this.#client.options.reconnectPeriod = this.#firstReconnectMs;
      options.log.info({ session_present: connack.sessionPresent, connects: this.stats.connects }, "MQTT connected");
      this.#connectedOnce?.();
      if (!this.#subscribedOnce || !connack.sessionPresent) this.#subscribe();
    });
    this.#client.on("close", () => {
      this.#generation++;
      this.#gates.clear(); // messages of the lost connection: the broker sends them again
      // mqtt.js retries at a fixed period; a broker refusing us (auth, TLS) is retried ever more slowly.
      const period = this.#client.options.reconnectPeriod ?? 0;
      if (period > 0) this.#client.options.reconnectPeriod = Math.min(period * 2, Math.max(this.#firstReconnectMs, options.maxReconnectMs ?? 60_000));
      if (!this.#stopping) options.log.warn({ pending_acks: this.#pendingAcks }, "MQTT connection closed; reconnecting");
    });
    this.#client.on("error", (error) => {
      options.log.warn({ err: error.message }, "MQTT error");
      options.onConnectionError(error);
    });
  }

  get isConnected(): boolean {
    return this.#client.connected;
  }

  get pendingAcks(): number {
    return this.#pendingAcks;
  }

  #subscribe(): void {
    const map = Object.fromEntries(
      this.options.subscriptions.map((s) => [s.filter, { qos: s.qos, ...(this.options.client.protocolVersion === 5 ? { rh: 1 } : {}) }]),
    );
    this.#client.subscribe(map, (error, granted) => {
      if (error) {
        this.options.log.error({ err: error.message }, "MQTT subscribe failed");
        this.options.onConnectionError(error);
        return;
      }
      this.#subscribedOnce = true;
      const refused = (granted ?? []).filter((g) => g.qos === 128);
      if (refused.length > 0) {
        this.options.log.error({ refused: refused.map((g) => g.topic) }, "MQTT broker refused subscriptions (ACL?)");
        this.options.onConnectionError(new Error(`subscription refused: ${refused.map((g) => g.topic).join(", ")}`));
      }
      this.options.log.info({ subscriptions: (granted ?? []).map((g) => ({ topic: g.topic, qos: g.qos })) }, "MQTT subscribed");
    });
  }

  #receive(packet: IPublishPacket): void {
    if (this.#stopping) return; // not processed, not acknowledged: the broker keeps it for the next run
    this.stats.received++;
    const payload = typeof packet.payload === "string" ? Buffer.from(packet.payload) : Buffer.from(packet.payload.buffer, packet.payload.byteOffset, packet.payload.byteLength);
    const message: InboundMessage = { topic: packet.topic, payload, qos: packet.qos, retain: packet.retain, dup: packet.dup };
    let confirmed: Promise<void> | undefined;
    try {
      confirmed = this.options.onMessage(message);
    } catch (error) {
      this.options.log.error({ err: (error as Error).message, topic: packet.topic }, "message handler threw; not acknowledged");
      confirmed = Promise.reject(error);
      confirmed.catch(() => undefined);
    }
    if (packet.qos > 0 && packet.messageId !== undefined) this.#gates.set(packet.messageId, { generation: this.#generation, confirmed });
  }

  #hold(packet: Packet & { messageId?: number }, cb: ((error?: Error) => void) | undefined): void {
    const gate = packet.messageId === undefined ? undefined : this.#gates.get(packet.messageId);
    if (packet.messageId !== undefined) this.#gates.delete(packet.messageId);
    // mqtt.js handles the next inbound packet once this "send" completes: let it go on now.
    cb?.();
    if (!gate) {
      this.stats.withheld++;
      return;
    }
    this.#pendingAcks++;
    const previous = this.#ackTail;
    this.#ackTail = Promise.all([previous, gate.confirmed]).then(
      () => {
        this.#pendingAcks--;
        if (gate.generation === this.#generation && this.#client.connected) {
          this.#send(packet);
          this.stats.acked++;
        } else {
          this.stats.withheld++;
        }
      },
      (error: unknown) => {
        this.#pendingAcks--;
        this.stats.unconfirmed++;
        if (gate.generation !== this.#generation) return;
        // Not in Kafka: the broker must send it again, which it does only on a new connection.
        this.#generation++;
        this.options.log.error({ err: (error as Error)?.message }, "a QoS 1/2 message was not confirmed by Kafka; reconnecting so the broker redelivers");
        this.#client.stream?.destroy();
      },
    );
  }

  publish(topic: string, payload: Uint8Array, qos: 0 | 1 = 0): void {
    if (!this.#client.connected) return;
    this.#client.publish(topic, Buffer.from(payload), { qos });
  }

  /**
   * Stops taking messages, waits (up to `deadlineMs`) for the acknowledgements of those already
   * taken — they go out once Kafka confirms — then disconnects cleanly. The session stays on the
   * broker: what arrives meanwhile is kept for the next start.
   */
  async stop(deadlineMs: number): Promise<{ pending_acks: number }> {
    this.#stopping = true;
    const done = await Promise.race([this.#ackTail.then(() => true), Bun.sleep(deadlineMs).then(() => false)]);
    const pending = done ? 0 : this.#pendingAcks;
    // A clean DISCONNECT keeps the session; if the broker does not answer in time, just close.
    const ended = await Promise.race([this.#client.endAsync(false).then(() => true, () => false), Bun.sleep(2000).then(() => false)]);
    if (!ended) await this.#client.endAsync(true).catch(() => undefined);
    return { pending_acks: pending };
  }
}
