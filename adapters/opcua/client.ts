/**
 * Opening an OPC UA session the way every part of the adapter does (reader, connection test,
 * browse): one security setup, one client certificate store, one way to name failures.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { OPCUACertificateManager } from "node-opcua-certificate-manager";
import {
  MessageSecurityMode,
  OPCUAClient,
  SecurityPolicy,
  UserTokenType,
  type ClientSession as BaseSession,
  type ClientSessionRawSubscriptionService,
  type UserIdentityInfo,
} from "node-opcua-client";
import type { ErrorType } from "../../src/registry.ts";
import type { OpcuaSource, SecurityModeName, SecurityPolicyName } from "./schema.ts";
import { gatewayDataDir, resolveSecrets, SecretError } from "../../src/config/secrets.ts";

const MODES: Record<SecurityModeName, MessageSecurityMode> = {
  None: MessageSecurityMode.None,
  Sign: MessageSecurityMode.Sign,
  SignAndEncrypt: MessageSecurityMode.SignAndEncrypt,
};

const POLICIES: Record<SecurityPolicyName, SecurityPolicy> = {
  None: SecurityPolicy.None,
  Basic256Sha256: SecurityPolicy.Basic256Sha256,
  Aes128_Sha256_RsaOaep: SecurityPolicy.Aes128_Sha256_RsaOaep,
  Aes256_Sha256_RsaPss: SecurityPolicy.Aes256_Sha256_RsaPss,
};

/** What a session needs; the subset of `source` that browse and the simulator's tests also build. */
export interface SessionOptions {
  endpoint: string;
  security_mode?: SecurityModeName;
  security_policy?: SecurityPolicyName;
  auth?: OpcuaSource["auth"];
  pki_dir?: string;
  trusted_server_certificates?: string;
  auto_accept_server_certificate?: boolean;
  application_name?: string;
  timeout_ms?: number;
  session_timeout_ms?: number;
}

export function effectivePolicy(options: Pick<SessionOptions, "security_mode" | "security_policy">): SecurityPolicyName {
  return options.security_policy ?? ((options.security_mode ?? "None") === "None" ? "None" : "Basic256Sha256");
}

export function pkiDir(options: Pick<SessionOptions, "pki_dir">, env: Record<string, string | undefined> = process.env): string {
  return resolve(options.pki_dir ?? join(gatewayDataDir(env), "opcua-pki"));
}

/** A failure with the adapter's error type and a message that says what to do. */
export class OpcuaError extends Error {
  override name = "OpcuaError";
  constructor(
    readonly type: ErrorType,
    message: string,
  ) {
    super(message);
  }
}

const managers = new Map<string, Promise<OPCUACertificateManager>>();

/** One certificate store per folder and process; trusted_server_certificates are copied in first. */
export function certificateManager(options: SessionOptions): Promise<OPCUACertificateManager> {
  const root = pkiDir(options);
  const key = `${root}\n${options.auto_accept_server_certificate === true}`;
  let manager = managers.get(key);
  if (!manager) {
    manager = (async () => {
      mkdirSync(root, { recursive: true });
      const cm = new OPCUACertificateManager({
        rootFolder: root,
        automaticallyAcceptUnknownCertificate: options.auto_accept_server_certificate === true,
        keySize: 2048,
      });
      await cm.initialize();
      if (options.trusted_server_certificates) importTrusted(options.trusted_server_certificates, join(root, "trusted", "certs"));
      return cm;
    })();
    managers.set(key, manager);
    manager.catch(() => managers.delete(key));
  }
  return manager;
}

function importTrusted(from: string, to: string): void {
  if (!existsSync(from) || !statSync(from).isDirectory()) {
    throw new OpcuaError("config", `source.trusted_server_certificates: ${from} is not a folder`);
  }
  mkdirSync(to, { recursive: true });
  for (const file of readdirSync(from)) {
    const path = join(from, file);
    // Certificates only: a private key kept beside its certificate must not land in the trust list.
    const isCertificate = /\.(der|crt|cer)$/i.test(file) || (/\.pem$/i.test(file) && readFileSync(path, "utf8").includes("BEGIN CERTIFICATE"));
    if (isCertificate) copyFileSync(path, join(to, file));
  }
}

