import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { encodeMbap, parseMbapFrames, type MbapFrame } from "../modbus/pdu.ts";
import { generateBenchPlant, parsePlant, waveformValue } from "../modbus/plant.ts";
import { startModbusTcpSimulator, type ModbusTcpSimulator } from "./simulator.ts";

const MBPOLL = "/usr/bin/mbpoll";
const HAVE_MBPOLL = existsSync(MBPOLL);
if (!HAVE_MBPOLL) {
  if (process.env.CI) {
    test("mbpoll is installed (required in CI)", () => {
      throw new Error(`${MBPOLL} is missing: apt-get install mbpoll (scripts/setup.sh installs it)`);
    });
  } else {
    console.warn(`simulator.test.ts: skipping mbpoll interop tests, ${MBPOLL} is missing (apt-get install mbpoll)`);
  }
}

const T = 15; // fixed plant time, seconds
const SINE = { kind: "sine", min: 100, max: 200, period_s: 360 } as const;
const PLANT = parsePlant({
  name: "test-plant",
  devices: [
    {
      name: "rtu-a", port_offset: 0, unit_id: 1,
      registers: {
        "40001": { type: "float32", byte_order: "ABCD", waveform: { kind: "constant", value: 185.5 } },
        "40003": { type: "float32", byte_order: "CDAB", waveform: SINE },
        "40005": { type: "uint16", waveform: { kind: "counter", start: 1000 } },
        "40006": { type: "int32", byte_order: "CDAB", waveform: { kind: "constant", value: -123456 } },
        "40008": { type: "string", length: 2, waveform: { kind: "constant", value: "AB" } },
        "40010": { type: "uint16", waveform: { kind: "constant", value: 0 } },
        "00001": { type: "bool", waveform: { kind: "constant", value: true } },
        "00002": { type: "bool", waveform: { kind: "square", low: 0, high: 1, period_s: 10 } }, // low at t = 15
        "10001": { type: "bool", waveform: { kind: "constant", value: true } },
        "30001": { type: "uint16", waveform: { kind: "constant", value: 42 } },
      },
    },
    { name: "rtu-b", port_offset: 0, unit_id: 2, registers: { "40001": { type: "uint16", waveform: { kind: "constant", value: 7 } } } },
    { name: "rtu-c", port_offset: 1, unit_id: 1, registers: { "40001": { type: "uint16", waveform: { kind: "constant", value: 99 } } } },
  ],
}, "test-plant");

let sim: ModbusTcpSimulator;
beforeAll(async () => {
  sim = await startModbusTcpSimulator({ basePort: 0, plant: PLANT, clock: () => T });
});
afterAll(() => sim.stop());

interface MbpollResult { ok: boolean; values: string[]; output: string }

/** Runs mbpoll once (async: the simulator shares this process's event loop). */
async function mbpoll(port: number, unit: number, args: string[], writeValues: string[] = []): Promise<MbpollResult> {
  const proc = Bun.spawn(
    [MBPOLL, "-m", "tcp", "-a", String(unit), "-1", "-o", "1", "-p", String(port), ...args, "127.0.0.1", ...writeValues],
    { stdout: "pipe", stderr: "pipe" },
  );
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  // Values print as "[<reference>]: \t<value>".
  const values = [...stdout.matchAll(/^\[\d+\]:\s+(\S+)/gm)].map((m) => m[1]!);
  return { ok: code === 0, values, output: stdout + stderr };
}

const read = (port: number, unit: number, ref: number, count: number, type: string, ...extra: string[]) =>
  mbpoll(port, unit, ["-r", String(ref), "-c", String(count), "-t", type, ...extra]);

