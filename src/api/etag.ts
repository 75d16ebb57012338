import { VersionConflictError } from "../db/repo.ts";
import { ApiError } from "./errors.ts";

/** A versioned resource's ETag is its version. */
export const etag = (version: number) => `"${version}"`;

/** If-Match carries the version the client last saw; a stale one gets 412 instead of overwriting. */
export function expectedVersion(header: string | null): number | undefined {
  if (!header || header === "*") return undefined;
  const match = header.match(/^(?:W\/)?"(\d+)"$/);
  if (!match) throw new ApiError(400, "bad_if_match", `If-Match must be an ETag like "3", got ${header}`);
  return Number(match[1]);
}

/**
 * A write refused for its version, as the API answers it: 409 for a create (expected version 0) of
 * an id that exists, 412 for a stale If-Match. Any other error is handed back unchanged.
 */
export function versionConflictAnswer(error: unknown, what: string, creating: boolean): unknown {
  if (!(error instanceof VersionConflictError)) return error;
  return creating ? new ApiError(409, "already_exists", `${what} already exists; use PUT to change it`) : new ApiError(412, "version_conflict", error.message);
}
