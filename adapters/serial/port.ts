// A serial port for Bun, without native addons: `serialport` aborts under Bun when a port opens
// (uv_poll_init is unsupported). The device is opened with node:fs (O_NONBLOCK), configured with
// the kernel's termios2 ioctls through bun:ffi, read through Bun's own pollable file stream and
// written with non-blocking writes. Linux only (x86-64, arm64, riscv64).
import { dlopen, FFIType, ptr, read, type Pointer } from "bun:ffi";
import { closeSync, constants, openSync, realpathSync, writeSync } from "node:fs";
import { constants as osConstants } from "node:os";
import {
  DEFAULT_LINE, describeTermios, formatLine, IOCTL, rawTermios, TCIFLUSH, TERMIOS2_SIZE,
  type LineSettings, type TermiosSummary,
} from "./termios.ts";

export class SerialPortError extends Error {
  override name = "SerialPortError";
  constructor(message: string, readonly code?: string) {
    super(message);
  }
}

export interface SerialPortOptions extends Partial<LineSettings> {
  path: string;
  /**
   * Ask the kernel for exclusive use (TIOCEXCL), so a second process opening the same bus fails
   * with EBUSY instead of interleaving frames. Default true.
   */
  exclusive?: boolean;
}

type DataListener = (chunk: Uint8Array) => void;

const SUPPORTED_ARCH = new Set(["x64", "arm64", "riscv64"]);
const LIBC_NAMES = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"];

interface Libc {
  ioctl(fd: number, request: number, arg: number | bigint): number;
  errno(): number;
}

let libc: Libc | undefined;

function loadLibc(): Libc {
  if (libc) return libc;
  if (process.platform !== "linux" || !SUPPORTED_ARCH.has(process.arch)) {
    throw new SerialPortError(`serial ports are supported on Linux (x64, arm64, riscv64), not ${process.platform}/${process.arch}`, "ENOTSUP");
  }
  const problems: string[] = [];
  for (const name of LIBC_NAMES) {
    try {
      const lib = dlopen(name, {
        // ioctl is variadic; every argument we pass is an integer or a pointer, which the
        // calling conventions of the supported architectures pass like fixed arguments.
        ioctl: { args: [FFIType.i32, FFIType.u64, FFIType.u64], returns: FFIType.i32 },
        __errno_location: { args: [], returns: FFIType.ptr },
      });
      libc = {
        ioctl: (fd, request, arg) => lib.symbols.ioctl(fd, request, arg),
        errno: () => read.i32(lib.symbols.__errno_location() as Pointer, 0),
      };
      return libc;
    } catch (error) {
      problems.push(`${name}: ${(error as Error).message}`);
    }
  }
  throw new SerialPortError(`cannot load the C library for termios (${problems.join("; ")})`, "ENOTSUP");
}

const ERRNO_NAMES = new Map(Object.entries(osConstants.errno).map(([name, code]) => [code, name]));

function ioctlOrThrow(fd: number, request: number, arg: number | bigint, what: string, path: string): void {
  const lib = loadLibc();
  if (lib.ioctl(fd, request, arg) === 0) return;
  const errno = lib.errno();
  const code = ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
  const hint = code === "ENOTTY" ? " (not a serial device)" : "";
  throw new SerialPortError(`${path}: ${what} failed: ${code}${hint}`, code);
}

function isPseudoTerminal(path: string): boolean {
  try {
    return realpathSync(path).startsWith("/dev/pts/");
  } catch {
    return false;
  }
}

export class SerialPort {
  readonly path: string;
  /** What the driver accepted, read back after configuring. */
  readonly line: LineSettings;
  /** Settings that could not be applied as asked (pseudo-terminals), for the caller to log. */
  readonly warnings: string[];
  /** Resolves once the port is closed: undefined when close() was called, else why (hang-up, I/O error). */
  readonly closed: Promise<Error | undefined>;
  readonly #fd: number;
  readonly #listeners = new Set<DataListener>();
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #open = true;
  #closing = false;
  #resolveClosed!: (reason: Error | undefined) => void;
  #writes: Promise<void> = Promise.resolve();
  #bytesIn = 0;
  #bytesOut = 0;

  private constructor(path: string, fd: number, line: LineSettings, warnings: string[]) {
    this.path = path;
    this.#fd = fd;
    this.line = line;
    this.warnings = warnings;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#startReading();
  }

