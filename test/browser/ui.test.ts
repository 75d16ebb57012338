/**
 * The web UI in a real browser (Debian's headless Chromium via playwright-core) against a real
 * appliance: serve() in-process on PGlite, Kafka, and the simulated offshore well on Modbus TCP.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import type { Role } from "../../src/auth/permissions.ts";
import { ReliableProducer } from "../../src/kafka/producer.ts";
import { KAFKA_BOOTSTRAP, kafkaConnection, kafkaUp, uniqueName } from "../support/services.ts";
import { ADMIN_PASSWORD, apiToken, CHROMIUM, CHROMIUM_ARGS, startTestAppliance, USER_PASSWORD, type TestAppliance } from "./appliance.ts";

function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI) throw new Error(`${CHROMIUM} is missing; CI must install it (scripts/setup.sh installs Debian's chromium)`);
  console.warn(`skipping browser tests: ${CHROMIUM} not found (scripts/setup.sh installs it)`);
  return false;
}

const LIVE_VALUE_TIMEOUT_MS = 15_000;
/** Pressure of the simulated well (plants/offshore-well.yaml): 180-190 psi, surging to 215. */
const PRESSURE_RANGE = [175, 220] as const;
/** From the appliance's start to the alarm on the page: adapter → quality → evaluator → validator → projector. */
const ALARM_RAISED_TIMEOUT_MS = 30_000;
/** Acknowledge → alarms.commands → evaluator → alarms.raw → validator → alarms.clean → projector. */
const ALARM_ACKED_TIMEOUT_MS = 15_000;

/**
 * Assets of alarm pipelines start with this. The stream workers' topics and consumer groups are
 * fixed names shared with anything else on the broker (serve() sets no topic prefix), so every run
 * uses its own asset and every assertion filters on it. The rule matches the prefix, not this run's
 * asset, so whichever run's evaluator is assigned a partition raises the alarm of any run's asset.
 */
const ALARM_ASSET_PREFIX = "ui-alarm-";
/** The message of the well's second alarm (high_high), the one a refused acknowledgement is tried on. */
const SECOND_ALARM = "Second opinion";
const ALARM_RULES = `# The simulated well runs at 180-190 psi: above 100 from the first reading.
on_delay_s: 0
rules:
  - id: ui_overpressure
    asset_id: "${ALARM_ASSET_PREFIX}*"
    parameter: pressure
    unit: psi
    high: { value: 100, type: overpressure, severity: CRITICAL }
    high_high: { value: 120, type: second_opinion, severity: HIGH, message: "${SECOND_ALARM} on {asset_id}" }
`;

/** The appliance with the quality validator and alarm evaluator on, reading the well's pressure as `alarmAsset`. */
function startApplianceWithAlarms(options: { kafka: string; alarmAsset: string; users: Partial<Record<Role, string>> }): Promise<TestAppliance> {
  const rulesFile = join(mkdtempSync(join(tmpdir(), "gw-ui-rules-")), "alarm-rules.yaml");
  writeFileSync(rulesFile, ALARM_RULES);
  return startTestAppliance({
    kafka: options.kafka,
    users: options.users,
    gatewayId: uniqueName("ui-rig").replace(/[^A-Za-z0-9._-]/g, "_"),
    streams: { enabled: true, alarm_rules_file: rulesFile },
    pipelines: (modbusPort) => [
      {
        id: options.alarmAsset,
        name: "UI alarm well",
        enabled: true,
        runtime: "process",
        adapter: {
          protocol: "modbus_tcp",
          source: { host: "127.0.0.1", port: modbusPort, unit_id: 1, timeout_ms: 1000 },
          mapping: { addressing: "modicon", registers: { "40001": { param: "pressure", unit: "psi", type: "float32" } } },
          output: { asset_id: options.alarmAsset, topic: "telemetry.raw" },
          poll_interval_ms: 1000,
        },
      },
    ],
  });
}

