/**
 * Starts test/peers/asyncua_server.py: an independent OPC UA server (asyncua, PyPI), so the OPC UA
 * adapter is tested against someone else's reading of the spec rather than our own simulator.
 *
 * The Python venv is made by scripts/setup.sh at ${GATEWAY_CACHE_DIR:-<repo>/.cache}/venv.
 * Without it, suites skip with the reason (locally) or fail (CI set), as for services.
 */
import type { Subprocess } from "bun";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { drain, PEER_PYTHON, peerMissing, readReady } from "./python.ts";

const SERVER_SCRIPT = join(import.meta.dir, "asyncua_server.py");
const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;

export const ASYNCUA_PYTHON = PEER_PYTHON;

/** Endpoint security as asyncua_server.py --security names it. */
export type AsyncuaSecurity =
  | "None"
  | `${"Basic256Sha256" | "Aes128Sha256RsaOaep" | "Aes256Sha256RsaPss"}_${"Sign" | "SignAndEncrypt"}`;

export interface AsyncuaOptions {
  /** 0 (default) picks a free port; restart() keeps it. */
  port?: number;
  /** Default ["None"]. */
  security?: AsyncuaSecurity[];
  /** Only this user may log in. */
  user?: { name: string; password: string };
  /** Source timestamp of ns=2;s=Held (epoch ms); default the start time. */
  heldTimestamp?: number;
  /** Counter period; default 200 ms. */
  intervalMs?: number;
}

export interface AsyncuaServer {
  readonly port: number;
  readonly endpoint: string;
  /** Holds server-cert.der once a secure endpoint was asked for (kept across restarts). */
  readonly certDir: string;
  /** SIGTERM, then SIGKILL after 5 s. */
  stop(): Promise<void>;
  /** Stops the server and starts it again on the same port and certificate after `downMs`. */
  restart(downMs?: number): Promise<void>;
}

/** Why asyncua suites cannot run here, or undefined when they can. */
export const asyncuaMissing: string | undefined = peerMissing("asyncua", "asyncua, cryptography");
export const asyncuaAvailable = asyncuaMissing === undefined;

export async function startAsyncua(options: AsyncuaOptions = {}): Promise<AsyncuaServer> {
  if (asyncuaMissing) throw new Error(`asyncua test peer unavailable: ${asyncuaMissing}`);
  const certDir = mkdtempSync(join(tmpdir(), "asyncua-"));
  const args = (port: number) => [
    ASYNCUA_PYTHON, SERVER_SCRIPT,
    "--port", String(port),
    "--security", (options.security ?? ["None"]).join(","),
    "--cert-dir", certDir,
    "--interval-ms", String(options.intervalMs ?? 200),
    ...(options.user ? ["--user", `${options.user.name}:${options.user.password}`] : []),
    ...(options.heldTimestamp !== undefined ? ["--held-timestamp", String(options.heldTimestamp)] : []),
  ];
  let child: Subprocess<"ignore", "pipe", "pipe">;
  const launch = async (port: number) => {
    child = Bun.spawn(args(port), { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, PYTHONUNBUFFERED: "1" } });
    const stderr = { text: "" };
    drain(child.stderr, stderr);
    const ready = await readReady("asyncua", child, stderr, READY_TIMEOUT_MS);
    drain(child.stdout, { text: "" });
    return ready;
  };
  const halt = async () => {
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await child.exited;
    clearTimeout(timer);
  };
  let port: number;
  try {
    port = await launch(options.port ?? 0);
  } catch (error) {
    rmSync(certDir, { recursive: true, force: true });
    throw error;
  }
  let stopped: Promise<void> | undefined;
  return {
    port,
    endpoint: `opc.tcp://127.0.0.1:${port}/`,
    certDir,
    stop() {
      stopped ??= (async () => {
        await halt();
        rmSync(certDir, { recursive: true, force: true });
      })();
      return stopped;
    },
    async restart(downMs = 0) {
      await halt();
      if (downMs > 0) await Bun.sleep(downMs);
      await launch(port);
    },
  };
}
