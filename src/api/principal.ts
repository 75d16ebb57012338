import type { Principal } from "../auth/service.ts";
import { ApiError } from "./errors.ts";
import { clientIp } from "./guard.ts";

/** The guard derives `principal` globally; resource plugins read it through here. */
export function principalOf(ctx: unknown): Principal {
  const principal = (ctx as { principal?: Principal }).principal;
  if (!principal) throw new ApiError(401, "unauthenticated", "sign in first");
  return principal;
}

/** Who and from where, for the audit log. */
export function actorOf(ctx: unknown): [string, string | null] {
  const { request, server } = ctx as { request: Request; server: Parameters<typeof clientIp>[1] };
  const ip = clientIp(request, server);
  return [principalOf(ctx).username, ip === "unknown" ? null : ip];
}
