/**
 * Starts test/peers/asyncua_server.py: an independent OPC UA server (asyncua, PyPI), so the OPC UA
 * adapter is tested against someone else's reading of the spec rather than our own simulator.
 *
 * The Python venv is made by scripts/setup.sh at ${GATEWAY_CACHE_DIR:-<repo>/.cache}/venv.
 * Without it, suites skip with the reason (locally) or fail (CI set), as for services.
 */
import type { Subprocess } from "bun";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const repo = resolve(import.meta.dir, "../..");
const SERVER_SCRIPT = join(import.meta.dir, "asyncua_server.py");
const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;

export const ASYNCUA_PYTHON = join(resolve(repo, process.env.GATEWAY_CACHE_DIR ?? ".cache"), "venv", "bin", "python");

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

function checkAvailable(): string | undefined {
  if (!existsSync(ASYNCUA_PYTHON)) return `no Python venv at ${ASYNCUA_PYTHON} (scripts/setup.sh makes it)`;
  const probe = Bun.spawnSync([ASYNCUA_PYTHON, "-c", "import asyncua, cryptography"], { stderr: "pipe" });
  if (probe.exitCode !== 0) return `asyncua does not import in ${ASYNCUA_PYTHON}: ${probe.stderr.toString().trim().split("\n").at(-1)}`;
  return undefined;
}

/** Why asyncua suites cannot run here, or undefined when they can. */
export const asyncuaMissing: string | undefined = checkAvailable();
if (asyncuaMissing && process.env.CI) throw new Error(`asyncua test peer unavailable: ${asyncuaMissing}; CI must run scripts/setup.sh`);
if (asyncuaMissing) console.warn(`skipping asyncua tests: ${asyncuaMissing}`);
export const asyncuaAvailable = asyncuaMissing === undefined;

function drain(stream: ReadableStream<Uint8Array>, sink: { text: string }, max = 16_384): void {
  const decoder = new TextDecoder();
  void (async () => {
    for await (const chunk of stream) sink.text = (sink.text + decoder.decode(chunk, { stream: true })).slice(-max);
  })().catch(() => undefined);
}

async function readReady(child: Subprocess<"ignore", "pipe", "pipe">, stderr: { text: string }): Promise<number> {
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), READY_TIMEOUT_MS);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      const match = /^READY (\d+)$/m.exec(buffered);
      if (match) return Number(match[1]);
    }
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
  const code = await child.exited;
  throw new Error(`asyncua server exited (${code}) before READY:\n${buffered}${stderr.text}`);
}

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
    const ready = await readReady(child, stderr);
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