function identity(auth: SessionOptions["auth"], env: Record<string, string | undefined>): UserIdentityInfo {
  if (auth === undefined || auth === "anonymous") return { type: UserTokenType.Anonymous };
  try {
    return { type: UserTokenType.UserName, userName: auth.username, password: resolveSecrets(auth.password, { env }) };
  } catch (error) {
    if (error instanceof SecretError) throw new OpcuaError("config", `source.auth.password: ${error.message}`);
    throw error;
  }
}

/** Names the usual failures in words an operator can act on. */
export function classify(error: unknown, options: SessionOptions): OpcuaError {
  if (error instanceof OpcuaError) return error;
  const message = (error as Error)?.message ?? String(error);
  if (/certificate verification failed|BadCertificate/i.test(message)) {
    const root = pkiDir(options);
    return new OpcuaError(
      "config",
      `server certificate not trusted (${message.split("\n")[0]}): copy it from ${join(root, "rejected")} to ${join(root, "trusted", "certs")}, or put it in source.trusted_server_certificates`,
    );
  }
  if (/BadUserAccessDenied|BadIdentityToken|BadUserSignatureInvalid|user token policy/i.test(message)) {
    return new OpcuaError("config", `the server refused the user identity (${message.split("\n")[0]})`);
  }
  if (/cannot find (an )?endpoint|end point must exist|BadSecurityPolicyRejected|BadSecurityModeRejected/i.test(message)) {
    return new OpcuaError("config", `the server offers no endpoint for security ${options.security_mode ?? "None"}/${effectivePolicy(options)} (${message.split("\n")[0]})`);
  }
  if (/timeout|timed out/i.test(message)) return new OpcuaError("timeout", message);
  return new OpcuaError("connection", message);
}

/** node-opcua's ClientSession type leaves out the raw subscription services its implementation has. */
export type ClientSession = BaseSession & ClientSessionRawSubscriptionService;

export interface OpenSession {
  client: OPCUAClient;
  session: ClientSession;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new OpcuaError("timeout", `${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Connects and activates a session; never retries by itself (the caller's loop owns retries
 * and backoff), and always leaves nothing open behind when it fails.
 */
export async function openSession(options: SessionOptions, env: Record<string, string | undefined> = process.env): Promise<OpenSession> {
  const timeoutMs = options.timeout_ms ?? 10_000;
  const user = identity(options.auth, env);
  const cm = await certificateManager(options).catch((error) => {
    throw error instanceof OpcuaError ? error : new OpcuaError("config", `client certificate store ${pkiDir(options)}: ${(error as Error).message}`);
  });
  const client = OPCUAClient.create({
    applicationName: options.application_name ?? "IndustrialDataGateway",
    clientName: "gateway",
    securityMode: MODES[options.security_mode ?? "None"],
    securityPolicy: POLICIES[effectivePolicy(options)],
    endpointMustExist: false,
    // One attempt: the adapter's own loop reconnects, with its backoff and outage reporting.
    connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 1000 },
    keepSessionAlive: true,
    requestedSessionTimeout: options.session_timeout_ms ?? 60_000,
    defaultTransactionTimeout: timeoutMs,
    transportTimeout: timeoutMs,
    clientCertificateManager: cm,
  });
  try {
    await withTimeout(client.connect(options.endpoint), timeoutMs, `connect to ${options.endpoint}`);
    const session = (await withTimeout(client.createSession(user), timeoutMs, "create session")) as ClientSession;
    return { client, session };
  } catch (error) {
    await withTimeout(client.disconnect(), 2000, "disconnect").catch(() => undefined);
    throw classify(error, options);
  }
}

/** Best effort, bounded: a dead server must not hold up a stop. */
export async function closeSession(open: OpenSession | undefined, timeoutMs = 3000): Promise<void> {
  if (!open) return;
  await withTimeout(open.session.close(true), timeoutMs, "close session").catch(() => undefined);
  await withTimeout(open.client.disconnect(), timeoutMs, "disconnect").catch(() => undefined);
}
