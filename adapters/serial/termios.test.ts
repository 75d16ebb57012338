import { describe, expect, test } from "bun:test";
import { bitsPerCharacter, checkLineSettings, describeTermios, formatLine, rawTermios, TERMIOS2_SIZE, VMIN, VTIME, type LineSettings } from "./termios.ts";

/** A cooked tty as the kernel hands it out: echo, canonical mode, ICRNL, IXON, 38400 8N1 (values from `stty -a` of a fresh pty). */
function cookedTermios(): Uint8Array {
  const t = new Uint8Array(TERMIOS2_SIZE);
  const view = new DataView(t.buffer);
  view.setUint32(0, 0o2400 | 0o2000, true); // ICRNL | IXON (| IMAXBEL-ish bits)
  view.setUint32(4, 0o5, true); // OPOST | ONLCR
  view.setUint32(8, 0o277 | 0o10000, true); // B38400 | CS8 | CREAD | BOTHER
  view.setUint32(12, 0o105073, true); // ISIG ICANON ECHO ECHOE ECHOK IEXTEN ...
  t[16] = 0; // N_TTY
  view.setUint32(36, 38400, true);
  view.setUint32(40, 38400, true);
  return t;
}

const u32 = (t: Uint8Array, offset: number) => new DataView(t.buffer, t.byteOffset).getUint32(offset, true);

describe("termios2 line settings", () => {
  const cases: Array<[LineSettings, { cflagSet: number; cflagClear: number }]> = [
    // CS8 = 0o60, CSTOPB = 0o100, PARENB = 0o400, PARODD = 0o1000 (asm-generic/termbits.h)
    [{ baudRate: 9600, parity: "none", dataBits: 8, stopBits: 1 }, { cflagSet: 0o60, cflagClear: 0o100 | 0o400 | 0o1000 }],
    [{ baudRate: 19200, parity: "even", dataBits: 8, stopBits: 1 }, { cflagSet: 0o60 | 0o400, cflagClear: 0o100 | 0o1000 }],
    [{ baudRate: 115200, parity: "odd", dataBits: 7, stopBits: 2 }, { cflagSet: 0o40 | 0o100 | 0o400 | 0o1000, cflagClear: 0o20 }],
  ];
  for (const [line, { cflagSet, cflagClear }] of cases) {
    test(`${formatLine(line)}: data bits, parity and stop bits in c_cflag, speed as its Bxxx code and in c_ispeed/c_ospeed`, () => {
      const t = rawTermios(cookedTermios(), line);
      const cflag = u32(t, 8);
      expect(cflag & cflagSet).toBe(cflagSet);
      expect(cflag & cflagClear).toBe(0);
      expect(cflag & 0o10017).toBe(new Map([[9600, 0o15], [19200, 0o16], [115200, 0o10002]]).get(line.baudRate)!); // B9600, B19200, B115200
      expect(cflag & 0o200).toBe(0o200); // CREAD
      expect(cflag & 0o4000).toBe(0o4000); // CLOCAL: no modem control lines on RS-485
      expect(cflag & 0o20000000000).toBe(0); // no RTS/CTS
      expect([u32(t, 36), u32(t, 40)]).toEqual([line.baudRate, line.baudRate]);
      expect(describeTermios(t)).toMatchObject({ ...line, inputBaudRate: line.baudRate, raw: true, flowControl: false });
    });
  }

  test("a non-standard rate (250000, DMX-style) uses BOTHER with the number in c_ispeed/c_ospeed", () => {
    const t = rawTermios(cookedTermios(), { baudRate: 250_000, parity: "none", dataBits: 8, stopBits: 2 });
    expect(u32(t, 8) & 0o10017).toBe(0o10000);
    expect([u32(t, 36), u32(t, 40)]).toEqual([250_000, 250_000]);
  });

  test("raw: no echo, canonical mode, signals, CR/LF translation or XON/XOFF; VMIN 1, VTIME 0", () => {
    const t = rawTermios(cookedTermios(), { baudRate: 9600, parity: "none", dataBits: 8, stopBits: 1 });
    expect(u32(t, 0) & (0o2000 | 0o400 | 0o10000)).toBe(0); // IXON, ICRNL, IXOFF
    expect(u32(t, 4) & 0o1).toBe(0); // OPOST
    expect(u32(t, 12) & (0o1 | 0o2 | 0o10 | 0o100000)).toBe(0); // ISIG, ICANON, ECHO, IEXTEN
    expect([t[17 + VMIN], t[17 + VTIME]]).toEqual([1, 0]);
  });

  test("parity on: INPCK so a parity error arrives as 0x00 (the frame then fails its check); off: no INPCK", () => {
    expect(u32(rawTermios(cookedTermios(), { baudRate: 9600, parity: "even", dataBits: 8, stopBits: 1 }), 0) & 0o20).toBe(0o20);
    expect(u32(rawTermios(cookedTermios(), { baudRate: 9600, parity: "none", dataBits: 8, stopBits: 1 }), 0) & 0o20).toBe(0);
  });

  test("the input is not modified; c_line is kept", () => {
    const before = cookedTermios();
    before[16] = 7;
    const copy = before.slice();
    const t = rawTermios(before, { baudRate: 9600, parity: "none", dataBits: 8, stopBits: 1 });
    expect(before).toEqual(copy);
    expect(t[16]).toBe(7);
  });

  test("invalid settings are refused before touching a device", () => {
    expect(() => checkLineSettings({ baudRate: 0, parity: "none", dataBits: 8, stopBits: 1 })).toThrow("baud rate");
    expect(() => checkLineSettings({ baudRate: 9600, parity: "mark" as never, dataBits: 8, stopBits: 1 })).toThrow("parity");
    expect(() => checkLineSettings({ baudRate: 9600, parity: "none", dataBits: 6 as never, stopBits: 1 })).toThrow("data bits");
    expect(() => checkLineSettings({ baudRate: 9600, parity: "none", dataBits: 8, stopBits: 3 as never })).toThrow("stop bits");
  });

  test("bits per character: start + data + parity + stop", () => {
    expect(bitsPerCharacter({ baudRate: 9600, parity: "even", dataBits: 8, stopBits: 1 })).toBe(11);
    expect(bitsPerCharacter({ baudRate: 9600, parity: "none", dataBits: 8, stopBits: 2 })).toBe(11);
    expect(bitsPerCharacter({ baudRate: 9600, parity: "none", dataBits: 8, stopBits: 1 })).toBe(10);
    expect(formatLine({ baudRate: 19200, parity: "even", dataBits: 8, stopBits: 1 })).toBe("19200 8E1");
  });
});
