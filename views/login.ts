import { Elysia } from "elysia";
import { clearSessionCookies, setSessionCookies } from "../src/api/auth/index.ts";
import { clientIp, REFRESH_COOKIE } from "../src/api/guard.ts";
import { RateLimiter } from "../src/auth/rate-limit.ts";
import { AuthError } from "../src/auth/service.ts";
import type { UiDeps } from "./context.ts";
import { html } from "./html.ts";
import { ctxOf, field, readForm, redirect } from "./http.ts";
import { bareLayout, htmlResponse } from "./layout.ts";

const LOGIN_ATTEMPTS_PER_MINUTE = 10;

type CookieJar = Parameters<typeof setSessionCookies>[0];

/** Only a local path: `next` must not send the user to another site after signing in. */
export function safeNext(next: string | null | undefined): string {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\") || next.startsWith("/login")) return "/";
  return next;
}

const isHttps = (request: Request) => request.url.startsWith("https:") || request.headers.get("x-forwarded-proto") === "https";

/** A form posted from another site (login CSRF) carries its own Origin. */
function sameOrigin(request: Request): boolean {
  const origin = request.headers.get("origin");
  if (!origin) return true;
  try {
    return new URL(origin).host === (request.headers.get("host") ?? new URL(request.url).host);
  } catch {
    return false;
  }
}

export function loginPage(options: { next: string; username?: string; error?: string; notice?: string }) {
  return bareLayout(
    "Sign in",
    html`<div class="login">
  <div class="login-brand"><span class="brand-mark" aria-hidden="true"></span>Industrial Data Gateway</div>
  <form class="card login-card" method="post" action="/login" novalidate>
    <h1>Sign in</h1>
    ${options.notice ? html`<p class="notice notice-info">${options.notice}</p>` : ""}
    ${options.error ? html`<p class="notice notice-bad" id="login-error" role="alert">${options.error}</p>` : ""}
    <input type="hidden" name="next" value="${options.next}">
    <div class="field">
      <label for="username">Username</label>
      <input id="username" name="username" autocomplete="username" required value="${options.username ?? ""}" ${options.username ? "" : "autofocus"}
        ${options.error ? html`aria-invalid="true" aria-describedby="login-error"` : ""}>
    </div>
    <div class="field">
      <label for="password">Password</label>
      <input id="password" name="password" type="password" autocomplete="current-password" required ${options.username ? "autofocus" : ""}
        ${options.error ? html`aria-invalid="true" aria-describedby="login-error"` : ""}>
    </div>
    <button class="btn btn-primary" type="submit">Sign in</button>
  </form>
</div>`,
  );
}

export function loginPages(deps: UiDeps) {
  const limiter = new RateLimiter(LOGIN_ATTEMPTS_PER_MINUTE, LOGIN_ATTEMPTS_PER_MINUTE / 60);
  return new Elysia({ name: "ui-login", detail: { hide: true } })
    .get("/login", async (ctx) => {
      const { request, cookie } = ctxOf(ctx);
      const next = safeNext(new URL(request.url).searchParams.get("next"));
      // An expired access token with a valid refresh token: renew silently and go back.
      const refresh = cookie[REFRESH_COOKIE]?.value;
      if (typeof refresh === "string" && refresh) {
        try {
          const session = await deps.auth.refresh(refresh);
          setSessionCookies(cookie as unknown as CookieJar, session, isHttps(request));
          return new Response(null, { status: 303, headers: { location: next } });
        } catch {
          // fall through to the form
        }
      }
      const signedOut = new URL(request.url).searchParams.has("signed_out");
      return htmlResponse(loginPage({ next, ...(signedOut ? { notice: "You are signed out." } : {}) }));
    })
    .post(
      "/login",
      async (ctx) => {
        const { request, cookie, server } = ctxOf(ctx);
        const form = await readForm(request);
        const next = safeNext(field(form, "next"));
        const username = field(form, "username").trim();
        const password = field(form, "password");
        if (!sameOrigin(request)) return htmlResponse(loginPage({ next, error: "This sign-in form was posted from another site; refused." }), 403);
        const waitS = limiter.take(clientIp(request, server));
        if (waitS > 0) return htmlResponse(loginPage({ next, username, error: `Too many sign-in attempts; try again in ${waitS} s.` }), 429, { "retry-after": String(waitS) });
        if (!username || !password) return htmlResponse(loginPage({ next, username, error: "Enter your username and password." }), 422);
        try {
          const session = await deps.auth.login(username, password);
          setSessionCookies(cookie as unknown as CookieJar, session, isHttps(request));
          return new Response(null, { status: 303, headers: { location: next } });
        } catch (error) {
          if (!(error instanceof AuthError)) throw error;
          return htmlResponse(loginPage({ next, username, error: "Wrong username or password." }), 401);
        }
      },
      { parse: "none" },
    )
    .post(
      "/logout",
      (ctx) => {
        const { request, cookie } = ctxOf(ctx);
        clearSessionCookies(cookie as unknown as CookieJar);
        return redirect(request, "/login?signed_out=1");
      },
      { parse: "none" },
    )
    .post(
      "/session/refresh",
      async (ctx) => {
        const { request, cookie } = ctxOf(ctx);
        const refresh = cookie[REFRESH_COOKIE]?.value;
        if (typeof refresh !== "string" || !refresh) return Response.json({ error: { code: "no_refresh_token", message: "sign in again" } }, { status: 401 });
        try {
          const session = await deps.auth.refresh(refresh);
          const csrf = setSessionCookies(cookie as unknown as CookieJar, session, isHttps(request));
          return { csrf, expires_in: session.expires_in };
        } catch (error) {
          if (!(error instanceof AuthError)) throw error;
          return Response.json({ error: { code: "invalid_token", message: error.message } }, { status: 401 });
        }
      },
      { parse: "none" },
    );
}
