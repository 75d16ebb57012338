/**
 * Alert router: alarm events (alarms.clean) in, delivery jobs out. Pure and driven by `now`: the glue
 * calls `routeAlarm` per record, `tickRouter` on a timer (`nextRouterDeadline` says when), and
 * `recordOutcome` with what the sender reports. The state is JSON (whole snapshot or per-key changelog).
 *
 * What it does with an alarm event:
 * - raised (ACTIVE): the rules whose condition matches engage their actions. A raise within
 *   `dedup_window` of the last one sent for the same (asset_id, type) is *held*, not dropped: it is sent
 *   when the window ends if the alarm is still ACTIVE, and never if it was acked, suppressed or cleared
 *   first. Escalation timers start either way.
 * - acknowledged / suppressed: escalation and any hold are cancelled; engaged actions that listen
 *   (`notify_on`) are told (PagerDuty: acknowledge).
 * - unsuppressed back to ACTIVE: re-announced (dedup applies) and escalation restarts from now;
 *   back to ACKNOWLEDGED: listeners told.
 * - cleared: escalation cancelled; engaged listeners told (PagerDuty: resolve, same dedup_key); forgotten.
 * - escalated: ignored (the router's own output coming back round).
 * Escalation: a rule's levels fire at `after` since the raise while the alarm is still ACTIVE (not acked,
 * suppressed or cleared); each firing sends the level's actions and emits an `escalated` alarm event
 * for alarms.raw. E-mail actions with `digest_interval` collect into one buffer per (recipient set,
 * interval), flushed at UTC-aligned interval boundaries.
 */
import { createHash } from "node:crypto";
import type { AlarmEvent, AlarmEventName } from "../alarms/lifecycle.ts";
import { globMatch } from "../alarms/glob.ts";
import type { Action, RouteRule, RoutingConfig } from "./config.ts";

export const ROUTER_VERSION = 1;
/** Finished delivery ids are remembered this long, so a replayed event does not send again. */
export const DONE_RETENTION_MS = 24 * 3_600_000;

export type DeliveryOutcome =
  | { status: "delivered"; detail?: string }
  | { status: "retry"; after_ms: number; reason: string }
  | { status: "failed"; reason: string };

interface DeliveryCommon {
  /** Deterministic: the same event routed again (replay after restart) gives the same id. */
  delivery_id: string;
  /** Where in the config: `rules[0].actions[1]` or `rules[0].escalation[0].actions[1]`. */
  action_ref: string;
  /** Resolved from the current config (holds secrets: never persist it, persist `action_ref`). */
  action: Action;
  /** SMS: the phone number (one delivery per number). Otherwise null. */
  target: string | null;
  /** 1 for the first try. */
  attempt: number;
  created_at: string;
}
export type AlarmDelivery = DeliveryCommon & { kind: "alarm"; event: AlarmEventName; escalation_level: number | null; alarm: AlarmEvent };
export type DigestDelivery = DeliveryCommon & { kind: "digest"; alarms: AlarmEvent[]; window_start: string; window_end: string };
export type Delivery = AlarmDelivery | DigestDelivery;

/** A delivery given up on: for a DLQ topic. */
export interface DeadLetter {
  delivery_id: string;
  action_ref: string;
  action_type: Action["type"] | null;
  target: string | null;
  kind: Delivery["kind"];
  event: AlarmEventName | "digest";
  alarm_ids: string[];
  attempts: number;
  reason: string;
  failed_at: string;
}

export interface RouterOutput {
  deliveries: Delivery[];
  /** `escalated` events, for alarms.raw (keyed by alarm_id). */
  events: AlarmEvent[];
  dead: DeadLetter[];
}

interface EscalationTimer {
  rule: number;
  /** Index of the next level to fire. */
  next: number;
  /** Time the levels' `after` counts from. */
  base: number;
  due_at: number;
}

interface Tracked {
  alarm: AlarmEvent;
  /** Rules matched at the raise (indices into config.rules). */
  rules: number[];
  /** Action refs engaged so far (base actions once sent, plus fired escalation levels). */
  engaged: string[];
  /** Dedup hold: send the raise at this time if still ACTIVE. */
  held_until: number | null;
  escalation: EscalationTimer[];
}