describe.skipIf(!kafkaUp || !chromiumAvailable())("web UI in a browser", () => {
  let t: TestAppliance;
  let browser: Browser;
  const pipelineId = uniqueName("ui-well").replace(/[^A-Za-z0-9._-]/g, "_");
  const alarmAsset = uniqueName(ALARM_ASSET_PREFIX.slice(0, -1)).replace(/[^A-Za-z0-9._-]/g, "_");

  beforeAll(async () => {
    [t, browser] = await Promise.all([
      startApplianceWithAlarms({ kafka: KAFKA_BOOTSTRAP, alarmAsset, users: { Operator: "olga", Engineer: "erik" } }),
      chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS }),
    ]);
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  }, 30_000);

  /** Script errors and Content-Security-Policy refusals, on any page of any test. */
  const problems: string[] = [];
  afterEach(() => {
    expect(problems).toEqual([]);
  });

  async function newPage(): Promise<Page> {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    page.on("pageerror", (error) => problems.push(`${page.url()}: ${error.message}`));
    page.on("console", (message) => {
      if (/Content Security Policy|Refused to/.test(message.text())) problems.push(`${page.url()}: ${message.text()}`);
    });
    return page;
  }

  async function signIn(username: string, password: string): Promise<Page> {
    const page = await newPage();
    await page.goto(`${t.url}/pipelines`);
    // Not signed in: sent to the sign-in form, which returns to the page asked for.
    expect(new URL(page.url()).pathname).toBe("/login");
    await page.fill("#username", username);
    await page.fill("#password", password);
    await Promise.all([page.waitForURL(`${t.url}/pipelines`), page.click("button[type=submit]")]);
    return page;
  }

  test("a wrong password is refused in the form", async () => {
    const page = await newPage();
    await page.goto(`${t.url}/login`);
    await page.fill("#username", "admin");
    await page.fill("#password", "not the password");
    await page.click("button[type=submit]");
    expect(await page.textContent("#login-error")).toContain("Wrong username or password");
    expect(await page.getAttribute("#password", "aria-invalid")).toBe("true");
    await page.context().close();
  });

  test("an Engineer builds a Modbus pipeline, tests it, saves it, and sees live values", async () => {
    const page = await signIn("erik", USER_PASSWORD);
    await page.click("text=New pipeline");
    await page.waitForURL(`${t.url}/pipelines/new`);
    await page.fill("#f-id", pipelineId);
    await page.fill("#f-name", "UI test well");
    await page.fill("#f-adapter_source_host", "127.0.0.1");
    await page.fill("#f-adapter_source_port", String(t.modbusPort));

    // A device's register list, pasted as CSV; one more row typed by hand.
    await page.click("text=Import a register list (CSV)");
    await page.fill("#csv-text", "address,param,unit,type,byte_order,scale,offset\n40001,pressure,psi,REAL,ABCD,1,0\n40009,rtu_uptime,s,UDINT,CDAB,,\n");
    await page.click("button:has-text('Import')");
    await page.waitForSelector("text=Imported 2 row(s)");
    const rows = page.locator("#register-rows tr.reg-row");
    await page.click("button:has-text('Add register')");
    await rows.nth(2).waitFor();
    const added = rows.nth(2);
    await added.locator("input[name='reg.address']").fill("3:6");
    await added.locator("input[name='reg.param']").fill("choke_position");
    await added.locator("input[name='reg.scale']").fill("0.1");
    await added.locator("input[name='reg.address']").dispatchEvent("change");
    await added.locator(".notation", { hasText: "40007 = 3:6" }).waitFor();

    // Save without an asset: the error sits next to the field, nothing is stored.
    await page.click("button:has-text('Create pipeline')");
    await page.waitForSelector(".error-summary");
    expect(await page.getAttribute("#f-adapter_output_asset_id", "aria-invalid")).toBe("true");
    expect(await page.textContent("#f-adapter_output_asset_id-error")).toContain("required");
    await page.fill("#f-adapter_output_asset_id", pipelineId);

    // Test connection: decoded values from the simulator, and the byte orders side by side.
    await page.click("button:has-text('Test connection')");
    await page.waitForSelector("#test-result");
    const pressure = Number(await page.locator("#test-result tr", { hasText: "pressure" }).locator("td.value").textContent());
    expect(pressure).toBeGreaterThan(PRESSURE_RANGE[0]);
    expect(pressure).toBeLessThan(PRESSURE_RANGE[1]);
    const orders = page.locator("tr.reg-preview").first().locator("[data-use-order]");
    expect(await orders.count()).toBe(4);
    expect(await page.locator("tr.reg-preview .is-configured").first().textContent()).toContain("ABCD");

    await Promise.all([page.waitForURL(new RegExp(`/pipelines/${pipelineId}\\?saved=1`)), page.click("button:has-text('Create pipeline')")]);
    expect(await page.textContent("[role=status]")).toContain("Saved as version 1");
    // Stored in the modicon notation, whatever was typed.
    expect(await page.inputValue("#reg-1-address")).toBe("40007");

    // The adapter starts and its readings reach the tag explorer over SSE.
    await page.goto(`${t.url}/tags?q=${pipelineId}`);
    const row = page.locator("table.tags tbody tr", { hasText: "pressure" });
    await row.waitFor({ timeout: LIVE_VALUE_TIMEOUT_MS });
    const live = Number(await row.locator("td.value").textContent());
    expect(live).toBeGreaterThan(PRESSURE_RANGE[0]);
    expect(await row.textContent()).toContain("GOOD");
    // The RTU's uptime counts seconds: it changes on the open page, pushed over SSE.
    const uptime = page.locator("table.tags tbody tr", { hasText: "rtu_uptime" }).locator("td.value");
    await uptime.waitFor({ timeout: LIVE_VALUE_TIMEOUT_MS });
    const before = await uptime.textContent();
    await page.waitForFunction(
      ([selector, previous]) => [...document.querySelectorAll(selector!)].some((r) => r.textContent!.includes("rtu_uptime") && r.querySelector("td.value")!.textContent !== previous),
      ["table.tags tbody tr", before] as const,
      { timeout: LIVE_VALUE_TIMEOUT_MS },
    );
    await page.context().close();
  }, 45_000);

  test("an Operator sees pipelines read-only, and a forced change is refused", async () => {
    const page = await signIn("olga", USER_PASSWORD);
    expect(await page.locator("text=New pipeline").count()).toBe(0);
    expect(await page.locator("nav >> text=Users").count()).toBe(0);
    await page.goto(`${t.url}/pipelines/${pipelineId}`);
    await page.waitForSelector("text=Read-only");
    expect(await page.locator("button:has-text('Save changes')").count()).toBe(0);
    expect(await page.locator("button:has-text('Test connection')").count()).toBe(0);
    expect(await page.locator("[data-remove-row]").count()).toBe(0);
    expect(await page.isDisabled("#f-adapter_source_host")).toBe(true);
    const statuses = await page.evaluate(async (id) => {
      const post = (path: string, body: string) =>
        fetch(path, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", "x-csrf-token": document.body.dataset.csrf ?? "" },
          body,
        }).then((r) => r.status);
      return [await post("/pipelines/save", `_mode=update&_id=${id}&_protocol=modbus_tcp&enabled=on`), await post(`/pipelines/${id}/enabled`, "enabled=false")];
    }, pipelineId);
    expect(statuses).toEqual([403, 403]);
    // Typing the URL of a page the role may not open: a page saying so, not the API's JSON.
    const users = await page.goto(`${t.url}/users`);
    expect(users?.status()).toBe(403);
    expect(await page.textContent("h1")).toBe("Not allowed");
    expect(await page.textContent(".notice-bad")).toContain("lacks permission users:manage");
    await page.context().close();
  });

  test("the admin signs in, and the header shows the pages the role may open", async () => {
    const page = await signIn("admin", ADMIN_PASSWORD);
    for (const label of ["Overview", "Pipelines", "Topology", "Tags", "Audit", "Users"]) expect(await page.locator(`nav >> text=${label}`).count()).toBe(1);
    // The overview opens its live stream, and its tiles show the appliance's own health.
    const stream = page.waitForResponse((r) => r.url().endsWith("/live/overview"));
    await page.goto(`${t.url}/`);
    expect((await stream).headers()["content-type"]).toContain("text/event-stream");
    expect(await page.textContent("section.tile[aria-label^='Kafka']")).toContain("Connected");
    expect(await page.textContent("section.tile[aria-label^='Control DB']")).toContain("Connected");
    await page.goto(`${t.url}/audit?resource_type=pipeline&resource_id=${pipelineId}`);
    expect(await page.textContent("table.audit")).toContain("erik");
    await page.context().close();
  });

  test("an Operator sees the well's overpressure alarm and acknowledges it, end to end through the stream workers", async () => {
    const page = await signIn("olga", USER_PASSWORD);
    await page.goto(`${t.url}/alarms?q=${alarmAsset}`);
    // Raised by the evaluator from the declared pipeline's readings; the table refreshes itself (htmx, every 5 s).
    const row = page.locator("#alarm-table tbody tr", { hasText: alarmAsset }).filter({ hasText: "CRITICAL" });
    await row.waitFor({ timeout: ALARM_RAISED_TIMEOUT_MS });
    expect(await row.count()).toBe(1);
    const raised = await row.textContent();
    expect(raised).toContain("ACTIVE");
    expect(raised).toContain("CRITICAL");
    expect(raised).toContain("pressure");
    expect(raised).toContain("not acknowledged");
    const ack = row.locator("button:has-text('Acknowledge')");
    const alarmId = decodeURIComponent(/^\/alarms\/(.+)\/ack$/.exec((await ack.getAttribute("hx-post")) ?? "")?.[1] ?? "");
    expect(alarmId).not.toBe("");

    const posted = page.waitForResponse((r) => r.url().endsWith(`/alarms/${encodeURIComponent(alarmId)}/ack`) && r.request().method() === "POST");
    await ack.click();
    expect((await posted).status()).toBe(200);
    // The command goes round the workers into the read model; the page shows it (in the reply or on a refresh).
    const acked = page.locator("#alarm-table tbody tr", { hasText: alarmAsset }).filter({ hasText: "CRITICAL" }).filter({ hasText: /ACKNOWLEDGED/ }); // case-sensitive: not "not acknowledged"
    await acked.waitFor({ timeout: ALARM_ACKED_TIMEOUT_MS });
    expect(await acked.textContent()).toContain("olga");
    expect(await acked.locator("button:has-text('Acknowledge')").count()).toBe(0);
    await page.context().close();

    // The read model agrees, and the audit log names who acknowledged which alarm.
    const token = await apiToken(t.url, "admin", ADMIN_PASSWORD);
    const get = (path: string) => fetch(`${t.url}${path}`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.json() as Promise<Record<string, unknown>>);
    expect(await get(`/api/v1/alarms/${encodeURIComponent(alarmId)}`)).toMatchObject({ asset_id: alarmAsset, parameter: "pressure", type: "overpressure", state: "ACKNOWLEDGED", acked_by: "olga" });
    const audit = (await get(`/api/v1/audit?resource_type=alarm&resource_id=${encodeURIComponent(alarmId)}`)).items as { user: string; action: string }[];
    expect(audit).toContainEqual(expect.objectContaining({ user: "olga", action: "alarm.acknowledge" }));
  }, 60_000);

  test("an acknowledgement the evaluator refuses (someone else was first) shows the reason, and the table the alarm as it is", async () => {
    const page = await signIn("olga", USER_PASSWORD);
    await page.goto(`${t.url}/alarms?q=${alarmAsset}`);
    const row = page.locator("#alarm-table tbody tr", { hasText: SECOND_ALARM });
    await row.waitFor({ timeout: ALARM_RAISED_TIMEOUT_MS });
    const ack = row.locator("button:has-text('Acknowledge')");
    const alarmId = decodeURIComponent(/^\/alarms\/(.+)\/ack$/.exec((await ack.getAttribute("hx-post")) ?? "")?.[1] ?? "");
    expect(alarmId).not.toBe("");
    // Her page stays as it is (its reloads get nothing) while a SCADA client acknowledges the alarm straight on Kafka.
    const reloads = /\/alarms\?/;
    await page.route(reloads, (route) => (route.request().method() === "GET" ? route.fulfill({ status: 204 }) : route.fallback()));
    const scada = new ReliableProducer(kafkaConnection(), "ui-test-scada");
    try {
      await scada.send([{ topic: "alarms.commands", key: `${alarmAsset}/pressure`, value: JSON.stringify({ action: "acknowledge", alarm_id: alarmId, by: "scada", at: new Date().toISOString() }) }]);
    } finally {
      await scada.close();
    }
    const posted = page.waitForResponse((r) => r.url().endsWith(`/alarms/${encodeURIComponent(alarmId)}/ack`) && r.request().method() === "POST");
    await ack.click();
    // Refused by the evaluator (or, if the read model was already there, by the API's own check): same reason either way.
    expect((await posted).status()).toBe(409);
    const reason = page.locator("section.card .request-error");
    await reason.waitFor({ state: "visible" });
    expect(await reason.textContent()).toContain(`cannot acknowledge alarm ${alarmId}: it is already ACKNOWLEDGED (by scada at `);
    await page.unroute(reloads);
    // The table reloads to the alarm as it is; the reason stays until she acts again.
    const acked = page.locator("#alarm-table tbody tr", { hasText: SECOND_ALARM }).filter({ hasText: /ACKNOWLEDGED/ }); // case-sensitive: not "not acknowledged"
    await acked.waitFor({ timeout: ALARM_ACKED_TIMEOUT_MS });
    expect(await acked.textContent()).toContain("scada");
    expect(await acked.locator("button:has-text('Acknowledge')").count()).toBe(0);
    expect(await reason.isVisible()).toBe(true);
    expect(await reason.textContent()).toContain("already ACKNOWLEDGED (by scada");
    await page.context().close();
  }, 60_000);
});
