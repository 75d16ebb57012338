import type { Permission } from "../src/auth/permissions.ts";
import { VERSION } from "../src/version.ts";
import { assetUrl } from "./assets.ts";
import { viewerCan, type Viewer } from "./context.ts";
import { attr, html, raw, type Html, type Renderable } from "./html.ts";

interface NavItem {
  href: string;
  label: string;
  permission: Permission;
}

/** The header shows only what the role may open; the guard refuses the rest anyway. */
export const NAV: readonly NavItem[] = [
  { href: "/", label: "Overview", permission: "dashboards:read" },
  { href: "/pipelines", label: "Pipelines", permission: "pipelines:read" },
  { href: "/topology", label: "Topology", permission: "topology:read" },
  { href: "/tags", label: "Tags", permission: "dashboards:read" },
  { href: "/sinks", label: "Sinks", permission: "sinks:read" },
  { href: "/alarms", label: "Alarms", permission: "alarms:read" },
  { href: "/dlq", label: "DLQ", permission: "logs:read" },
  { href: "/audit", label: "Audit", permission: "audit:read" },
  { href: "/users", label: "Users", permission: "users:manage" },
];

/** htmx settings: no eval (CSP friendly), 422 swaps (validation errors render in place). */
const HTMX_CONFIG = JSON.stringify({
  allowEval: false,
  includeIndicatorStyles: false,
  historyCacheSize: 0,
  defaultSettleDelay: 0,
  responseHandling: [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "422", swap: true, error: false },
    { code: "[45]..", swap: false, error: true },
    { code: "...", swap: false },
  ],
});

const isActive = (viewer: Viewer, href: string) => (href === "/" ? viewer.path === "/" : viewer.path === href || viewer.path.startsWith(`${href}/`));

function head(title: string): Html {
  return html`<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content="${HTMX_CONFIG}">
<title>${title} · Industrial Data Gateway</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${assetUrl("app.css")}">
<script src="${assetUrl("htmx.min.js")}" defer></script>
<script src="${assetUrl("sse.min.js")}" defer></script>
<script src="${assetUrl("app.js")}" defer></script>`;
}

export interface PageOptions {
  title: string;
  body: Renderable;
  /** Rendered right of the page title (buttons). */
  actions?: Renderable;
}

export function layout(viewer: Viewer, options: PageOptions): Html {
  const { principal } = viewer;
  const nav = NAV.filter((item) => viewerCan(viewer, item.permission));
  return html`<!doctype html>
<html lang="en">
<head>${head(options.title)}</head>
<body data-csrf="${viewer.csrf}">
<a class="skip-link" href="#main">Skip to content</a>
<header class="topbar">
  <a class="brand" href="/"><span class="brand-mark" aria-hidden="true"></span>Industrial Data Gateway</a>
  <span class="gateway-id" title="This appliance's gateway_id">${viewer.gatewayId}</span>
  <nav aria-label="Main">
    <ul>${nav.map((item) => html`<li><a href="${item.href}"${attr("aria-current", isActive(viewer, item.href) ? "page" : undefined)}>${item.label}</a></li>`)}</ul>
  </nav>
  <div class="who">
    <span class="user" title="${principal.kind === "service" ? "service account" : "signed in"}">${principal.username}</span>
    <span class="role">${principal.role}</span>
    <button type="button" class="btn-link" hx-post="/logout">Sign out</button>
  </div>
</header>
<main id="main" tabindex="-1">
  <div class="page-head">
    <h1>${options.title}</h1>
    ${options.actions ? html`<div class="page-actions">${options.actions}</div>` : ""}
  </div>
  <div id="flash" class="flash" role="alert" aria-live="assertive" hidden></div>
  ${options.body}
</main>
<footer class="footer">Industrial Data Gateway ${VERSION} · times in UTC</footer>
</body>
</html>`;
}

/** Pages without the signed-in chrome (sign-in, errors before sign-in). */
export function bareLayout(title: string, body: Renderable): Html {
  return html`<!doctype html>
<html lang="en">
<head>${head(title)}</head>
<body class="bare">
<main id="main">${body}</main>
</body>
</html>`;
}

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "cache-control": "no-store",
};

export function htmlResponse(body: Html, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(body.value, { status, headers: { "content-type": "text/html; charset=utf-8", ...SECURITY_HEADERS, ...headers } });
}

/** A status word as a coloured badge; the word itself carries the meaning, colour only helps. */
export function badge(text: string, tone: string): Html {
  return html`<span class="badge badge-${tone}">${text}</span>`;
}

export const emptyState = (message: Renderable, hint?: Renderable) =>
  html`<div class="empty"><p>${message}</p>${hint ? html`<p class="hint">${hint}</p>` : ""}</div>`;

export { raw };