type PendingBody = { kind: "alarm"; event: AlarmEventName; escalation_level: number | null; alarm: AlarmEvent } | { kind: "digest"; alarms: AlarmEvent[]; window_start: string; window_end: string };
type Pending = PendingBody & {
  delivery_id: string;
  action_ref: string;
  target: string | null;
  attempt: number;
  created_at: string;
  /** null = handed out, waiting for its outcome; a time = retry due then. */
  due_at: number | null;
};

interface DigestBuffer {
  action_ref: string;
  window_start: number;
  window_end: number;
  alarms: AlarmEvent[];
}

/** JSON as it stands; no secrets (actions are referred to by `action_ref`). */
export interface RouterState {
  version: typeof ROUTER_VERSION;
  tracked: Record<string, Tracked>;
  /** `asset_id|type` → time the last raise for it was sent. */
  dedup: Record<string, number>;
  pending: Record<string, Pending>;
  digests: Record<string, DigestBuffer>;
  /** Finished (delivered or failed) delivery ids → when. */
  done: Record<string, number>;
}

export function createRouterState(): RouterState {
  return { version: ROUTER_VERSION, tracked: {}, dedup: {}, pending: {}, digests: {}, done: {} };
}

const iso = (ms: number) => new Date(ms).toISOString();
const emptyOutput = (): RouterOutput => ({ deliveries: [], events: [], dead: [] });
const byKey = <T>(rec: Record<string, T>) => Object.keys(rec).sort().map((k) => [k, rec[k]!] as const);

export function deliveryIdFor(...parts: (string | number | null)[]): string {
  return createHash("sha256").update(parts.map((p) => String(p)).join("\u0000")).digest("hex").slice(0, 32);
}

// ---------------------------------------------------------------------------------------------
// Matching and action refs

export function ruleMatches(rule: Pick<RouteRule, "condition">, alarm: Pick<AlarmEvent, "severity" | "asset_id" | "type" | "parameter">): boolean {
  const c = rule.condition;
  const any = (patterns: string[] | null, value: string | undefined) => patterns === null || (value !== undefined && patterns.some((p) => globMatch(p, value)));
  return (c.severity === null || c.severity.includes(alarm.severity)) && any(c.asset_id, alarm.asset_id) && any(c.type, alarm.type) && any(c.parameter, alarm.parameter);
}

export function matchingRules(config: RoutingConfig, alarm: Pick<AlarmEvent, "severity" | "asset_id" | "type" | "parameter">): number[] {
  return config.rules.flatMap((r, i) => (ruleMatches(r, alarm) ? [i] : []));
}

const REF = /^rules\[(\d+)\](?:\.escalation\[(\d+)\])?\.actions\[(\d+)\]$/;

/** The action an `action_ref` names in `config`, or undefined when the config no longer has it. */
export function actionFor(config: RoutingConfig, ref: string): Action | undefined {
  const m = REF.exec(ref);
  if (!m) return undefined;
  const rule = config.rules[Number(m[1])];
  if (!rule) return undefined;
  const actions = m[2] === undefined ? rule.actions : rule.escalation[Number(m[2])]?.actions;
  return actions?.[Number(m[3])];
}

const digestKey = (a: Extract<Action, { type: "email" }>) => `${[...a.recipients].map((r) => r.toLowerCase()).sort().join(",")}|${a.digest_interval_ms}`;

// ---------------------------------------------------------------------------------------------
// Emitting

function materialize(config: RoutingConfig, p: Pending): Delivery | undefined {
  const action = actionFor(config, p.action_ref);
  if (!action) return undefined;
  const { due_at: _, ...rest } = p;
  return { ...rest, action } as Delivery;
}

function issue(state: RouterState, config: RoutingConfig, p: Pending, out: RouterOutput): void {
  if (state.pending[p.delivery_id] || state.done[p.delivery_id] !== undefined) return; // already in hand or done (replay)
  const d = materialize(config, p);
  if (!d) return;
  state.pending[p.delivery_id] = p;
  out.deliveries.push(d);
}

