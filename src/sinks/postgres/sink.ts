import { Type, type Static } from "@sinclair/typebox";
import postgres from "postgres";
import type { FieldError } from "../../config/schema-errors.ts";
import type { ConsumedRecord } from "../../kafka/processor.ts";
import type { Logger } from "../../log/logger.ts";
import { defineSink, describeError, SinkWriteError, timedTest, type SinkBatch, type SinkConfig, type SinkContext, type SinkWriter } from "../define.ts";
import { kindForTopic, mapRecord, PoisonRecord, telemetryRow, type SinkKind } from "../rows.ts";
import { resolveSecrets } from "../../config/secrets.ts";
import { COLUMNS, CONFLICT_KEY, ident, TABLE_FOR_KIND, tableDdl, telemetryLine, type TableNames } from "./tables.ts";

const Identifier = (def: string, description: string) =>
  Type.String({ minLength: 1, maxLength: 63, pattern: "^[a-z_][a-z0-9_]*$", default: def, description });

export const PostgresTargetSchema = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      pattern: "^postgres(ql)?://",
      description: "postgres://user:password@host:port/db; `${secret:NAME}` placeholders are resolved at start (env SECRET_NAME or a file)",
    }),
    schema: Identifier("public", "Schema holding the sink's tables; created when missing"),
    tables: Type.Object(
      {
        telemetry: Identifier("telemetry_timeseries", "Readings (telemetry.raw / telemetry.clean)"),
        aggregates: Identifier("telemetry_aggregates", "Window aggregates of every resolution (telemetry.1s … telemetry.1hour)"),
        events: Identifier("events", "Events (events.*)"),
        alarms: Identifier("alarms", "Alarm transitions (alarms.*)"),
      },
      { additionalProperties: false, default: {} },
    ),
    timescaledb: Type.Union([Type.Literal("auto"), Type.Literal("require"), Type.Literal("off")], {
      default: "auto",
      description: "auto: hypertables when the timescaledb extension is installed in the database, plain tables otherwise; require: fail unless it is; off: plain tables",
    }),
    chunk_interval_hours: Type.Integer({ minimum: 1, maximum: 8760, default: 24, description: "Hypertable chunk size (TimescaleDB only)" }),
    create_tables: Type.Boolean({ default: true, description: "Create missing tables and indexes at start (idempotent); off when a DBA manages them" }),
    pool_size: Type.Integer({ minimum: 1, maximum: 20, default: 2, description: "Connections to the database" }),
    connect_timeout_ms: Type.Integer({ minimum: 100, maximum: 120_000, default: 5000, description: "Giving up on a connection attempt" }),
    statement_timeout_ms: Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 60_000, description: "Longest a batch's statements may run" }),
  },
  { additionalProperties: false },
);
export type PostgresTarget = Static<typeof PostgresTargetSchema>;

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "COPY_TIMEOUT",
]);

/**
 * SQLSTATE classes: 08 connection, 57P0x shutdown, 53 resources, 42/3F schema and permissions (the
 * target isn't ready: wait rather than dead-letter) → unavailable; 22 data, 23 constraints → rejected.
 */
export function classifyPgError(error: unknown): SinkWriteError {
  if (error instanceof SinkWriteError) return error;
  const code = String((error as { code?: unknown }).code ?? "");
  const message = describeError(error);
  if (CONNECTION_CODES.has(code) || /^(08|57P|53|42|3F|3D|28)/.test(code)) return new SinkWriteError("unavailable", message, { cause: error });
  if (/^(22|23)/.test(code)) return new SinkWriteError("rejected", message, { cause: error });
  return new SinkWriteError("transient", message, { cause: error });
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`${what}: no answer within ${ms} ms`), { code: "CONNECT_TIMEOUT" })), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

type Sql = postgres.Sql;
type Tx = postgres.TransactionSql;

