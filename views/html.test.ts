import { describe, expect, test } from "bun:test";
import { niceCeiling, sparkline } from "./charts.ts";
import { formatRate, formatTime, humanize } from "./format.ts";
import { attr, html, raw } from "./html.ts";
import { safeNext } from "./login.ts";

describe("html", () => {
  test("interpolations are escaped; nested templates and raw() are not", () => {
    const name = `<script>alert("x")</script> & 'y'`;
    expect(html`<p title="${name}">${name}</p>`.value).toBe(
      "<p title=\"&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;\">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;</p>",
    );
    expect(html`<ul>${["a", "<b>"].map((x) => html`<li>${x}</li>`)}</ul>`.value).toBe("<ul><li>a</li><li>&lt;b&gt;</li></ul>");
    expect(html`${raw("<br>")}${null}${undefined}${false}${0}`.value).toBe("<br>0");
    expect(html`<input${attr("disabled", true)}${attr("value", '"q"')}${attr("x", false)}>`.value).toBe('<input disabled value="&quot;q&quot;">');
  });
});

describe("sign-in redirect target", () => {
  test.each([
    ["/pipelines/x?saved=1", "/pipelines/x?saved=1"],
    ["//evil.example/", "/"],
    ["/\\evil.example", "/"],
    ["https://evil.example/", "/"],
    ["/login?next=/x", "/"],
    [null, "/"],
  ])("%p → %p", (next, expected) => {
    expect(safeNext(next)).toBe(expected);
  });
});

describe("formatting", () => {
  test("times, rates, labels", () => {
    const now = Date.parse("2025-11-27T10:00:00Z");
    expect(formatTime("2025-11-27T03:20:15.123Z", now)).toBe("03:20:15.123");
    expect(formatTime("2025-11-26T03:20:15.123Z", now)).toBe("2025-11-26 03:20:15.123");
    expect(formatTime(null, now)).toBe("—");
    expect([formatRate(0), formatRate(0.5), formatRate(12.34), formatRate(1234.5)]).toEqual(["0", "0.5", "12.3", "1235"]);
    expect([humanize("poll_interval_ms"), humanize("unit_id"), humanize("host")]).toEqual(["Poll interval (ms)", "Unit ID", "Host"]);
  });

  test("sparkline scale and description", () => {
    expect([niceCeiling(0), niceCeiling(7), niceCeiling(10), niceCeiling(11), niceCeiling(260)]).toEqual([1, 10, 10, 20, 500]);
    const svg = sparkline([0, 5, 10], { label: "Readings", unit: "/s" }).value;
    expect(svg).toContain('aria-label="Readings: now 10 /s, peak 10 /s"');
    expect(svg).toContain('points="0.0,88.0 300.0,45.0 600.0,2.0"');
    const partial = sparkline([null, null, 4], { label: "Readings", unit: "/s" }).value;
    expect(partial).toContain('<rect class="no-data" x="0" y="0" width="600.0"');
    expect(partial).toContain("collecting since the gateway started");
    expect(sparkline([null, null], { label: "Readings", unit: "/s" }).value).toContain('aria-label="Readings: no data yet"');
  });
});
