/**
 * Loads node-opcua-server, also inside the compiled binary.
 *
 * node-opcua-server reads `<its dist folder>/../package.json` while it loads (for the version it
 * advertises). In `bun build --compile` output its modules live in the embedded file system, where
 * that path (/$bunfs/package.json) does not exist, so the import throws ENOENT. While the module
 * loads, that one read is answered from the package.json bundled here; nothing else is touched.
 */
import fs from "node:fs";
import serverPackage from "node-opcua-server/package.json" with { type: "json" };

type ServerModule = typeof import("node-opcua-server");

let loaded: Promise<ServerModule> | undefined;

export function loadOpcuaServer(): Promise<ServerModule> {
  loaded ??= (async () => {
    if (!import.meta.path.startsWith("/$bunfs/")) return import("node-opcua-server");
    const original = fs.readFileSync;
    const manifest = JSON.stringify({ name: serverPackage.name, version: serverPackage.version });
    fs.readFileSync = ((file: fs.PathOrFileDescriptor, ...rest: unknown[]) => {
      if (typeof file === "string" && file.startsWith("/$bunfs/") && file.endsWith("package.json") && !fs.existsSync(file)) return manifest;
      return (original as (...args: unknown[]) => unknown)(file, ...rest);
    }) as typeof fs.readFileSync;
    try {
      return await import("node-opcua-server");
    } finally {
      fs.readFileSync = original;
    }
  })();
  return loaded;
}