/**
 * COPY from a string inside a transaction. postgres.js resolves a COPY's writable once the
 * server accepted it, and an error the server reports after the data (a unique violation, a bad
 * value) never reaches the stream. A query queued behind the COPY on the same connection settles
 * only after the COPY did, and fails (25P02) if it failed: that is the completion signal.
 */
async function copyIn(tx: Tx, statement: string, data: string): Promise<void> {
  const writable = (await tx.unsafe(statement).writable()) as import("node:stream").Writable & { _final(cb: (e?: Error | null) => void): void };
  const finalSent = new Promise<void>((resolve) => {
    const original = writable._final.bind(writable);
    writable._final = (callback) => {
      original(callback);
      resolve();
    };
  });
  const failed = new Promise<never>((_, reject) => writable.once("error", reject));
  writable.end(data);
  await Promise.race([finalSent, failed]);
  await tx`select 1`;
}

export interface PgWriteStats {
  /** Batches written by COPY straight into the tables. */
  fast: number;
  /** Batches written through a staging table with ON CONFLICT (after a conflict, and for aggregates). */
  safe: number;
}

/**
 * A record's COPY line, encoded while the previous batch is being written. The row itself is not
 * kept: what a batch holds until it is written is one string per record.
 */
export interface PgRow {
  kind: SinkKind;
  line: string;
}

export class PostgresWriter implements SinkWriter<PgRow> {
  readonly #sql: Sql;
  readonly #target: PostgresTarget;
  readonly #kinds: Record<string, SinkKind>;
  readonly #log: Logger;
  readonly #timeoutMs: number;
  #schemaReady: Promise<void> | undefined;
  #hypertables = false;
  /** COPY straight into the target; off after a conflict (re-delivery) until a batch conflicts no more. */
  #fast = true;
  readonly stats: PgWriteStats = { fast: 0, safe: 0 };

