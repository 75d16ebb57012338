/**
 * `make build`: the single binary. Bun embeds the code, PGlite's wasm/data files (imported with
 * `type: "file"`) and the migrations; tsconfig's `paths` maps @platformatic/wasm-utils to its
 * bundled entry, which inlines its WASM.
 */
import { mkdirSync, statSync } from "node:fs";

const outfile = process.argv[2] ?? "dist/gateway";
mkdirSync("dist", { recursive: true });
const started = performance.now();
const result = Bun.spawnSync(
  // proper-lockfile: node-opcua's global mutex imports it lazily and the code path that does is never
  // taken by our client and server; it is not installed, so it must stay external to bundle at all.
  [process.execPath, "build", "--compile", "--minify-syntax", "--sourcemap=none", "--external", "proper-lockfile", "src/main.ts", "--outfile", outfile],
  { stdout: "inherit", stderr: "inherit" },
);
if (result.exitCode !== 0) process.exit(result.exitCode ?? 1);
const sizeMb = statSync(outfile).size / 1024 / 1024;
console.log(`built ${outfile}: ${sizeMb.toFixed(1)} MB in ${((performance.now() - started) / 1000).toFixed(1)} s`);
