/**
 * A local HTTP server standing in for a SaaS API in tests: records every request it receives, answers
 * through a handler that speaks the real API's formats, and can be switched "down" (503 or connection
 * refused) and back up, or told to answer the next requests with scripted responses.
 */
import type { Server } from "bun";

export interface RecordedRequest {
  method: string;
  /** Path and query, e.g. /v2/enqueue. */
  path: string;
  headers: Record<string, string>;
  body: string;
  /** Parsed JSON body when the content type says JSON and it parses. */
  json?: unknown;
  /** Parsed form body for application/x-www-form-urlencoded. */
  form?: Record<string, string>;
  /** The status the fake answered with. */
  status: number;
}

export interface FakeResponse {
  status: number;
  body?: string | object;
  headers?: Record<string, string>;
}

export type FakeHandler = (req: Omit<RecordedRequest, "status">) => FakeResponse;

export interface FakeSaas {
  readonly name: string;
  /** http://127.0.0.1:<port> (no trailing slash). */
  readonly url: string;
  readonly port: number;
  /** Every request that reached the server, with the status it got. */
  readonly received: RecordedRequest[];
  /** Requests answered 2xx. */
  accepted(): RecordedRequest[];
  /** "503": answers 503 to everything; "refused": closes the port so connections are refused. */
  down(mode?: "503" | "refused"): Promise<void>;
  up(): Promise<void>;
  /** The next requests get these answers, in order, before the handler is used again. */
  script(...responses: FakeResponse[]): void;
  stop(): Promise<void>;
}

function toResponse(r: FakeResponse): Response {
  const headers = new Headers(r.headers ?? {});
  let body: string | undefined;
  if (typeof r.body === "object") {
    body = JSON.stringify(r.body);
    if (!headers.has("content-type")) headers.set("content-type", "application/json; charset=utf-8");
  } else if (r.body !== undefined) {
    body = r.body;
    if (!headers.has("content-type")) headers.set("content-type", "text/plain; charset=utf-8");
  }
  return new Response(body, { status: r.status, headers });
}

export async function startFakeSaas(name: string, handler: FakeHandler): Promise<FakeSaas> {
  const received: RecordedRequest[] = [];
  const scripted: FakeResponse[] = [];
  let mode: "up" | "503" | "refused" = "up";
  let port = 0;

  const fetchHandler = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const body = await request.text();
    const headers: Record<string, string> = {};
    request.headers.forEach((v, k) => (headers[k] = v));
    const type = headers["content-type"] ?? "";
    const rec: Omit<RecordedRequest, "status"> = { method: request.method, path: url.pathname + url.search, headers, body };
    if (type.includes("json")) {
      try {
        rec.json = JSON.parse(body);
      } catch {
        /* the handler decides what invalid JSON gets */
      }
    }
    if (type.includes("application/x-www-form-urlencoded")) rec.form = Object.fromEntries(new URLSearchParams(body));
    const answer: FakeResponse = mode === "503" ? { status: 503, body: "Service Unavailable" } : (scripted.shift() ?? handler(rec));
    received.push({ ...rec, status: answer.status });
    return toResponse(answer);
  };

  const listen = (p: number): Server<undefined> => Bun.serve({ hostname: "127.0.0.1", port: p, fetch: fetchHandler });
  let server: Server<undefined> | null = listen(0);
  port = server.port!;

  return {
    name,
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    accepted: () => received.filter((r) => r.status >= 200 && r.status < 300),
    async down(how = "503") {
      mode = how;
      if (how === "refused" && server) {
        await server.stop(true);
        server = null;
      }
    },
    async up() {
      mode = "up";
      if (!server) server = listen(port);
    },
    script(...responses) {
      scripted.push(...responses);
    },
    async stop() {
      if (server) await server.stop(true);
      server = null;
    },
  };
}