/** Sends one alarm event to one action (expanding SMS per number, e-mail digests into their buffer). */
function sendTo(state: RouterState, config: RoutingConfig, ref: string, action: Action, alarm: AlarmEvent, event: AlarmEventName, level: number | null, now: number, out: RouterOutput): void {
  if (action.type === "email" && action.digest_interval_ms !== null) {
    addToDigest(state, config, ref, action, alarm, now, out);
    return;
  }
  const targets: (string | null)[] = action.type === "sms" ? action.phone_numbers : [null];
  for (const target of targets) {
    issue(
      state,
      config,
      {
        kind: "alarm",
        event,
        escalation_level: level,
        alarm,
        delivery_id: deliveryIdFor("alarm", alarm.alarm_id, alarm.sequence, event, level, ref, target),
        action_ref: ref,
        target,
        attempt: 1,
        created_at: iso(now),
        due_at: null,
      },
      out,
    );
  }
}

function addToDigest(state: RouterState, config: RoutingConfig, ref: string, action: Extract<Action, { type: "email" }>, alarm: AlarmEvent, now: number, out: RouterOutput): void {
  const key = digestKey(action);
  const existing = state.digests[key];
  if (existing && existing.window_end <= now) flushDigest(state, config, key, out);
  const interval = action.digest_interval_ms!;
  const buffer = (state.digests[key] ??= { action_ref: ref, window_start: Math.floor(now / interval) * interval, window_end: Math.floor(now / interval) * interval + interval, alarms: [] });
  buffer.alarms.push(alarm);
}

function flushDigest(state: RouterState, config: RoutingConfig, key: string, out: RouterOutput): void {
  const b = state.digests[key]!;
  delete state.digests[key];
  if (b.alarms.length === 0) return;
  issue(
    state,
    config,
    {
      kind: "digest",
      alarms: b.alarms,
      window_start: iso(b.window_start),
      window_end: iso(b.window_end),
      delivery_id: deliveryIdFor("digest", key, b.window_start),
      action_ref: b.action_ref,
      target: null,
      attempt: 1,
      created_at: iso(b.window_end),
      due_at: null,
    },
    out,
  );
}

const dedupKey = (a: Pick<AlarmEvent, "asset_id" | "type">) => `${a.asset_id}|${a.type}`;

/** The raise (or re-announcement) to the matched rules' actions, now or held by dedup. */
function announce(state: RouterState, config: RoutingConfig, t: Tracked, now: number, out: RouterOutput): void {
  const key = dedupKey(t.alarm);
  const last = state.dedup[key];
  if (last !== undefined && now - last < config.dedup_window_ms) {
    t.held_until = last + config.dedup_window_ms;
    return;
  }
  t.held_until = null;
  state.dedup[key] = now;
  for (const i of t.rules) {
    const rule = config.rules[i];
    if (!rule) continue;
    rule.actions.forEach((action, j) => {
      const ref = `rules[${i}].actions[${j}]`;
      if (!t.engaged.includes(ref)) t.engaged.push(ref);
      if (action.notify_on.includes("raised")) sendTo(state, config, ref, action, t.alarm, t.alarm.event, null, now, out);
    });
  }
}

/** A transition after the raise, to the engaged actions that listen for it. */
function tell(state: RouterState, config: RoutingConfig, t: Tracked, event: AlarmEventName, now: number, out: RouterOutput): void {
  for (const ref of t.engaged) {
    const action = actionFor(config, ref);
    if (action && (action.notify_on as string[]).includes(event)) sendTo(state, config, ref, action, t.alarm, event, null, now, out);
  }
}

function startEscalation(config: RoutingConfig, t: Tracked, base: number, fired: Map<number, number> = new Map()): void {
  t.escalation = [];
  for (const i of t.rules) {
    const levels = config.rules[i]?.escalation ?? [];
    const next = fired.get(i) ?? 0;
    if (next < levels.length) t.escalation.push({ rule: i, next, base, due_at: base + levels[next]!.after_ms });
  }
}

// ---------------------------------------------------------------------------------------------
// Entry points

