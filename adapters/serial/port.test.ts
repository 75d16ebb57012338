import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { socatAvailable, startPtyPair, type PtyPair } from "../../test/peers/socat.ts";
import { SerialPort, SerialPortError } from "./port.ts";

/** Collects what a port reads, and waits for a byte count. */
function collect(port: SerialPort) {
  const chunks: Uint8Array[] = [];
  let total = 0;
  port.onData((chunk) => {
    chunks.push(chunk.slice());
    total += chunk.length;
  });
  return {
    bytes: () => Uint8Array.from(chunks.flatMap((c) => [...c])),
    async waitFor(count: number, timeoutMs = 3000) {
      const deadline = Date.now() + timeoutMs;
      while (total < count && Date.now() < deadline) await Bun.sleep(5);
      return total;
    },
  };
}

/** The kernel's own account of the line, independent of our termios decoding. */
function sttyReport(path: string): string {
  return Bun.spawnSync(["stty", "-F", path, "-a"]).stdout.toString();
}

describe.skipIf(!socatAvailable)("serial port over a socat pty pair", () => {
  let pair: PtyPair;
  const opened: SerialPort[] = [];
  const open = async (options: Parameters<typeof SerialPort.open>[0]) => {
    const port = await SerialPort.open(options);
    opened.push(port);
    return port;
  };
  beforeEach(async () => {
    pair = await startPtyPair();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((p) => p.close()));
    await pair.stop();
  });

  test("bytes written at one end are read at the other, both ways, all 256 values unaltered", async () => {
    const a = await open({ path: pair.a, baudRate: 115200 });
    const b = await open({ path: pair.b, baudRate: 115200 });
    const atB = collect(b);
    const atA = collect(a);
    // Every byte value, including 0x0A/0x0D (no CR/LF translation), 0x11/0x13 (no XON/XOFF),
    // 0x03/0x1A (no signals), 0x04 (no EOF), 0x7F (no erase).
    const everyByte = Uint8Array.from({ length: 256 }, (_, i) => i);
    await a.write(everyByte);
    await b.write(Uint8Array.of(0x7e, 0x00, 0x7d));
    expect(await atB.waitFor(256)).toBe(256);
    expect(atB.bytes()).toEqual(everyByte);
    expect(await atA.waitFor(3)).toBe(3);
    expect(atA.bytes()).toEqual(Uint8Array.of(0x7e, 0x00, 0x7d));
    expect([a.bytesOut, b.bytesIn]).toEqual([256, 256]);
  });

  test("a write larger than the kernel's buffer is delivered whole and in order (non-blocking writes retry)", async () => {
    const a = await open({ path: pair.a });
    const b = await open({ path: pair.b });
    const atB = collect(b);
    const big = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 7) & 0xff);
    const [first, second] = [big.subarray(0, 150_000), big.subarray(150_000)];
    await Promise.all([a.write(first), a.write(second)]); // queued writes keep their order
    expect(await atB.waitFor(big.length, 10_000)).toBe(big.length);
    expect(atB.bytes()).toEqual(big);
  });

  test("line settings reach the kernel: raw, speed and stop bits as `stty` reports them", async () => {
    const port = await open({ path: pair.a, baudRate: 19200, stopBits: 2 });
    expect(port.line).toEqual({ baudRate: 19200, parity: "none", dataBits: 8, stopBits: 2 });
    expect(port.warnings).toEqual([]);
    const report = sttyReport(pair.a);
    expect(report).toContain("speed 19200 baud");
    for (const flag of ["cs8", "cstopb", "-parenb", "-icanon", "-echo", "-isig", "-icrnl", "-ixon", "-opost", "-crtscts", "clocal", "cread", "min = 1", "time = 0"]) {
      expect(report).toContain(flag);
    }
  });

  test("a pty refusing parity (as recent kernels do) falls back to 8N1 with a warning; the stream still works", async () => {
    const a = await open({ path: pair.a, baudRate: 9600, parity: "even", stopBits: 1 });
    if (a.line.parity === "even") {
      // An older kernel accepted parity on the pty: nothing to fall back from.
      expect(sttyReport(pair.a)).toContain(" parenb");
      return;
    }
    expect(a.line).toEqual({ baudRate: 9600, parity: "none", dataBits: 8, stopBits: 1 });
    expect(a.warnings).toHaveLength(1);
    expect(a.warnings[0]).toContain("pseudo-terminal, which refuses 9600 8E1; using 9600 8N1");
    const b = await open({ path: pair.b, baudRate: 9600 });
    const atB = collect(b);
    await a.write(Uint8Array.of(1, 2, 3));
    expect(await atB.waitFor(3)).toBe(3);
  });

  test("hang-up (the other end goes away) closes the port with a reason; later writes fail", async () => {
    const a = await open({ path: pair.a });
    await pair.stop();
    const reason = await Promise.race([a.closed, Bun.sleep(3000).then(() => "still open")]);
    expect(reason).toBeInstanceOf(SerialPortError);
    expect((reason as Error).message).toContain("device closed");
    expect(a.isOpen).toBe(false);
    expect(a.write(Uint8Array.of(1))).rejects.toThrow("port is closed");
  });

  test("close(): closed resolves with no reason, twice is harmless, and nothing keeps the process alive", async () => {
    const a = await open({ path: pair.a });
    await a.close();
    await a.close();
    expect(await a.closed).toBeUndefined();
    expect(a.isOpen).toBe(false);
    // A fresh port on the same device works after close (the fd and exclusivity were released).
    const again = await open({ path: pair.a });
    expect(again.isOpen).toBe(true);
  });
});

describe("serial port errors", () => {
  test("a missing device: SerialPortError naming the path and ENOENT", async () => {
    const error = await SerialPort.open({ path: "/dev/does-not-exist-ttyUSB9" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SerialPortError);
    expect((error as SerialPortError).code).toBe("ENOENT");
    expect((error as Error).message).toContain("/dev/does-not-exist-ttyUSB9");
  });

  test.skipIf(process.platform !== "linux")("a file that is not a tty: ENOTTY, 'not a serial device'", async () => {
    const error = await SerialPort.open({ path: "/dev/null" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SerialPortError);
    expect((error as SerialPortError).code).toBe("ENOTTY");
    expect((error as Error).message).toContain("not a serial device");
  });

  test("invalid settings are refused before the device is opened", async () => {
    await expect(SerialPort.open({ path: "/dev/null", baudRate: -1 })).rejects.toThrow("baud rate");
    await expect(SerialPort.open({ path: "/dev/null", dataBits: 9 as never })).rejects.toThrow("data bits");
  });
});
