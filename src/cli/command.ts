import { parseArgs, type ParseArgsConfig } from "node:util";

export class UsageError extends Error {
  override name = "UsageError";
}

type Options = NonNullable<ParseArgsConfig["options"]>;

export interface CommandSpec<O extends Options = Options> {
  name: string;
  summary: string;
  usage: string;
  options: O;
  /** Help text per option, printed by --help. */
  optionHelp: Partial<Record<keyof O & string, string>>;
  positionals?: { min: number; max: number };
  run(args: { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] }): Promise<number>;
}

export function defineCommand<O extends Options>(spec: CommandSpec<O>): CommandSpec<O> {
  return spec;
}

export function helpText(spec: CommandSpec): string {
  const lines = [`Usage: gateway ${spec.usage}`, "", spec.summary, "", "Options:"];
  for (const [name, option] of Object.entries(spec.options)) {
    const flag = `--${name}${option.type === "string" ? " <value>" : ""}`;
    lines.push(`  ${flag.padEnd(28)} ${spec.optionHelp[name] ?? ""}`);
  }
  lines.push(`  ${"--help".padEnd(28)} show this help`);
  return lines.join("\n");
}

/** Parses strictly: an unknown flag or a missing value is a one-line UsageError. */
export function parseCommand(spec: CommandSpec, argv: string[]) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...spec.options, help: { type: "boolean" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(`gateway ${spec.name}: ${(error as Error).message.split("\n")[0]!.replace(/\. To specify.*$/, "")}`);
  }
  const { min, max } = spec.positionals ?? { min: 0, max: 0 };
  if (!parsed.values.help && (parsed.positionals.length < min || parsed.positionals.length > max)) {
    const extra = parsed.positionals.length > max ? `unexpected argument "${parsed.positionals[max]}"` : "missing argument";
    throw new UsageError(`gateway ${spec.name}: ${extra} (usage: gateway ${spec.usage})`);
  }
  return parsed;
}

export function intOption(values: Record<string, unknown>, name: string, min: number, max: number): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name}: expected an integer from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

export function choiceOption<T extends string>(values: Record<string, unknown>, name: string, choices: readonly T[]): T | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  if (!choices.includes(raw as T)) {
    throw new UsageError(`--${name}: expected one of ${choices.join(", ")}, got "${raw}"`);
  }
  return raw as T;
}
