// node-opcua's precompiled standard nodeset, imported `with { type: "file" }`: a path on disk, or
// inside the compiled binary's embedded file system.
declare module "*.ndjson.gz" {
  const path: string;
  export default path;
}
