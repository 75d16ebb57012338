import { DDSketch } from "@datadog/sketches-js";

/** Up to this many samples a window keeps every value and its percentiles are exact. */
export const DEFAULT_EXACT_PERCENTILE_LIMIT = 1_000;
/** DDSketch guarantee past the exact limit: every reported percentile is within 1 % of the true value. */
export const DEFAULT_SKETCH_RELATIVE_ACCURACY = 0.01;

export interface StatsConfig {
  exact_percentile_limit: number;
  sketch_relative_accuracy: number;
}
export const DEFAULT_STATS_CONFIG: StatsConfig = {
  exact_percentile_limit: DEFAULT_EXACT_PERCENTILE_LIMIT,
  sketch_relative_accuracy: DEFAULT_SKETCH_RELATIVE_ACCURACY,
};

/**
 * Running statistics of one window. Mean and M2 follow Welford (stable where sum/sum-of-squares cancels);
 * `values` holds every sample until the exact limit, then `sketch` takes over and `values` is dropped.
 */
export interface Stats {
  count: number;
  mean: number;
  m2: number;
  min: number;
  max: number;
  values: number[] | null;
  sketch: DDSketch | null;
}

/** DDSketch bins as plain JSON: counts for consecutive keys starting at `first_key`. */
export interface SketchBins {
  first_key: number;
  counts: number[];
}
export interface SketchJSON {
  relative_accuracy: number;
  zero_count: number;
  positive: SketchBins;
  negative: SketchBins;
}
export interface StatsJSON {
  count: number;
  mean: number;
  m2: number;
  min: number | null;
  max: number | null;
  values: number[] | null;
  sketch: SketchJSON | null;
}

export interface Summary {
  avg: number;
  min: number;
  max: number;
  /** Population standard deviation (divides by count): the window is the whole population, not a sample of one. */
  stddev: number;
  count: number;
  p50: number;
  p95: number;
  p99: number;
}

export function createStats(): Stats {
  return { count: 0, mean: 0, m2: 0, min: Infinity, max: -Infinity, values: [], sketch: null };
}

function toSketch(values: number[], config: StatsConfig): DDSketch {
  const sketch = new DDSketch({ relativeAccuracy: config.sketch_relative_accuracy });
  for (const v of values) sketch.accept(v);
  return sketch;
}

export function addValue(stats: Stats, value: number, config: StatsConfig = DEFAULT_STATS_CONFIG): void {
  stats.count += 1;
  const delta = value - stats.mean;
  stats.mean += delta / stats.count;
  stats.m2 += delta * (value - stats.mean);
  if (value < stats.min) stats.min = value;
  if (value > stats.max) stats.max = value;
  if (stats.sketch) stats.sketch.accept(value);
  else if (stats.values) {
    stats.values.push(value);
    if (stats.values.length > config.exact_percentile_limit) {
      stats.sketch = toSketch(stats.values, config);
      stats.values = null;
    }
  }
}

/**
 * Merge `from` into `into` (Chan et al.'s pairwise update for mean/M2). The store merge is done here
 * because DDSketch.merge in sketches-js 2.1.1 drops the negative-value store.
 */
export function mergeStats(into: Stats, from: Stats, config: StatsConfig = DEFAULT_STATS_CONFIG): void {
  if (from.count === 0) return;
  const count = into.count + from.count;
  const delta = from.mean - into.mean;
  into.m2 += from.m2 + (delta * delta * into.count * from.count) / count;
  into.mean += (delta * from.count) / count;
  into.count = count;
  into.min = Math.min(into.min, from.min);
  into.max = Math.max(into.max, from.max);
  if (into.values && from.values && into.values.length + from.values.length <= config.exact_percentile_limit) {
    into.values.push(...from.values);
    return;
  }
  const target = into.sketch ?? toSketch(into.values ?? [], config);
  const source = from.sketch ?? toSketch(from.values ?? [], config);
  if (!target.mergeable(source)) throw new Error("cannot merge sketches of different relative accuracy");
  target.store.merge(source.store);
  target.negativeStore.merge(source.negativeStore);
  target.zeroCount += source.zeroCount;
  target.count = target.store.count + target.negativeStore.count + target.zeroCount;
  into.sketch = target;
  into.values = null;
}

