import { describe, expect, test } from "bun:test";
import type { DeclaredPipeline } from "../../src/config/schema.ts";
import { builderForm, parseBuilderForm, stateFromPipeline } from "./builder.ts";

const decode = (text: string) =>
  text.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");

/** What a browser would submit for the first form in `markup` (enabled controls only). */
async function submitted(markup: string): Promise<FormData> {
  const form = new FormData();
  let select: { name: string; first?: string; chosen?: string; option?: { value?: string; text: string; selected: boolean } } | undefined;
  let textarea: { name: string; text: string } | undefined;
  const closeOption = () => {
    if (!select?.option) return;
    const value = select.option.value ?? decode(select.option.text.trim());
    select.first ??= value;
    if (select.option.selected) select.chosen = value;
    select.option = undefined;
  };
  await new HTMLRewriter()
    .on("input", {
      element(e) {
        const name = e.getAttribute("name");
        const type = e.getAttribute("type") ?? "text";
        if (!name || e.hasAttribute("disabled") || type === "file") return;
        if ((type === "checkbox" || type === "radio") && !e.hasAttribute("checked")) return;
        form.append(name, decode(e.getAttribute("value") ?? (type === "checkbox" ? "on" : "")));
      },
    })
    .on("select", {
      element(e) {
        const name = e.getAttribute("name");
        if (!name || e.hasAttribute("disabled")) return;
        select = { name };
        e.onEndTag(() => {
          closeOption();
          form.append(select!.name, select!.chosen ?? select!.first ?? "");
          select = undefined;
        });
      },
    })
    .on("option", {
      element(e) {
        if (!select) return;
        closeOption();
        select.option = { ...(e.hasAttribute("value") ? { value: decode(e.getAttribute("value")!) } : {}), text: "", selected: e.hasAttribute("selected") };
      },
      text(t) {
        if (select?.option) select.option.text += t.text;
      },
    })
    .on("textarea", {
      element(e) {
        const name = e.getAttribute("name");
        if (!name || e.hasAttribute("disabled")) return;
        textarea = { name, text: "" };
        e.onEndTag(() => {
          form.append(textarea!.name, decode(textarea!.text));
          textarea = undefined;
        });
      },
      text(t) {
        if (textarea) textarea.text += t.text;
      },
    })
    .transform(new Response(markup))
    .text();
  return form;
}

const DEMO: DeclaredPipeline & { version: number } = {
  id: "offshore_well_12",
  name: "Offshore well 12 wellhead RTU",
  enabled: true,
  runtime: "process",
  version: 3,
  adapter: {
    protocol: "modbus_tcp",
    source: { host: "127.0.0.1", port: 15020, unit_id: 1, timeout_ms: 1000, workarounds: { pause_between_requests_ms: 20 } },
    mapping: {
      addressing: "modicon",
      registers: {
        "40001": { param: "pressure", unit: "psi", type: "float32" },
        "40007": { param: "choke_position", unit: "percent", type: "uint16", scale: 0.1 },
        "40008": { param: "pump_running_status", type: "bool", bit: 0 },
        "40009": { param: "rtu_uptime", unit: "s", type: "uint32", byte_order: "CDAB" },
        "40011": { param: "well_tag", type: "string", length: 8 },
        "00001": { param: "pump_running", type: "bool" },
      },
    },
    output: { asset_id: "offshore_well_12", topic: "telemetry.raw" },
    poll_interval_ms: 1000,
  },
};

describe("pipeline builder form", () => {
  test("a stored pipeline survives render → submit → parse unchanged (no spurious edits, no restarts)", async () => {
    const state = stateFromPipeline(DEMO, { readonly: false, canTest: true, canWrite: true });
    const form = await submitted(builderForm(state).value);
    const { body, state: parsed } = parseBuilderForm(form, DEMO.adapter, { canTest: true, canWrite: true });
    expect(parsed.errors).toEqual([]);
    expect(parsed.mode).toBe("update");
    expect(parsed.version).toBe(3);
    const { version: _, ...declared } = DEMO;
    expect(body).toEqual(declared);
  });

  test("validator errors render beside their inputs, with a summary linking to them", () => {
    const state = stateFromPipeline(DEMO, { readonly: false, canTest: true, canWrite: true });
    state.errors = [
      { path: "adapter.source.port", message: "expected integer" },
      { path: 'adapter.mapping.registers["40009"].type', message: "expected one of int16, uint16" },
    ];
    const markup = builderForm(state).value;
    expect(markup).toMatch(/id="f-adapter_source_port"[^>]*aria-invalid="true"/);
    expect(markup).toContain('<p class="field-error" id="f-adapter_source_port-error">expected integer</p>');
    // 40009 is the 5th row in address order (00001, 40001, 40007, 40008, 40009).
    expect(markup).toMatch(/id="reg-4-type"[^>]*aria-invalid="true"/);
    expect(markup).toContain('href="#reg-4-type"');
    expect(markup).toContain("2 problems; nothing was saved");
  });

  test("read-only for a role without pipelines:write: disabled inputs, no buttons", () => {
    const markup = builderForm(stateFromPipeline(DEMO, { readonly: true, canTest: false, canWrite: false })).value;
    expect(markup).not.toContain("hx-post");
    expect(markup).not.toContain("data-remove-row");
    expect(markup).toMatch(/id="f-adapter_source_host"[^>]*disabled/);
  });

  test("device strings are escaped", () => {
    const state = stateFromPipeline({ ...DEMO, name: '<img src=x onerror="alert(1)">' }, { readonly: false, canTest: true, canWrite: true });
    expect(builderForm(state).value).toContain("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;");
  });
});

describe("form errors", () => {
  test("errors of fields derived from the ID land on the ID; empty required fields read 'required'", async () => {
    const { formErrors } = await import("./builder.ts");
    expect(
      formErrors([
        { path: "id", message: 'expected string length greater or equal to 1, got ""' },
        { path: "adapter.pipeline_id", message: 'expected string length greater or equal to 1, got ""' },
        { path: "adapter.output.asset_id", message: "expected required property, got nothing" },
        { path: "adapter.source.port", message: "expected integer, got \"x\"" },
      ]),
    ).toEqual([
      { path: "id", message: "required" },
      { path: "adapter.output.asset_id", message: "required" },
      { path: "adapter.source.port", message: 'expected integer, got "x"' },
    ]);
  });
});
