#!/usr/bin/env bun
// node-opcua's certificate code (tsyringe) needs the Reflect metadata polyfill loaded before it;
// in the compiled binary module order is not import order, so it is loaded first, here.
import "reflect-metadata";
import { ConfigError } from "./config/schema-errors.ts";
import { helpText, parseCommand, UsageError } from "./cli/command.ts";
import { COMMANDS } from "./cli/commands.ts";

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    "Usage: gateway <command> [options]",
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)} ${c.summary}`),
    "",
    "Run `gateway <command> --help` for a command's options.",
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(mainHelp());
    return name ? 0 : 2;
  }
  if (name === "--version") return main(["version"]);
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    console.error(`gateway: unknown command "${name}" (commands: ${COMMANDS.map((c) => c.name).join(", ")})`);
    return 2;
  }
  try {
    const parsed = parseCommand(command, rest);
    if (parsed.values.help) {
      console.log(helpText(command));
      return 0;
    }
    return await command.run(parsed);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(error.message);
      return 2;
    }
    if (error instanceof ConfigError) {
      console.error(error.message);
      return 2;
    }
    console.error(`gateway ${name}: ${(error as Error).message}`);
    return 1;
  }
}

if (import.meta.main) {
  // Exit explicitly: a client still retrying an unreachable broker must not keep a stopped process alive.
  process.exit(await main(process.argv.slice(2)));
}
