/**
 * `make screenshots`: the appliance with the simulated offshore well, signed in as admin, and a
 * 1280×800 PNG of each main page in docs/screenshots/. Needs Kafka (make services) and Chromium.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Page } from "playwright-core";
import { readYamlFile } from "../../src/config/load.ts";
import type { DeclaredPipeline } from "../../src/config/schema.ts";
import { ADMIN_PASSWORD, CHROMIUM, CHROMIUM_ARGS, startTestAppliance } from "./appliance.ts";

const OUT = join(import.meta.dir, "../../docs/screenshots");
const KAFKA = process.env.TEST_KAFKA_BOOTSTRAP ?? "127.0.0.1:9092";
/** Long enough for a few sparkline buckets and every tag to show up. */
const WARM_UP_MS = 45_000;

/** The demo's own pipeline (demo/gateway.yaml), pointed at this run's simulator. */
function demoPipelines(port: number): DeclaredPipeline[] {
  const demo = readYamlFile(join(import.meta.dir, "../../demo/gateway.yaml")) as { pipelines: DeclaredPipeline[] };
  return demo.pipelines.map((p) => ({ ...p, adapter: { ...p.adapter, source: { ...(p.adapter.source as object), port } } }));
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(OUT, `${name}.png`) });
  console.log(`docs/screenshots/${name}.png`);
}

if (!existsSync(CHROMIUM)) {
  console.error(`${CHROMIUM} not found: run scripts/setup.sh (installs Debian's chromium)`);
  process.exit(1);
}
mkdirSync(OUT, { recursive: true });
const appliance = await startTestAppliance({ kafka: KAFKA, pipelines: demoPipelines });
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${appliance.url}/login`);
  await shot(page, "login");
  await page.fill("#username", "admin");
  await page.fill("#password", ADMIN_PASSWORD);
  await Promise.all([page.waitForURL(`${appliance.url}/`), page.click("button[type=submit]")]);
  // A few changes in the audit log, like a real appliance's first hour.
  await page.goto(`${appliance.url}/pipelines/offshore_well_12`);
  await page.fill("#f-adapter_source_timeout_ms", "1500");
  await Promise.all([page.waitForURL(/saved=/), page.click("button[type=submit]")]);
  await page.goto(`${appliance.url}/users`);
  await page.fill("#u-username", "olga");
  await page.fill("#u-password", "operator password 1");
  await page.click("text=Add user");
  await page.waitForSelector("text=Added olga");
  await Bun.sleep(WARM_UP_MS);

  await page.goto(`${appliance.url}/`);
  await shot(page, "overview");
  await page.goto(`${appliance.url}/pipelines`);
  await shot(page, "pipelines");
  await page.goto(`${appliance.url}/pipelines/offshore_well_12`);
  await shot(page, "pipeline-builder");
  await page.click("text=Test connection");
  await page.waitForSelector("#test-result");
  await page.evaluate(() => document.querySelector("#register-editor")!.scrollIntoView({ block: "start" }));
  await shot(page, "byte-order-preview");
  await page.goto(`${appliance.url}/topology`);
  await shot(page, "topology");
  // Filtered to this run's asset: other tests may share the broker.
  await page.goto(`${appliance.url}/tags?q=offshore_well_12`);
  await page.waitForSelector("table.tags td.value");
  await shot(page, "tags");
  await page.goto(`${appliance.url}/audit`);
  await shot(page, "audit");
} finally {
  await browser.close();
  await appliance.stop();
}
