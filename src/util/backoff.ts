/** Capped exponential backoff: the n-th consecutive failure waits base·2^(n-1), at most `max`. */
export function backoffDelay(failures: number, base: number, max: number): number {
  return Math.min(max, base * 2 ** Math.max(0, failures - 1));
}
