// The RTU master's timing and failure handling, against an in-memory bus whose replies the test
// scripts byte by byte (the pty tests cannot show timing: a pty has no baud rate).
import { describe, expect, test } from "bun:test";
import type { ReadRequest } from "../modbus/plan.ts";
import { ModbusReadError } from "../modbus/poller.ts";
import type { LineSettings } from "../serial/termios.ts";
import { encodeRtuFrame, hasValidCrc } from "./frame.ts";
import { ModbusRtuTransport, type ModbusRtuTransportOptions, type SerialLink } from "./transport.ts";

type Reply = { bytes: number[] | Uint8Array; afterMs: number } | null;

/** A bus: each request written is answered by `respond` (or not), after a delay. */
class FakeBus implements SerialLink {
  readonly line: LineSettings;
  readonly warnings: string[] = [];
  readonly closed: Promise<Error | undefined>;
  isOpen = true;
  /** Each write with when it happened; each delivered chunk with when it arrived. */
  readonly writes: Array<{ at: number; bytes: Uint8Array }> = [];
  readonly deliveries: number[] = [];
  #listeners = new Set<(chunk: Uint8Array) => void>();
  #resolveClosed!: (reason: Error | undefined) => void;

  constructor(baudRate: number, private readonly respond: (request: Uint8Array) => Reply) {
    this.line = { baudRate, parity: "even", dataBits: 8, stopBits: 1 };
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  onData(listener: (chunk: Uint8Array) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async write(data: Uint8Array): Promise<void> {
    if (!this.isOpen) throw new Error("port is closed");
    this.writes.push({ at: performance.now(), bytes: data.slice() });
    const reply = this.respond(data);
    if (reply) setTimeout(() => this.deliver(reply.bytes), reply.afterMs);
  }

  deliver(bytes: ArrayLike<number>): void {
    if (!this.isOpen) return;
    this.deliveries.push(performance.now());
    for (const listener of this.#listeners) listener(Uint8Array.from(bytes));
  }

  hangUp(): void {
    this.isOpen = false;
    this.#resolveClosed(new Error("device closed (hang-up or unplugged)"));
  }

  async close(): Promise<void> {
    this.isOpen = false;
    this.#resolveClosed(undefined);
  }
}

const read = (unitId: number, quantity = 1, functionCode: 1 | 2 | 3 | 4 = 3): ReadRequest => ({ unitId, functionCode, address: 0, quantity, fields: [] });
/** A normal FC3 reply: the register values are the unit id, repeated. */
const registersReply = (request: Uint8Array): number[] => {
  const quantity = request[5]!;
  return [...encodeRtuFrame(request[0]!, [0x03, quantity * 2, ...Array.from({ length: quantity }, () => [0, request[0]!]).flat()])];
};

async function connect(bus: FakeBus, options: Partial<ModbusRtuTransportOptions> = {}): Promise<ModbusRtuTransport> {
  const transport = new ModbusRtuTransport({ serial: { path: "/dev/fake", baudRate: bus.line.baudRate }, open: async () => bus, ...options });
  await transport.connect();
  return transport;
}

const failure = async (promise: Promise<unknown>) => promise.then(() => undefined, (e: unknown) => e as ModbusReadError);

describe("Modbus RTU transport", () => {
  test("keeps t3.5 of silence after every response before the next request (1200 baud: 32 ms)", async () => {
    const bus = new FakeBus(1200, (request) => ({ bytes: registersReply(request), afterMs: 0 }));
    const transport = await connect(bus);
    expect(transport.timing.interFrameMs).toBeCloseTo((3.5 * 11 * 1000) / 1200, 3);
    for (let i = 0; i < 4; i++) expect(await transport.read(read(1 + (i % 2)), 500)).toEqual([1 + (i % 2)]);
    expect(bus.writes).toHaveLength(4);
    for (let i = 1; i < 4; i++) {
      const lastByteBefore = Math.max(...bus.deliveries.filter((t) => t < bus.writes[i]!.at));
      expect(bus.writes[i]!.at - lastByteBefore).toBeGreaterThanOrEqual(transport.timing.interFrameMs - 0.5);
    }
    // ...and after our own request has left the UART (8 bytes at 1200 baud = 73 ms) when nobody answers.
    const silent = new FakeBus(1200, () => null);
    const t2 = await connect(silent);
    await failure(t2.read(read(1), 10));
    await failure(t2.read(read(1), 10));
    const txTime = 8 * t2.timing.characterMs;
    expect(silent.writes[1]!.at - silent.writes[0]!.at).toBeGreaterThanOrEqual(txTime + t2.timing.interFrameMs - 0.5);
  });

  test("above 19200 baud the silence is the spec's fixed 1.75 ms", async () => {
    const bus = new FakeBus(115200, (request) => ({ bytes: registersReply(request), afterMs: 0 }));
    const transport = await connect(bus);
    expect(transport.timing.interFrameMs).toBe(1.75);
  });

  test("a response split into chunks with leading noise is assembled and checked by CRC", async () => {
    const bus = new FakeBus(19200, (request) => {
      const reply = registersReply(request);
      setTimeout(() => bus.deliver([0x00, 0xff, ...reply.slice(0, 3)]), 5);
      setTimeout(() => bus.deliver(reply.slice(3)), 15);
      return null;
    });
    const transport = await connect(bus);
    expect(await transport.read(read(7, 3), 500)).toEqual([7, 7, 7]);
  });

  test("no answer: a timeout after the slave's own timeout; per-slave timeouts override the default", async () => {
    const bus = new FakeBus(115200, () => null);
    const transport = await connect(bus, { unitTimeoutsMs: new Map([[2, 40]]) });
    let started = performance.now();
    const slow = await failure(transport.read(read(1), 250));
    const slowMs = performance.now() - started;
    started = performance.now();
    const fast = await failure(transport.read(read(2), 250));
    const fastMs = performance.now() - started;
    expect(slow).toMatchObject({ kind: "timeout", message: "/dev/fake unit 1: no response within 250 ms" });
    expect(fast).toMatchObject({ kind: "timeout", message: "/dev/fake unit 2: no response within 40 ms" });
    expect(slowMs).toBeGreaterThanOrEqual(245);
    expect(fastMs).toBeLessThan(150);
  });

  test("a reply with a bad CRC is a protocol error; an exception reply carries its code", async () => {
    let mode: "crc" | "exception" = "crc";
    const bus = new FakeBus(19200, (request) => {
      const reply = mode === "crc" ? registersReply(request) : [...encodeRtuFrame(request[0]!, [0x83, 0x02])];
      if (mode === "crc") reply[3]! ^= 0x40;
      return { bytes: reply, afterMs: 1 };
    });
    const transport = await connect(bus);
    const started = performance.now();
    expect(await failure(transport.read(read(1), 1000))).toMatchObject({ kind: "protocol", message: expect.stringContaining("CRC") });
    expect(performance.now() - started).toBeLessThan(200); // once the line is quiet, not at the timeout
    mode = "exception";
    expect(await failure(transport.read(read(1), 80))).toMatchObject({ kind: "protocol", exceptionCode: 2 });
  });

  test("a late reply from a slave that timed out is not taken for the next slave's answer", async () => {
    const bus = new FakeBus(115200, (request) =>
      request[0] === 1 ? { bytes: registersReply(request), afterMs: 60 } : { bytes: registersReply(request), afterMs: 80 });
    const transport = await connect(bus);
    expect(await failure(transport.read(read(1), 30))).toMatchObject({ kind: "timeout" });
    // Unit 1's reply lands while unit 2's request is outstanding; only unit 2's frame is accepted.
    expect(await transport.read(read(2), 300)).toEqual([2]);
    expect(transport.discardedBytes).toBeGreaterThan(0);
  });

  test("a slave presumed dead is not asked again within the window: its other reads fail at once, off the bus", async () => {
    const bus = new FakeBus(115200, (request) => (request[0] === 9 ? null : { bytes: registersReply(request), afterMs: 1 }));
    const transport = await connect(bus, { presumeDeadAfterTimeouts: 2, deadUnitWindowMs: 300 });
    await failure(transport.read(read(9), 20));
    await failure(transport.read(read(9), 20));
    const writes = bus.writes.length;
    const started = performance.now();
    const skipped = await failure(transport.read(read(9), 20));
    expect(performance.now() - started).toBeLessThan(20); // under the 20 ms timeout: it did not wait for an answer
    expect(skipped).toMatchObject({ kind: "timeout", message: expect.stringContaining("presumed dead after 2 consecutive timeouts") });
    expect(bus.writes.length).toBe(writes);
    // Its neighbours are unaffected, and after the window one real request probes the dead slave.
    expect(await transport.read(read(1), 100)).toEqual([1]);
    await Bun.sleep(320);
    await failure(transport.read(read(9), 20));
    expect(bus.writes.length).toBe(writes + 2);
  });

  test("the port hanging up mid-request is a connection error, and so is reading after it", async () => {
    const bus = new FakeBus(19200, () => null);
    const transport = await connect(bus);
    const pending = failure(transport.read(read(1), 1000));
    await Bun.sleep(10);
    bus.hangUp();
    expect(await pending).toMatchObject({ kind: "connection", message: expect.stringContaining("hang-up") });
    expect(await failure(transport.read(read(1), 1000))).toMatchObject({ kind: "connection" });
  });

  test("close() ends a read in flight at once (a quick SIGTERM), and connect() opens again", async () => {
    let bus = new FakeBus(19200, () => null);
    const transport = new ModbusRtuTransport({ serial: { path: "/dev/fake", baudRate: 19200 }, open: async () => bus });
    await transport.connect();
    const started = performance.now();
    const pending = failure(transport.read(read(1), 5000));
    await Bun.sleep(10);
    await transport.close();
    expect(await pending).toMatchObject({ kind: "connection", message: expect.stringContaining("port closed") });
    expect(performance.now() - started).toBeLessThan(500);
    bus = new FakeBus(19200, (request) => ({ bytes: registersReply(request), afterMs: 1 }));
    await transport.connect();
    expect(await transport.read(read(3), 200)).toEqual([3]);
  });

  test("requests never overlap on the bus, even when callers do not wait", async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const bus = new FakeBus(115200, (request) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => inFlight--, 5);
      return { bytes: registersReply(request), afterMs: 5 };
    });
    const transport = await connect(bus);
    const results = await Promise.all([1, 2, 3, 4].map((u) => transport.read(read(u), 200)));
    expect(results).toEqual([[1], [2], [3], [4]]);
    expect(maxInFlight).toBe(1);
    expect(bus.writes.every((w) => hasValidCrc(w.bytes))).toBe(true);
  });

  test("a port that cannot be opened is a connection error naming why", async () => {
    const transport = new ModbusRtuTransport({ serial: { path: "/dev/ttyUSB9" }, open: async () => { throw new Error("/dev/ttyUSB9: cannot open: ENOENT"); } });
    expect(await failure(transport.connect())).toMatchObject({ kind: "connection", message: "/dev/ttyUSB9: cannot open: ENOENT" });
    expect(transport.isOpen).toBe(false);
  });
});
