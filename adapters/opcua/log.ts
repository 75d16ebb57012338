import { format } from "node:util";
import { setDebugLogger, setErrorLogger, setTraceLogger, setWarningLogger } from "node-opcua-debug";
import type { Logger } from "../../src/log/logger.ts";

const ANSI = /\u001b\[[0-9;]*m/g;
type Context = { filename?: string; callerline?: number };

const text = (args: unknown[]) => format(...args).replace(ANSI, "").trim();

/**
 * node-opcua prints its warnings with console.log, which would break the adapter's JSON-lines
 * stdout. Its loggers are process-wide, so the last caller's logger gets them all.
 */
export function routeOpcuaLogs(log: Logger): void {
  const child = log.child({ component: "node-opcua" });
  setWarningLogger((ctx?: unknown, ...args: unknown[]) => child.warn({ source: (ctx as Context | undefined)?.filename }, text(args)));
  setErrorLogger((ctx?: unknown, ...args: unknown[]) => child.error({ source: (ctx as Context | undefined)?.filename }, text(args)));
  setDebugLogger((ctx?: unknown, ...args: unknown[]) => child.debug({ source: (ctx as Context | undefined)?.filename }, text(args)));
  setTraceLogger((ctx?: unknown, ...args: unknown[]) => child.trace({ source: (ctx as Context | undefined)?.filename }, text(args)));
}