describe.skipIf(!HAVE_MBPOLL)("interop with mbpoll", () => {
  const portA = () => sim.portOf("rtu-a");

  test("one ephemeral port per distinct port_offset", () => {
    expect(sim.ports).toHaveLength(2);
    expect(sim.ports.every((p) => p > 0)).toBe(true);
    expect(sim.portOf("rtu-b")).toBe(sim.ports[0]!);
    expect(sim.portOf("rtu-c")).toBe(sim.ports[1]!);
  });

  test("float32 ABCD reads back in mbpoll's big-endian float mode (-B)", async () => {
    const result = await read(portA(), 1, 1, 1, "4:float", "-B");
    expect(result.values).toEqual(["185.5"]);
  });

  test("float32 CDAB (word swap) reads back in mbpoll's default float word order", async () => {
    const result = await read(portA(), 1, 3, 1, "4:float");
    expect(result.ok).toBe(true);
    expect(Number(result.values[0])).toBeCloseTo(waveformValue(SINE, T) as number, 3);
  });

  test("uint16 in decimal, int32 CDAB, string bytes in hex", async () => {
    expect((await read(portA(), 1, 5, 1, "4")).values).toEqual([String(1000 + T)]);
    expect((await read(portA(), 1, 6, 1, "4:int")).values).toEqual(["-123456"]);
    expect((await read(portA(), 1, 8, 1, "4:hex")).values).toEqual(["0x4142"]); // "AB"
  });

  test("coils, discrete inputs and input registers", async () => {
    expect((await read(portA(), 1, 1, 2, "0")).values).toEqual(["1", "0"]);
    expect((await read(portA(), 1, 1, 1, "1")).values).toEqual(["1"]);
    expect((await read(portA(), 1, 1, 1, "3")).values).toEqual(["42"]);
  });

  test("a write from mbpoll reads back", async () => {
    const write = await mbpoll(portA(), 1, ["-r", "10", "-t", "4"], ["4321"]);
    expect(write.ok).toBe(true);
    expect((await read(portA(), 1, 10, 1, "4")).values).toEqual(["4321"]);
  });

  test("unit ids share a port; an unknown unit gets exception 0x0B", async () => {
    expect((await read(portA(), 2, 1, 1, "4")).values).toEqual(["7"]);
    expect((await read(sim.portOf("rtu-c"), 1, 1, 1, "4")).values).toEqual(["99"]);
    const unknown = await read(portA(), 9, 1, 1, "4");
    expect(unknown.ok).toBe(false);
    expect(unknown.output).toContain("Target device failed to respond");
  });

  test("a read past the plant's registers is zeros (unmapped_reads: zero)", async () => {
    expect((await read(portA(), 1, 100, 2, "4")).values).toEqual(["0", "0"]);
  });

  test("setOnline(false) refuses connections; setOnline(true) serves the same port again", async () => {
    const port = sim.portOf("rtu-c");
    sim.setOnline("rtu-c", false);
    try {
      const offline = await read(port, 1, 1, 1, "4");
      expect(offline.ok).toBe(false);
      expect(offline.output).toContain("Connection refused");
      expect((await read(portA(), 1, 5, 1, "4")).ok).toBe(true); // other ports unaffected
    } finally {
      sim.setOnline("rtu-c", true);
    }
    expect(sim.portOf("rtu-c")).toBe(port);
    expect((await read(port, 1, 1, 1, "4")).values).toEqual(["99"]);
  });

  test("an offline device on a shared port answers 0x0B while its neighbour keeps working", async () => {
    sim.setOnline("rtu-b", false);
    try {
      const offline = await read(portA(), 2, 1, 1, "4");
      expect(offline.output).toContain("Target device failed to respond");
      expect((await read(portA(), 1, 5, 1, "4")).values).toEqual([String(1000 + T)]);
    } finally {
      sim.setOnline("rtu-b", true);
    }
    expect((await read(portA(), 2, 1, 1, "4")).values).toEqual(["7"]);
  });
});

// ---- Raw TCP clients: framing behaviour mbpoll cannot exercise ----

interface RawClient {
  send(bytes: Uint8Array): void;
  /** Resolves once `count` reply frames have arrived in total. */
  frames(count: number): Promise<MbapFrame[]>;
  closed: Promise<void>;
  end(): void;
}

