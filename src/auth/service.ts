import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { jwtVerify, SignJWT } from "jose";
import type { Db } from "../db/client.ts";
import { users } from "../db/schema.ts";
import type { Logger } from "../log/logger.ts";
import { ROLES, type Role } from "./permissions.ts";

export const ACCESS_TOKEN_TTL_S = 15 * 60;
export const REFRESH_TOKEN_TTL_S = 7 * 24 * 3600;
/** Service tokens are recognisable in logs and secret scanners, and never parse as a JWT. */
const SERVICE_TOKEN_PREFIX = "gw_";
const ISSUER = "industrial-data-gateway";

export interface Principal {
  id: string;
  username: string;
  role: Role;
  kind: "human" | "service";
}

export interface Session {
  access_token: string;
  refresh_token: string;
  token_type: "Bearer";
  expires_in: number;
  user: Principal;
}

export class AuthError extends Error {
  override name = "AuthError";
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** The signing key lives in the data folder, so sessions survive restarts and differ per appliance. */
export function loadOrCreateSecret(dataDir: string): Uint8Array {
  const file = join(dataDir, "jwt-secret");
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString("hex"), { mode: 0o600 });
  return new Uint8Array(Buffer.from(readFileSync(file, "utf8").trim(), "hex"));
}

function toPrincipal(row: typeof users.$inferSelect): Principal {
  return { id: row.id, username: row.username, role: row.role, kind: row.kind };
}

export class AuthService {
  /** Verifying against this when the user does not exist keeps login timing from revealing usernames. */
  #dummyHash: Promise<string> | undefined;

  constructor(
    private readonly db: () => Db,
    private readonly secret: Uint8Array,
    private readonly now: () => number = Date.now,
  ) {}

  /** First start: an `admin` with GATEWAY_ADMIN_PASSWORD, or a generated password printed once. */
  async bootstrapAdmin(password: string | undefined, log: Logger): Promise<void> {
    const existing = await this.db().select({ id: users.id }).from(users).limit(1);
    if (existing.length > 0) return;
    const initial = password ?? randomBytes(12).toString("base64url");
    await this.createUser("admin", initial, "Admin");
    if (password) log.info({ username: "admin" }, "created the admin user with GATEWAY_ADMIN_PASSWORD");
    else log.warn({ username: "admin", password: initial }, "created the admin user; this generated password is shown once, change it");
  }

  async createUser(username: string, password: string, role: Role): Promise<Principal> {
    if (!ROLES.includes(role)) throw new AuthError(`role: expected one of ${ROLES.join(", ")}`);
    const passwordHash = await Bun.password.hash(password, { algorithm: "argon2id" });
    const [row] = await this.db().insert(users).values({ username, passwordHash, role, kind: "human" }).returning();
    return toPrincipal(row!);
  }

  /** The token is returned once; only its hash is stored. */
  async createServiceAccount(name: string, role: Role): Promise<{ account: Principal; token: string }> {
    const token = `${SERVICE_TOKEN_PREFIX}${randomBytes(24).toString("base64url")}`;
    // Service accounts cannot sign in with a password; an unusable hash keeps the column honest.
    const passwordHash = `!service:${randomBytes(8).toString("hex")}`;
    const [row] = await this.db()
      .insert(users)
      .values({ username: name, passwordHash, role, kind: "service", tokenHash: sha256(token) })
      .returning();
    return { account: toPrincipal(row!), token };
  }

  async login(username: string, password: string): Promise<Session> {
    const [row] = await this.db().select().from(users).where(eq(users.username, username)).limit(1);
    const usable = row && row.kind === "human" && !row.disabled;
    this.#dummyHash ??= Bun.password.hash("timing-equaliser", { algorithm: "argon2id" });
    const valid = await Bun.password.verify(password, usable ? row.passwordHash : await this.#dummyHash);
    if (!usable || !valid) throw new AuthError("invalid username or password");
    await this.db().update(users).set({ lastLoginAt: new Date(this.now()) }).where(eq(users.id, row.id));
    return this.#session(toPrincipal(row));
  }

  async refresh(refreshToken: string): Promise<Session> {
    const claims = await this.#verify(refreshToken, "refresh");
    const principal = await this.#principalById(claims.sub);
    return this.#session(principal);
  }

  /** A bearer credential: an access JWT, or a service account token. */
  async authenticate(credential: string): Promise<Principal> {
    if (credential.startsWith(SERVICE_TOKEN_PREFIX)) {
      const hash = sha256(credential);
      const [row] = await this.db().select().from(users).where(eq(users.tokenHash, hash)).limit(1);
      if (!row || row.disabled || !row.tokenHash || !timingSafeEqual(Buffer.from(row.tokenHash), Buffer.from(hash))) {
        throw new AuthError("invalid or revoked service token");
      }
      return toPrincipal(row);
    }
    const claims = await this.#verify(credential, "access");
    return { id: claims.sub, username: claims.username, role: claims.role, kind: "human" };
  }

  async #principalById(id: string): Promise<Principal> {
    const [row] = await this.db().select().from(users).where(eq(users.id, id)).limit(1);
    if (!row || row.disabled) throw new AuthError("account disabled or removed");
    return toPrincipal(row);
  }

  async #session(principal: Principal): Promise<Session> {
    const sign = (type: "access" | "refresh", ttl: number) =>
      new SignJWT({ type, username: principal.username, role: principal.role })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject(principal.id)
        .setIssuer(ISSUER)
        .setIssuedAt(Math.floor(this.now() / 1000))
        .setExpirationTime(Math.floor(this.now() / 1000) + ttl)
        .sign(this.secret);
    return {
      access_token: await sign("access", ACCESS_TOKEN_TTL_S),
      refresh_token: await sign("refresh", REFRESH_TOKEN_TTL_S),
      token_type: "Bearer",
      expires_in: ACCESS_TOKEN_TTL_S,
      user: principal,
    };
  }

  async #verify(token: string, type: "access" | "refresh"): Promise<{ sub: string; username: string; role: Role }> {
    try {
      const { payload } = await jwtVerify(token, this.secret, { issuer: ISSUER, currentDate: new Date(this.now()) });
      if (payload.type !== type || typeof payload.sub !== "string") throw new AuthError(`not an ${type} token`);
      return { sub: payload.sub, username: String(payload.username), role: payload.role as Role };
    } catch (error) {
      if (error instanceof AuthError) throw error;
      throw new AuthError(`invalid ${type} token: ${(error as Error).message}`);
    }
  }
}
