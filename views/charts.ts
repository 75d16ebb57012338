import { formatRate } from "./format.ts";
import { html, type Html } from "./html.ts";

/** 1, 2, 5, 10, 20, 50 ...: a y-axis top that reads well. */
export function niceCeiling(value: number): number {
  if (!(value > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

/**
 * Inline SVG sparkline: scales to its container, no script, described for screen readers.
 * null values (no data yet) leave the line out rather than drawing zeros.
 */
export function sparkline(values: Array<number | null>, options: { label: string; unit: string; width?: number; height?: number }): Html {
  const width = options.width ?? 600;
  const height = options.height ?? 90;
  const known = values.filter((v): v is number => v !== null);
  const top = niceCeiling(Math.max(...known, 0));
  const n = Math.max(values.length, 2);
  const x = (i: number) => ((i / (n - 1)) * width).toFixed(1);
  const y = (v: number) => (height - 2 - (v / top) * (height - 4)).toFixed(1);
  const first = values.findIndex((v) => v !== null);
  const points = values.flatMap((v, i) => (v === null ? [] : [`${x(i)},${y(v)}`])).join(" ");
  const current = known.at(-1) ?? 0;
  const peak = Math.max(...known, 0);
  const description = known.length
    ? `${options.label}: now ${formatRate(current)} ${options.unit}, peak ${formatRate(peak)} ${options.unit}`
    : `${options.label}: no data yet`;
  return html`<figure class="sparkline">
  <svg viewBox="0 0 ${width} ${height}" preserveAspectRatio="none" role="img" aria-label="${description}">
    <title>${description}</title>
    <line class="grid" x1="0" y1="${y(top)}" x2="${width}" y2="${y(top)}"></line>
    <line class="grid" x1="0" y1="${y(top / 2)}" x2="${width}" y2="${y(top / 2)}"></line>
    ${first > 0 ? html`<rect class="no-data" x="0" y="0" width="${x(first)}" height="${height}"></rect>` : ""}
    ${known.length ? html`<polygon class="area" points="${x(first)},${height} ${points} ${x(values.length - 1)},${height}"></polygon>
    <polyline class="line" points="${points}"></polyline>` : ""}
  </svg>
  <div class="axis"><span>${formatRate(top)} ${options.unit}</span><span>${formatRate(top / 2)}</span><span>0</span></div>
  <figcaption><span>−5 min</span>${first !== 0 ? html`<span class="muted">${known.length ? "collecting since the gateway started" : "collecting…"}</span>` : ""}<span>now</span></figcaption>
</figure>`;
}
