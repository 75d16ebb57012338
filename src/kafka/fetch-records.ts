/**
 * The Fetch response (v17) with each partition's record batches left as bytes, and a decoder of
 * those batches into ConsumedRecords that does only what a consumer of string keys and values needs.
 *
 * Why not the client's own parser: it turns every record into an object with Buffer slices and a
 * headers array before the MessagesStream turns it again into a message (a Map of headers, a bound
 * commit, diagnostics). For a sink that was over a third of its CPU per row; decoding the batch
 * bytes straight into the records the sink keeps costs about a third of the client's parse alone.
 * The envelope is still read with the client's Reader, and compression with its codecs.
 */
import { compressionsAlgorithmsByBitmask, createAPI, FetchIsolationLevels, fetchV17, readKnownTaggedFields, Reader, ResponseError, type ConnectionPool, type Consumer } from "@platformatic/kafka";
import { tpKey } from "./group-consumer.ts";
import type { ConsumedRecord } from "./processor.ts";

const OFFSET_OUT_OF_RANGE = 1;
/** Partition errors that mean "ask the metadata for the leader again and retry", not a broken read. */
const LEADER_CHANGED = new Set([
  3, // UNKNOWN_TOPIC_OR_PARTITION
  5, // LEADER_NOT_AVAILABLE
  6, // NOT_LEADER_OR_FOLLOWER
  56, // KAFKA_STORAGE_ERROR
  74, // FENCED_LEADER_EPOCH
  75, // UNKNOWN_LEADER_EPOCH
  100, // UNKNOWN_TOPIC_ID
]);

export interface AbortedTransaction {
  producerId: bigint;
  firstOffset: bigint;
}

/** Bytes of a response as the connection received them: a list of socket chunks, not copied. */
export type ReceivedBytes = Reader["buffer"];

export interface FetchedPartition {
  partition: number;
  errorCode: number;
  highWatermark: bigint;
  logStartOffset: bigint;
  abortedTransactions: AbortedTransaction[];
  /** The partition's record batches as sent by the broker; the last one may be cut short. */
  records: ReceivedBytes | null;
}

export interface FetchedTopic {
  topicId: string;
  partitions: FetchedPartition[];
}

export interface FetchResult {
  errorCode: number;
  responses: FetchedTopic[];
}

/*
  Fetch Response (Version: 17) => throttle_time_ms error_code session_id [responses] node_endpoints TAG_BUFFER
    responses => topic_id [partitions] TAG_BUFFER
      partitions => partition_index error_code high_watermark last_stable_offset log_start_offset
                    [aborted_transactions] preferred_read_replica records TAG_BUFFER
        aborted_transactions => producer_id first_offset TAG_BUFFER
        records => COMPACT_RECORDS
*/
function parseFetchResponse(_correlationId: number, apiKey: number, apiVersion: number, reader: Reader): FetchResult {
  reader.readInt32(); // throttle_time_ms
  const errorCode = reader.readInt16();
  reader.readInt32(); // session_id: fetches are sessionless
  const responses = reader.readArray((r) => ({
    topicId: r.readUUID(),
    partitions: r.readArray(
      (r) => {
        const partition = r.readInt32();
        const partitionError = r.readInt16();
        const highWatermark = r.readInt64();
        r.readInt64(); // last_stable_offset
        const logStartOffset = r.readInt64();
        const abortedTransactions = r.readNullableArray((r) => ({ producerId: r.readInt64(), firstOffset: r.readInt64() })) ?? [];
        r.readInt32(); // preferred_read_replica
        // COMPACT_RECORDS: length + 1, 0 for null.
        const size = r.readUnsignedVarInt();
        let records: ReceivedBytes | null = null;
        if (size > 1) {
          records = r.buffer.subarray(r.position, r.position + size - 1);
          r.skip(size - 1);
        }
        readKnownTaggedFields(r, {});
        return { partition, errorCode: partitionError, highWatermark, logStartOffset, abortedTransactions, records };
      },
      true,
      false,
    ),
  }));
  readKnownTaggedFields(reader, {});
  if (errorCode !== 0) throw new ResponseError(apiKey, apiVersion, { "": [errorCode, null] }, { errorCode, responses });
  return { errorCode, responses };
}

/** Fetch v17 (Kafka 3.9 and later): the client's request encoder, our response parser. */
const fetchRecordsApi = createAPI<Parameters<typeof fetchV17.createRequest>, FetchResult>(1, 17, fetchV17.createRequest, parseFetchResponse);

export interface PartitionPosition {
  topic: string;
  partition: number;
  /** Next offset to read. */
  offset: bigint;
}

export interface FetchLimits {
  maxWaitMs: number;
  minBytes: number;
  maxBytes: number;
  partitionMaxBytes: number;
}

