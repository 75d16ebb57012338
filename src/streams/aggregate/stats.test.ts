import { describe, expect, test } from "bun:test";
import { addValue, createStats, DEFAULT_STATS_CONFIG, mergeStats, quantiles, statsFromJSON, statsToJSON, summarize, type Stats } from "./stats.ts";

const of = (values: number[], config = DEFAULT_STATS_CONFIG): Stats => {
  const s = createStats();
  for (const v of values) addValue(s, v, config);
  return s;
};

/** Deterministic pseudo-random numbers (mulberry32), so failures reproduce. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function exact(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = q * (sorted.length - 1);
  const lo = Math.floor(rank);
  return (sorted[lo] as number) + ((sorted[Math.min(lo + 1, sorted.length - 1)] as number) - (sorted[lo] as number)) * (rank - lo);
}

describe("summary of small windows is exact", () => {
  const cases: [name: string, values: number[], want: Partial<ReturnType<typeof summarize>>][] = [
    ["one sample", [3.4], { avg: 3.4, min: 3.4, max: 3.4, stddev: 0, count: 1, p50: 3.4, p95: 3.4, p99: 3.4 }],
    ["population stddev", [2, 4, 4, 4, 5, 5, 7, 9], { avg: 5, stddev: 2, count: 8, min: 2, max: 9 }],
    ["interpolated median of an even count", [1, 2, 3, 4], { p50: 2.5 }],
    ["p95/p99 interpolate between ranks", [10, 20, 30, 40, 50], { p50: 30, p95: 48, p99: 49.6 }],
    ["order does not matter", [5, 1, 4, 2, 3], { p50: 3, min: 1, max: 5 }],
    ["negative values", [-3, -1, -2], { avg: -2, p50: -2, min: -3, max: -1 }],
  ];
  test.each(cases)("%s", (_name, values, want) => {
    const got = summarize(of(values));
    for (const [k, v] of Object.entries(want)) expect(got[k as keyof typeof got]).toBeCloseTo(v as number, 10);
  });

  test("1..1000 percentiles are the exact order statistics", () => {
    const values = Array.from({ length: 1000 }, (_, i) => 1000 - i);
    const s = of(values);
    expect(s.sketch).toBeNull();
    expect(quantiles(s, [0.5, 0.95, 0.99])).toEqual([500.5, 950.05, 990.01].map((x) => expect.closeTo(x, 9)) as never);
  });

  test("Welford stays accurate with a large offset", () => {
    const s = of([1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16]);
    expect(summarize(s).stddev).toBeCloseTo(Math.sqrt(22.5), 6);
  });
});

describe("large windows use the sketch within its relative accuracy", () => {
  const distributions: [name: string, draw: (r: () => number) => number][] = [
    ["uniform 2.9..4.2", (r) => 2.9 + 1.3 * r()],
    ["exponential", (r) => -Math.log(1 - r()) * 50],
    ["around zero, both signs", (r) => (r() - 0.3) * 200],
  ];
  test.each(distributions)("%s", (_name, draw) => {
    const r = random(42);
    const values = Array.from({ length: 50_000 }, () => draw(r));
    const s = of(values);
    expect(s.values).toBeNull();
    expect(s.sketch).not.toBeNull();
    const got = quantiles(s, [0.5, 0.95, 0.99]);
    [0.5, 0.95, 0.99].forEach((q, i) => {
      const want = exact(values, q);
      // DDSketch: |estimate − true| ≤ α·|true|; a hair more for the rank convention between neighbours.
      expect(Math.abs((got[i] as number) - want)).toBeLessThanOrEqual(DEFAULT_STATS_CONFIG.sketch_relative_accuracy * Math.abs(want) + 1e-3);
    });
    const sum = summarize(s);
    expect(sum.count).toBe(50_000);
    expect(sum.min).toBe(Math.min(...values));
    expect(sum.max).toBe(Math.max(...values));
  });

  test("switches exactly past the limit", () => {
    const config = { ...DEFAULT_STATS_CONFIG, exact_percentile_limit: 3 };
    expect(of([1, 2, 3], config).sketch).toBeNull();
    expect(of([1, 2, 3, 4], config).values).toBeNull();
  });
});

describe("merge", () => {
  const cases: [name: string, a: number[], b: number[], limit: number][] = [
    ["exact + exact stays exact", [1, 2, 3], [4, 5], 1000],
    ["exact + exact over the limit becomes a sketch", [1, 2, 3], [4, 5], 4],
    ["sketch + exact", Array.from({ length: 20 }, (_, i) => i + 1), [100, 200], 10],
    ["negatives survive a sketch merge", Array.from({ length: 20 }, (_, i) => -i - 1), Array.from({ length: 20 }, (_, i) => -i - 50), 10],
    ["empty side", [], [7, 8], 1000],
  ];
  test.each(cases)("%s", (_name, a, b, limit) => {
    const config = { ...DEFAULT_STATS_CONFIG, exact_percentile_limit: limit };
    const merged = of(a, config);
    mergeStats(merged, of(b, config), config);
    const whole = summarize(of([...a, ...b], config));
    const got = summarize(merged);
    expect(got.count).toBe(whole.count);
    expect(got.avg).toBeCloseTo(whole.avg, 9);
    expect(got.stddev).toBeCloseTo(whole.stddev, 9);
    expect([got.min, got.max]).toEqual([whole.min, whole.max]);
    for (const p of ["p50", "p95", "p99"] as const) {
      expect(Math.abs(got[p] - whole[p])).toBeLessThanOrEqual(0.02 * Math.abs(whole[p]) + 1e-9);
    }
  });
});

describe("JSON round trip", () => {
  const cases: [name: string, values: number[]][] = [
    ["empty", []],
    ["exact", [1.5, -2, 3]],
    ["sketch with zeros and both signs", Array.from({ length: 3000 }, (_, i) => (i % 3 === 0 ? 0 : (i % 2 ? 1 : -1) * i * 0.37))],
  ];
  test.each(cases)("%s", (_name, values) => {
    const s = of(values);
    const json = JSON.parse(JSON.stringify(statsToJSON(s)));
    const back = statsFromJSON(json);
    expect(statsToJSON(back)).toEqual(statsToJSON(s));
    if (values.length > 0) expect(summarize(back)).toEqual(summarize(s));
    // Still live: adding after a restore behaves as without it.
    addValue(back, 10);
    addValue(s, 10);
    expect(summarize(back)).toEqual(summarize(s));
  });
});
