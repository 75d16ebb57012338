// Bun import attributes used by the control DB layer (`with { type: "file" | "text" }`).
// "file" imports resolve to a path (a /$bunfs/... path inside a compiled binary).
declare module "@electric-sql/pglite/pglite.wasm" {
  const path: string;
  export default path;
}
declare module "@electric-sql/pglite/initdb.wasm" {
  const path: string;
  export default path;
}
declare module "@electric-sql/pglite/pglite.data" {
  const path: string;
  export default path;
}
// Migration SQL files, embedded as text by src/db/migrations.generated.ts.
declare module "*.sql" {
  const text: string;
  export default text;
}
