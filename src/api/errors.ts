import type { FieldError } from "../config/schema-errors.ts";

/** Every API error has this shape, so clients handle one format. */
export interface ApiErrorBody {
  error: { code: string; message: string; fields?: FieldError[] };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields?: FieldError[],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }

  body(): ApiErrorBody {
    return { error: { code: this.code, message: this.message, ...(this.fields ? { fields: this.fields } : {}) } };
  }
}

export const notFound = (what: string) => new ApiError(404, "not_found", `${what} not found`);
export const invalid = (fields: FieldError[]) =>
  new ApiError(422, "validation_failed", `${fields.length} field(s) failed validation`, fields);
