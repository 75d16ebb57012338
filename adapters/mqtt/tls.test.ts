import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kafkaUp, uniqueName } from "../../test/support/services.ts";
import { Topics, baseConfig, freePort, publisher, readReadings, startAdapter, subscribed, type AdapterProcess } from "./test-support.ts";

const haveTools = ["mosquitto", "mosquitto_passwd", "openssl"].every((tool) => Bun.which(tool) ?? Bun.which(tool, { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" }));
const mosquittoBin = Bun.which("mosquitto") ?? Bun.which("mosquitto", { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" }) ?? "mosquitto";

function run(cmd: string[], cwd: string): void {
  const r = Bun.spawnSync(cmd, { cwd, stderr: "pipe", stdout: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed: ${r.stderr.toString()}`);
}

/** A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate, all EC P-256. */
function makeCertificates(dir: string): void {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  run(["openssl", "req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=idg-test-ca"], dir);
  writeFileSync(join(dir, "server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  run(["openssl", "req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"], dir);
  run(["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "server.ext"], dir);
  run(["openssl", "req", ...ec, "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=gateway-client"], dir);
  run(["openssl", "x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "client.crt", "-days", "2"], dir);
  // A second CA that signed nothing here: trusting it must fail verification.
  run(["openssl", "req", "-x509", ...ec, "-keyout", "other-ca.key", "-out", "other-ca.crt", "-days", "2", "-subj", "/CN=other-ca"], dir);
}

/**
 * The adapter's TLS and authentication against a Mosquitto of its own (the shared one on 1883 is
 * anonymous and plain): listener 1 is TLS + username/password, listener 2 is mutual TLS.
 */
describe.skipIf(!kafkaUp || !haveTools)("mqtt adapter: TLS and username/password (own Mosquitto)", () => {
  const dir = mkdtempSync(join(tmpdir(), "mqtt-tls-"));
  const topics = new Topics();
  let broker: ReturnType<typeof Bun.spawn> | undefined;
  let tlsPort = 0;
  let mtlsPort = 0;
  const password = `pw-${Math.random().toString(36).slice(2)}`;

  beforeAll(async () => {
    makeCertificates(dir);
    run(["mosquitto_passwd", "-b", "-c", join(dir, "passwd"), "gateway", password], dir);
    tlsPort = await freePort();
    mtlsPort = await freePort();
    const tls = [`cafile ${dir}/ca.crt`, `certfile ${dir}/server.crt`, `keyfile ${dir}/server.key`];
    writeFileSync(
      join(dir, "mosquitto.conf"),
      [
        ...(process.getuid?.() === 0 ? ["user root"] : []),
        "persistence false",
        "per_listener_settings false",
        "allow_anonymous false",
        `password_file ${dir}/passwd`,
        `log_dest file ${dir}/mosquitto.log`,
        `listener ${tlsPort} 127.0.0.1`,
        ...tls,
        `listener ${mtlsPort} 127.0.0.1`,
        ...tls,
        "require_certificate true",
        "use_identity_as_username true",
        "",
      ].join("\n"),
    );
    broker = Bun.spawn([mosquittoBin, "-c", join(dir, "mosquitto.conf")], { stdout: "ignore", stderr: "pipe" });
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        const socket = await Bun.connect({ hostname: "127.0.0.1", port: mtlsPort, socket: { data() {} } });
        socket.end();
        break;
      } catch {
        if (Date.now() > deadline) throw new Error(`mosquitto did not start: ${await new Response(broker.stderr as ReadableStream).text()}`);
        await Bun.sleep(50);
      }
    }
  });

  afterAll(async () => {
    broker?.kill("SIGTERM");
    await broker?.exited;
    await topics.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const tlsPublisher = (port: number) => publisher({ username: "gateway", password, ca: readFileSync(join(dir, "ca.crt")), rejectUnauthorized: true }, `mqtts://127.0.0.1:${port}`);

  async function waitForError(adapter: AdapterProcess): Promise<string> {
    const deadline = Date.now() + 8000;
    while (Date.now() < deadline) {
      const metrics = await adapter.metrics();
      const match = /adapter_errors_total\{[^}]*type="connection"[^}]*\} (\d+)/.exec(metrics);
      if (match && Number(match[1]) > 0) return metrics;
      await Bun.sleep(100);
    }
    throw new Error("no connection error counted");
  }

  test("TLS with the CA verified and a password from ${secret:...}: QoS 1 messages reach Kafka", async () => {
    const out = await topics.create("test.mqtt-tls");
    const prefix = uniqueName("tls");
    const config = baseConfig(prefix, out, "dlq.unused", [{ topic: `${prefix}/+asset/+parameter`, format: "number" }], {
      port: tlsPort,
      username: "gateway",
      password: "${secret:mqtt_tls_test}",
      tls: { ca: join(dir, "ca.crt") },
      clean_session: true,
    });
    const adapter = startAdapter(config, { SECRET_MQTT_TLS_TEST: password });
    await subscribed(adapter);
    const pub = await tlsPublisher(tlsPort);
    for (let i = 0; i < 5; i++) await pub.publishAsync(`${prefix}/pump/p${i}`, String(i), { qos: 1 });
    await pub.endAsync();
    const readings = await readReadings(out, 5);
    adapter.child.kill("SIGTERM");
    expect(await adapter.exited).toBe(0);
    expect(readings.map((r) => r.value).sort()).toEqual([0, 1, 2, 3, 4]);
    expect(JSON.stringify(adapter.lines)).not.toContain(password);
  }, 30_000);

  test("mutual TLS: client certificate and key", async () => {
    const out = await topics.create("test.mqtt-mtls");
    const prefix = uniqueName("mtls");
    const config = baseConfig(prefix, out, "dlq.unused", [{ topic: `${prefix}/x`, format: "number", asset_id: "a", parameter: "x" }], {
      port: mtlsPort,
      protocol_version: "3.1.1",
      clean_session: true,
      tls: { ca: join(dir, "ca.crt"), cert: join(dir, "client.crt"), key: join(dir, "client.key") },
    });
    const adapter = startAdapter(config);
    await subscribed(adapter);
    const pub = await publisher(
      { ca: readFileSync(join(dir, "ca.crt")), cert: readFileSync(join(dir, "client.crt")), key: readFileSync(join(dir, "client.key")), rejectUnauthorized: true },
      `mqtts://127.0.0.1:${mtlsPort}`,
    );
    await pub.publishAsync(`${prefix}/x`, "42", { qos: 1 });
    await pub.endAsync();
    const readings = await readReadings(out, 1);
    adapter.child.kill("SIGTERM");
    expect(await adapter.exited).toBe(0);
    expect(readings[0]).toMatchObject({ asset_id: "a", parameter: "x", value: 42 });
  }, 30_000);

  test("a wrong password or an untrusted server certificate: connection errors counted, degraded, no crash", async () => {
    const common = (prefix: string) => baseConfig(prefix, "test.unused", "dlq.unused", [{ topic: `${prefix}/x`, format: "number" }], { port: tlsPort, clean_session: true });
    const wrongPassword = startAdapter({
      ...common("badpw"),
      source: { ...common("badpw").source, username: "gateway", password: "${secret:mqtt_bad}", tls: { ca: join(dir, "ca.crt") } },
    }, { SECRET_MQTT_BAD: "not-the-password" });
    const untrusted = startAdapter({
      ...common("untrusted"),
      source: { ...common("untrusted").source, username: "gateway", password, tls: { ca: join(dir, "other-ca.crt") } },
    });
    await Promise.all([waitForError(wrongPassword), waitForError(untrusted)]);
    for (const adapter of [wrongPassword, untrusted]) {
      const health = await (await fetch(`http://127.0.0.1:${await adapter.healthPort}/health`)).json();
      expect(health.status).toBe("degraded");
      adapter.child.kill("SIGTERM");
      expect(await adapter.exited).toBe(0);
    }
    const errors = (a: AdapterProcess) => a.lines.filter((l) => l.msg === "MQTT error").map((l) => String(l.err));
    expect(errors(wrongPassword).some((e) => /not authorized|bad user name or password/i.test(e))).toBe(true);
    expect(errors(untrusted).some((e) => /certificate|self.signed|verify/i.test(e))).toBe(true);
  }, 30_000);
});
