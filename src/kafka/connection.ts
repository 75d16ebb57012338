import type { KafkaConnection } from "../config/schema.ts";

export type { KafkaConnection };

/** Options shared by every client we create, so a broker setting changes in one place. */
export function baseClientOptions(connection: KafkaConnection, role: string) {
  return {
    clientId: `${connection.client_id}-${role}`,
    bootstrapBrokers: connection.bootstrap_servers,
    timeout: connection.request_timeout_ms,
    retries: 3,
    retryDelay: 250,
  };
}

export function connectionFromBootstrap(bootstrap: string | string[], clientId = "gateway"): KafkaConnection {
  const servers = Array.isArray(bootstrap) ? bootstrap : bootstrap.split(",").map((s) => s.trim()).filter(Boolean);
  return { bootstrap_servers: servers, client_id: clientId, request_timeout_ms: 10_000 };
}