export interface FetchRound {
  /** Next offset per partition (tpKey) that brought record batches. */
  advanced: Map<string, bigint>;
  /** Partitions whose offset is gone (tpKey): where their log starts and ends now. */
  outOfRange: Map<string, { logStartOffset: bigint; highWatermark: bigint }>;
  /** Some partition's leader is unknown or moved: clear the metadata before the next round. */
  leaderChanged: boolean;
}

/**
 * One read_committed Fetch per leader for `positions`, their record batches decoded into `out`.
 * Sessionless (id 0, epoch -1): every request names all its partitions and their offsets. Partition
 * errors other than a moved leader or a lost offset throw, naming the partition.
 */
export async function fetchRound(client: Pick<Consumer, "metadata">, pool: ConnectionPool, positions: PartitionPosition[], limits: FetchLimits, bytes: ContiguousBytes, out: ConsumedRecord[]): Promise<FetchRound> {
  const metadata = await client.metadata({ topics: [...new Set(positions.map((p) => p.topic))] });
  const requests = new Map<number, Map<string, fetchV17.FetchRequestTopic>>();
  const names = new Map<string, string>();
  const from = new Map<string, bigint>();
  for (const { topic, partition, offset } of positions) {
    const info = metadata.topics.get(topic);
    const leader = info?.partitions[partition]?.leader;
    if (!info || leader === undefined) continue;
    names.set(info.id, topic);
    from.set(tpKey(topic, partition), offset);
    let topics = requests.get(leader);
    if (!topics) requests.set(leader, (topics = new Map()));
    let entry = topics.get(topic);
    if (!entry) topics.set(topic, (entry = { topicId: info.id, partitions: [] }));
    entry.partitions.push({ partition, fetchOffset: offset, partitionMaxBytes: limits.partitionMaxBytes, currentLeaderEpoch: -1, lastFetchedEpoch: -1 });
  }
  const round: FetchRound = { advanced: new Map(), outOfRange: new Map(), leaderChanged: requests.size === 0 };
  await Promise.all(
    [...requests].map(async ([node, topics]) => {
      const broker = metadata.brokers.get(node);
      if (!broker) {
        round.leaderChanged = true;
        return;
      }
      const result = await fetchRecordsApi.async(await pool.get(broker), limits.maxWaitMs, limits.minBytes, limits.maxBytes, FetchIsolationLevels.READ_COMMITTED, 0, -1, [...topics.values()], [], "");
      for (const response of result.responses) {
        const topic = names.get(response.topicId);
        if (topic === undefined) continue;
        for (const p of response.partitions) {
          const key = tpKey(topic, p.partition);
          const position = from.get(key);
          if (position === undefined) continue;
          if (p.errorCode === OFFSET_OUT_OF_RANGE) round.outOfRange.set(key, { logStartOffset: p.logStartOffset, highWatermark: p.highWatermark });
          else if (LEADER_CHANGED.has(p.errorCode)) round.leaderChanged = true;
          else if (p.errorCode !== 0) throw new Error(`fetching ${key} at offset ${position}: Kafka error code ${p.errorCode}`);
          else if (p.records) round.advanced.set(key, decodeRecordBatches(bytes.of(p.records), topic, p.partition, position, p.abortedTransactions, out));
        }
      }
    }),
  );
  return round;
}

const IS_TRANSACTIONAL = 1 << 4;
const IS_CONTROL = 1 << 5;
const COMPRESSION = 0b111;
/** Base offset, batch length, partition leader epoch, magic, crc, attributes, last offset delta, timestamps, producer id/epoch, base sequence, record count. */
const BATCH_HEADER = 61;
/** Shared by every record without headers (nearly all): a consumed record's headers are only read. */
const NO_HEADERS: Map<string, string> = new Map();

/**
 * One Buffer for the bytes of a partition: its socket chunk when they came in one, else a copy into
 * a buffer reused from one partition to the next (a fresh one per partition was ~8 % of a sink's CPU,
 * fresh memory each time). Valid until the next call: records decoded from it hold strings, not views.
 */
export class ContiguousBytes {
  #scratch = Buffer.allocUnsafe(0);

