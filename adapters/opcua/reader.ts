/**
 * The adapter's main loop: one session to one server, kept alive across server restarts.
 *
 * Connect → read the NamespaceArray → subscribe (monitored items created batch_size at a
 * time) or poll (batched Reads) → on any sign of loss (channel closed, session closed,
 * subscription terminated, no publish response for too long) tear everything down, report the
 * outage once, back off, and start again with a new session. Node ids are resolved again on
 * each session; nodes the server does not know are retried on their own, so one bad node id
 * never stops the others.
 */
import {
  AttributeIds,
  DataChangeFilter,
  DataChangeNotification,
  DataChangeTrigger,
  DeadbandType,
  MonitoringMode,
  StatusCodes,
  TimestampsToReturn,
  type ClientSubscription,
  type DataValue,
  type MonitoredItemCreateRequestOptions,
  type NodeId,
  type NotificationMessage,
} from "node-opcua-client";
import type { AdapterContext, ErrorType, Sample } from "../../src/registry.ts";
import { backoffDelay } from "../../src/util/backoff.ts";
import { classify, closeSession, openSession, OpcuaError, type ClientSession, type OpenSession } from "./client.ts";
import { NamespaceMap, parseNodeId, type ParsedNodeId } from "./nodes.ts";
import type { NodeConfig, OpcuaConfig } from "./schema.ts";
import { DuplicateFilter, sampleOf, statusText, type NodeTarget } from "./values.ts";
import { Sleeper } from "../../src/util/sleeper.ts";

/** Statuses that say "this node id is wrong here", as opposed to "its value is bad". */
const NODE_ID_PROBLEMS = new Set<number>([
  StatusCodes.BadNodeIdUnknown.value,
  StatusCodes.BadNodeIdInvalid.value,
  StatusCodes.BadAttributeIdInvalid.value,
  StatusCodes.BadNotReadable.value,
  StatusCodes.BadUserAccessDenied.value,
  StatusCodes.BadMonitoredItemFilterUnsupported.value,
  StatusCodes.BadFilterNotAllowed.value,
  StatusCodes.BadDeadbandFilterInvalid.value,
  StatusCodes.BadMonitoredItemFilterInvalid.value,
]);

/** How often the loop wakes while subscribed: heartbeat, watchdog, retries of unknown nodes. */
const TICK_MS = 500;
/** A failing node keeps the adapter degraded: its error is recorded again this often. */
const NODE_ERROR_REPEAT_MS = 30_000;
/** Longest stop() waits for the loop; the runtime's shutdown budget is 10 s. */
const STOP_WAIT_MS = 6000;
const NODE_LOG_BUDGET = 20;
/**
 * Samples between forced garbage collections, at most one per GC_MIN_GAP_MS. At 10,000
 * notifications/s JSC lets the adapter's RSS swing between 250 and 430 MB before it collects;
 * a full collection every 2,000 samples (with publishes of at most 2,000 notifications, the
 * default) keeps it at 180-240 MB for about 5 % of a core (bench/opcua.ts).
 */
const GC_EVERY_SAMPLES = 2000;
const GC_MIN_GAP_MS = 200;
const NODE_LOG_WINDOW_MS = 10_000;

interface NodeState {
  index: number;
  config: NodeConfig;
  target: NodeTarget;
  parsed: ParsedNodeId | undefined;
  /** Malformed in the config: reported once, never sent to the server. */
  invalid: string | undefined;
  /** Resolved for the current session. */
  nodeId: NodeId | undefined;
  handle: number;
  monitoredItemId: number | undefined;
  /** The node's own failure (unknown id, rejected filter), reported BAD once until it recovers. */
  failing: string | undefined;
  retryAt: number;
}

/** The private side of ClientSubscription that lets us own the monitored items (see #register). */
interface SubscriptionInternals {
  _add_monitored_item(clientHandle: number, item: unknown): void;
  _removeMonitoredItem(clientHandle: number): void;
}

class Lost extends Error {}

