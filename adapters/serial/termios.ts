// Line settings as the Linux kernel sees them: `struct termios2` (TCGETS2 / TCSETS2 ioctls).
// The kernel's structure is used rather than glibc's `struct termios`, whose layout and speed
// handling have changed between glibc versions; termios2 is kernel ABI and also carries any
// baud rate (BOTHER). Constants are asm-generic/termbits.h, shared by x86-64, arm64 and riscv64.
// Everything here is pure, so it is tested without a device.

export const PARITIES = ["none", "even", "odd"] as const;
export type Parity = (typeof PARITIES)[number];
export type DataBits = 7 | 8;
export type StopBits = 1 | 2;

export interface LineSettings {
  baudRate: number;
  parity: Parity;
  dataBits: DataBits;
  stopBits: StopBits;
}

export const DEFAULT_LINE: LineSettings = { baudRate: 9600, parity: "none", dataBits: 8, stopBits: 1 };

/** Rates every UART driver knows; others are still attempted (BOTHER) but may be refused. */
export const STANDARD_BAUD_RATES = [
  300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600,
] as const;

// c_iflag
const IGNBRK = 0o1, BRKINT = 0o2, IGNPAR = 0o4, PARMRK = 0o10, INPCK = 0o20, ISTRIP = 0o40;
const INLCR = 0o100, IGNCR = 0o200, ICRNL = 0o400, IUCLC = 0o1000, IXON = 0o2000, IXANY = 0o4000, IXOFF = 0o10000, IMAXBEL = 0o20000;
// c_oflag
const OPOST = 0o1;
// c_cflag
const CBAUD = 0o10017, BOTHER = 0o10000, CSIZE = 0o60, CS7 = 0o40, CS8 = 0o60, CSTOPB = 0o100, CREAD = 0o200;
const PARENB = 0o400, PARODD = 0o1000, CLOCAL = 0o4000;
const IBSHIFT = 16;
const CIBAUD = (CBAUD << IBSHIFT) >>> 0;
const CMSPAR = 0o10000000000, CRTSCTS = 0o20000000000;
// c_lflag
const ISIG = 0o1, ICANON = 0o2, ECHO = 0o10, ECHOE = 0o20, ECHOK = 0o40, ECHONL = 0o100, IEXTEN = 0o100000;
// c_cc indexes
export const VTIME = 5;
export const VMIN = 6;

/** struct termios2: four tcflag_t, c_line, c_cc[19], c_ispeed, c_ospeed. */
export const TERMIOS2_SIZE = 44;
const OFFSET = { iflag: 0, oflag: 4, cflag: 8, lflag: 12, line: 16, cc: 17, ispeed: 36, ospeed: 40 } as const;

/** ioctl request numbers (asm-generic): _IOR('T', 0x2A, struct termios2) and friends. */
export const IOCTL = {
  TCGETS2: 0x802c542a,
  TCSETS2: 0x402c542b,
  TCFLSH: 0x540b,
  TIOCEXCL: 0x540c,
  TIOCNXCL: 0x540d,
} as const;
export const TCIFLUSH = 0;
export const TCIOFLUSH = 2;

/**
 * Standard rates go in c_cflag as their Bxxx code, so that glibc's tcgetattr (stty, pyserial) reads
 * them back; other rates use BOTHER with the number in c_ispeed/c_ospeed, which only termios2 sees.
 */
const BAUD_CODES: ReadonlyMap<number, number> = new Map([
  [50, 0o1], [75, 0o2], [110, 0o3], [134, 0o4], [150, 0o5], [200, 0o6], [300, 0o7], [600, 0o10],
  [1200, 0o11], [1800, 0o12], [2400, 0o13], [4800, 0o14], [9600, 0o15], [19200, 0o16], [38400, 0o17],
  [57600, 0o10001], [115200, 0o10002], [230400, 0o10003], [460800, 0o10004], [500000, 0o10005],
  [576000, 0o10006], [921600, 0o10007], [1000000, 0o10010], [1152000, 0o10011], [1500000, 0o10012],
  [2000000, 0o10013], [2500000, 0o10014], [3000000, 0o10015], [3500000, 0o10016], [4000000, 0o10017],
]);

const clear = (flags: number, bits: number) => (flags & ~bits) >>> 0;
const set = (flags: number, bits: number) => (flags | bits) >>> 0;

export function checkLineSettings(settings: LineSettings): void {
  const { baudRate, parity, dataBits, stopBits } = settings;
  if (!Number.isInteger(baudRate) || baudRate < 50 || baudRate > 4_000_000) throw new RangeError(`baud rate must be an integer 50-4000000, got ${baudRate}`);
  if (!PARITIES.includes(parity)) throw new RangeError(`parity must be one of ${PARITIES.join(", ")}, got ${JSON.stringify(parity)}`);
  if (dataBits !== 7 && dataBits !== 8) throw new RangeError(`data bits must be 7 or 8, got ${dataBits}`);
  if (stopBits !== 1 && stopBits !== 2) throw new RangeError(`stop bits must be 1 or 2, got ${stopBits}`);
}

