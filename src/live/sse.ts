/** Server-sent events for the live pages (overview, tag explorer), as plain `text/event-stream`. */
export interface SseEvent {
  event: string;
  data: string;
}

/** Below Bun's 10 s idle timeout, so a quiet stream is not cut. */
export const SSE_HEARTBEAT_MS = 5000;
/** Streams end after this; the browser reconnects, which re-checks the session. */
export const SSE_MAX_LIFETIME_MS = 10 * 60_000;
const SSE_RETRY_MS = 3000;

/** Pure: one event in the wire format; every line of a multi-line payload gets its own `data:`. */
export function formatSse({ event, data }: SseEvent): string {
  return `event: ${event}\n${data.split(/\r?\n/).map((line) => `data: ${line}`).join("\n")}\n\n`;
}

export interface SseOptions {
  /** Aborted when the client goes away. */
  signal?: AbortSignal;
  intervalMs: number;
  /** Called immediately, then every intervalMs; returns the events to send (none is fine). */
  tick: () => SseEvent[] | Promise<SseEvent[]>;
  maxLifetimeMs?: number;
  onError?: (error: unknown) => void;
}

/**
 * A pull-driven stream: the next tick runs only when the client has taken the previous chunk, so
 * a slow or vanished reader costs nothing, and every stream ends on abort or after its lifetime.
 */
export function sseResponse(options: SseOptions): Response {
  const encoder = new TextEncoder();
  const endAt = Date.now() + (options.maxLifetimeMs ?? SSE_MAX_LIFETIME_MS);
  let closed = false;
  let started = false;
  let lastSent = 0;
  let wake: (() => void) | undefined;
  const stream = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        options.signal?.addEventListener(
          "abort",
          () => {
            if (closed) return;
            closed = true;
            wake?.();
            try {
              controller.close();
            } catch {
              // already closed
            }
          },
          { once: true },
        );
      },
      async pull(controller) {
        const send = (text: string) => {
          if (closed) return;
          try {
            controller.enqueue(encoder.encode(text));
            lastSent = Date.now();
          } catch {
            closed = true;
          }
        };
        const tick = async (prefix = "") => {
          let events: SseEvent[] = [];
          try {
            events = await options.tick();
          } catch (error) {
            options.onError?.(error);
          }
          if (prefix || events.length > 0) send(prefix + events.map(formatSse).join(""));
          return events.length > 0;
        };
        if (!started) {
          started = true;
          await tick(`retry: ${SSE_RETRY_MS}\n\n`);
          return;
        }
        while (!closed) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, Math.min(options.intervalMs, SSE_HEARTBEAT_MS));
          });
          if (closed) return;
          if (Date.now() >= endAt) {
            closed = true;
            controller.close();
            return;
          }
          if (await tick()) return;
          if (Date.now() - lastSent >= SSE_HEARTBEAT_MS) {
            send(": keep-alive\n\n");
            return;
          }
        }
      },
      cancel() {
        closed = true;
        wake?.();
      },
    },
    { highWaterMark: 1 },
  );
  return new Response(stream, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-accel-buffering": "no",
    },
  });
}
