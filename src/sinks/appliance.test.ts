import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { apiToken } from "../../test/browser/appliance.ts";
import { KAFKA_BOOTSTRAP, kafkaConnection, kafkaUp, serviceAvailable, uniqueName } from "../../test/support/services.ts";
import { loadApplianceConfig } from "../config/load.ts";
import { ConfigError } from "../config/schema-errors.ts";
import { createLogger } from "../log/logger.ts";
import { createMetricsRegistry } from "../metrics/registry.ts";
import { serve } from "../serve.ts";
import { parseApplianceSinks, startApplianceSinks, type StoredSink } from "./appliance.ts";
import { createTopics, deleteTopics, produce, readingRecords, waitFor } from "./testing.ts";

const PG_URL = process.env.TEST_DATABASE_URL ?? "postgres://gateway:gateway@127.0.0.1:5432/gateway_test";
const pgAddress = new URL(PG_URL);
const pgUp = await serviceAvailable("PostgreSQL", `${pgAddress.hostname}:${pgAddress.port || 5432}`);
const log = createLogger("test", "silent");
const applianceKafka = { bootstrap_servers: ["10.0.0.5:9092", "10.0.0.6:9092"], client_id: "gateway", request_timeout_ms: 10_000 };
const postgresSink = (id: string, extra: Record<string, unknown> = {}) => ({
  sink_id: id,
  type: "postgres",
  kafka: { topics: ["telemetry.clean"] },
  target: { url: "postgres://u:p@db:5432/plant" },
  ...extra,
});

