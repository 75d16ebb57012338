import type { TSchema } from "@sinclair/typebox";
import { Value, type ValueError } from "@sinclair/typebox/value";

export interface FieldError {
  path: string;
  message: string;
}

/**
 * "/pipelines/2/source/port" → "pipelines[2].source.port", the form users see in every error.
 * The value tells array indices (`[2]`) from numeric map keys such as register addresses (`["40001"]`).
 */
export function toFieldPath(pointer: string, root = "", value?: unknown): string {
  const parts = pointer.split("/").slice(1).map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  let path = root;
  let node = value;
  for (const part of parts) {
    const inArray = Array.isArray(node);
    node = node !== null && typeof node === "object" ? (node as Record<string, unknown>)[part] : undefined;
    if (inArray) path += `[${part}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(part)) path += path ? `.${part}` : part;
    else path += `[${JSON.stringify(part)}]`;
  }
  return path || "(root)";
}

function describe(error: ValueError): string {
  const schema = error.schema as TSchema & Record<string, unknown>;
  if (Array.isArray(schema.anyOf) && schema.anyOf.every((s: TSchema) => "const" in s)) {
    return `expected one of ${schema.anyOf.map((s: TSchema) => JSON.stringify(s.const)).join(", ")}, got ${JSON.stringify(error.value)}`;
  }
  const got = error.value === undefined ? "nothing" : JSON.stringify(error.value);
  return `${error.message.charAt(0).toLowerCase()}${error.message.slice(1)}, got ${got}`;
}

/**
 * One error per failing path, deepest first. TypeBox reports a union failure at the union and at
 * each branch; the branch errors are noise for users, so only the first error per path is kept.
 */
export function schemaErrors(schema: TSchema, value: unknown, root = ""): FieldError[] {
  const seen = new Set<string>();
  const errors: FieldError[] = [];
  for (const error of unionAware(Value.Errors(schema, value))) {
    const path = toFieldPath(error.path, root, value);
    if (seen.has(path)) continue;
    seen.add(path);
    errors.push({ path, message: describe(error) });
  }
  return errors;
}

const kindOf = (value: unknown) => (Array.isArray(value) ? "array" : value === null ? "null" : typeof value);

/**
 * "expected union value" tells a user nothing. When exactly one branch of a failed union has the
 * value's shape (an object where an object or a list is allowed), report that branch's errors.
 */
function* unionAware(errors: Iterable<ValueError>): Generator<ValueError> {
  for (const error of errors) {
    const branches = (error.schema as { anyOf?: TSchema[] }).anyOf;
    const matching = branches?.filter((b) => (b as { type?: string }).type === kindOf(error.value));
    if (matching?.length === 1) {
      for (const inner of unionAware(Value.Errors(matching[0]!, error.value))) yield { ...inner, path: `${error.path}${inner.path}` };
    } else {
      yield error;
    }
  }
}

export function formatFieldErrors(errors: FieldError[]): string {
  return errors.map((e) => `${e.path}: ${e.message}`).join("\n");
}

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly fieldErrors: FieldError[],
  ) {
    super(`${source} is invalid:\n${formatFieldErrors(fieldErrors)}`);
    this.name = "ConfigError";
  }
}

/** Apply defaults, coerce strings from env/YAML, then validate; throws ConfigError naming each path. */
export function parseWithSchema<T extends TSchema>(schema: T, input: unknown, source: string, root = ""): import("@sinclair/typebox").Static<T> {
  const withDefaults = Value.Default(schema, Value.Clone(input ?? {}));
  const converted = Value.Convert(schema, withDefaults);
  const errors = schemaErrors(schema, converted, root);
  if (errors.length > 0) throw new ConfigError(source, errors);
  return converted as import("@sinclair/typebox").Static<T>;
}
