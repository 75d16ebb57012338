/**
 * A real SMTP server for tests: aiosmtpd (Python) with its Mailbox handler writing into a temporary
 * Maildir, read back through Python's own `email` parser (someone else's reading of the MIME nodemailer
 * writes). The venv is made by scripts/setup.sh at ${GATEWAY_CACHE_DIR:-<repo>/.cache}/venv with
 * scripts/requirements-test.txt. Without it, suites skip with the reason (locally) or fail (CI set).
 */
import type { Subprocess } from "bun";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const repo = resolve(import.meta.dir, "../../..");
export const SMTP_PYTHON = join(resolve(repo, process.env.GATEWAY_CACHE_DIR ?? ".cache"), "venv", "bin", "python");
const READY_TIMEOUT_MS = 15_000;

function checkAvailable(): string | undefined {
  if (!existsSync(SMTP_PYTHON)) return `no Python venv at ${SMTP_PYTHON} (scripts/setup.sh makes it)`;
  const probe = Bun.spawnSync([SMTP_PYTHON, "-c", "import aiosmtpd.handlers, aiosmtpd.main"], { stderr: "pipe" });
  if (probe.exitCode !== 0) return `aiosmtpd does not import in ${SMTP_PYTHON}: ${probe.stderr.toString().trim().split("\n").at(-1)}`;
  return undefined;
}

/** Why aiosmtpd suites cannot run here, or undefined when they can. */
export const aiosmtpdMissing: string | undefined = checkAvailable();
if (aiosmtpdMissing && process.env.CI) throw new Error(`aiosmtpd test peer unavailable: ${aiosmtpdMissing}; CI must run scripts/setup.sh`);
if (aiosmtpdMissing) console.warn(`skipping SMTP tests: ${aiosmtpdMissing}`);
export const aiosmtpdAvailable = aiosmtpdMissing === undefined;

export interface ReceivedMail {
  from: string;
  to: string[];
  subject: string;
  message_id: string | null;
  headers: Record<string, string>;
  /** The text/plain body, decoded. */
  text: string;
}

export interface SmtpSink {
  host: string;
  port: number;
  maildir: string;
  /** Messages in the Maildir, oldest first. */
  messages(): ReceivedMail[];
  /** Waits until at least `n` messages are in, or throws after `timeoutMs`. */
  waitFor(n: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  /** Stops the server (connections refused); `up` starts it again on the same port and Maildir. */
  down(): Promise<void>;
  up(): Promise<void>;
  stop(): Promise<void>;
}

const READ_MAILDIR = `
import json, mailbox, sys
from email import policy
from email.parser import BytesParser
out = []
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
for key in box.keys():
    with box.get_file(key) as f:
        msg = BytesParser(policy=policy.default).parse(f)
    body = msg.get_body(preferencelist=("plain",))
    out.append({
        "from": str(msg["From"] or ""),
        "to": [a.strip() for a in str(msg["To"] or "").split(",") if a.strip()],
        "subject": str(msg["Subject"] or ""),
        "message_id": str(msg["Message-ID"]) if msg["Message-ID"] else None,
        "headers": {k: str(v) for k, v in msg.items()},
        "text": body.get_content() if body is not None else "",
        "_date": box.get_message(key).get_date(),
    })
out.sort(key=lambda m: (m["_date"], m["message_id"] or ""))
for m in out: m.pop("_date")
print(json.dumps(out))
`;

async function freePort(): Promise<number> {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

function greets(port: number): Promise<boolean> {
  return new Promise((res) => {
    const socket = connect({ host: "127.0.0.1", port });
    let data = "";
    const done = (ok: boolean) => {
      socket.destroy();
      res(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on("data", (chunk) => {
      data += chunk.toString();
      if (data.includes("\n")) done(data.startsWith("220"));
    });
    socket.on("error", () => done(false));
  });
}

export async function startSmtpSink(): Promise<SmtpSink> {
  if (aiosmtpdMissing) throw new Error(`aiosmtpd test peer unavailable: ${aiosmtpdMissing}`);
  const maildir = join(mkdtempSync(join(tmpdir(), "smtp-sink-")), "Maildir");
  const port = await freePort();
  let child: Subprocess<"ignore", "ignore", "pipe"> | null = null;
  let stderr = "";

  async function start(): Promise<void> {
    const proc = Bun.spawn([SMTP_PYTHON, "-m", "aiosmtpd", "-n", "-l", `127.0.0.1:${port}`, "-c", "aiosmtpd.handlers.Mailbox", maildir], {
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
      env: { ...process.env, PYTHONUNBUFFERED: "1" },
    });
    child = proc;
    void (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of proc.stderr) stderr = (stderr + decoder.decode(chunk)).slice(-8192);
    })().catch(() => undefined);
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`aiosmtpd exited (${proc.exitCode}) before listening:\n${stderr}`);
      if (await greets(port)) return;
      await Bun.sleep(50);
    }
    proc.kill("SIGKILL");
    throw new Error(`aiosmtpd did not greet on port ${port} within ${READY_TIMEOUT_MS} ms:\n${stderr}`);
  }

  async function halt(): Promise<void> {
    const proc = child;
    child = null;
    if (!proc) return;
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
    await proc.exited;
    clearTimeout(timer);
  }

  const messages = (): ReceivedMail[] => {
    if (!existsSync(join(maildir, "new"))) return [];
    const r = Bun.spawnSync([SMTP_PYTHON, "-c", READ_MAILDIR, maildir], { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`reading ${maildir} failed: ${r.stderr.toString()}`);
    return JSON.parse(r.stdout.toString()) as ReceivedMail[];
  };

  await start();
  return {
    host: "127.0.0.1",
    port,
    maildir,
    messages,
    async waitFor(n, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const got = messages();
        if (got.length >= n) return got;
        if (Date.now() > deadline) throw new Error(`expected ${n} message(s) in ${maildir}, have ${got.length}`);
        await Bun.sleep(50);
      }
    },
    down: halt,
    async up() {
      if (!child) await start();
    },
    async stop() {
      await halt();
      rmSync(resolve(maildir, ".."), { recursive: true, force: true });
    },
  };
}