export class OpcuaReader {
  readonly #config: OpcuaConfig;
  readonly #context: AdapterContext;
  readonly #nodes: NodeState[];
  readonly #byHandle = new Map<number, NodeState>();
  readonly #duplicates: DuplicateFilter;
  readonly #namespaces = new NamespaceMap();
  readonly #endpoint: string;
  #nextHandle = 1;
  #running = false;
  #loop: Promise<void> | undefined;
  readonly #sleeper = new Sleeper();
  #abortSession: ((reason: Error) => void) | undefined;
  /** Consecutive failed sessions; 0 while connected. */
  #failures = 0;
  #downSince: number | undefined;
  #lastNodeErrorAt = 0;
  #lastPublishAt = 0;
  /** Per-node log lines left in the current 10 s window; a rebuilt address space must not flood the log. */
  #nodeLogBudget = NODE_LOG_BUDGET;
  #nodeLogWindow = 0;
  #nodeLogSuppressed = 0;
  #sinceGc = 0;
  #lastGcAt = 0;

  constructor(config: OpcuaConfig, context: AdapterContext) {
    this.#config = config;
    this.#context = context;
    this.#endpoint = config.source.endpoint;
    this.#duplicates = new DuplicateFilter(config.mapping.nodes.length);
    this.#nodes = config.mapping.nodes.map((node, index) => {
      const parsed = parseNodeId(node.node_id);
      return {
        index,
        config: node,
        target: { assetId: node.asset_id ?? config.output.asset_id, param: node.param, ...(node.unit === undefined ? {} : { unit: node.unit }) },
        parsed: parsed instanceof Error ? undefined : parsed,
        invalid: parsed instanceof Error ? parsed.message : undefined,
        nodeId: undefined,
        handle: 0,
        monitoredItemId: undefined,
        failing: undefined,
        retryAt: 0,
      };
    });
  }

  /** Samples dropped as repeats of one already delivered. */
  get duplicatesDropped(): number {
    return this.#duplicates.dropped;
  }

  start(): void {
    this.#running = true;
    this.#loop = this.#run();
  }

  /** Resolves once the session is closed; every sample received before has been emitted. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#sleeper.wake();
    this.#abortSession?.(new Lost("stopping"));
    // A connect in flight has nothing to emit; it may take up to 2 x timeout_ms, past the shutdown budget.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.#loop, new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_WAIT_MS)))]);
    clearTimeout(timer);
  }

  /** One session, one read of every node: the connection test. Throws when the server cannot be reached. */
  async readOnce(): Promise<Sample[]> {
    this.#running = true;
    const samples: Sample[] = [];
    this.#reportInvalid(samples);
    const open = await openSession(this.#config.source);
    try {
      await this.#resolveAll(open.session, samples);
      await this.#pollCycle(open.session, samples, false);
    } finally {
      this.#running = false;
      await closeSession(open);
    }
    return samples;
  }

  // ---- main loop ----

  async #run(): Promise<void> {
    const first: Sample[] = [];
    this.#reportInvalid(first);
    this.#context.emit(first);
    while (this.#running) {
      this.#context.heartbeat();
      let open: OpenSession | undefined;
      try {
        open = await openSession(this.#config.source);
        if (!this.#running) break;
        await this.#serve(open);
      } catch (error) {
        if (this.#running && !(error instanceof Lost && error.message === "stopping")) this.#outage(error);
      } finally {
        this.#abortSession = undefined;
        this.#detachAll();
        await closeSession(open);
      }
      if (!this.#running) break;
      const { backoff_ms } = this.#config.retry_policy;
      await this.#sleep(backoffDelay(Math.max(1, this.#failures), backoff_ms, Math.max(backoff_ms, this.#config.source.max_reconnect_delay_ms)));
    }
  }

  /** Runs one session until it is lost or the adapter stops; throws the reason. */
  async #serve(open: OpenSession): Promise<void> {
    const lost = new Promise<never>((_, reject) => {
      this.#abortSession = reject;
      const fail = (what: string) => () => reject(new OpcuaError("connection", what));
      open.client.on("connection_lost", fail("connection to the server lost"));
      open.client.on("close", fail("connection closed"));
      open.session.on("session_closed", (status) => reject(new OpcuaError("connection", `session closed by the server (${status?.toString()})`)));
      open.session.on("keepalive_failure", fail("session keep-alive failed"));
    });
    lost.catch(() => undefined);
    const race = <T>(work: Promise<T>) => Promise.race([work, lost]);

    const samples: Sample[] = [];
    await race(this.#resolveAll(open.session, samples));
    if (this.#config.source.mode === "polling") {
      this.#recovered();
      this.#context.emit(samples);
      await race(this.#pollLoop(open.session));
      return;
    }
    const subscription = await race(this.#subscribe(open.session));
    subscription.on("terminated", () => this.#abortSession?.(new OpcuaError("connection", "subscription terminated by the server")));
    subscription.on("status_changed", (status) => {
      if (status.isNotGood()) this.#abortSession?.(new OpcuaError("protocol", `subscription status ${status.toString()}`));
    });
    subscription.on("internal_error", (error) => this.#abortSession?.(new OpcuaError("protocol", `subscription: ${error.message}`)));
    subscription.on("raw_notification", (message: NotificationMessage) => this.#onNotification(message));
    this.#lastPublishAt = Date.now();
    await race(this.#createItems(open.session, subscription, this.#nodes.filter((n) => n.nodeId !== undefined), samples));
    this.#recovered();
    this.#context.emit(samples);
    await race(this.#watch(open.session, subscription));
  }

  // ---- outage bookkeeping ----

  /** A failed or lost session: counted each time, logged and reported BAD once per outage. */
  #outage(raw: unknown): void {
    const error = classify(raw, this.#config.source);
    this.#failures++;
    this.#context.recordError(error.type, this.#endpoint, error);
    if (this.#downSince !== undefined) return;
    this.#downSince = Date.now();
    this.#context.log.warn({ endpoint: this.#endpoint, reason: error.message, error_type: error.type }, "OPC UA server unreachable; reconnecting");
    const at = new Date();
    const samples = this.#nodes
      .filter((n) => n.invalid === undefined && n.failing === undefined)
      .map((n) => this.#badSample(n, at, `${this.#endpoint}: ${error.message}`));
    this.#context.emit(samples);
  }

  #recovered(): void {
    if (this.#downSince !== undefined) {
      this.#context.log.info({ endpoint: this.#endpoint, outage_ms: Date.now() - this.#downSince, attempts: this.#failures }, "OPC UA session re-established; delivering again");
    } else if (this.#failures === 0) {
      this.#context.log.info({ endpoint: this.#endpoint, mode: this.#config.source.mode, nodes: this.#nodes.length }, "OPC UA session established");
    }
    this.#downSince = undefined;
    this.#failures = 0;
  }

  #badSample(node: NodeState, at: Date, error: string): Sample {
    return {
      asset_id: node.target.assetId,
      parameter: node.target.param,
      ...(node.target.unit === undefined ? {} : { unit: node.target.unit }),
      value: null,
      quality: "BAD",
      device_time: at,
      time_source: "gateway",
      error,
    };
  }

  #reportInvalid(samples: Sample[]): void {
    const invalid = this.#nodes.filter((n) => n.invalid !== undefined);
    if (invalid.length === 0) return;
    const at = new Date();
    for (const node of invalid) {
      this.#context.log.error({ node: node.config.node_id, param: node.config.param, path: `mapping.nodes[${node.index}].node_id` }, node.invalid!);
      samples.push(this.#badSample(node, at, node.invalid!));
    }
    this.#recordNodeErrors(true);
  }

  /** A node of its own failing: BAD once, a log line, retried later. */
  #nodeFailed(node: NodeState, reason: string, samples: Sample[]): void {
    node.retryAt = Date.now() + this.#config.source.retry_unknown_nodes_ms;
    if (node.failing !== undefined) return;
    node.failing = reason;
    if (this.#mayLogNode()) this.#context.log.warn({ node: node.config.node_id, param: node.config.param, reason }, "OPC UA node failing; others continue");
    samples.push(this.#badSample(node, new Date(), `${node.config.node_id}: ${reason}`));
    this.#recordNodeErrors(Date.now() - this.#lastNodeErrorAt > 1000);
  }

  #mayLogNode(): boolean {
    const now = Date.now();
    if (now - this.#nodeLogWindow > NODE_LOG_WINDOW_MS) {
      if (this.#nodeLogSuppressed > 0) this.#context.log.warn({ suppressed: this.#nodeLogSuppressed }, "OPC UA node state changes not logged one by one");
      this.#nodeLogWindow = now;
      this.#nodeLogBudget = NODE_LOG_BUDGET;
      this.#nodeLogSuppressed = 0;
    }
    if (this.#nodeLogBudget > 0) {
      this.#nodeLogBudget--;
      return true;
    }
    this.#nodeLogSuppressed++;
    return false;
  }

  #nodeRecovered(node: NodeState): void {
    if (node.failing === undefined) return;
    if (this.#mayLogNode()) this.#context.log.info({ node: node.config.node_id, param: node.config.param }, "OPC UA node delivering again");
    node.failing = undefined;
  }

  /** Failing nodes keep health degraded: their error is recorded again every 30 s, summed up. */
  #recordNodeErrors(force = false): void {
    const now = Date.now();
    if (!force && now - this.#lastNodeErrorAt < NODE_ERROR_REPEAT_MS) return;
    const invalid = this.#nodes.filter((n) => n.invalid !== undefined);
    const failing = this.#nodes.filter((n) => n.failing !== undefined);
    if (invalid.length + failing.length === 0) return;
    this.#lastNodeErrorAt = now;
    const list = (nodes: NodeState[]) => nodes.slice(0, 5).map((n) => n.config.node_id).join(", ") + (nodes.length > 5 ? ", ..." : "");
    if (invalid.length > 0) this.#context.recordError("config", this.#endpoint, new Error(`${invalid.length} malformed node id(s): ${list(invalid)}`));
    if (failing.length > 0) this.#context.recordError("protocol", this.#endpoint, new Error(`${failing.length} node(s) failing: ${list(failing)}`));
  }

  // ---- node ids ----

  async #readNamespaces(session: ClientSession): Promise<void> {
    const [value] = await session.read([{ nodeId: "i=2255", attributeId: AttributeIds.Value }]);
    const array = value?.value?.value;
    if (!Array.isArray(array)) throw new OpcuaError("protocol", `cannot read the server's NamespaceArray (${value?.statusCode.toString()})`);
    for (const move of this.#namespaces.update(array as string[])) {
      this.#context.log.warn(move, "OPC UA namespace moved on the server; node ids follow its URI");
    }
  }

  async #resolveAll(session: ClientSession, samples: Sample[]): Promise<void> {
    await this.#readNamespaces(session);
    for (const node of this.#nodes) this.#resolve(node, samples);
  }

  #resolve(node: NodeState, samples: Sample[]): boolean {
    node.nodeId = undefined;
    if (!node.parsed) return false;
    const resolution = this.#namespaces.resolve(node.parsed);
    if ("unknown" in resolution) {
      this.#nodeFailed(node, `BadNodeIdUnknown: ${resolution.unknown}`, samples);
      return false;
    }
    node.nodeId = resolution.nodeId;
    return true;
  }

  // ---- subscription mode ----

  async #subscribe(session: ClientSession): Promise<ClientSubscription> {
    const s = this.#config.source.subscription;
    return session.createSubscription2({
      requestedPublishingInterval: s.publishing_interval_ms,
      requestedMaxKeepAliveCount: s.keepalive_count,
      requestedLifetimeCount: Math.max(s.lifetime_count, 3 * s.keepalive_count),
      maxNotificationsPerPublish: s.max_notifications_per_publish,
      publishingEnabled: true,
      priority: 10,
    });
  }

  #monitoringRequest(node: NodeState): MonitoredItemCreateRequestOptions {
    const { config } = node;
    const deadband = config.deadband;
    return {
      itemToMonitor: { nodeId: node.nodeId!, attributeId: AttributeIds.Value },
      monitoringMode: MonitoringMode.Reporting,
      requestedParameters: {
        clientHandle: node.handle,
        samplingInterval: config.sampling_interval_ms ?? this.#config.source.subscription.publishing_interval_ms,
        queueSize: config.queue_size,
        discardOldest: config.discard_oldest,
        ...(deadband && {
          filter: new DataChangeFilter({
            trigger: DataChangeTrigger.StatusValue,
            deadbandType: deadband.type === "absolute" ? DeadbandType.Absolute : DeadbandType.Percent,
            deadbandValue: deadband.value,
          }),
        }),
      },
    };
  }

  /**
   * ClientSubscription dispatches notifications to the monitored items it knows by client
   * handle and warns about others. We create the items with our own requests (each node has its
   * own parameters, batch_size per call), so each is registered with a stub that takes nothing:
   * the notifications are read whole from raw_notification instead.
   */
  #register(subscription: ClientSubscription, node: NodeState): void {
    node.handle = this.#nextHandle++;
    this.#byHandle.set(node.handle, node);
    const stub = {
      itemToMonitor: { attributeId: AttributeIds.Value },
      monitoringParameters: { clientHandle: node.handle },
      _notify_value_change: () => undefined,
      _notify_event: () => undefined,
      _terminate_and_emit: () => undefined,
    };
    (subscription as unknown as SubscriptionInternals)._add_monitored_item(node.handle, stub);
  }

  #unregister(subscription: ClientSubscription | undefined, node: NodeState): void {
    if (node.handle !== 0) {
      this.#byHandle.delete(node.handle);
      (subscription as unknown as SubscriptionInternals | undefined)?._removeMonitoredItem(node.handle);
    }
    node.handle = 0;
    node.monitoredItemId = undefined;
  }

  #detachAll(): void {
    this.#byHandle.clear();
    for (const node of this.#nodes) {
      node.handle = 0;
      node.monitoredItemId = undefined;
    }
  }

  /** Creates monitored items batch_size per request; a request the server finds too large is split. */
  async #createItems(session: ClientSession, subscription: ClientSubscription, nodes: NodeState[], samples: Sample[]): Promise<void> {
    const size = this.#config.source.subscription.batch_size;
    for (let i = 0; i < nodes.length && this.#running; i += size) {
      await this.#createBatch(session, subscription, nodes.slice(i, i + size), samples);
    }
  }

  async #createBatch(session: ClientSession, subscription: ClientSubscription, batch: NodeState[], samples: Sample[]): Promise<void> {
    for (const node of batch) this.#register(subscription, node);
    const started = performance.now();
    let results;
    try {
      const response = await session.createMonitoredItems({
        subscriptionId: subscription.subscriptionId,
        timestampsToReturn: TimestampsToReturn.Both,
        itemsToCreate: batch.map((node) => this.#monitoringRequest(node)),
      });
      results = response.results ?? [];
    } catch (error) {
      for (const node of batch) this.#unregister(subscription, node);
      const message = (error as Error).message ?? "";
      if (batch.length > 1 && /BadTooManyOperations|BadTooManyMonitoredItems|BadEncodingLimitsExceeded|BadRequestTooLarge/.test(message)) {
        const half = Math.ceil(batch.length / 2);
        this.#context.log.warn({ batch: batch.length, reason: message }, "server refused a CreateMonitoredItems batch; splitting it (lower source.subscription.batch_size)");
        await this.#createBatch(session, subscription, batch.slice(0, half), samples);
        await this.#createBatch(session, subscription, batch.slice(half), samples);
        return;
      }
      throw error;
    }
    this.#context.readLatency.observe({ device: this.#endpoint }, (performance.now() - started) / 1000);
    batch.forEach((node, i) => {
      const status = results[i]?.statusCode ?? StatusCodes.BadInternalError;
      if (!status.isBad()) {
        node.monitoredItemId = results[i]!.monitoredItemId;
        this.#nodeRecovered(node);
        return;
      }
      this.#unregister(subscription, node);
      this.#nodeFailed(node, statusText(status) ?? status.name, samples);
    });
  }

  #onNotification(message: NotificationMessage): void {
    this.#lastPublishAt = Date.now();
    const data = message.notificationData;
    if (!data || data.length === 0) return;
    const now = new Date();
    const samples: Sample[] = [];
    for (const notification of data) {
      if (!(notification instanceof DataChangeNotification)) continue;
      for (const item of notification.monitoredItems ?? []) {
        const node = this.#byHandle.get(item.clientHandle);
        if (node) this.#deliver(node, item.value, now, samples);
      }
    }
    this.#context.emit(samples);
    this.#context.heartbeat();
    this.#collectGarbage(samples.length);
  }

  #collectGarbage(emitted: number): void {
    this.#sinceGc += emitted;
    if (this.#sinceGc < GC_EVERY_SAMPLES || Date.now() - this.#lastGcAt < GC_MIN_GAP_MS) return;
    this.#sinceGc = 0;
    this.#lastGcAt = Date.now();
    Bun.gc(true);
  }

  #deliver(node: NodeState, value: DataValue, now: Date, samples: Sample[]): void {
    if (NODE_ID_PROBLEMS.has(value.statusCode.value)) {
      // The node went away under a live item (address space rebuilt): create it again later.
      node.monitoredItemId = undefined;
      this.#nodeFailed(node, statusText(value.statusCode) ?? value.statusCode.name, samples);
      return;
    }
    this.#nodeRecovered(node);
    const sample = sampleOf(node.target, value, now);
    if (!this.#config.source.drop_duplicates || this.#duplicates.admit(node.index, sample)) samples.push(sample);
  }

  /** Waits while the subscription delivers: heartbeat, publish watchdog, retries of failing nodes. */
  async #watch(session: ClientSession, subscription: ClientSubscription): Promise<void> {
    const s = this.#config.source.subscription;
    const silenceMs = s.publishing_interval_ms * s.keepalive_count * 3 + this.#config.source.timeout_ms;
    while (this.#running) {
      await this.#sleep(TICK_MS);
      this.#context.heartbeat();
      if (Date.now() - this.#lastPublishAt > silenceMs) {
        throw new OpcuaError("timeout", `no publish response (data or keep-alive) for ${silenceMs} ms`);
      }
      this.#recordNodeErrors();
      const due = this.#nodes.filter((n) => n.failing !== undefined && n.invalid === undefined && n.retryAt <= Date.now());
      if (due.length === 0) continue;
      await this.#retry(session, subscription, due);
    }
  }

  async #retry(session: ClientSession, subscription: ClientSubscription, due: NodeState[]): Promise<void> {
    const samples: Sample[] = [];
    await this.#readNamespaces(session);
    const stale = due.filter((n) => n.monitoredItemId !== undefined || n.handle !== 0);
    const ids = stale.map((n) => n.monitoredItemId).filter((id): id is number => id !== undefined);
    for (const node of stale) this.#unregister(subscription, node);
    if (ids.length > 0) {
      await session.deleteMonitoredItems({ subscriptionId: subscription.subscriptionId, monitoredItemIds: ids }).catch(() => undefined);
    }
    const ready = due.filter((n) => this.#resolve(n, samples));
    await this.#createItems(session, subscription, ready, samples);
    this.#context.emit(samples);
  }

  // ---- polling mode ----

  async #pollLoop(session: ClientSession): Promise<void> {
    const interval = this.#config.poll_interval_ms;
    let next = Date.now();
    while (this.#running) {
      const samples: Sample[] = [];
      await this.#pollCycle(session, samples, true);
      this.#context.emit(samples);
      this.#context.heartbeat();
      this.#collectGarbage(samples.length);
      this.#recordNodeErrors();
      next += interval;
      const now = Date.now();
      if (next < now) next = now + interval - ((now - next) % interval);
      await this.#sleep(next - now);
    }
  }

  async #pollCycle(session: ClientSession, samples: Sample[], dedupe: boolean): Promise<void> {
    const now = Date.now();
    // Nodes whose namespace is missing are resolved again at their retry time; the rest are read.
    for (const node of this.#nodes) {
      if (node.nodeId === undefined && node.parsed && node.retryAt <= now) {
        await this.#readNamespaces(session);
        for (const n of this.#nodes) if (n.nodeId === undefined && n.parsed) this.#resolve(n, samples);
        break;
      }
    }
    const readable = this.#nodes.filter((n) => n.nodeId !== undefined);
    const size = this.#config.source.polling.batch_size;
    for (let i = 0; i < readable.length; i += size) {
      if (!this.#running && dedupe) break;
      await this.#readBatch(session, readable.slice(i, i + size), samples, dedupe);
    }
  }

  async #readBatch(session: ClientSession, batch: NodeState[], samples: Sample[], dedupe: boolean): Promise<void> {
    const started = performance.now();
    let values: DataValue[];
    try {
      values = await session.read(batch.map((n) => ({ nodeId: n.nodeId!, attributeId: AttributeIds.Value })), 0);
    } catch (error) {
      const message = (error as Error).message ?? "";
      if (batch.length > 1 && /BadTooManyOperations|BadEncodingLimitsExceeded|BadRequestTooLarge|BadResponseTooLarge/.test(message)) {
        const half = Math.ceil(batch.length / 2);
        this.#context.log.warn({ batch: batch.length, reason: message }, "server refused a Read batch; splitting it (lower source.polling.batch_size)");
        await this.#readBatch(session, batch.slice(0, half), samples, dedupe);
        await this.#readBatch(session, batch.slice(half), samples, dedupe);
        return;
      }
      throw error;
    }
    this.#context.readLatency.observe({ device: this.#endpoint }, (performance.now() - started) / 1000);
    const now = new Date();
    batch.forEach((node, i) => {
      const value = values[i];
      if (!value) return;
      if (NODE_ID_PROBLEMS.has(value.statusCode.value)) {
        this.#nodeFailed(node, statusText(value.statusCode) ?? value.statusCode.name, samples);
        return;
      }
      this.#nodeRecovered(node);
      const sample = sampleOf(node.target, value, now);
      if (!dedupe || !this.#config.source.drop_duplicates || this.#duplicates.admit(node.index, sample)) samples.push(sample);
    });
  }

  // ---- helpers ----

  async #sleep(ms: number): Promise<void> {
    if (this.#running) await this.#sleeper.sleep(ms);
  }
}

export type { ErrorType };