  /**
   * Opens and configures the device. A pseudo-terminal has no wire, so where Linux refuses
   * parity or 7 data bits on it (recent kernels do) the port falls back to 8 bits without
   * parity and says so in `warnings`; a real UART refusing a setting is an error.
   */
  static async open(options: SerialPortOptions): Promise<SerialPort> {
    const wanted: LineSettings = {
      baudRate: options.baudRate ?? DEFAULT_LINE.baudRate,
      parity: options.parity ?? DEFAULT_LINE.parity,
      dataBits: options.dataBits ?? DEFAULT_LINE.dataBits,
      stopBits: options.stopBits ?? DEFAULT_LINE.stopBits,
    };
    rawTermios(new Uint8Array(TERMIOS2_SIZE), wanted); // validates before touching the device
    const path = options.path;
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK);
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      throw new SerialPortError(`${path}: cannot open: ${e.code ?? e.message}`, e.code);
    }
    try {
      const warnings: string[] = [];
      if (options.exclusive ?? true) {
        // Best effort: a driver without TIOCEXCL still works, just without the guard.
        if (loadLibc().ioctl(fd, IOCTL.TIOCEXCL, 0) !== 0) warnings.push("exclusive access (TIOCEXCL) not supported by the driver");
      }
      const current = new Uint8Array(TERMIOS2_SIZE);
      ioctlOrThrow(fd, IOCTL.TCGETS2, ptr(current), "reading line settings (TCGETS2)", path);
      let applied: TermiosSummary;
      try {
        applied = configure(fd, path, current, wanted);
      } catch (error) {
        const fallback: LineSettings = { ...wanted, parity: "none", dataBits: 8 };
        const refusedByPty = error instanceof SerialPortError && error.code === "EINVAL" && isPseudoTerminal(path)
          && (wanted.parity !== "none" || wanted.dataBits !== 8);
        if (!refusedByPty) throw error;
        applied = configure(fd, path, current, fallback);
        warnings.push(`${path} is a pseudo-terminal, which refuses ${formatLine(wanted)}; using ${formatLine(fallback)} (parity and data bits do not exist on a pty)`);
      }
      ioctlOrThrow(fd, IOCTL.TCFLSH, TCIFLUSH, "discarding stale input (TCFLSH)", path);
      const line: LineSettings = { baudRate: applied.baudRate, parity: applied.parity, dataBits: applied.dataBits, stopBits: applied.stopBits };
      return new SerialPort(path, fd, line, warnings);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  get isOpen(): boolean {
    return this.#open;
  }

  get bytesIn(): number {
    return this.#bytesIn;
  }

  get bytesOut(): number {
    return this.#bytesOut;
  }

  /** Every chunk read from the device goes to every listener, in order. Returns the unsubscribe. */
  onData(listener: DataListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Queues bytes for the device; resolves once the kernel took them all (not when they left the wire). */
  write(data: Uint8Array): Promise<void> {
    const copy = data.slice();
    const next = this.#writes.then(() => this.#writeAll(copy));
    this.#writes = next.catch(() => undefined);
    return next;
  }

  /** Drops bytes received by the driver but not yet read. */
  flushInput(): void {
    if (this.#open) loadLibc().ioctl(this.#fd, IOCTL.TCFLSH, TCIFLUSH);
  }

  async close(): Promise<void> {
    if (!this.#open || this.#closing) return void (await this.closed);
    this.#closing = true;
    await this.#writes;
    await this.#reader?.cancel().catch(() => undefined);
    this.#finish(undefined);
  }

  async #writeAll(data: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < data.length) {
      if (!this.#open) throw new SerialPortError(`${this.path}: port is closed`, "EBADF");
      try {
        offset += writeSync(this.#fd, data, offset, data.length - offset);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "EAGAIN" || code === "EWOULDBLOCK") {
          await Bun.sleep(1); // output buffer full: the line drains at the baud rate
          continue;
        }
        const failure = new SerialPortError(`${this.path}: write failed: ${code ?? (error as Error).message}`, code);
        this.#finish(failure);
        throw failure;
      }
    }
    this.#bytesOut += data.length;
  }

  #startReading(): void {
    // Bun polls a tty fd itself (epoll), unlike serialport's libuv poll handle.
    const reader = Bun.file(this.#fd).stream().getReader();
    this.#reader = reader;
    void (async () => {
      let reason: Error | undefined;
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          if (!value || value.length === 0) continue;
          this.#bytesIn += value.length;
          for (const listener of this.#listeners) {
            try {
              listener(value);
            } catch {
              // A listener's bug must not stop the port; listeners handle their own errors.
            }
          }
        }
        if (!this.#closing) reason = new SerialPortError(`${this.path}: device closed (hang-up or unplugged)`, "EIO");
      } catch (error) {
        if (!this.#closing) reason = new SerialPortError(`${this.path}: read failed: ${(error as Error).message}`, (error as NodeJS.ErrnoException).code);
      }
      if (!this.#closing) this.#finish(reason);
    })();
  }

  #finish(reason: Error | undefined): void {
    if (!this.#open) return;
    this.#open = false;
    this.#closing = true;
    void this.#reader?.cancel().catch(() => undefined);
    try {
      closeSync(this.#fd);
    } catch {
      // already closed
    }
    this.#listeners.clear();
    this.#resolveClosed(reason);
  }
}

function configure(fd: number, path: string, current: Uint8Array, wanted: LineSettings): TermiosSummary {
  const next = rawTermios(current, wanted);
  ioctlOrThrow(fd, IOCTL.TCSETS2, ptr(next), `setting ${formatLine(wanted)} (TCSETS2)`, path);
  const check = new Uint8Array(TERMIOS2_SIZE);
  ioctlOrThrow(fd, IOCTL.TCGETS2, ptr(check), "reading line settings back (TCGETS2)", path);
  const applied = describeTermios(check);
  const mismatches: string[] = [];
  if (applied.parity !== wanted.parity) mismatches.push(`parity ${applied.parity}`);
  if (applied.dataBits !== wanted.dataBits) mismatches.push(`${applied.dataBits} data bits`);
  if (applied.stopBits !== wanted.stopBits) mismatches.push(`${applied.stopBits} stop bits`);
  // Drivers round the speed to what their clock divides to; within 2 % a UART still syncs.
  if (Math.abs(applied.baudRate - wanted.baudRate) > wanted.baudRate * 0.02) mismatches.push(`${applied.baudRate} baud`);
  if (!applied.raw) mismatches.push("not raw");
  if (mismatches.length > 0) throw new SerialPortError(`${path}: the driver did not accept ${formatLine(wanted)} (got ${mismatches.join(", ")})`, "EINVAL");
  return applied;
}