  of(bytes: ReceivedBytes): Buffer {
    if (bytes.buffers.length === 1) return bytes.buffers[0]!;
    if (this.#scratch.length < bytes.length) this.#scratch = Buffer.allocUnsafe(Math.max(bytes.length, this.#scratch.length * 2));
    let at = 0;
    for (const chunk of bytes.buffers) at += chunk.copy(this.#scratch, at);
    return this.#scratch.subarray(0, bytes.length);
  }
}

/** Varints of the record format: zigzag, up to 2^53 (offset and timestamp deltas, lengths). */
class Cursor {
  constructor(
    readonly buf: Buffer,
    public pos: number,
  ) {}

  varint(): number {
    const buf = this.buf;
    let raw = 0;
    let factor = 1;
    let byte: number;
    do {
      byte = buf[this.pos++]!;
      raw += (byte & 0x7f) * factor;
      factor *= 128;
    } while (byte & 0x80);
    return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
  }

  /** A varint-length string; null for length -1. */
  text(): string | undefined {
    const length = this.varint();
    if (length < 0) return undefined;
    const start = this.pos;
    this.pos += length;
    return this.buf.toString("utf8", start, this.pos);
  }
}

/**
 * Appends the records of `bytes` (one partition's record batches) at or after `from` to `out`,
 * as read_committed sees them: control batches and batches of aborted transactions are skipped.
 * Returns the offset after the last complete batch (the next fetch position), or `from` when the
 * bytes hold no complete batch.
 */
export function decodeRecordBatches(bytes: Buffer, topic: string, partition: number, from: bigint, aborted: AbortedTransaction[], out: ConsumedRecord[]): bigint {
  const pending = aborted.length > 1 ? [...aborted].sort((x, y) => (x.firstOffset < y.firstOffset ? -1 : x.firstOffset > y.firstOffset ? 1 : 0)) : aborted;
  let nextAborted = 0;
  const abortedProducers = new Set<bigint>();
  let next = from;
  let at = 0;
  while (at + 12 <= bytes.length) {
    const end = at + 12 + bytes.readInt32BE(at + 8);
    if (end > bytes.length) break; // cut short by the fetch size limit: fetched again from `next`
    const base = bytes.readBigInt64BE(at);
    const attributes = bytes.readInt16BE(at + 21);
    const last = base + BigInt(bytes.readInt32BE(at + 23));
    const producerId = bytes.readBigInt64BE(at + 43);
    while (nextAborted < pending.length && pending[nextAborted]!.firstOffset <= last) abortedProducers.add(pending[nextAborted++]!.producerId);
    const transactional = (attributes & IS_TRANSACTIONAL) !== 0;
    if (attributes & IS_CONTROL) {
      // The ABORT marker (control type 0, after a 2-byte version in the key) closes the producer's aborted transaction.
      if (transactional && abortedProducers.has(producerId) && controlType(bytes, at, end, attributes) === 0) abortedProducers.delete(producerId);
    } else if (!(transactional && abortedProducers.has(producerId)) && last >= from) {
      decodeRecords(bytes, at, end, attributes, base, topic, partition, from, out);
    }
    next = last + 1n;
    at = end;
  }
  return next > from ? next : from;
}

function recordsCursor(bytes: Buffer, at: number, end: number, attributes: number): Cursor {
  const compression = attributes & COMPRESSION;
  if (compression === 0) return new Cursor(bytes, at + BATCH_HEADER);
  const codec = compressionsAlgorithmsByBitmask[compression];
  if (!codec) throw new Error(`record batch compressed with unknown codec ${compression}`);
  return new Cursor(codec.decompressSync(bytes.subarray(at + BATCH_HEADER, end)), 0);
}

function controlType(bytes: Buffer, at: number, end: number, attributes: number): number {
  const c = recordsCursor(bytes, at, end, attributes);
  c.varint(); // length
  c.pos++; // attributes
  c.varint(); // timestamp delta
  c.varint(); // offset delta
  const keyLength = c.varint();
  return keyLength >= 4 ? c.buf.readInt16BE(c.pos + 2) : -1;
}

function decodeRecords(bytes: Buffer, at: number, end: number, attributes: number, base: bigint, topic: string, partition: number, from: bigint, out: ConsumedRecord[]): void {
  const count = bytes.readInt32BE(at + 57);
  const baseTimestamp = Number(bytes.readBigInt64BE(at + 27));
  // Offsets stay far below 2^53: one BigInt per record instead of two.
  const baseOffset = Number(base);
  const c = recordsCursor(bytes, at, end, attributes);
  // Records of one produce call mostly share a timestamp: one BigInt for them all.
  let lastDelta = Number.NaN;
  let timestamp = 0n;
  for (let i = 0; i < count; i++) {
    c.varint(); // length
    c.pos++; // attributes (unused)
    const timestampDelta = c.varint();
    const offset = BigInt(baseOffset + c.varint());
    const key = c.text();
    const value = c.text();
    const headerCount = c.varint();
    let headers = NO_HEADERS;
    if (headerCount > 0) {
      headers = new Map();
      for (let h = 0; h < headerCount; h++) headers.set(c.text() ?? "", c.text() ?? "");
    }
    if (offset < from) continue;
    if (timestampDelta !== lastDelta) {
      lastDelta = timestampDelta;
      timestamp = BigInt(baseTimestamp + timestampDelta);
    }
    out.push({ topic, partition, offset, key, value, headers, timestamp });
  }
}
