/**
 * What every Python test peer (pymodbus, asyncua, ...) shares: the venv made by scripts/setup.sh,
 * the skip-or-fail rule when it is missing, and the "READY <port>" handshake on stdout.
 */
import type { Subprocess } from "bun";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

const repo = resolve(import.meta.dir, "../..");

export const PEER_PYTHON = join(resolve(repo, process.env.GATEWAY_CACHE_DIR ?? ".cache"), "venv", "bin", "python");

/**
 * Why a peer cannot run here (its modules do not import), or undefined when it can. Locally the
 * suites skip with this reason; with CI set a missing peer is an error, as for services.
 */
export function peerMissing(peer: string, imports: string): string | undefined {
  let missing: string | undefined;
  if (!existsSync(PEER_PYTHON)) missing = `no Python venv at ${PEER_PYTHON} (scripts/setup.sh makes it)`;
  else {
    const probe = Bun.spawnSync([PEER_PYTHON, "-c", `import ${imports}`], { stderr: "pipe" });
    if (probe.exitCode !== 0) missing = `${peer} does not import in ${PEER_PYTHON}: ${probe.stderr.toString().trim().split("\n").at(-1)}`;
  }
  if (missing && process.env.CI) throw new Error(`${peer} test peer unavailable: ${missing}; CI must run scripts/setup.sh`);
  if (missing) console.warn(`skipping ${peer} tests: ${missing}`);
  return missing;
}

/** Keeps the last bytes of a stream, so a failure can say what the server printed. */
export function drain(stream: ReadableStream<Uint8Array>, sink: { text: string }, max = 16_384): void {
  const decoder = new TextDecoder();
  void (async () => {
    for await (const chunk of stream) sink.text = (sink.text + decoder.decode(chunk, { stream: true })).slice(-max);
  })().catch(() => undefined);
}

/** Waits for the peer's "READY <port>" line; a peer that exits or hangs first fails with its output. */
export async function readReady(peer: string, child: Subprocess<"ignore", "pipe", "pipe">, stderr: { text: string }, timeoutMs: number): Promise<number> {
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
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
  throw new Error(`${peer} server exited (${code}) before READY:\n${buffered}${stderr.text}`);
}