/** One alarm event from alarms.clean. Stale or repeated events (sequence not newer) do nothing. */
export function routeAlarm(state: RouterState, config: RoutingConfig, event: AlarmEvent, now: number): RouterOutput {
  const out = emptyOutput();
  if (event.event === "escalated") return out;
  const id = event.alarm_id;
  const t = state.tracked[id];
  if (t && event.sequence <= t.alarm.sequence) return out;
  switch (event.event) {
    case "raised": {
      if (t) return out;
      const rules = matchingRules(config, event);
      if (rules.length === 0) return out;
      const tracked: Tracked = { alarm: event, rules, engaged: [], held_until: null, escalation: [] };
      state.tracked[id] = tracked;
      if (event.state !== "ACTIVE") return out;
      announce(state, config, tracked, now, out);
      startEscalation(config, tracked, now);
      return out;
    }
    case "acknowledged":
    case "suppressed": {
      if (!t) return out;
      t.alarm = event;
      t.held_until = null; // a held raise is never sent now: someone is on it
      t.escalation = []; // how far it got stays in `engaged`, so an unsuppress does not page the same levels again
      tell(state, config, t, event.event, now, out);
      return out;
    }
    case "unsuppressed": {
      if (!t) return out;
      t.alarm = event;
      tell(state, config, t, "unsuppressed", now, out);
      if (event.state === "ACTIVE") {
        if (t.engaged.length === 0) announce(state, config, t, now, out);
        startEscalation(config, t, now, firedLevels(t));
      }
      return out;
    }
    case "cleared": {
      if (!t) return out;
      t.alarm = event;
      tell(state, config, t, "cleared", now, out);
      delete state.tracked[id];
      return out;
    }
  }
}

/** How many levels of each rule have fired, from the engaged escalation refs. */
function firedLevels(t: Tracked): Map<number, number> {
  const fired = new Map<number, number>();
  for (const ref of t.engaged) {
    const m = REF.exec(ref);
    if (m && m[2] !== undefined) fired.set(Number(m[1]), Math.max(fired.get(Number(m[1])) ?? 0, Number(m[2]) + 1));
  }
  return fired;
}

/**
 * Timers due by `now`: dedup holds ending, escalation levels, digest windows closing, retries.
 * Also forgets dedup entries and finished ids past their time. Safe to call at any rate.
 */
export function tickRouter(state: RouterState, config: RoutingConfig, now: number): RouterOutput {
  const out = emptyOutput();
  for (const [id, t] of byKey(state.tracked)) {
    if (t.alarm.state !== "ACTIVE") continue;
    if (t.held_until !== null && t.held_until <= now) announce(state, config, t, now, out);
    for (const timer of [...t.escalation].sort((a, b) => a.due_at - b.due_at || a.rule - b.rule)) {
      const levels = config.rules[timer.rule]?.escalation ?? [];
      while (timer.next < levels.length && timer.due_at <= now) {
        const level = timer.next;
        const at = timer.due_at;
        levels[level]!.actions.forEach((action, j) => {
          const ref = `rules[${timer.rule}].escalation[${level}].actions[${j}]`;
          if (!t.engaged.includes(ref)) t.engaged.push(ref);
          sendTo(state, config, ref, action, t.alarm, "escalated", level + 1, now, out);
        });
        out.events.push({ ...t.alarm, event: "escalated", event_at: iso(at), event_by: null, escalation_level: level + 1 });
        timer.next++;
        if (timer.next < levels.length) timer.due_at = timer.base + levels[timer.next]!.after_ms;
      }
    }
    t.escalation = t.escalation.filter((e) => e.next < (config.rules[e.rule]?.escalation.length ?? 0));
    state.tracked[id] = t;
  }
  for (const [key, b] of byKey(state.digests)) if (b.window_end <= now) flushDigest(state, config, key, out);
  for (const [id, p] of byKey(state.pending)) {
    if (p.due_at === null || p.due_at > now) continue;
    const d = materialize(config, p);
    if (!d) {
      delete state.pending[id];
      state.done[id] = now;
      out.dead.push(deadLetter(p, null, "the action is no longer in the routing config", now));
      continue;
    }
    p.due_at = null;
    out.deliveries.push(d);
  }
  for (const [key, at] of byKey(state.dedup)) if (now - at >= config.dedup_window_ms) delete state.dedup[key];
  for (const [id, at] of byKey(state.done)) if (now - at >= DONE_RETENTION_MS) delete state.done[id];
  return out;
}

function deadLetter(p: Pending, type: Action["type"] | null, reason: string, now: number): DeadLetter {
  return {
    delivery_id: p.delivery_id,
    action_ref: p.action_ref,
    action_type: type,
    target: p.target,
    kind: p.kind,
    event: p.kind === "alarm" ? p.event : "digest",
    alarm_ids: p.kind === "alarm" ? [p.alarm.alarm_id] : p.alarms.map((a) => a.alarm_id),
    attempts: p.attempt,
    reason,
    failed_at: iso(now),
  };
}

