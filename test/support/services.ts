import { connect } from "node:net";
import { connectionFromBootstrap } from "../../src/kafka/connection.ts";

export const KAFKA_BOOTSTRAP = process.env.TEST_KAFKA_BOOTSTRAP ?? "127.0.0.1:9092";
export const MQTT_URL = process.env.TEST_MQTT_URL ?? "mqtt://127.0.0.1:1883";
export const kafkaConnection = (clientId = "test") => connectionFromBootstrap(KAFKA_BOOTSTRAP, clientId);

function reachable(hostPort: string, timeoutMs = 1000): Promise<boolean> {
  const [host, port] = hostPort.split(":");
  return new Promise((resolve) => {
    const socket = connect({ host, port: Number(port) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/**
 * Integration suites run against real services started by `make services`. Locally a missing
 * service skips the suite with its reason; in CI (CI set) a missing service is a failure.
 */
export async function serviceAvailable(name: string, hostPort: string): Promise<boolean> {
  if (await reachable(hostPort)) return true;
  if (process.env.CI) throw new Error(`${name} is not reachable at ${hostPort}; CI must start it (make services)`);
  console.warn(`skipping ${name} tests: nothing listens on ${hostPort} (run make services)`);
  return false;
}

export const kafkaUp = await serviceAvailable("Kafka", KAFKA_BOOTSTRAP);

export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
}
