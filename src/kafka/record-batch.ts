import { crc32c } from "@platformatic/kafka";

/** What a record batch carries besides its records: who wrote it, and where it starts in their sequence. */
export interface BatchProducer {
  producerId: bigint;
  producerEpoch: number;
  /** The partition's sequence number of the first record (idempotence: the broker drops a batch it has). */
  baseSequence: number;
  transactional: boolean;
}

/** A record to encode: string key and headers; a null value is a tombstone. */
export interface BatchRecord {
  key?: string;
  value: string | null | undefined;
  headers?: Record<string, string>;
}

/** Base offset, batch length, partition leader epoch, magic, crc, attributes, last offset delta, timestamps, producer id/epoch, base sequence, record count. */
const BATCH_HEADER_BYTES = 61;
/** Everything after the crc field is what the crc covers. */
const CRC_START = 21;
const MAGIC = 2;
const IS_TRANSACTIONAL = 1 << 4;
/** The broker assigns it; producers send "none", as Kafka's Java client does. */
const NO_PARTITION_LEADER_EPOCH = -1;
/** A record's length, attributes, deltas and the four varint lengths or counts, at their largest. */
const RECORD_FRAMING_MAX_BYTES = 5 + 1 + 1 + 5 + 5 + 5 + 5;

const zigzag = (n: number) => (n << 1) ^ (n >> 31);

function varintSize(n: number): number {
  let raw = zigzag(n) >>> 0;
  let size = 1;
  while (raw >= 0x80) {
    raw >>>= 7;
    size++;
  }
  return size;
}

/**
 * Kafka's record batch (magic 2, uncompressed), written straight into one buffer: the client's
 * encoder builds a Writer and a buffer list per record, which made its produce path the largest
 * part of a stream worker's profile. Every record carries the batch's timestamp (delta 0), as a
 * producer stamping records at send does.
 */
export class RecordBatchEncoder {
  #buf = Buffer.allocUnsafe(64 << 10);
  #pos = 0;

  /** The encoded batch, a copy the caller owns. */
  encode(records: readonly BatchRecord[], producer: BatchProducer, timestamp: bigint): Buffer {
    if (records.length === 0) throw new Error("a record batch needs at least one record");
    this.#pos = BATCH_HEADER_BYTES;
    for (let i = 0; i < records.length; i++) this.#record(records[i]!, i);
    const end = this.#pos;
    const buf = this.#buf;
    buf.writeBigInt64BE(0n, 0);
    buf.writeInt32BE(end - 12, 8);
    buf.writeInt32BE(NO_PARTITION_LEADER_EPOCH, 12);
    buf.writeInt8(MAGIC, 16);
    buf.writeInt16BE(producer.transactional ? IS_TRANSACTIONAL : 0, 21);
    buf.writeInt32BE(records.length - 1, 23);
    buf.writeBigInt64BE(timestamp, 27);
    buf.writeBigInt64BE(timestamp, 35);
    buf.writeBigInt64BE(producer.producerId, 43);
    buf.writeInt16BE(producer.producerEpoch, 51);
    buf.writeInt32BE(producer.baseSequence, 53);
    buf.writeInt32BE(records.length, 57);
    buf.writeUInt32BE(crc32c(buf.subarray(CRC_START, end)), 17);
    return Buffer.from(buf.subarray(0, end));
  }

  #record(record: BatchRecord, offsetDelta: number): void {
    const keyBytes = record.key == null ? -1 : Buffer.byteLength(record.key);
    const valueBytes = record.value == null ? -1 : Buffer.byteLength(record.value);
    let headerCount = 0;
    let headerBytes = 0;
    if (record.headers) {
      for (const name in record.headers) {
        const nameBytes = Buffer.byteLength(name);
        const textBytes = Buffer.byteLength(record.headers[name]!);
        headerBytes += varintSize(nameBytes) + nameBytes + varintSize(textBytes) + textBytes;
        headerCount++;
      }
    }
    // Attributes (unused), timestamp delta 0, then the rest.
    const length =
      1 + 1 + varintSize(offsetDelta) + varintSize(keyBytes) + Math.max(keyBytes, 0) + varintSize(valueBytes) + Math.max(valueBytes, 0) + varintSize(headerCount) + headerBytes;
    this.#reserve(length + RECORD_FRAMING_MAX_BYTES);
    this.#varint(length);
    this.#buf[this.#pos++] = 0;
    this.#buf[this.#pos++] = 0;
    this.#varint(offsetDelta);
    this.#varint(keyBytes);
    if (keyBytes > 0) this.#pos += this.#buf.write(record.key!, this.#pos);
    this.#varint(valueBytes);
    if (valueBytes > 0) this.#pos += this.#buf.write(record.value!, this.#pos);
    this.#varint(headerCount);
    if (record.headers) {
      for (const name in record.headers) {
        const text = record.headers[name]!;
        this.#varint(Buffer.byteLength(name));
        this.#pos += this.#buf.write(name, this.#pos);
        this.#varint(Buffer.byteLength(text));
        this.#pos += this.#buf.write(text, this.#pos);
      }
    }
  }

  #varint(n: number): void {
    let raw = zigzag(n) >>> 0;
    const buf = this.#buf;
    while (raw >= 0x80) {
      buf[this.#pos++] = (raw & 0x7f) | 0x80;
      raw >>>= 7;
    }
    buf[this.#pos++] = raw;
  }

  #reserve(bytes: number): void {
    if (this.#pos + bytes <= this.#buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#pos + bytes));
    this.#buf.copy(grown, 0, 0, this.#pos);
    this.#buf = grown;
  }
}
