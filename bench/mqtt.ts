#!/usr/bin/env bun
/**
 * MQTT adapter throughput: messages/s from Mosquitto into Kafka, with the adapter's CPU and RSS.
 *
 *   bun bench/mqtt.ts [--messages 100000] [--qos 0,1] [--protocol 5] [--json FILE]
 *
 * Per QoS: a private Mosquitto (own port; max_queued_messages unlimited so nothing is dropped by
 * the broker while the adapter catches up; --broker HOST:PORT uses an existing one instead) and
 * ONE adapter process (`bun src/main.ts adapter`, persistent session, JSON mapping with value and
 * device timestamp paths) writing to a fresh topic. A separate publisher process (mosquitto_pub -l,
 * C, --pub-inflight in flight) sends --messages JSON messages as fast as the broker takes them.
 * Measured: from the publisher's start until the adapter's Kafka-acknowledged count reaches
 * --messages (the topic's end offsets, polled every 100 ms): end-to-end messages/s;
 * the publisher's own rate; the adapter's CPU % (/proc utime+stime over wall, 100 % = one core)
 * and RSS (VmRSS, sampled every second); Mosquitto's CPU; whole-machine busy %. Then SIGTERM:
 * the topic's end offset must equal --messages (QoS 1: at least once, so duplicates would show
 * as more; QoS 0 may drop under overload, which shows as fewer and is reported, not hidden).
 *
 * --cpu-prof DIR runs the adapter under `bun --cpu-prof --cpu-prof-md` (profile written on exit).
 *
 * Output: progress on stderr, a Markdown summary on stdout, all numbers as JSON with --json FILE.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { encodeConfigJson } from "../src/adapter-runtime/config.ts";
import { KafkaAdmin } from "../src/kafka/admin.ts";
import { connectionFromBootstrap } from "../src/kafka/connection.ts";
import { collectLines, freePort, gitInfo, log, machineInfo, machineJiffies, ProcessSampler, round, tryJson, waitFor, type ProcessStats } from "./lib.ts";

const repo = join(import.meta.dir, "..");

const { values: args } = parseArgs({
  options: {
    messages: { type: "string", default: "100000" },
    qos: { type: "string", default: "0,1" },
    protocol: { type: "string", default: "5" },
    broker: { type: "string" },
    bootstrap: { type: "string", default: "127.0.0.1:9092" },
    "pub-inflight": { type: "string", default: "1000" },
    "receive-maximum": { type: "string", default: "1000" },
    "max-batch": { type: "string", default: "2000" },
    "linger-ms": { type: "string", default: "5" },
    "timeout-s": { type: "string", default: "300" },
    "keep-topics": { type: "boolean", default: false },
    "cpu-prof": { type: "string" },
    json: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
  allowPositionals: false,
});
if (args.help) {
  console.log(
    "usage: bun bench/mqtt.ts [--messages 100000] [--qos 0,1] [--protocol 5|3.1.1] [--broker HOST:PORT]\n" +
      "       [--pub-inflight 1000] [--receive-maximum 1000] [--max-batch 2000] [--linger-ms 5] [--timeout-s 300] [--cpu-prof DIR] [--json FILE] [--keep-topics]",
  );
  process.exit(0);
}
const int = (name: keyof typeof args) => {
  const n = Number(args[name]);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${String(args[name])}`);
  return n;
};
const MESSAGES = int("messages");
const QOS = args.qos!.split(",").map((q) => Number(q.trim()) as 0 | 1 | 2);
const PROTOCOL = args.protocol === "3.1.1" ? "3.1.1" : "5";
const which = (tool: string) => Bun.which(tool) ?? Bun.which(tool, { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" });

interface Broker {
  host: string;
  port: number;
  pid?: number;
  stop(): Promise<void>;
}

async function startBroker(): Promise<Broker> {
  if (args.broker) {
    const [host, port] = args.broker.split(":");
    return { host: host!, port: Number(port ?? 1883), stop: async () => undefined };
  }
  const bin = which("mosquitto");
  if (!bin) throw new Error("mosquitto not found (apt-get install mosquitto) or pass --broker HOST:PORT");
  const dir = mkdtempSync(join(tmpdir(), "bench-mqtt-"));
  const port = freePort();
  writeFileSync(
    join(dir, "mosquitto.conf"),
    [
      ...(process.getuid?.() === 0 ? ["user root"] : []),
      `listener ${port} 127.0.0.1`,
      "allow_anonymous true",
      "persistence false",
      // The adapter may fall behind the publisher: queue for it instead of dropping (a bench, not a product setting).
      "max_queued_messages 0",
      "max_queued_bytes 0",
      `max_inflight_messages ${int("pub-inflight")}`,
      `log_dest file ${dir}/mosquitto.log`,
      "",
    ].join("\n"),
  );
  const child = Bun.spawn([bin, "-c", join(dir, "mosquitto.conf")], { stdout: "ignore", stderr: "inherit" });
  await waitFor("mosquitto", async () => {
    try {
      const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
      s.end();
      return true;
    } catch {
      return undefined;
    }
  }, 10_000);
  return {
    host: "127.0.0.1",
    port,
    pid: child.pid,
    stop: async () => {
      child.kill("SIGTERM");
      await child.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface RunResult {
  qos: number;
  protocol: string;
  messages: number;
  publish_s: number;
  publish_msgs_per_s: number;
  end_to_end_s: number;
  end_to_end_msgs_per_s: number;
  in_topic: number;
  readings_total: number;
  sent_total: number;
  adapter: ProcessStats;
  broker_cpu_pct: number | null;
  machine_busy_pct: number;
  sample_message: string;
}

async function runOnce(qos: 0 | 1 | 2, broker: Broker, admin: KafkaAdmin): Promise<RunResult> {
  const run = `b${Date.now().toString(36)}`;
  const topic = `bench.mqtt-${run}`;
  await admin.createTopic(topic, 6);
  const config = {
    pipeline_id: `bench-mqtt-${run}`,
    adapter_id: "bench-mqtt",
    protocol: "mqtt",
    source: {
      host: broker.host,
      port: broker.port,
      protocol_version: PROTOCOL,
      receive_maximum: int("receive-maximum"),
      session_expiry_s: 60,
      dlq_topic: "dlq.invalid_telemetry",
    },
    mapping: { topics: [{ topic: `bench/${run}/+asset/+parameter`, qos, value: "$.v", timestamp: "$.ts", unit: "$.u" }] },
    output: { kafka_bootstrap: args.bootstrap, topic, asset_id: "bench" },
    buffer: { max_records: 500_000, max_batch: int("max-batch"), linger_ms: int("linger-ms") },
  };
  const profDir = args["cpu-prof"];
  const adapter = Bun.spawn([process.execPath, ...(profDir ? ["--cpu-prof", "--cpu-prof-md", `--cpu-prof-dir=${profDir}`] : []), "src/main.ts", "adapter"], { cwd: repo, env: { ...process.env, CONFIG_JSON: encodeConfigJson(config) }, stdout: "pipe", stderr: "inherit" });
  let healthPort: number | undefined;
  let subscribed = false;
  let summary: Record<string, unknown> | undefined;
  const lines = collectLines(adapter.stdout, (line) => {
    const l = tryJson(line);
    if (typeof l?.health_port === "number") healthPort = l.health_port;
    if (l?.msg === "MQTT subscribed") subscribed = true;
    if (l && (l.level === "warn" || l.level === "error")) log(`adapter ${String(l.level)}: ${line.slice(0, 400)}`);
    if (l?.msg === "adapter stopped" || l?.msg === "adapter stopped with readings not acknowledged by Kafka") summary = l;
  });
  await waitFor("adapter subscribed", () => (subscribed && healthPort ? true : undefined), 30_000);

  // Payloads: 10 assets x 1 parameter, a value and a device timestamp per message.
  const now = Date.now();
  const sample = JSON.stringify({ v: 1234.5, ts: now, u: "rpm" });
  const perAsset = Math.ceil(MESSAGES / 10);
  const pubs: Array<ReturnType<typeof Bun.spawn>> = [];
  const adapterSampler = new ProcessSampler(adapter.pid);
  const brokerSampler = broker.pid ? new ProcessSampler(broker.pid) : undefined;
  const machineStart = machineJiffies();
  adapterSampler.start(1000);
  brokerSampler?.start(1000);
  const t0 = performance.now();
  for (let a = 0; a < 10; a++) {
    const count = Math.min(perAsset, MESSAGES - a * perAsset);
    if (count <= 0) break;
    const body = Array.from({ length: count }, (_, i) => `{"v":${a * perAsset + i},"ts":${now + i},"u":"rpm"}`).join("\n") + "\n";
    const pub = Bun.spawn(
      [which("mosquitto_pub") ?? "mosquitto_pub", "-h", broker.host, "-p", String(broker.port), "-V", PROTOCOL === "5" ? "mqttv5" : "mqttv311", "-q", String(qos), "-M", args["pub-inflight"]!, "-t", `bench/${run}/asset-${a}/speed`, "-l"],
      { stdin: new TextEncoder().encode(body), stdout: "ignore", stderr: "inherit" },
    );
    pubs.push(pub);
  }
  await Promise.all(pubs.map((p) => p.exited));
  const publishS = (performance.now() - t0) / 1000;
  log(`qos ${qos}: publisher done in ${round(publishS, 2)} s (${round(MESSAGES / publishS)} msg/s); waiting for Kafka`);

  let last = 0;
  let lastChange = performance.now();
  const timeoutMs = int("timeout-s") * 1000;
  // Progress from the topic's end offsets, not /metrics: a scrape costs the adapter CPU (heap stats).
  const endOffset = async () => {
    let total = 0;
    for (const offset of (await admin.endOffsets(topic)).values()) total += Number(offset);
    return total;
  };
  for (;;) {
    const sent = await endOffset();
    if (sent !== last) {
      last = sent;
      lastChange = performance.now();
    }
    if (sent >= MESSAGES) break;
    // QoS 0 may lose messages under overload: stop once nothing has moved for 5 s.
    if (performance.now() - lastChange > 5000 || performance.now() - t0 > timeoutMs) break;
    await Bun.sleep(100);
  }
  const doneAt = last >= MESSAGES ? performance.now() : lastChange;
  const endToEndS = (doneAt - t0) / 1000;
  const adapterStats = adapterSampler.stop();
  const brokerStats = brokerSampler?.stop();
  const machineEnd = machineJiffies();
  adapter.kill("SIGTERM");
  await adapter.exited;
  await lines;
  let inTopic = 0;
  for (const offset of (await admin.endOffsets(topic)).values()) inTopic += Number(offset);
  if (!args["keep-topics"]) await admin.deleteTopics([topic]).catch(() => undefined);
  return {
    qos,
    protocol: PROTOCOL,
    messages: MESSAGES,
    publish_s: round(publishS, 2),
    publish_msgs_per_s: round(MESSAGES / publishS),
    end_to_end_s: round(endToEndS, 2),
    end_to_end_msgs_per_s: round(last / endToEndS),
    in_topic: inTopic,
    readings_total: Number(summary?.readings_total ?? NaN),
    sent_total: Number(summary?.sent_total ?? NaN),
    adapter: adapterStats,
    broker_cpu_pct: brokerStats?.cpu_pct ?? null,
    machine_busy_pct: round((100 * (machineEnd.busy - machineStart.busy)) / (machineEnd.total - machineStart.total), 1),
    sample_message: sample,
  };
}

const machine = machineInfo();
const git = gitInfo(repo);
log(`machine: ${machine.cpu_model}, ${machine.nproc} cores, load ${machine.loadavg_1m_at_start}`);
const admin = new KafkaAdmin(connectionFromBootstrap(args.bootstrap!, "bench-mqtt"));
const results: RunResult[] = [];
try {
  for (const qos of QOS) {
    const broker = await startBroker();
    try {
      log(`qos ${qos}: ${MESSAGES} messages, MQTT ${PROTOCOL}, broker ${broker.host}:${broker.port}`);
      results.push(await runOnce(qos, broker, admin));
    } finally {
      await broker.stop();
    }
  }
} finally {
  await admin.close();
}

const command = `bun bench/mqtt.ts ${process.argv.slice(2).join(" ")}`.trim();
console.log(`## MQTT adapter: Mosquitto → Kafka\n`);
console.log(`${machine.date_utc}, ${machine.cpu_model}, ${machine.nproc} cores, ${machine.memory_gb} GB, Bun ${machine.bun}, commit ${git.commit}${git.dirty_files ? ` (+${git.dirty_files} local changes)` : ""}, load ${machine.loadavg_1m_at_start} at start\n`);
console.log(`Command: \`${command}\`\n`);
console.log("| QoS | MQTT | messages | publisher msg/s | end-to-end msg/s | in topic | adapter CPU % avg / max 1 s | adapter RSS MB avg / max | broker CPU % | machine busy % |");
console.log("|---|---|---|---|---|---|---|---|---|---|");
for (const r of results) {
  console.log(
    `| ${r.qos} | ${r.protocol} | ${r.messages} | ${r.publish_msgs_per_s} | **${r.end_to_end_msgs_per_s}** | ${r.in_topic} | ${r.adapter.cpu_pct} / ${r.adapter.cpu_pct_max_1s} | ${r.adapter.rss_mb_avg} / ${r.adapter.rss_mb_max} | ${r.broker_cpu_pct ?? "n/a"} | ${r.machine_busy_pct} |`,
  );
}
if (args.json) writeFileSync(args.json, JSON.stringify({ machine, git, command, results }, null, 2));
const failed = results.filter((r) => (r.qos > 0 ? r.in_topic < r.messages : false));
if (failed.length > 0) {
  console.error(`LOSS at QoS >= 1: ${failed.map((r) => `qos ${r.qos}: ${r.in_topic}/${r.messages}`).join(", ")}`);
  process.exit(1);
}
