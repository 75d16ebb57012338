/**
 * Linked pseudo-terminal pairs from Debian's socat, standing in for a serial cable: bytes written
 * to one end come out of the other. A pty has no baud rate and no parity, so line timing and
 * parity errors are not exercised; framing, CRCs, timeouts and resynchronisation are.
 *
 * Without socat, suites skip with the reason (locally) or fail (CI set), as for services.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

function findSocat(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/bin", "/bin"])) {
    const candidate = join(dir, "socat");
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

const SOCAT = findSocat();
/** Why pty-pair suites cannot run here, or undefined when they can. */
export const socatMissing: string | undefined = process.platform !== "linux"
  ? `serial ports are Linux-only (this is ${process.platform})`
  : SOCAT ? undefined : "socat is not installed (apt-get install socat)";
if (socatMissing && process.env.CI) throw new Error(`pty pairs unavailable: ${socatMissing}`);
if (socatMissing) console.warn(`skipping serial tests: ${socatMissing}`);
export const socatAvailable = socatMissing === undefined;

export interface PtyPair {
  /** Symlinks to the two ends, e.g. /tmp/pty-xxxx/a and /tmp/pty-xxxx/b. */
  a: string;
  b: string;
  /** Kills socat: both ends hang up. */
  stop(): Promise<void>;
}

/**
 * Starts socat. `links` reuses given paths (to plug the "same device" back in after stop());
 * by default both ends go in a fresh temporary folder, removed by stop().
 */
export async function startPtyPair(links?: { a: string; b: string }): Promise<PtyPair> {
  if (!SOCAT) throw new Error(`pty pairs unavailable: ${socatMissing}`);
  const dir = links ? undefined : mkdtempSync(join(tmpdir(), "pty-"));
  const a = links?.a ?? join(dir!, "a");
  const b = links?.b ?? join(dir!, "b");
  const child = Bun.spawn([SOCAT, "-d", "-d", `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  const deadline = Date.now() + 5000;
  while (!(existsSync(a) && existsSync(b))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      const stderr = await new Response(child.stderr).text();
      if (dir) rmSync(dir, { recursive: true, force: true });
      throw new Error(`socat did not create the pty pair: ${stderr}`);
    }
    await Bun.sleep(10);
  }
  // Drained so that socat never blocks on a full stderr pipe.
  void new Response(child.stderr).text().catch(() => undefined);
  let stopped: Promise<void> | undefined;
  return {
    a,
    b,
    stop() {
      stopped ??= (async () => {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
        await child.exited;
        clearTimeout(timer);
        if (dir) rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
