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
