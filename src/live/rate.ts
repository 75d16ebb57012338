/** The overview's readings/s sparkline: 5 minutes of history at 5 s resolution. */
export const RATE_BUCKET_MS = 5000;
export const RATE_WINDOW_BUCKETS = 60;

export interface RateSeries {
  bucketMs: number;
  /**
   * Readings per second of each completed bucket, oldest first; always `buckets` long. null for
   * buckets from before counting started (no data is not zero readings).
   */
  rates: Array<number | null>;
  /** Rate of the last completed bucket. */
  current: number;
}

/** Counts events into fixed time buckets; memory is bounded by the window, not the event rate. */
export class RateCounter {
  readonly #counts = new Map<number, number>();
  /** The bucket counting started in: partial, so it is not reported either. */
  readonly #firstBucket: number;

  constructor(
    readonly bucketMs = RATE_BUCKET_MS,
    readonly buckets = RATE_WINDOW_BUCKETS,
    private readonly now: () => number = Date.now,
  ) {
    this.#firstBucket = Math.floor(now() / bucketMs);
  }

  add(count = 1): void {
    const bucket = Math.floor(this.now() / this.bucketMs);
    this.#counts.set(bucket, (this.#counts.get(bucket) ?? 0) + count);
    if (this.#counts.size > this.buckets + 2) {
      for (const key of this.#counts.keys()) if (key < bucket - this.buckets) this.#counts.delete(key);
    }
  }

  series(): RateSeries {
    const current = Math.floor(this.now() / this.bucketMs);
    const perSecond = 1000 / this.bucketMs;
    const rates: Array<number | null> = [];
    for (let b = current - this.buckets; b < current; b++) rates.push(b <= this.#firstBucket ? null : (this.#counts.get(b) ?? 0) * perSecond);
    return { bucketMs: this.bucketMs, rates, current: rates.at(-1) ?? 0 };
  }
}
