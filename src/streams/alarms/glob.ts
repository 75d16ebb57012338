/** Shell-style patterns for asset ids, parameters and alarm types: `*` any run of characters, `?` one; nothing else is special. */
const cache = new Map<string, RegExp>();

export function isGlob(pattern: string): boolean {
  return pattern.includes("*") || pattern.includes("?");
}

export function globToRegExp(pattern: string): RegExp {
  let re = cache.get(pattern);
  if (!re) {
    const body = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
    re = new RegExp(`^${body}$`, "s");
    cache.set(pattern, re);
  }
  return re;
}

export function globMatch(pattern: string, value: string): boolean {
  return isGlob(pattern) ? globToRegExp(pattern).test(value) : pattern === value;
}

/** 2 = literal, 1 = a pattern narrower than everything, 0 = `*` (matches all). For "most specific rule wins". */
export function globRank(pattern: string): number {
  if (!isGlob(pattern)) return 2;
  return /^\*+$/.test(pattern) ? 0 : 1;
}