describe("sinks in the appliance config", () => {
  test("a sink without brokers of its own reads from the appliance's; one naming its own keeps them", () => {
    const [inherits, own] = parseApplianceSinks([postgresSink("a"), postgresSink("b", { kafka: { bootstrap: "kafka.site:9093", topics: ["telemetry.1min"] } })], applianceKafka);
    expect(inherits!.config.kafka.bootstrap).toBe("10.0.0.5:9092,10.0.0.6:9092");
    expect(inherits!.config.kafka.group_id).toBeUndefined();
    expect(own!.config.kafka.bootstrap).toBe("kafka.site:9093");
    expect(own!.config.kafka.topics).toEqual(["telemetry.1min"]);
  });

  const refusals: [string, Record<string, unknown>[], string[]][] = [
    ["unknown type", [postgresSink("a"), { sink_id: "b", type: "influx", kafka: { topics: ["x"] } }], ['sinks[1].type: expected one of "postgres", "timescaledb", "cloud-api", "s3-parquet", got "influx"']],
    ["bad target field", [postgresSink("a", { target: { url: "mysql://db/plant" } })], ["sinks[0].target.url"]],
    ["no topics", [postgresSink("a", { kafka: { topics: [] } })], ["sinks[0].kafka.topics"]],
    ["the same sink_id twice", [postgresSink("a"), postgresSink("a")], ['sinks[1].sink_id: "a" is the sink_id of sinks[0] too']],
  ];
  for (const [name, sinks, paths] of refusals) {
    test(`refused, naming the field: ${name}`, () => {
      let error: unknown;
      try {
        parseApplianceSinks(sinks, applianceKafka);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      for (const path of paths) expect((error as Error).message).toContain(path);
    });
  }

  test("gateway serve refuses a bad sink before it starts anything", async () => {
    const config = loadApplianceConfig({ env: {}, overrides: { data_dir: mkdtempSync(join(tmpdir(), "gw-sinks-")), http: { port: 0 }, sinks: [postgresSink("a", { batch: { max_rows: 0 } })] } });
    await expect(serve(config, log)).rejects.toThrow("sinks[0].batch.max_rows");
  });
});

describe.skipIf(!kafkaUp || !pgUp)("sinks run by gateway serve", () => {
  const sql = postgres(PG_URL, { max: 1, onnotice: () => {} });
  const connection = kafkaConnection();
  const topics: string[] = [];
  const schemas: string[] = [];
  const names = () => {
    const base = uniqueName("appsink");
    const schema = `sink_${base.replace(/[^a-z0-9]/g, "_")}`;
    schemas.push(schema);
    topics.push(`${base}.telemetry.clean`, `${base}.dlq`);
    return { base, schema, input: `${base}.telemetry.clean`, dlq: `${base}.dlq` };
  };
  type Names = ReturnType<typeof names>;
  const sinkOf = (n: Names, kafka: Record<string, unknown> = {}) => ({
    sink_id: n.base,
    type: "postgres",
    kafka: { topics: [n.input], ...kafka },
    batch: { max_wait_ms: 100 },
    dlq: { topic: n.dlq },
    target: { url: PG_URL, schema: n.schema },
  });
  const applianceWith = (overrides: Record<string, unknown>) =>
    loadApplianceConfig({
      env: {},
      overrides: { data_dir: mkdtempSync(join(tmpdir(), "gw-sinks-")), http: { port: 0 }, kafka: { bootstrap_servers: [KAFKA_BOOTSTRAP] }, streams: { enabled: false }, ...overrides },
    });
  const rows = async (schema: string) => {
    try {
      const [row] = await sql.unsafe(`select count(*)::int as n from ${schema}.telemetry_timeseries`);
      return (row as unknown as { n: number }).n;
    } catch {
      return 0;
    }
  };
  afterAll(async () => {
    for (const schema of schemas) await sql.unsafe(`drop schema if exists ${schema} cascade`).catch(() => undefined);
    await sql.end();
    await deleteTopics(connection, topics);
  });

  test("a postgres sink in the config writes the readings, and its rows and lag are on the appliance's /metrics", async () => {
    const n = names();
    const { base, schema, input, dlq } = n;
    await createTopics(connection, { [input]: 2, [dlq]: 1 });
    await produce(connection, readingRecords(input, 0, 50));
    const running = await serve(applianceWith({ sinks: [sinkOf(n, { lag_interval_ms: 500 })] }), log);
    try {
      await waitFor(async () => (await rows(schema)) === 50, 30_000, "50 rows in PostgreSQL");
      await produce(connection, readingRecords(input, 50, 60));
      await waitFor(async () => (await rows(schema)) === 60, 30_000, "60 rows in PostgreSQL");
      const metrics = await fetch(`${running.url}/metrics`).then((r) => r.text());
      const written = metrics.split("\n").find((line) => line.startsWith("sink_rows_written_total{") && line.includes(`sink="${base}"`));
      expect(written).toEndWith(" 60");
      await waitFor(async () => (await fetch(`${running.url}/metrics`).then((r) => r.text())).includes(`sink_consumer_lag{`), 10_000, "lag on /metrics");
    } finally {
      await running.stop();
    }
  }, 60_000);

  test("a sink created through the API runs at once, shows on the Sinks page beside the config file's, and stops when deleted", async () => {
    const file = names();
    const api = names();
    await createTopics(connection, { [file.input]: 1, [file.dlq]: 1, [api.input]: 1, [api.dlq]: 1 });
    // A long reconcile tick: the API's change must be what starts and stops the sink.
    const config = applianceWith({ supervisor: { reconcile_interval_ms: 600_000 }, sinks: [sinkOf(file)] });
    const password = "sinks-test-admin-password";
    process.env.GATEWAY_ADMIN_PASSWORD = password;
    const running = await serve(config, log);
    try {
      await running.ready;
      const token = await apiToken(running.url, "admin", password);
      const request = (method: string, path: string, body?: unknown) =>
        fetch(`${running.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, ...(body ? { body: JSON.stringify(body) } : {}) });
      const sinksPage = () => request("GET", "/sinks").then((r) => r.text());

      expect((await request("POST", "/api/v1/sinks", { name: "Historian", config: sinkOf(api) })).status).toBe(201);
      await produce(connection, readingRecords(api.input, 0, 5));
      await waitFor(async () => (await rows(api.schema)) === 5, 30_000, "5 rows from the sink created through the API");
      const page = await sinksPage();
      expect(page).toContain(file.base);
      expect(page).toContain("config file");
      expect(page).toContain("Historian");
      expect(page).toContain("control DB v1");
      expect(page.match(/badge-ok">running</g)?.length).toBe(2);
      // The config file's sink is tested from the file's config (it is in no DB row).
      expect(await request("POST", `/sinks/${file.base}/test`).then((r) => r.text())).toMatch(/reachable.*PostgreSQL \d+/s);
      // /api/v1/health: both sinks with their state, and their groups' lag (0 once the rows are committed).
      await waitFor(
        async () => {
          const health = (await request("GET", "/api/v1/health").then((r) => r.json())) as { components: Record<string, { status: string; sinks?: { id: string; state: string }[]; groups?: { group: string; lag: number }[] }> };
          const { sinks, consumer_lag: lag } = health.components;
          return (
            sinks?.status === "ok" &&
            sinks.sinks?.map((s) => `${s.id} ${s.state}`).sort().join() === [`${api.base} running`, `${file.base} running`].sort().join() &&
            lag?.groups?.find((g) => g.group === `sink-${api.base}`)?.lag === 0 &&
            lag.groups.find((g) => g.group === `sink-${file.base}`)?.lag === 0
          );
        },
        15_000,
        "both sinks running with no lag in /api/v1/health",
      );
      const overview = await request("GET", "/").then((r) => r.text());
      expect(overview).toContain("Consumer lag");
      expect(overview).toContain(`postgres sink ${api.base}`);
      expect(overview).toContain(`sink-${file.base}`);

      expect((await request("DELETE", `/api/v1/sinks/${api.base}`)).status).toBe(204);
      await waitFor(async () => !(await sinksPage()).includes(api.base), 15_000, "the deleted sink gone from the page");
      await produce(connection, readingRecords(api.input, 5, 8));
      await Bun.sleep(1000);
      expect(await rows(api.schema)).toBe(5);
    } finally {
      delete process.env.GATEWAY_ADMIN_PASSWORD;
      await running.stop();
    }
  }, 90_000);

  test("stored sinks are reconciled: added starts, a new version restarts, disabled stops; an invalid one or one named like a file sink is not run", async () => {
    const file = names();
    const db = names();
    await createTopics(connection, { [file.input]: 1, [file.dlq]: 1, [db.input]: 1, [db.dlq]: 1 });
    let stored: StoredSink[] = [];
    const running = startApplianceSinks(
      { file: parseApplianceSinks([sinkOf(file)], connection), kafka: connection, stored: { load: async () => stored, intervalMs: 60_000 } },
      { log, metrics: createMetricsRegistry({}) },
    );
    const ids = () => running.stages().map((s) => s.id).sort();
    try {
      await running.reconcileNow();
      expect(ids()).toEqual([`sink:${file.base}`]);

      stored = [
        { id: db.base, enabled: true, version: 1, config: sinkOf(db) },
        { id: file.base, enabled: true, version: 1, config: sinkOf(db) },
        { id: `${db.base}-bad`, enabled: true, version: 1, config: { ...sinkOf(db), target: { url: "mysql://db" } } },
      ];
      await running.reconcileNow();
      expect(ids()).toEqual([`sink:${file.base}`, `sink:${db.base}`].sort());
      await produce(connection, readingRecords(db.input, 0, 5));
      await waitFor(async () => (await rows(db.schema)) === 5, 30_000, "5 rows from the stored sink");

      // Version 2 reads a second schema: the sink restarts with it and writes what comes next there.
      const second = `${db.schema}_v2`;
      schemas.push(second);
      stored = [{ id: db.base, enabled: true, version: 2, config: { ...sinkOf(db), target: { url: PG_URL, schema: second } } }];
      await running.reconcileNow();
      await produce(connection, readingRecords(db.input, 5, 8));
      await waitFor(async () => (await rows(second)) === 3, 30_000, "3 rows in the new version's schema");
      expect(await rows(db.schema)).toBe(5);

      stored = [{ id: db.base, enabled: false, version: 3, config: sinkOf(db) }];
      await running.reconcileNow();
      expect(ids()).toEqual([`sink:${file.base}`]);
    } finally {
      await running.stop();
    }
  }, 90_000);

  test("a sink that cannot start yet (its DLQ topic missing) keeps trying, and runs once the topic is there", async () => {
    const n = names();
    const { base, schema, input, dlq } = n;
    await createTopics(connection, { [input]: 1 });
    const [sink] = parseApplianceSinks([sinkOf(n)], connection);
    const running = startApplianceSinks({ file: [sink!], kafka: connection }, { log, metrics: createMetricsRegistry({}) });
    try {
      await Bun.sleep(1500);
      expect(running.stages()).toEqual([{ id: `sink:${base}`, label: `postgres sink ${base}`, inputs: [input], outputs: [], status: "starting", consumers: [{ group: `sink-${base}`, topics: [input] }] }]);
      await createTopics(connection, { [dlq]: 1 });
      await produce(connection, readingRecords(input, 0, 5));
      await waitFor(async () => (await rows(schema)) === 5, 30_000, "5 rows once the DLQ topic exists");
      expect(running.stages()[0]!.status).toBe("running");
    } finally {
      await running.stop();
    }
  }, 60_000);
});
