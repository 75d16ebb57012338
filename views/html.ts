/**
 * Server-rendered HTML with auto-escaping. Every interpolated value is escaped unless it is
 * already `Html` (the result of another `html` template, or `raw()` of trusted markup), so a
 * tag name, a device string or an error message can never inject markup.
 */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export type Renderable = Html | string | number | bigint | boolean | null | undefined | readonly Renderable[];

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

function render(value: Renderable): string {
  if (value instanceof Html) return value.value;
  if (value === null || value === undefined || value === false || value === true) return "";
  if (Array.isArray(value)) return value.map(render).join("");
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: Renderable[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return new Html(out);
}

/** Trusted markup only: our own constants, never user or device data. */
export function raw(markup: string): Html {
  return new Html(markup);
}

/** ` name="value"`, ` name` for true, nothing for false/null/undefined. */
export function attr(name: string, value: string | number | boolean | null | undefined): Html {
  if (value === false || value === null || value === undefined) return new Html("");
  if (value === true) return new Html(` ${name}`);
  return new Html(` ${name}="${escapeHtml(String(value))}"`);
}

export const join = (items: readonly Renderable[], separator: Renderable = ""): Html =>
  new Html(items.map(render).join(render(separator)));
