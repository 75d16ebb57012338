import { createHash } from "node:crypto";
import { sql } from "drizzle-orm";
import type { MigrationConfig, MigrationMeta } from "drizzle-orm/migrator";
import type { PgDialect, PgSession } from "drizzle-orm/pg-core";
import type { ControlDb, Db } from "./client.ts";
import { migrationJournal, migrationSql } from "./migrations.generated.ts";

/** drizzle's defaults, so `drizzle-kit migrate` and this migrator share bookkeeping. */
const MIGRATIONS_SCHEMA = "drizzle";
const MIGRATIONS_TABLE = "__drizzle_migrations";

/**
 * The embedded migrations in exactly the shape drizzle's `readMigrationFiles` returns for the
 * migrations/ folder (same split, same sha256 over the file text), hence identical
 * `__drizzle_migrations` rows whichever way a database was migrated.
 */
export function embeddedMigrations(): MigrationMeta[] {
  return migrationJournal.entries.map((entry) => {
    const query = migrationSql[entry.tag];
    if (query === undefined) throw new Error(`migration ${entry.tag} is not embedded; run scripts/gen-migrations-index.ts`);
    return {
      sql: query.split("--> statement-breakpoint"),
      bps: entry.breakpoints,
      folderMillis: entry.when,
      hash: createHash("sha256").update(query).digest("hex"),
    };
  });
}

export async function migrateDatabase(cdb: ControlDb): Promise<{ applied: number }> {
  const config: MigrationConfig = {
    migrationsFolder: "(embedded)",
    migrationsSchema: MIGRATIONS_SCHEMA,
    migrationsTable: MIGRATIONS_TABLE,
  };
  const before = await appliedCount(cdb.db);
  // Same call drizzle's own migrate() helpers make; dialect/session are @internal in the typings.
  const { dialect, session } = cdb.db as unknown as { dialect: PgDialect; session: PgSession };
  await dialect.migrate(embeddedMigrations(), session, config);
  return { applied: (await appliedCount(cdb.db)) - before };
}

async function appliedCount(db: Db): Promise<number> {
  const table = `${MIGRATIONS_SCHEMA}.${MIGRATIONS_TABLE}`;
  const [exists] = rowsOf<{ t: string | null }>(await db.execute(sql`select to_regclass(${table})::text as t`));
  if (!exists?.t) return 0;
  const [row] = rowsOf<{ n: number }>(
    await db.execute(sql`select count(*)::int as n from ${sql.identifier(MIGRATIONS_SCHEMA)}.${sql.identifier(MIGRATIONS_TABLE)}`),
  );
  return row?.n ?? 0;
}

/** postgres.js returns a row array, PGlite a `{ rows }` result. */
function rowsOf<T>(result: unknown): T[] {
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}