/**
 * A raw, binary-clean line: no echo, no canonical mode, no signals, no CR/LF translation,
 * no XON/XOFF or RTS/CTS flow control, receiver on, modem lines ignored. Parity errors are
 * checked (INPCK) and delivered as 0x00, so a corrupted byte fails the frame's CRC or checksum
 * instead of silently shortening it. VMIN 1 / VTIME 0: a read returns as soon as a byte is there.
 * Returns a new buffer; `current` (from TCGETS2) keeps the fields we do not own (c_line).
 */
export function rawTermios(current: Uint8Array, settings: LineSettings): Uint8Array {
  checkLineSettings(settings);
  if (current.length < TERMIOS2_SIZE) throw new RangeError(`termios2 needs ${TERMIOS2_SIZE} bytes, got ${current.length}`);
  const t = current.slice(0, TERMIOS2_SIZE);
  const view = new DataView(t.buffer, t.byteOffset, TERMIOS2_SIZE);
  const get = (offset: number) => view.getUint32(offset, true);
  const put = (offset: number, value: number) => view.setUint32(offset, value >>> 0, true);

  let iflag = clear(get(OFFSET.iflag), IGNBRK | BRKINT | IGNPAR | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IUCLC | IXON | IXANY | IXOFF | IMAXBEL);
  iflag = settings.parity === "none" ? clear(iflag, INPCK) : set(iflag, INPCK);
  put(OFFSET.iflag, iflag);
  put(OFFSET.oflag, clear(get(OFFSET.oflag), OPOST));
  put(OFFSET.lflag, clear(get(OFFSET.lflag), ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHONL | IEXTEN));

  let cflag = clear(get(OFFSET.cflag), CBAUD | CIBAUD | CSIZE | CSTOPB | PARENB | PARODD | CMSPAR | CRTSCTS);
  cflag = set(cflag, (settings.dataBits === 8 ? CS8 : CS7) | CREAD | CLOCAL | (BAUD_CODES.get(settings.baudRate) ?? BOTHER));
  if (settings.stopBits === 2) cflag = set(cflag, CSTOPB);
  if (settings.parity !== "none") cflag = set(cflag, PARENB);
  if (settings.parity === "odd") cflag = set(cflag, PARODD);
  put(OFFSET.cflag, cflag);

  t[OFFSET.cc + VMIN] = 1;
  t[OFFSET.cc + VTIME] = 0;
  // CIBAUD cleared: the input speed follows the output speed. Both are set anyway.
  put(OFFSET.ispeed, settings.baudRate);
  put(OFFSET.ospeed, settings.baudRate);
  return t;
}

export interface TermiosSummary extends LineSettings {
  /** Input speed when it differs from the output speed. */
  inputBaudRate: number;
  raw: boolean;
  flowControl: boolean;
}

/** Reads back what the driver accepted (drivers may round the speed or refuse parity). */
export function describeTermios(t: Uint8Array): TermiosSummary {
  const view = new DataView(t.buffer, t.byteOffset, TERMIOS2_SIZE);
  const iflag = view.getUint32(OFFSET.iflag, true);
  const cflag = view.getUint32(OFFSET.cflag, true);
  const lflag = view.getUint32(OFFSET.lflag, true);
  const parity: Parity = (cflag & PARENB) === 0 ? "none" : (cflag & PARODD) !== 0 ? "odd" : "even";
  return {
    baudRate: view.getUint32(OFFSET.ospeed, true),
    inputBaudRate: view.getUint32(OFFSET.ispeed, true),
    parity,
    dataBits: (cflag & CSIZE) === CS7 ? 7 : 8,
    stopBits: (cflag & CSTOPB) === 0 ? 1 : 2,
    raw: (lflag & (ICANON | ECHO | ISIG)) === 0 && (iflag & (IXON | ICRNL)) === 0,
    flowControl: (cflag & CRTSCTS) !== 0 || (iflag & (IXON | IXOFF)) !== 0,
  };
}

/** Bits on the wire per character: start + data + parity + stop. */
export function bitsPerCharacter(settings: LineSettings): number {
  return 1 + settings.dataBits + (settings.parity === "none" ? 0 : 1) + settings.stopBits;
}

/** "19200 8E1" */
export function formatLine(settings: LineSettings): string {
  return `${settings.baudRate} ${settings.dataBits}${settings.parity[0]!.toUpperCase()}${settings.stopBits}`;
}
