// Files the UI embeds as text (`with { type: "text" }`), so `bun build --compile` carries them.
declare module "*.css" {
  const text: string;
  export default text;
}
declare module "htmx.org/dist/htmx.min.js" {
  const text: string;
  export default text;
}
declare module "htmx-ext-sse/dist/sse.min.js" {
  const text: string;
  export default text;
}
declare module "*/static/app.js" {
  const text: string;
  export default text;
}