  constructor(target: PostgresTarget, topicKinds: Record<string, SinkKind>, context: SinkContext) {
    this.#target = target;
    this.#kinds = topicKinds;
    this.#log = context.log;
    this.#timeoutMs = target.statement_timeout_ms + 5000;
    this.#sql = postgres(resolveSecrets(target.url), {
      max: target.pool_size,
      connect_timeout: Math.max(1, Math.ceil(target.connect_timeout_ms / 1000)),
      idle_timeout: 60,
      max_lifetime: 3600,
      onnotice: () => {},
      connection: { application_name: `gateway-sink-${context.sinkId}`, statement_timeout: target.statement_timeout_ms },
    });
  }

  map(record: ConsumedRecord): PgRow {
    const kind = kindForTopic(record.topic, this.#kinds);
    if (!kind) throw new PoisonRecord("unmappable", `no row kind for topic ${record.topic} (set kafka.topic_kinds)`);
    if (kind === "telemetry") return { kind, line: telemetryLine(telemetryRow(record)) };
    const mapped = mapRecord(record, kind);
    return { kind, line: encodeLine(COLUMNS[kind], mapped.row) };
  }

  #table(kind: SinkKind): string {
    return `${ident(this.#target.schema)}.${ident(this.#target.tables[TABLE_FOR_KIND[kind]])}`;
  }

  /** Tables and indexes, once per process (again after the target lost them); serialized across instances by an advisory lock. */
  #ensureSchema(): Promise<void> {
    this.#schemaReady ??= (async () => {
      const found = await this.#sql<{ extversion: string }[]>`select extversion from pg_extension where extname = 'timescaledb'`;
      const mode = this.#target.timescaledb;
      if (mode === "require" && found.length === 0) {
        try {
          await this.#sql`create extension if not exists timescaledb`;
        } catch (error) {
          throw new SinkWriteError("unavailable", `timescaledb: "require" but the extension is not installed and can't be created: ${describeError(error)}`);
        }
      }
      this.#hypertables = mode === "require" || (mode === "auto" && found.length > 0);
      if (!this.#target.create_tables) return;
      const ddl = (["telemetry", "aggregate", "event", "alarm"] as const).flatMap((kind) =>
        tableDdl(kind, { schema: this.#target.schema, tables: this.#target.tables, hypertables: this.#hypertables, chunkIntervalHours: this.#target.chunk_interval_hours }),
      );
      await this.#sql.begin(async (tx) => {
        await tx`select pg_advisory_xact_lock(hashtext(${`gateway-sink-ddl:${this.#target.schema}`}))`;
        await tx.unsafe(`create schema if not exists ${ident(this.#target.schema)}`);
        for (const statement of ddl) await tx.unsafe(statement);
      });
      this.#log.info({ schema: this.#target.schema, hypertables: this.#hypertables }, "sink tables ready");
    })();
    this.#schemaReady.catch(() => (this.#schemaReady = undefined));
    return this.#schemaReady;
  }

  async write(batch: SinkBatch<PgRow>): Promise<void> {
    const byKind = new Map<SinkKind, string[]>();
    for (const { row } of batch.items) {
      const lines = byKind.get(row.kind) ?? [];
      lines.push(row.line);
      byKind.set(row.kind, lines);
    }
    if (byKind.size === 0) return;
    try {
      await withTimeout(this.#ensureSchema(), this.#timeoutMs, "creating tables");
      if (this.#fast) {
        try {
          await withTimeout(this.#writeFast(byKind), this.#timeoutMs, "batch write");
          this.stats.fast++;
          return;
        } catch (error) {
          // 25P02: the COPY failed (most often a re-delivered row: unique violation). Anything else is a real failure.
          if ((error as { code?: unknown }).code !== "25P02") throw error;
          this.#fast = false;
          this.#log.info("COPY conflicted (re-delivered rows); writing through a staging table until batches are new again");
        }
      }
      const allNew = await withTimeout(this.#writeSafe(byKind), this.#timeoutMs, "batch write");
      this.stats.safe++;
      if (allNew) this.#fast = true;
    } catch (error) {
      const classified = classifyPgError(error);
      if (/^(42P01|3F000)$/.test(String((error as { code?: unknown }).code))) this.#schemaReady = undefined; // dropped under us: recreate
      throw classified;
    }
  }

  /** COPY straight into the tables; aggregates always upsert (revisions). All in one transaction. */
  async #writeFast(byKind: Map<SinkKind, string[]>): Promise<void> {
    await this.#sql.begin(async (tx) => {
      for (const [kind, lines] of byKind) {
        if (kind === "aggregate") {
          await this.#stageAndMerge(tx, kind, lines);
          continue;
        }
        await copyIn(tx, `copy ${this.#table(kind)} (${COLUMNS[kind].map((c) => ident(c.name)).join(", ")}) from stdin`, lines.join(""));
      }
    });
  }

  /** Returns whether every row was new (no conflicts): then the fast path can be used again. */
  async #writeSafe(byKind: Map<SinkKind, string[]>): Promise<boolean> {
    let allNew = true;
    await this.#sql.begin(async (tx) => {
      for (const [kind, lines] of byKind) {
        const inserted = await this.#stageAndMerge(tx, kind, lines);
        if (kind !== "aggregate" && inserted < lines.length) allNew = false;
      }
    });
    return allNew;
  }

  /**
   * COPY into a text-only temp table (no value can fail there, so every error surfaces in the
   * INSERT with its SQLSTATE), then INSERT … SELECT with casts, idempotent on the kind's key.
   * Aggregates keep the highest revision per window, in the batch and against the table.
   */
  async #stageAndMerge(tx: Tx, kind: SinkKind, lines: string[]): Promise<number> {
    const columns = COLUMNS[kind];
    const stage = ident(`_sink_stage_${kind}`);
    const names = columns.map((c) => ident(c.name)).join(", ");
    await tx.unsafe(`create temp table if not exists ${stage} (${columns.map((c) => `${ident(c.name)} text`).join(", ")}) on commit delete rows`);
    await copyIn(tx, `copy ${stage} (${names}) from stdin`, lines.join(""));
    const casts = columns.map((c) => `${ident(c.name)}::${c.type} as ${ident(c.name)}`).join(", ");
    const table = this.#table(kind);
    const key = CONFLICT_KEY[kind].map(ident).join(", ");
    if (kind !== "aggregate") {
      const result = await tx.unsafe(`insert into ${table} (${names}) select ${casts} from ${stage} on conflict (${key}) do nothing`);
      return result.count;
    }
    const updates = columns
      .filter((c) => !CONFLICT_KEY.aggregate.includes(c.name))
      .map((c) => `${ident(c.name)} = excluded.${ident(c.name)}`)
      .join(", ");
    const result = await tx.unsafe(
      `insert into ${table} (${names})
       select distinct on (${key}) ${names} from (select ${casts} from ${stage}) s order by ${key}, revision desc
       on conflict (${key}) do update set ${updates} where excluded.revision > ${table}.revision`,
    );
    return result.count;
  }

  async probe(): Promise<void> {
    await withTimeout(this.#sql`select 1`, this.#target.connect_timeout_ms + 1000, "probe");
  }

  async close(): Promise<void> {
    await this.#sql.end({ timeout: 5 });
  }
}

