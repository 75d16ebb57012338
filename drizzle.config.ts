import { defineConfig } from "drizzle-kit";

// `bunx drizzle-kit generate --name <change> && bun scripts/gen-migrations-index.ts`
// DATABASE_URL is only needed for introspection commands (studio, check against a live DB).
const url = process.env.DATABASE_URL;

export default defineConfig({
  dialect: "postgresql",
  schema: "./src/db/schema.ts",
  out: "./migrations",
  ...(url ? { dbCredentials: { url } } : {}),
});