/** Linear interpolation between closest ranks (NumPy's default): exact for the samples held. */
function exactQuantile(sorted: Float64Array, q: number): number {
  const rank = q * (sorted.length - 1);
  const lo = Math.floor(rank);
  const below = sorted[lo] as number;
  const above = sorted[Math.min(lo + 1, sorted.length - 1)] as number;
  return below + (above - below) * (rank - lo);
}

export function quantiles(stats: Stats, qs: number[]): number[] {
  if (stats.count === 0) return qs.map(() => Number.NaN);
  if (stats.values?.length === 1) return qs.map(() => stats.values![0]!);
  if (stats.values) {
    // A typed array sorts numerically without a comparator call per pair.
    const sorted = Float64Array.from(stats.values).sort();
    return qs.map((q) => exactQuantile(sorted, q));
  }
  // The sketch answers within its relative accuracy of a bin's value; the true min/max bound it tighter.
  return qs.map((q) => Math.min(stats.max, Math.max(stats.min, (stats.sketch as DDSketch).getValueAtQuantile(q))));
}

export function summarize(stats: Stats): Summary {
  const [p50, p95, p99] = quantiles(stats, [0.5, 0.95, 0.99]) as [number, number, number];
  return {
    avg: stats.mean,
    min: stats.min,
    max: stats.max,
    stddev: stats.count > 0 ? Math.sqrt(stats.m2 / stats.count) : Number.NaN,
    count: stats.count,
    p50,
    p95,
    p99,
  };
}

function binsOf(store: DDSketch["store"]): SketchBins {
  if (store.count === 0) return { first_key: 0, counts: [] };
  const counts: number[] = [];
  for (let key = store.minKey; key <= store.maxKey; key++) counts.push(store.bins[key - store.offset] ?? 0);
  return { first_key: store.minKey, counts };
}

function fillBins(store: DDSketch["store"], bins: SketchBins): void {
  bins.counts.forEach((count, i) => {
    if (count > 0) store.add(bins.first_key + i, count);
  });
}

/**
 * Plain JSON, no protobuf: DDSketch.toProto needs protobufjs, which sketches-js only lists as a dev
 * dependency, and fromProto drops min/max. The bins, zero count and accuracy rebuild the sketch exactly.
 */
export function statsToJSON(stats: Stats): StatsJSON {
  const sketch = stats.sketch;
  return {
    count: stats.count,
    mean: stats.mean,
    m2: stats.m2,
    min: stats.count > 0 ? stats.min : null,
    max: stats.count > 0 ? stats.max : null,
    values: stats.values ? [...stats.values] : null,
    sketch: sketch
      ? {
          relative_accuracy: sketch.mapping.relativeAccuracy,
          zero_count: sketch.zeroCount,
          positive: binsOf(sketch.store),
          negative: binsOf(sketch.negativeStore),
        }
      : null,
  };
}

export function statsFromJSON(json: StatsJSON): Stats {
  let sketch: DDSketch | null = null;
  if (json.sketch) {
    sketch = new DDSketch({ relativeAccuracy: json.sketch.relative_accuracy });
    fillBins(sketch.store, json.sketch.positive);
    fillBins(sketch.negativeStore, json.sketch.negative);
    sketch.zeroCount = json.sketch.zero_count;
    sketch.count = sketch.store.count + sketch.negativeStore.count + sketch.zeroCount;
  }
  return {
    count: json.count,
    mean: json.mean,
    m2: json.m2,
    min: json.min ?? Infinity,
    max: json.max ?? -Infinity,
    values: json.values ? [...json.values] : null,
    sketch,
  };
}
