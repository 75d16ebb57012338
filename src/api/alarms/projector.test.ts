import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freshPostgres } from "../../../test/support/alarms-app.ts";
import { createPrefixedTopics, Plant, sendAlarms, waitFor } from "../../../test/support/alerts.ts";
import { kafkaConnection, kafkaUp } from "../../../test/support/services.ts";
import { openDatabase } from "../../db/client.ts";
import { migrateDatabase } from "../../db/migrate.ts";
import { KafkaAdmin } from "../../kafka/admin.ts";
import { createLogger } from "../../log/logger.ts";
import type { AlarmEvent } from "../../streams/alarms/lifecycle.ts";
import { topicNamespace } from "../../streams/namespace.ts";
import { AlarmProjector } from "./projector.ts";
import { getAlarmRow } from "./service.ts";

const log = createLogger("test", "silent");

describe.skipIf(!kafkaUp).each([
  ["PGlite", undefined],
  ["PostgreSQL", process.env.TEST_DATABASE_URL],
])("alarm read model projector on %s", (name, databaseUrl) => {
  const admin = new KafkaAdmin(kafkaConnection());
  const created: string[] = [];
  afterAll(async () => {
    await admin.deleteTopics(created).catch(() => undefined);
    await admin.close();
  });

  test.skipIf(name === "PostgreSQL" && !databaseUrl)("upserts by sequence, ignores stale copies, skips a record the DB refuses, resumes after a restart", async () => {
    const prefix = `ap${Date.now().toString(36)}.`;
    created.push(...(await createPrefixedTopics(admin, prefix, ["alarms.clean"])));
    const cdb = await openDatabase({ databaseUrl: databaseUrl ? await freshPostgres(databaseUrl) : undefined, dataDir: mkdtempSync(join(tmpdir(), "gw-proj-")) });
    await migrateDatabase(cdb);
    const plant = new Plant();
    const t = Date.parse("2026-03-01T10:00:00Z");
    const a = plant.raise("pump_1", "overpressure", "CRITICAL", t);
    const aAck = plant.ack(a, t + 1000, "alice");
    const b = plant.raise("pump_2", "overpressure", "HIGH", t);
    const poison = { ...b, message: "bad\u0000byte" }; // PostgreSQL text cannot hold NUL
    const c = plant.raise("pump_3", "overtemp", "LOW", t);
    const start = () => new AlarmProjector({ connection: kafkaConnection(), db: () => cdb.db, log, gatewayId: "p", namespace: topicNamespace(prefix) });
    let projector = start();
    await projector.start();
    try {
      await sendAlarms(prefix, [a, aAck, poison as AlarmEvent, c]);
      await waitFor("A acknowledged and C in the table", async () => (await getAlarmRow(cdb.db, a.alarm_id))?.state === "ACKNOWLEDGED" && (await getAlarmRow(cdb.db, c.alarm_id)) !== undefined, 30_000);
      expect(await getAlarmRow(cdb.db, a.alarm_id)).toMatchObject({ ackedBy: "alice", sequence: 2, severity: "CRITICAL", assetId: "pump_1", parameter: "pressure" });
      expect(await getAlarmRow(cdb.db, b.alarm_id)).toBeUndefined();

      // A stale copy of the raise (a replay, or another path) does not take the row back.
      await projector.stop();
      projector = start();
      await projector.start();
      await sendAlarms(prefix, [a, plant.clear(c, t + 2000)]);
      await waitFor("C cleared", async () => (await getAlarmRow(cdb.db, c.alarm_id))?.state === "CLEARED", 30_000);
      expect(await getAlarmRow(cdb.db, a.alarm_id)).toMatchObject({ state: "ACKNOWLEDGED", sequence: 2 });
    } finally {
      await projector.stop();
      await cdb.close();
    }
  }, 60_000);
});
