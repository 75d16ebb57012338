const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/**
 * Kafka's murmur2 (Utils.murmur2 in the Java client) in 32-bit integer arithmetic.
 */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = SEED ^ length;
  const blocks = length & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  // The last 1-3 bytes, as the Java switch with fall-through does.
  const tail = length & 3;
  if (tail > 0) {
    if (tail === 3) h ^= data[blocks + 2]! << 16;
    if (tail >= 2) h ^= data[blocks + 1]! << 8;
    h ^= data[blocks]!;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/**
 * Where Kafka's default partitioner puts a keyed record (the unsigned murmur2 of the key bytes, modulo
 * the partition count), so records keep their partition whichever of our producers writes them and
 * stay co-partitioned with every other producer's. The client's own port computes the hash with
 * BigInt and was ~6 % of a stream worker's CPU.
 */
export function partitionForKey(key: Uint8Array, partitionCount: number): number {
  return (murmur2(key) >>> 0) % partitionCount;
}
