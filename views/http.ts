import { CSRF_COOKIE } from "../src/api/guard.ts";
import { ApiError } from "../src/api/errors.ts";
import { principalOf } from "../src/api/principal.ts";
import type { UiDeps, Viewer } from "./context.ts";
import { html, type Html } from "./html.ts";
import { bareLayout, htmlResponse, layout } from "./layout.ts";

/** The parts of Elysia's handler context the UI uses (the guard's derive adds `principal`). */
export interface UiContext {
  request: Request;
  cookie: Record<string, { value?: unknown }>;
  params: Record<string, string>;
  query: Record<string, string | undefined>;
  server: { requestIP(r: Request): { address: string } | null } | null;
}

export const ctxOf = (ctx: unknown) => ctx as UiContext;

export function viewerOf(ctx: unknown, deps: UiDeps): Viewer {
  const c = ctxOf(ctx);
  return {
    principal: principalOf(ctx),
    csrf: String(c.cookie[CSRF_COOKIE]?.value ?? ""),
    path: new URL(c.request.url).pathname,
    gatewayId: deps.config.gateway_id,
  };
}

/** Ends a live stream when the client leaves or the appliance shuts down, whichever comes first. */
export function streamSignal(request: Request, deps: UiDeps): AbortSignal {
  return deps.live ? AbortSignal.any([request.signal, deps.live.closing]) : request.signal;
}

export const isHtmx = (request: Request) => request.headers.get("hx-request") === "true";

/** Form fields of a urlencoded or multipart body; anything else reads as an empty form (then fails validation, not with a 500). */
export async function readForm(request: Request): Promise<FormData> {
  const type = request.headers.get("content-type") ?? "";
  if (!/application\/x-www-form-urlencoded|multipart\/form-data/.test(type)) return new FormData();
  try {
    return await request.formData();
  } catch {
    return new FormData();
  }
}

export const field = (form: FormData, name: string): string => {
  const value = form.get(name);
  return typeof value === "string" ? value : "";
};

/** A full page, or just the body for an htmx request that targets the main area. */
export function page(viewer: Viewer, title: string, body: Html | string, options: { actions?: Html; status?: number } = {}): Response {
  return htmlResponse(layout(viewer, { title, body, ...(options.actions ? { actions: options.actions } : {}) }), options.status ?? 200);
}

/** Navigates the browser after an htmx request (plain 303 for a form post without htmx). */
export function redirect(request: Request, location: string): Response {
  if (isHtmx(request)) return new Response(null, { status: 204, headers: { "hx-redirect": location } });
  return new Response(null, { status: 303, headers: { location } });
}

/** An error where it happened: a page for navigation, a fragment for htmx (shown by app.js). */
export function errorResponse(viewer: Viewer, request: Request, error: unknown): Response {
  const status = error instanceof ApiError ? error.status : 500;
  const message = error instanceof ApiError ? error.message : "internal error; see the gateway log";
  if (isHtmx(request)) {
    return new Response(JSON.stringify({ error: { code: error instanceof ApiError ? error.code : "internal", message } }), {
      status,
      // An ApiError's own headers too (e.g. HX-Trigger: a refusal makes the page refresh what it refers to).
      headers: { ...(error instanceof ApiError ? error.headers : {}), "content-type": "application/json" },
    });
  }
  return page(viewer, status === 404 ? "Not found" : "Something went wrong", html`<div class="notice notice-bad" role="alert"><p>${message}</p></div><p><a href="/">Back to the overview</a></p>`, { status });
}

/** Wraps a page handler: ApiErrors become HTML; anything else is logged and shown as a 500. */
export function handle(deps: UiDeps, fn: (ctx: UiContext, viewer: Viewer) => Promise<Response> | Response) {
  return async (ctx: unknown) => {
    const viewer = viewerOf(ctx, deps);
    try {
      return await fn(ctxOf(ctx), viewer);
    } catch (error) {
      if (!(error instanceof ApiError)) deps.log.error({ err: error, path: viewer.path }, "web UI request failed");
      return errorResponse(viewer, ctxOf(ctx).request, error);
    }
  };
}

const ERROR_TITLES: Record<number, string> = { 403: "Not allowed", 404: "Not found", 413: "Too large", 429: "Too many requests", 503: "Not available yet" };

/**
 * A browser navigating to a page it may not open (or that does not exist) gets a page, not the
 * API's JSON error: the guard and the router answer before any page handler runs.
 */
export function browserError(ctx: unknown, deps: UiDeps): Response | undefined {
  const { request, responseValue, set, principal } = ctx as {
    request: Request;
    responseValue: unknown;
    set: { status?: number | string };
    principal?: Viewer["principal"];
  };
  const status = typeof set.status === "number" ? set.status : 200;
  if (request.method !== "GET" || status < 400 || isHtmx(request) || !(request.headers.get("accept") ?? "").includes("text/html")) return undefined;
  const path = new URL(request.url).pathname;
  if (path.startsWith("/api/") || path === "/metrics") return undefined;
  const error = (responseValue as { error?: { message?: string } } | null)?.error;
  if (!error) return undefined;
  const body = html`<div class="notice notice-bad" role="alert"><p>${error.message ?? "request failed"}</p></div><p><a href="/">Back to the overview</a></p>`;
  const title = ERROR_TITLES[status] ?? "Something went wrong";
  if (!principal) return htmlResponse(html`${bareLayout(title, html`<div class="login"><div class="card"><h1>${title}</h1>${body}</div></div>`)}`, status);
  const c = ctxOf(ctx);
  const viewer: Viewer = { principal, csrf: String(c.cookie?.[CSRF_COOKIE]?.value ?? ""), path, gatewayId: deps.config.gateway_id };
  return page(viewer, title, body, { status });
}