/** What the sender made of a delivery: done, retry later (`tickRouter` hands it out again), or dead-lettered. */
export function recordOutcome(state: RouterState, config: RoutingConfig, delivery_id: string, outcome: DeliveryOutcome, now: number): RouterOutput {
  const out = emptyOutput();
  const p = state.pending[delivery_id];
  if (!p) return out;
  switch (outcome.status) {
    case "delivered":
      delete state.pending[delivery_id];
      state.done[delivery_id] = now;
      break;
    case "retry":
      p.attempt += 1;
      p.due_at = now + Math.max(0, outcome.after_ms);
      break;
    case "failed":
      delete state.pending[delivery_id];
      state.done[delivery_id] = now;
      out.dead.push(deadLetter(p, actionFor(config, p.action_ref)?.type ?? null, outcome.reason, now));
      break;
  }
  return out;
}

/** Deliveries handed out and not yet reported on: after a restart, hand these to the sender again. */
export function pendingDeliveries(state: RouterState, config: RoutingConfig): Delivery[] {
  return byKey(state.pending)
    .filter(([, p]) => p.due_at === null)
    .map(([, p]) => materialize(config, p))
    .filter((d): d is Delivery => d !== undefined);
}

/** The earliest time `tickRouter` has something to do; null when nothing is scheduled. */
export function nextRouterDeadline(state: RouterState): number | null {
  let next = Number.POSITIVE_INFINITY;
  for (const t of Object.values(state.tracked)) {
    if (t.alarm.state !== "ACTIVE") continue;
    if (t.held_until !== null) next = Math.min(next, t.held_until);
    for (const e of t.escalation) next = Math.min(next, e.due_at);
  }
  for (const b of Object.values(state.digests)) next = Math.min(next, b.window_end);
  for (const p of Object.values(state.pending)) if (p.due_at !== null) next = Math.min(next, p.due_at);
  return Number.isFinite(next) ? next : null;
}

// ---------------------------------------------------------------------------------------------
// Persistence

export function snapshotRouter(state: RouterState): RouterState {
  return structuredClone(state);
}

export function restoreRouter(snapshot: unknown): RouterState {
  const s = snapshot as Partial<RouterState> | null;
  if (!s || s.version !== ROUTER_VERSION) throw new Error(`router snapshot version ${JSON.stringify(s?.version)} is not ${ROUTER_VERSION}; refusing to misread it`);
  const state = createRouterState();
  for (const map of MAPS) Object.assign(state[map], structuredClone(s[map] ?? {}));
  return state;
}

const MAPS = ["tracked", "dedup", "pending", "digests", "done"] as const;
type MapName = (typeof MAPS)[number];

/** What each key held when last written to the changelog: kept beside the state, never in it. */
const written = new WeakMap<RouterState, Map<string, string>>();

/**
 * Per-key changelog records for a compacted topic: keys `<map>:<key>` (`tracked:<alarm_id>`,
 * `dedup:<asset_id|type>`, `pending:<delivery_id>`, `digests:<recipients|interval>`, `done:<delivery_id>`),
 * each value the entry as JSON, null for a removed one. Only entries changed since the last call.
 */
export function takeRouterChanges(state: RouterState): { key: string; value: string | null }[] {
  let last = written.get(state);
  if (!last) written.set(state, (last = new Map()));
  const now = new Map<string, string>();
  for (const map of MAPS) for (const [k, v] of byKey(state[map] as Record<string, unknown>)) now.set(`${map}:${k}`, JSON.stringify(v));
  const changes: { key: string; value: string | null }[] = [];
  for (const [key, value] of now) if (last.get(key) !== value) changes.push({ key, value });
  for (const key of last.keys()) if (!now.has(key)) changes.push({ key, value: null });
  written.set(state, now);
  return changes.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

export function restoreRouterFromChanges(records: Iterable<{ key: string; value: string | null }>): RouterState {
  const state = createRouterState();
  for (const { key, value } of records) {
    const colon = key.indexOf(":");
    const map = key.slice(0, colon) as MapName;
    if (!MAPS.includes(map)) throw new Error(`router changelog key ${JSON.stringify(key)} names no part of the router state`);
    const k = key.slice(colon + 1);
    const target = state[map] as Record<string, unknown>;
    if (value === null) delete target[k];
    else target[k] = JSON.parse(value);
  }
  takeRouterChanges(state); // what was restored counts as written
  return state;
}
