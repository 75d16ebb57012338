import { Elysia } from "elysia";
import { DLQ_DEFAULT_COUNT, DLQ_MAX_COUNT, type DlqEntry } from "../src/live/dlq-browser.ts";
import type { UiDeps } from "./context.ts";
import { formatDateTime } from "./format.ts";
import { attr, html, type Html } from "./html.ts";
import { handle, page } from "./http.ts";
import { badge, emptyState } from "./layout.ts";

const COUNTS = [20, 50, 100, 200, DLQ_MAX_COUNT];
/** Where most rejects go: readings that failed validation. */
const DEFAULT_TOPIC = "dlq.invalid_telemetry";

function pretty(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

function entry(e: DlqEntry): Html {
  return html`<details class="dlq-entry">
  <summary>
    <span class="mono small">${formatDateTime(e.timestamp)}</span>
    ${e.reason ? badge(e.reason, "warn") : ""}
    <span class="dlq-message">${e.message ?? html`<span class="muted">no reason given</span>`}</span>
    <span class="muted small mono">p${e.partition} @ ${e.offset}${e.key ? ` · ${e.key}` : ""}</span>
  </summary>
  <div class="dlq-body">
    ${e.raw !== null ? html`<h3>Original record (raw_base64, decoded)</h3><pre class="code">${e.raw}</pre>` : ""}
    <h3>DLQ record</h3>
    <pre class="code">${pretty(e.payload)}</pre>
    ${Object.keys(e.headers).length ? html`<h3>Headers</h3><pre class="code">${pretty(e.headers)}</pre>` : ""}
  </div>
</details>`;
}

export function dlqPages(deps: UiDeps) {
  return new Elysia({ name: "ui-dlq", detail: { hide: true } }).get(
    "/dlq",
    handle(deps, async (ctx, viewer) => {
      if (!deps.live) return page(viewer, "Dead-letter queues", emptyState("The DLQ browser needs Kafka, and live data is off on this appliance."));
      const count = COUNTS.includes(Number(ctx.query.count)) ? Number(ctx.query.count) : DLQ_DEFAULT_COUNT;
      let topics: string[] = [];
      let problem: string | undefined;
      try {
        topics = await deps.live.dlq.topics();
      } catch (error) {
        problem = `Cannot list topics: ${(error as Error).message}`;
      }
      const topic = ctx.query.topic && topics.includes(ctx.query.topic) ? ctx.query.topic : (topics.find((t) => t === DEFAULT_TOPIC) ?? topics[0]);
      let entries: DlqEntry[] = [];
      if (topic && !problem) {
        try {
          entries = await deps.live.dlq.latest(topic, count);
        } catch (error) {
          problem = `Cannot read ${topic}: ${(error as Error).message}`;
        }
      }
      return page(
        viewer,
        "Dead-letter queues",
        html`<section class="card">
  <form class="toolbar" method="get" action="/dlq">
    <label for="dlq-topic">Topic</label>
    <select id="dlq-topic" name="topic">${topics.map((t) => html`<option${attr("selected", t === topic)}>${t}</option>`)}</select>
    <label for="dlq-count">Last</label>
    <select id="dlq-count" name="count">${COUNTS.map((c) => html`<option${attr("selected", c === count)}>${c}</option>`)}</select>
    <button class="btn" type="submit">Show</button>
    <span class="muted small">Newest first. Reading does not consume: workers and re-drives are unaffected.</span>
  </form>
  ${problem ? html`<p class="notice notice-bad" role="alert">${problem}</p>` : ""}
  ${!problem && topic && entries.length === 0 ? emptyState(html`<code>${topic}</code> is empty.`, "Records that fail validation land here with the reason and the original bytes.") : ""}
  <div class="dlq-list">${entries.map(entry)}</div>
</section>`,
      );
    }),
  );
}
