/** E-mail over SMTP with nodemailer: one pooled-less transport per SMTP settings, outcomes classified for retries. */
import nodemailer from "nodemailer";
import type { SmtpSettings } from "./config.ts";
import type { DeliveryOutcome } from "./routing.ts";

export interface EmailMessage {
  from: string;
  to: string[];
  subject: string;
  text: string;
  headers?: Record<string, string>;
}

export interface Mailer {
  send(smtp: SmtpSettings, message: EmailMessage): Promise<DeliveryOutcome>;
  close(): void;
}

/** Nodemailer's errors carry `code` (ECONNECTION, ETIMEDOUT, EAUTH, EENVELOPE, EMESSAGE, …) and, after a reply, `responseCode`. */
export function classifySmtpError(error: unknown): DeliveryOutcome {
  const e = error as { code?: string; responseCode?: number; response?: string; message?: string };
  const reason = `SMTP ${e.responseCode ?? e.code ?? "error"}: ${(e.response ?? e.message ?? String(error)).split("\n")[0]}`;
  if (typeof e.responseCode === "number") {
    // 4yz = transient negative completion, 5yz = permanent (RFC 5321 §4.2.1)
    return e.responseCode >= 400 && e.responseCode < 500 ? { status: "retry", after_ms: 0, reason } : { status: "failed", reason };
  }
  if (e.code === "EAUTH" || e.code === "EENVELOPE" || e.code === "EMESSAGE" || e.code === "ETLS") return { status: "failed", reason };
  return { status: "retry", after_ms: 0, reason }; // connection refused/reset, timeouts, DNS
}

export function createSmtpMailer(options: { timeout_ms?: number } = {}): Mailer {
  const timeout = options.timeout_ms ?? 10_000;
  const transports = new Map<string, ReturnType<typeof nodemailer.createTransport>>();
  const transportFor = (s: SmtpSettings) => {
    const key = JSON.stringify([s.host, s.port, s.secure, s.require_tls, s.user ?? null, s.pass ?? null]);
    let t = transports.get(key);
    if (!t) {
      t = nodemailer.createTransport({
        host: s.host,
        port: s.port,
        secure: s.secure,
        requireTLS: s.require_tls,
        ...(s.user !== undefined ? { auth: { user: s.user, pass: s.pass ?? "" } } : {}),
        connectionTimeout: timeout,
        greetingTimeout: timeout,
        socketTimeout: timeout,
      });
      transports.set(key, t);
    }
    return t;
  };
  return {
    async send(smtp, message) {
      try {
        const info = await transportFor(smtp).sendMail({
          from: message.from,
          to: message.to,
          subject: message.subject,
          text: message.text,
          ...(message.headers ? { headers: message.headers } : {}),
        });
        const rejected = (info.rejected ?? []) as unknown[];
        if (rejected.length > 0 && rejected.length === message.to.length) return { status: "failed", reason: `SMTP rejected every recipient: ${info.response}` };
        return { status: "delivered", detail: String(info.response ?? "") };
      } catch (error) {
        return classifySmtpError(error);
      }
    },
    close() {
      for (const t of transports.values()) t.close();
      transports.clear();
    },
  };
}
