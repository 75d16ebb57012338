import { Elysia } from "elysia";
import { can, PUBLIC, ROUTE_PERMISSIONS, routeKey, type RouteRule } from "../auth/permissions.ts";
import { RateLimiter } from "../auth/rate-limit.ts";
import { AuthError, type AuthService, type Principal } from "../auth/service.ts";
import { ApiError } from "./errors.ts";

export const SESSION_COOKIE = "gw_session";
export const REFRESH_COOKIE = "gw_refresh";
export const CSRF_COOKIE = "gw_csrf";
export const CSRF_HEADER = "x-csrf-token";
const UNSAFE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** The codes of the guard's own refusals, as opposed to a handler's (a wrong password is not an RBAC denial). */
export const GUARD_DENIAL_CODES = new Set(["unauthenticated", "forbidden", "csrf", "no_permission_defined"]);

export interface GuardOptions {
  auth: AuthService;
  /** Requests per minute per principal (or per IP when anonymous). */
  requestsPerMinute: number;
}

export function ruleFor(method: string, route: string): RouteRule | undefined {
  return ROUTE_PERMISSIONS[routeKey(method, route)];
}

function bearer(header: string | null): string | undefined {
  const match = header?.match(/^Bearer\s+(.+)$/i);
  return match?.[1]?.trim();
}

export function clientIp(request: Request, server: { requestIP(r: Request): { address: string } | null } | null): string {
  return server?.requestIP(request)?.address ?? "unknown";
}

/**
 * Authentication, authorisation, CSRF and rate limiting for every route, in one place.
 * Browser sessions ride in an HttpOnly cookie and must echo the CSRF cookie in a header on
 * unsafe methods (double submit); bearer tokens are not sent by browsers on their own, so they
 * need no CSRF token.
 */
export function guard(options: GuardOptions) {
  const limiter = new RateLimiter(options.requestsPerMinute, options.requestsPerMinute / 60);
  return new Elysia({ name: "guard" })
    .derive({ as: "global" }, async ({ request, cookie }) => {
      const header = bearer(request.headers.get("authorization"));
      const credential = header ?? (cookie[SESSION_COOKIE]?.value as string | undefined);
      let principal: Principal | undefined;
      let authError: string | undefined;
      if (credential) {
        try {
          principal = await options.auth.authenticate(credential);
        } catch (error) {
          authError = error instanceof AuthError ? error.message : "authentication failed";
        }
      }
      return { principal, authError, viaCookie: !header && Boolean(credential) };
    })
    // Transform runs before body validation: an unauthorised caller learns nothing from a 422.
    .onTransform({ as: "global" }, ({ request, route, principal, authError, viaCookie, cookie, server }) => {
      const rule = ruleFor(request.method, route);
      const wantsHtml = !new URL(request.url).pathname.startsWith("/api/") && request.method === "GET";
      if (rule === undefined) throw new ApiError(403, "no_permission_defined", `${request.method} ${route} has no permission rule; refused`);
      const waitS = limiter.take(principal?.id ?? `ip:${clientIp(request, server)}`);
      if (waitS > 0) throw new ApiError(429, "rate_limited", `too many requests; retry in ${waitS} s`, undefined, { "retry-after": String(waitS) });
      if (rule === PUBLIC) return;
      if (!principal) {
        if (wantsHtml) {
          throw new ApiError(303, "sign_in", "sign in first", undefined, { location: `/login?next=${encodeURIComponent(new URL(request.url).pathname)}` });
        }
        throw new ApiError(401, "unauthenticated", authError ?? "sign in, or send Authorization: Bearer <token>", undefined, { "www-authenticate": "Bearer" });
      }
      if (viaCookie && UNSAFE_METHODS.has(request.method)) {
        const sent = request.headers.get(CSRF_HEADER);
        if (!sent || sent !== cookie[CSRF_COOKIE]?.value) throw new ApiError(403, "csrf", "missing or wrong CSRF token");
      }
      if (rule !== "authenticated" && !can(principal.role, rule)) {
        throw new ApiError(403, "forbidden", `role ${principal.role} lacks permission ${rule}`);
      }
    });
}
