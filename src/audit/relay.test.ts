import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kafkaConnection, kafkaUp, uniqueName } from "../../test/support/services.ts";
import { openDatabase, type ControlDb } from "../db/client.ts";
import { migrateDatabase } from "../db/migrate.ts";
import { appendAudit } from "../db/repo.ts";
import { KafkaAdmin } from "../kafka/admin.ts";
import { readTopic } from "../kafka/reader.ts";
import { createLogger } from "../log/logger.ts";
import { AuditRelay } from "./relay.ts";

const log = createLogger("test", "silent");

describe.skipIf(!kafkaUp)("audit relay", () => {
  const admin = new KafkaAdmin(kafkaConnection());
  const topic = uniqueName("test.audit");
  let db: ControlDb;
  beforeAll(async () => {
    await admin.createTopic(topic, 1);
    db = await openDatabase({ dataDir: mkdtempSync(join(tmpdir(), "gw-audit-")) });
    await migrateDatabase(db);
  }, 30_000);
  afterAll(async () => {
    await admin.deleteTopics([topic]).catch(() => undefined);
    await admin.close();
    await db.close();
  });

  const entry = (n: number) => ({ actor: "alice", action: "pipeline.update", resourceType: "pipeline", resourceId: `p${n}`, changes: { poll_interval_ms: { old: 1000, new: n } }, ip: "10.0.0.1" });

  test("every audit row reaches audit_trail once, across relay restarts", async () => {
    for (let n = 0; n < 5; n++) await appendAudit(db.db, entry(n));
    const first = new AuditRelay(() => db.db, kafkaConnection(), log, topic);
    expect(await first.relayOnce()).toBe(5);
    await first.stop();
    for (let n = 5; n < 8; n++) await appendAudit(db.db, entry(n));
    const second = new AuditRelay(() => db.db, kafkaConnection(), log, topic);
    expect(await second.relayOnce()).toBe(3);
    expect(await second.relayOnce()).toBe(0);
    await second.stop();
    const events = (await readTopic(kafkaConnection(), topic, { until: 8, idleMs: 1000 })).map((r) => JSON.parse(r.value!));
    expect(events.map((e) => e.resource_id)).toEqual(["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"]);
    expect(events[0]).toMatchObject({ user: "alice", action: "pipeline.update", ip_address: "10.0.0.1", changes: { poll_interval_ms: { old: 1000, new: 0 } } });
  }, 30_000);
});
