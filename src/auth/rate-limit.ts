/**
 * Token buckets keyed by caller (IP for logins, token subject for the API). Pure apart from the
 * injected clock; buckets of idle callers are swept so memory stays bounded.
 */
export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  #lastSweep = 0;

  constructor(
    private readonly capacity: number,
    private readonly refillPerSecond: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one token; returns 0 when allowed, else the seconds until one is available. */
  take(key: string): number {
    const t = this.now();
    this.#sweep(t);
    const bucket = this.#buckets.get(key) ?? { tokens: this.capacity, at: t };
    bucket.tokens = Math.min(this.capacity, bucket.tokens + ((t - bucket.at) / 1000) * this.refillPerSecond);
    bucket.at = t;
    this.#buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - bucket.tokens) / this.refillPerSecond);
  }

  #sweep(t: number): void {
    const fullAfterMs = (this.capacity / this.refillPerSecond) * 1000;
    if (t - this.#lastSweep < fullAfterMs) return;
    this.#lastSweep = t;
    for (const [key, bucket] of this.#buckets) if (t - bucket.at > fullAfterMs) this.#buckets.delete(key);
  }
}
