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

export function sseResponse(options: SseOptions): Response {
  const encoder = new TextEncoder();
  let closed = false;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      const send = (text: string) => {
        if (closed) return;
        try {
          controller.enqueue(encoder.encode(text));
        } catch {
          closed = true;
        }
      };
      const stop = () => {
        if (closed) return;
        closed = true;
        try {
          controller.close();
        } catch {
          // already closed by the client
        }
      };
      options.signal?.addEventListener("abort", stop, { once: true });
      const endAt = Date.now() + (options.maxLifetimeMs ?? SSE_MAX_LIFETIME_MS);
      void (async () => {
        send(`retry: ${SSE_RETRY_MS}\n\n`);
        let lastSent = Date.now();
        while (!closed && Date.now() < endAt) {
          try {
            const events = await options.tick();
            if (events.length > 0) {
              send(events.map(formatSse).join(""));
              lastSent = Date.now();
            }
          } catch (error) {
            options.onError?.(error);
          }
          if (!closed && Date.now() - lastSent >= SSE_HEARTBEAT_MS) {
            send(": keep-alive\n\n");
            lastSent = Date.now();
          }
          await Bun.sleep(Math.min(options.intervalMs, SSE_HEARTBEAT_MS));
        }
        stop();
      })();
    },
    cancel() {
      closed = true;
    },
  });
  return new Response(stream, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-accel-buffering": "no",
    },
  });
}