function encodeLine(columns: { text(row: unknown): string }[], row: unknown): string {
  let line = "";
  for (let c = 0; c < columns.length; c++) line += (c === 0 ? "" : "\t") + columns[c]!.text(row);
  return `${line}\n`;
}

function validateKinds(config: SinkConfig<typeof PostgresTargetSchema>): FieldError[] {
  return config.kafka.topics
    .map((topic, i) => ({ topic, i }))
    .filter(({ topic }) => !kindForTopic(topic, config.kafka.topic_kinds))
    .map(({ topic, i }) => ({ path: `kafka.topics[${i}]`, message: `no row kind for topic "${topic}": add it to kafka.topic_kinds` }));
}

async function describeTarget(target: PostgresTarget): Promise<string> {
  const sql = postgres(resolveSecrets(target.url), { max: 1, connect_timeout: Math.max(1, Math.ceil(target.connect_timeout_ms / 1000)), onnotice: () => {} });
  try {
    const [row] = await sql<{ version: string; ts: string | null; can_create: boolean }[]>`
      select current_setting('server_version') as version,
             (select extversion from pg_extension where extname = 'timescaledb') as ts,
             has_database_privilege(current_database(), 'CREATE') as can_create`;
    const ts = row?.ts ? `timescaledb ${row.ts} (hypertables)` : "no timescaledb (plain tables)";
    return `PostgreSQL ${row?.version}; ${ts}${row?.can_create ? "" : "; no CREATE privilege on the database"}`;
  } finally {
    await sql.end({ timeout: 1 }).catch(() => undefined);
  }
}

function postgresDefinition(type: "postgres" | "timescaledb", description: string, timescale: "auto" | "require") {
  const targetSchema = Type.Object(
    { ...PostgresTargetSchema.properties, timescaledb: Type.Union([Type.Literal("auto"), Type.Literal("require"), Type.Literal("off")], { ...PostgresTargetSchema.properties.timescaledb, default: timescale }) },
    { additionalProperties: false },
  );
  return defineSink({
    type,
    version: "1.0.0",
    stability: "beta",
    description,
    targetSchema,
    batchDefaults: { max_rows: 5000, max_wait_ms: 1000 },
    validate: validateKinds,
    async create(config: SinkConfig<typeof targetSchema>, context: SinkContext) {
      return new PostgresWriter(config.target, config.kafka.topic_kinds, context) as SinkWriter;
    },
    connectionTest: (target, _log) => timedTest(() => describeTarget(target), target.connect_timeout_ms + 1000),
  });
}

export const postgresSink = postgresDefinition(
  "postgres",
  "Readings, aggregates, events and alarms into PostgreSQL tables (hypertables when TimescaleDB is installed); idempotent COPY",
  "auto",
);

export const timescaledbSink = postgresDefinition("timescaledb", "The PostgreSQL sink with TimescaleDB required: every table a hypertable", "require");
