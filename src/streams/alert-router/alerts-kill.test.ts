/**
 * The router and the sender as separate processes, each SIGKILLed at random points while alarms
 * flow: after restarts every page and webhook call arrives, and none arrives twice (counted at the
 * fake servers by PagerDuty dedup_key + event_action and by webhook delivery id).
 *
 * One re-send cannot be prevented by anyone calling an HTTP API: the provider accepted the request
 * and the sender died before it could record that (its delivered-log write takes a few ms). Such a
 * duplicate is tolerated only when its first copy was answered at most IN_FLIGHT_MS before a sender
 * kill, and reported; anything delivered earlier must never be sent again.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ALERT_TOPICS, createPrefixedTopics, Plant, sendAlarms, waitFor, type PdEvent } from "../../../test/support/alerts.ts";
import { KAFKA_BOOTSTRAP, kafkaConnection, kafkaUp } from "../../../test/support/services.ts";
import { startFakeSaas, startPagerDutyFake, type RecordedRequest } from "../../../test/peers/saas/index.ts";
import { KafkaAdmin } from "../../kafka/admin.ts";
import type { AlarmEvent } from "../alarms/lifecycle.ts";

const repo = join(import.meta.dir, "../../..");
const ALARMS = 16;
const IN_FLIGHT_MS = 250;

describe.skipIf(!kafkaUp)("alert router and sender under SIGKILL", () => {
  const admin = new KafkaAdmin(kafkaConnection());
  const created: string[] = [];
  afterAll(async () => {
    await admin.deleteTopics(created).catch(() => undefined);
    await admin.close();
  });

  test("nothing lost, nothing sent twice", async () => {
    const prefix = `ak${Date.now().toString(36)}.`;
    created.push(...(await createPrefixedTopics(admin, prefix, ALERT_TOPICS)));
    const pd = await startPagerDutyFake();
    const hook = await startFakeSaas("webhook", () => ({ status: 200, body: { ok: true } }));
    // When each request was answered (the fakes record a request just before answering it).
    const answeredAt = new WeakMap<object, number>();
    for (const fake of [pd, hook]) {
      const push = fake.received.push.bind(fake.received);
      fake.received.push = (...items) => {
        for (const item of items) answeredAt.set(item, Date.now());
        return push(...items);
      };
    }
    const senderKills: number[] = [];
    const rulesFile = join(mkdtempSync(join(tmpdir(), "alert-rules-")), "alerts.yaml");
    writeFileSync(
      rulesFile,
      JSON.stringify({
        retry: { initial_backoff: "200ms", max_backoff: "1s" },
        providers: { pagerduty: { base_url: pd.url } },
        rules: [{ condition: { severity: "CRITICAL" }, actions: [{ type: "pagerduty", integration_key: "pd-ops" }] }, { actions: [{ type: "webhook", url: `${hook.url}/hook` }] }],
      }),
    );
    const spawn = (worker: string) =>
      Bun.spawn([process.execPath, "test/support/stream-worker.ts", worker, "--topic-prefix", prefix, "--instance", "k"], {
        cwd: repo,
        env: { ...process.env, GATEWAY_KAFKA__BOOTSTRAP_SERVERS: KAFKA_BOOTSTRAP, ALERT_RULES_FILE: rulesFile, LOG_LEVEL: "error" },
        stdout: "ignore",
        stderr: "ignore",
      });

    // Each alarm: raised; every other one acknowledged; all cleared, spread over ~8 s; the webhook unreachable for ~2.5 s of it.
    const plant = new Plant();
    const base = Date.now();
    const steps: AlarmEvent[][] = Array.from({ length: ALARMS + 6 }, () => []);
    const raised: AlarmEvent[] = [];
    for (let i = 0; i < ALARMS; i++) {
      const r = plant.raise(`asset_${i}`, "overpressure", "CRITICAL", base + i * 1000);
      raised.push(r);
      steps[i]!.push(r);
      if (i % 2 === 0) steps[i + 3]!.push(plant.ack(r, base + i * 1000 + 3000));
      steps[i + 6]!.push(plant.clear(r, base + i * 1000 + 6000));
    }
    const children = { router: spawn("alert-router"), sender: spawn("alert-sender") };
    let fed = false;
    const feeding = (async () => {
      for (const [i, step] of steps.entries()) {
        // The webhook's link drops for a while: those deliveries are retried through kills.
        if (i === 6) await hook.down("refused");
        if (i === 13) await hook.up();
        await sendAlarms(prefix, step);
        await Bun.sleep(350);
      }
      fed = true;
    })();
    const kills = { router: 0, sender: 0 };
    try {
      while (!fed || kills.router < 3 || kills.sender < 3) {
        await Bun.sleep(900 + Math.random() * 1400);
        const which = kills.router <= kills.sender ? (Math.random() < 0.7 ? "router" : "sender") : Math.random() < 0.7 ? "sender" : "router";
        if (which === "sender") senderKills.push(Date.now());
        children[which].kill("SIGKILL");
        await children[which].exited;
        kills[which]++;
        children[which] = spawn(`alert-${which}`);
      }
      await feeding;
      const partial = pd.accepted().length + hook.accepted().length;
      console.log(`alert kill test: ${kills.router} router and ${kills.sender} sender kills; ${partial} of ${ALARMS * 5} deliveries made before the last restart`);

      const acked = raised.filter((_, i) => i % 2 === 0);
      const wantPd = [...raised.map((r) => `${r.alarm_id}|trigger`), ...acked.map((r) => `${r.alarm_id}|acknowledge`), ...raised.map((r) => `${r.alarm_id}|resolve`)].sort();
      const wantHook = [...raised.map((r) => `${r.alarm_id}|raised`), ...acked.map((r) => `${r.alarm_id}|acknowledged`), ...raised.map((r) => `${r.alarm_id}|cleared`)].sort();
      await waitFor("every delivery", () => pd.accepted().length >= wantPd.length && hook.accepted().length >= wantHook.length, 40_000, 250);
      await Bun.sleep(2000); // anything extra (a duplicate) would arrive meanwhile

      /** Keys sent more than once whose first copy was not in flight at a sender kill: real double sends. */
      const doubles = (requests: RecordedRequest[], key: (r: RecordedRequest) => string) => {
        const first = new Map<string, RecordedRequest>();
        const unexplained: string[] = [];
        let inFlight = 0;
        for (const r of requests) {
          const k = key(r);
          const earlier = first.get(k);
          if (!earlier) {
            first.set(k, r);
            continue;
          }
          const t = answeredAt.get(earlier)!;
          if (senderKills.some((kill) => kill >= t && kill - t <= IN_FLIGHT_MS)) inFlight++;
          else unexplained.push(`${k} (first answered ${t}, sender kills at ${senderKills.join(", ")})`);
        }
        return { keys: [...first.keys()].sort(), unexplained, inFlight };
      };
      const pdSeen = doubles(pd.accepted(), (r) => `${(r.json as PdEvent).dedup_key}|${(r.json as PdEvent).event_action}`);
      expect(pdSeen.keys).toEqual(wantPd);
      expect(pdSeen.unexplained).toEqual([]);
      const hookSeen = doubles(hook.accepted(), (r) => r.headers["x-delivery-id"]!);
      expect(hookSeen.unexplained).toEqual([]);
      const calls = hook.accepted().map((r) => r.json as { delivery_id: string; event: string; alarm: AlarmEvent });
      expect([...new Set(calls.map((c) => `${c.alarm.alarm_id}|${c.event}`))].sort()).toEqual(wantHook);
      expect(hookSeen.keys).toHaveLength(wantHook.length);
      if (pdSeen.inFlight + hookSeen.inFlight > 0) console.log(`alert kill test: ${pdSeen.inFlight + hookSeen.inFlight} re-send(s) of a request in flight at a sender kill`);
    } finally {
      for (const child of Object.values(children)) child.kill("SIGTERM");
      await Promise.all(Object.values(children).map((c) => c.exited));
      await pd.stop();
      await hook.stop();
    }
  }, 90_000);
});
