/**
 * Static assets served from the binary itself: no CDN, no client build step. Text imports are
 * inlined by `bun build --compile`.
 *
 * htmx is pinned to 2.x (package.json: exact version). htmx 4 changed attribute semantics
 * (inheritance, hx-on, swap defaults), so upgrading is a deliberate migration, not a bump.
 */
import htmxJs from "htmx.org/dist/htmx.min.js" with { type: "text" };
import sseJs from "htmx-ext-sse/dist/sse.min.js" with { type: "text" };
import appCss from "./static/app.css" with { type: "text" };
import appJs from "./static/app.js" with { type: "text" };

export interface Asset {
  name: string;
  contentType: string;
  body: string;
  gzip: Uint8Array;
  /** Content hash, appended as ?v= so a new build is fetched and an old one cached forever. */
  hash: string;
}

function asset(name: string, contentType: string, body: string): Asset {
  return { name, contentType, body, gzip: Bun.gzipSync(new TextEncoder().encode(body)), hash: Bun.hash(body).toString(36) };
}

export const ASSETS: Record<string, Asset> = Object.fromEntries(
  [
    asset("htmx.min.js", "text/javascript; charset=utf-8", htmxJs),
    asset("sse.min.js", "text/javascript; charset=utf-8", sseJs),
    asset("app.js", "text/javascript; charset=utf-8", appJs),
    asset("app.css", "text/css; charset=utf-8", appCss),
  ].map((a) => [a.name, a]),
);

export const assetUrl = (name: string) => `/assets/${name}?v=${ASSETS[name]!.hash}`;

export function assetResponse(name: string, request: Request): Response {
  const found = ASSETS[name];
  if (!found) return new Response("not found", { status: 404 });
  const gzip = /\bgzip\b/.test(request.headers.get("accept-encoding") ?? "");
  return new Response(gzip ? (found.gzip as Uint8Array<ArrayBuffer>) : found.body, {
    headers: {
      "content-type": found.contentType,
      "cache-control": new URL(request.url).searchParams.has("v") ? "public, max-age=31536000, immutable" : "no-cache",
      etag: `"${found.hash}"`,
      vary: "accept-encoding",
      ...(gzip ? { "content-encoding": "gzip" } : {}),
    },
  });
}
