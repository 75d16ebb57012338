import pino, { type Logger } from "pino";

export type { Logger };

/**
 * JSON lines on stdout. pino's worker-thread transports are avoided on purpose:
 * they do not survive `bun build --compile`, and adapters must log to stdout anyway.
 */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? "info"): Logger {
  return pino({
    name,
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}

export const rootLogger = createLogger("gateway");
