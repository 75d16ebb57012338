import { randomBytes } from "node:crypto";
import { Elysia, t } from "elysia";
import { RateLimiter } from "../../auth/rate-limit.ts";
import { ACCESS_TOKEN_TTL_S, AuthError, REFRESH_TOKEN_TTL_S, type AuthService, type Session } from "../../auth/service.ts";
import { ApiError } from "../errors.ts";
import { clientIp, CSRF_COOKIE, REFRESH_COOKIE, SESSION_COOKIE } from "../guard.ts";

const LOGIN_ATTEMPTS_PER_MINUTE = 10;

const LoginBody = t.Object({
  username: t.String({ minLength: 1, maxLength: 128 }),
  password: t.String({ minLength: 1, maxLength: 1024 }),
});

type CookieJar = Record<string, { set(options: Record<string, unknown>): void; remove(): void; value?: unknown }>;

/** Session cookies for the web UI: HttpOnly and SameSite=Strict; the CSRF token is echoed in a header. */
export function setSessionCookies(cookie: CookieJar, session: Session, secure: boolean): string {
  const base = { httpOnly: true, sameSite: "strict", path: "/", secure };
  const csrf = randomBytes(16).toString("hex");
  cookie[SESSION_COOKIE]!.set({ ...base, value: session.access_token, maxAge: ACCESS_TOKEN_TTL_S });
  cookie[REFRESH_COOKIE]!.set({ ...base, value: session.refresh_token, maxAge: REFRESH_TOKEN_TTL_S, path: "/" });
  cookie[CSRF_COOKIE]!.set({ ...base, value: csrf, maxAge: REFRESH_TOKEN_TTL_S });
  return csrf;
}

export function clearSessionCookies(cookie: CookieJar): void {
  for (const name of [SESSION_COOKIE, REFRESH_COOKIE, CSRF_COOKIE]) cookie[name]?.remove();
}

const isHttps = (request: Request) => request.url.startsWith("https:") || request.headers.get("x-forwarded-proto") === "https";

export function authRoutes(auth: AuthService) {
  const loginLimiter = new RateLimiter(LOGIN_ATTEMPTS_PER_MINUTE, LOGIN_ATTEMPTS_PER_MINUTE / 60);
  return new Elysia({ prefix: "/api/v1/auth", detail: { tags: ["auth"] } })
    .post(
      "/login",
      async ({ body, cookie, request, server }) => {
        const waitS = loginLimiter.take(clientIp(request, server));
        if (waitS > 0) throw new ApiError(429, "rate_limited", `too many sign-in attempts; retry in ${waitS} s`, undefined, { "retry-after": String(waitS) });
        try {
          const session = await auth.login(body.username, body.password);
          setSessionCookies(cookie as unknown as CookieJar, session, isHttps(request));
          return session;
        } catch (error) {
          if (error instanceof AuthError) throw new ApiError(401, "invalid_credentials", error.message);
          throw error;
        }
      },
      { body: LoginBody, detail: { summary: "Sign in; returns a short-lived JWT and a refresh token, and sets the UI's session cookies" } },
    )
    .post(
      "/refresh",
      async ({ body, cookie, request }) => {
        const token = body?.refresh_token ?? (cookie[REFRESH_COOKIE]?.value as string | undefined);
        if (!token) throw new ApiError(401, "no_refresh_token", "send refresh_token in the body, or the refresh cookie");
        try {
          const session = await auth.refresh(token);
          setSessionCookies(cookie as unknown as CookieJar, session, isHttps(request));
          return session;
        } catch (error) {
          if (error instanceof AuthError) throw new ApiError(401, "invalid_token", error.message);
          throw error;
        }
      },
      { body: t.Optional(t.Object({ refresh_token: t.Optional(t.String()) })), detail: { summary: "Exchange a refresh token for a new access token" } },
    )
    .post(
      "/logout",
      ({ cookie }) => {
        clearSessionCookies(cookie as unknown as CookieJar);
        return { ok: true };
      },
      { detail: { summary: "Clear the UI session cookies" } },
    )
    .get("/me", (ctx) => (ctx as unknown as { principal: unknown }).principal, { detail: { summary: "The signed-in principal" } });
}
