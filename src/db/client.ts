import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from "drizzle-orm/pg-core";
import type { ExtractTablesWithRelations } from "drizzle-orm";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import postgres from "postgres";
// Embedded so `bun build --compile` binaries run PGlite without node_modules on disk.
import pgliteWasmPath from "@electric-sql/pglite/pglite.wasm" with { type: "file" };
import initdbWasmPath from "@electric-sql/pglite/initdb.wasm" with { type: "file" };
import pgliteDataPath from "@electric-sql/pglite/pglite.data" with { type: "file" };
import * as schema from "./schema.ts";

export type Schema = typeof schema;
/** Driver-agnostic drizzle handle; a transaction (`Tx`) is assignable to it too. */
export type Db = PgDatabase<PgQueryResultHKT, Schema>;
export type Tx = PgTransaction<PgQueryResultHKT, Schema, ExtractTablesWithRelations<Schema>>;

export interface ControlDb {
  kind: "pglite" | "postgres";
  db: Db;
  /** Resolves when the DB answers `select 1`; rejects with "control DB unreachable at …" otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** postgres:// URL; when absent an embedded PGlite DB is used. */
  databaseUrl?: string;
  /** Gateway data dir; PGlite lives in `<dataDir>/control-db`. */
  dataDir: string;
}

const PING_TIMEOUT_MS = 5_000;

export async function openDatabase(opts: OpenDatabaseOptions): Promise<ControlDb> {
  return opts.databaseUrl ? openPostgres(opts.databaseUrl) : openPglite(join(opts.dataDir, "control-db"));
}

function openPostgres(url: string): ControlDb {
  const client = postgres(url, {
    max: 5,
    connect_timeout: 5,
    idle_timeout: 60,
    onnotice: () => {},
    connection: { application_name: "industrial-data-gateway" },
  });
  const { host, port } = client.options;
  const where = `${host[0] ?? "localhost"}:${port[0] ?? 5432}`;
  const db = drizzlePostgres({ client, schema });
  return {
    kind: "postgres",
    db,
    ping: () => pingWith(where, () => client`select 1`),
    close: () => client.end({ timeout: 5 }),
  };
}

async function openPglite(dir: string): Promise<ControlDb> {
  mkdirSync(dir, { recursive: true });
  const assets = await pgliteAssets();
  const client = await PGlite.create({ dataDir: dir, ...assets });
  const db = drizzlePglite({ client, schema });
  return {
    kind: "pglite",
    db,
    ping: () => pingWith(dir, () => client.query("select 1")),
    close: () => client.close(),
  };
}

let assetsPromise: Promise<{ pgliteWasmModule: WebAssembly.Module; initdbWasmModule: WebAssembly.Module; fsBundle: Blob }> | undefined;

/** Compiled once per process; WebAssembly.Module is stateless and shareable between PGlite instances. */
function pgliteAssets() {
  assetsPromise ??= (async () => {
    const [pgliteWasmModule, initdbWasmModule] = await Promise.all(
      [pgliteWasmPath, initdbWasmPath].map(async (p) => WebAssembly.compile(await Bun.file(p).arrayBuffer())),
    );
    return { pgliteWasmModule: pgliteWasmModule!, initdbWasmModule: initdbWasmModule!, fsBundle: Bun.file(pgliteDataPath) };
  })();
  assetsPromise.catch(() => (assetsPromise = undefined));
  return assetsPromise;
}

async function pingWith(where: string, query: () => PromiseLike<unknown>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${PING_TIMEOUT_MS} ms`)), PING_TIMEOUT_MS);
  });
  try {
    // Promise.race subscribes to both, so a late rejection of the query is still handled.
    await Promise.race([query(), timeout]);
  } catch (err) {
    throw new Error(`control DB unreachable at ${where}: ${describeError(err)}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  // Bun's socket errors can carry a bare message; keep the errno code visible either way.
  return typeof code === "string" && !err.message.includes(code) ? `${code} ${err.message}` : err.message;
}