async function connect(port: number): Promise<RawClient> {
  let buffer = new Uint8Array(0);
  const received: MbapFrame[] = [];
  let waiter: { count: number; resolve: (f: MbapFrame[]) => void } | undefined;
  let onClose!: () => void;
  const closed = new Promise<void>((resolve) => (onClose = resolve));
  const check = () => {
    if (waiter && received.length >= waiter.count) waiter.resolve(received.slice(0, waiter.count));
  };
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, chunk) {
        const joined = new Uint8Array(buffer.length + chunk.length);
        joined.set(buffer);
        joined.set(chunk, buffer.length);
        const { frames, rest } = parseMbapFrames(joined);
        received.push(...frames.map((f) => ({ ...f, pdu: f.pdu.slice() })));
        buffer = rest.slice();
        check();
      },
      close: () => onClose(),
      error: () => onClose(),
    },
  });
  return {
    send: (bytes) => void socket.write(bytes),
    frames: (count) => new Promise((resolve) => ((waiter = { count, resolve }), check())),
    closed,
    end: () => socket.end(),
  };
}

const readRequest = (transactionId: number, unitId: number, address: number, quantity: number) =>
  encodeMbap(transactionId, unitId, Uint8Array.of(3, address >> 8, address & 0xff, quantity >> 8, quantity & 0xff));

describe("raw TCP framing", () => {
  test("pipelined requests in one segment are answered in order with their transaction ids", async () => {
    const client = await connect(sim.portOf("rtu-a"));
    const requests = [readRequest(0x1234, 1, 4, 1), readRequest(0x1235, 2, 0, 1), readRequest(0x1236, 9, 0, 1)];
    client.send(new Uint8Array(requests.flatMap((r) => [...r])));
    const replies = await client.frames(3);
    expect(replies.map((f) => [f.transactionId, f.unitId, [...f.pdu]])).toEqual([
      [0x1234, 1, [3, 2, (1000 + T) >> 8, (1000 + T) & 0xff]],
      [0x1235, 2, [3, 2, 0, 7]],
      [0x1236, 9, [0x83, 0x0b]], // unknown unit: gateway target failed to respond
    ]);
    client.end();
  });

  test("a request split into single bytes is reassembled", async () => {
    const client = await connect(sim.portOf("rtu-c"));
    const request = readRequest(7, 1, 0, 1);
    for (const byte of request) {
      client.send(Uint8Array.of(byte));
      await Bun.sleep(1);
    }
    expect((await client.frames(1)).map((f) => [...f.pdu])).toEqual([[3, 2, 0, 99]]);
    client.end();
  });

  test("an impossible MBAP length closes the connection", async () => {
    const client = await connect(sim.portOf("rtu-c"));
    client.send(Uint8Array.of(0, 1, 0, 0, 0x01, 0x00, 1, 3)); // length 256
    await client.closed;
  });

  test("setOnline(false) closes live connections of the device", async () => {
    const client = await connect(sim.portOf("rtu-c"));
    client.send(readRequest(1, 1, 0, 1));
    await client.frames(1);
    sim.setOnline("rtu-c", false);
    try {
      await client.closed;
    } finally {
      sim.setOnline("rtu-c", true);
    }
    const again = await connect(sim.portOf("rtu-c"));
    again.send(readRequest(2, 1, 0, 1));
    expect((await again.frames(1))[0]!.transactionId).toBe(2);
    again.end();
  });
});

describe("load", () => {
  test("many devices and connections with pipelined reads of 100 registers", async () => {
    const plant = generateBenchPlant({ devices: 20, registersPerDevice: 100 });
    const bench = await startModbusTcpSimulator({ basePort: 0, plant, clock: () => 30 });
    try {
      expect(bench.ports).toHaveLength(20);
      const CONNECTIONS_PER_PORT = 5;
      const REQUESTS = 50;
      const results = await Promise.all(
        bench.ports.flatMap((port) =>
          Array.from({ length: CONNECTIONS_PER_PORT }, async () => {
            const client = await connect(port);
            const batch = Array.from({ length: REQUESTS }, (_, i) => [...readRequest(i, 1, 0, 100)]).flat();
            client.send(new Uint8Array(batch));
            const replies = await client.frames(REQUESTS);
            client.end();
            return replies;
          }),
        ),
      );
      for (const replies of results) {
        expect(replies.map((f) => f.transactionId)).toEqual(Array.from({ length: REQUESTS }, (_, i) => i));
        expect(replies.every((f) => f.pdu.length === 2 + 200 && f.pdu[0] === 3)).toBe(true);
      }
    } finally {
      await bench.stop();
    }
  });
});
