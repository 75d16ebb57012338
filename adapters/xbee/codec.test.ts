/**
 * XBee API frames against Digi's published examples. Each vector's checksum was also verified by
 * hand: checksum = 0xFF − (sum of the frame data bytes, i.e. everything between the length and the
 * checksum, & 0xFF). Sources (Digi user guides, "API frame" / "Frame descriptions" chapters):
 *   [S2C]  XBee/XBee-PRO S2C Zigbee RF Module User Guide (90002002), "Escaped characters" and 0x88
 *   [ZB]   XBee/XBee-PRO ZigBee RF Modules User Guide (90000976), 0x90 and 0x97 examples
 *   [XB3]  Digi XBee 3 Zigbee RF Module User Guide (90001539), 0x08, 0x17 and 0x92 examples
 *   [900]  XBee-PRO 900HP User Guide (90002173), 0x10 example in escaped mode
 */
import { describe, expect, test } from "bun:test";
import {
  checksum, encodeFrame, encodeFrameData, encodeNodeDiscovery, FrameDecoder, FrameType, normalizeAddress64, parseFrameData, parseNodeDiscovery,
  type AtCommand, type AtCommandResponse, type DecodeEvent, type IoSample, type RemoteAtCommand, type RemoteAtResponse, type RxPacket,
} from "./codec.ts";

const hex = (text: string) => Uint8Array.from(text.trim().split(/\s+/).map((h) => Number.parseInt(h, 16)));
const toHex = (bytes: ArrayLike<number>) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0").toUpperCase()).join(" ");
const frames = (events: DecodeEvent[]) => events.filter((e) => e.kind === "frame").map((e) => toHex((e as { data: Uint8Array }).data));
const errors = (events: DecodeEvent[]) => events.filter((e) => e.kind === "error").map((e) => (e as { error: string }).error);

describe("Digi's example frames (API mode 1)", () => {
  // [frame as on the wire in AP=1, source, by-hand checksum]
  const vectors: Array<[string, string, string]> = [
    ["7E 00 04 08 01 4E 44 64", "AT command ND (node discover), frame id 1", "08+01+4E+44 = 0x9B; FF−9B = 64"],
    ["7E 00 06 08 01 42 44 04 B0 BC", "[XB3] AT command BD = 0x04B0", "08+01+42+44+04+B0 = 0x143; FF−43 = BC"],
    ["7E 00 05 88 01 42 44 00 F0", "[S2C] AT command response: BD set, status OK", "88+01+42+44+00 = 0x10F; FF−0F = F0"],
    [
      "7E 00 12 90 00 13 A2 00 40 52 2B AA 7D 84 01 52 78 44 61 74 61 0D",
      '[ZB][XB3] RX packet from 0013A200 40522BAA / 7D84, acknowledged, "RxData"',
      "90 + (00+13+A2+00+40+52+2B+AA = 0x21C) + (7D+84 = 0x101) + 01 + (52+78+44+61+74+61 = 0x244) = 0x5F2; FF−F2 = 0D",
    ],
    [
      "7E 00 14 92 00 13 A2 00 40 52 2B AA 7D 84 01 01 00 1C 02 00 14 02 25 F5",
      "[XB3] IO sample: DIO2-4 sampled (0x001C), AD1 sampled, DIO2 and DIO4 high (0x0014), AD1 = 0x225",
      "92+0x21C+0x101+01+01+00+1C+02+00+14+02+25 = 0x40A; FF−0A = F5",
    ],
    [
      "7E 00 10 17 01 00 13 A2 00 40 40 11 22 FF FE 02 42 48 01 F5",
      "[XB3] remote AT command to 0013A200 40401122, 16-bit unknown (FFFE), apply changes, BH = 1",
      "sum 0x40A; FF−0A = F5",
    ],
    [
      "7E 00 13 97 55 00 13 A2 00 40 52 2B AA 7D 84 53 4C 00 40 52 2B AA F0",
      "[ZB] remote AT response to SL from 0013A200 40522BAA / 7D84, frame id 0x55: 40522BAA",
      "97+55+0x21C+7D+84+53+4C+00+40+52+2B+AA = 0x60F; FF−0F = F0",
    ],
  ];
  for (const [wire, source, arithmetic] of vectors) {
    test(`${source} (${arithmetic})`, () => {
      const bytes = hex(wire);
      const data = bytes.subarray(3, bytes.length - 1);
      expect(checksum(data)).toBe(bytes[bytes.length - 1]!);
      expect(toHex(encodeFrame(data, 1))).toBe(toHex(bytes));
      const decoder = new FrameDecoder(1);
      expect(frames(decoder.push(bytes))).toEqual([toHex(data)]);
      // Typed: parse → encode gives the same bytes back.
      const parsed = parseFrameData(data);
      expect(toHex(encodeFrameData(parsed as never))).toBe(toHex(data));
    });
  }

  test("typed fields of the examples", () => {
    const rx = parseFrameData(hex("90 00 13 A2 00 40 52 2B AA 7D 84 01 52 78 44 61 74 61")) as RxPacket;
    expect(rx).toMatchObject({ type: 0x90, source64: "0013A20040522BAA", source16: 0x7d84, options: 1 });
    expect(new TextDecoder().decode(rx.data)).toBe("RxData");

    const io = parseFrameData(hex("92 00 13 A2 00 40 52 2B AA 7D 84 01 01 00 1C 02 00 14 02 25")) as IoSample;
    expect(io).toMatchObject({ type: 0x92, source64: "0013A20040522BAA", digitalMask: 0x1c, analogMask: 0x02 });
    expect([...io.digital]).toEqual([[2, true], [3, false], [4, true]]);
    expect([...io.analog]).toEqual([[1, 0x225]]);

    expect(parseFrameData(hex("08 01 4E 44"))).toMatchObject({ type: 0x08, frameId: 1, command: "ND" } satisfies Partial<AtCommand>);
    expect(parseFrameData(hex("88 01 42 44 00"))).toMatchObject({ type: 0x88, frameId: 1, command: "BD", status: 0 } satisfies Partial<AtCommandResponse>);
    expect(parseFrameData(hex("17 01 00 13 A2 00 40 40 11 22 FF FE 02 42 48 01"))).toMatchObject({
      type: 0x17, frameId: 1, destination64: "0013A20040401122", destination16: 0xfffe, options: 2, command: "BH",
    } satisfies Partial<RemoteAtCommand>);
    const sl = parseFrameData(hex("97 55 00 13 A2 00 40 52 2B AA 7D 84 53 4C 00 40 52 2B AA")) as RemoteAtResponse;
    expect(sl).toMatchObject({ type: 0x97, frameId: 0x55, source64: "0013A20040522BAA", source16: 0x7d84, command: "SL", status: 0 });
    expect(toHex(sl.data)).toBe("40 52 2B AA");
  });
});

describe("API mode 2 (escaped)", () => {
  test('[S2C] "7E 00 02 23 11 CB" escapes 0x11 as 7D 31; length and checksum count unescaped bytes (FF − (23 + 11) = CB)', () => {
    expect(toHex(encodeFrame(hex("23 11"), 2))).toBe("7E 00 02 23 7D 31 CB");
    expect(frames(new FrameDecoder(2).push(hex("7E 00 02 23 7D 31 CB")))).toEqual(["23 11"]);
  });

  test("[900] a transmit request whose address (13) and checksum (13) are both escaped", () => {
    const wire = "7E 00 16 10 01 00 7D 33 A2 00 40 0A 01 27 FF FE 00 00 54 78 44 61 74 61 30 41 7D 33";
    const data = hex("10 01 00 13 A2 00 40 0A 01 27 FF FE 00 00 54 78 44 61 74 61 30 41");
    expect(checksum(data)).toBe(0x13); // 0x10+...+0x41 = 0x5EC; FF−EC = 13
    expect(toHex(encodeFrame(data, 2))).toBe(wire);
    const [event] = new FrameDecoder(2).push(hex(wire));
    expect(event).toEqual({ kind: "frame", data });
    expect(parseFrameData(data)).toEqual({ type: 0x10, body: data.slice(1) }); // a type we pass through untyped
  });

  test("the RX example in mode 2: 0x13 and 0x7D escaped, the start delimiter never", () => {
    const data = hex("90 00 13 A2 00 40 52 2B AA 7D 84 01 52 78 44 61 74 61");
    const wire = encodeFrame(data, 2);
    expect(toHex(wire)).toBe("7E 00 12 90 00 7D 33 A2 00 40 52 2B AA 7D 5D 84 01 52 78 44 61 74 61 0D");
    expect(wire.indexOf(0x7e, 1)).toBe(-1);
    expect(frames(new FrameDecoder(2).push(wire))).toEqual([toHex(data)]);
  });

  test("every byte value survives escaping, including a length and checksum that need it", () => {
    // 0x7E bytes of data: length 0x7E, and a checksum made to be 0x7D.
    const data = Uint8Array.from({ length: 0x7e }, (_, i) => (i * 37) & 0xff);
    data[0] = 0x90;
    data[data.length - 1] = (data[data.length - 1]! + checksum(data) - 0x7d + 256) & 0xff;
    expect(checksum(data)).toBe(0x7d);
    const wire = encodeFrame(data, 2);
    expect(toHex(wire.subarray(0, 4))).toBe("7E 00 7D 5E");
    expect(toHex(wire.subarray(-2))).toBe("7D 5D");
    expect(frames(new FrameDecoder(2).push(wire))).toEqual([toHex(data)]);
  });
});

describe("streaming decoder: noise, bad checksums, truncation, byte-by-byte", () => {
  const good = (n: number) => encodeFrameData({ type: FrameType.RX_PACKET, source64: "0013A20040522BAA", source16: 0x7d84, options: 1, data: Uint8Array.of(n, 0x7e, 0x7d, 0x11, 0x13) });

  for (const mode of [1, 2] as const) {
    test(`mode ${mode}: frames split at every byte boundary are reassembled`, () => {
      const wire = [...encodeFrame(good(1), mode), ...encodeFrame(good(2), mode)];
      const decoder = new FrameDecoder(mode);
      const events = wire.flatMap((b) => decoder.push([b]));
      expect(frames(events)).toEqual([toHex(good(1)), toHex(good(2))]);
      expect(errors(events)).toEqual([]);
    });

    test(`mode ${mode}: line noise, a corrupted checksum and a truncated frame are skipped, counted, and every good frame survives`, () => {
      const corrupted = [...encodeFrame(good(2), mode)];
      corrupted[corrupted.length - 1]! ^= 0x01;
      const truncated = [...encodeFrame(good(3), mode)].slice(0, 9);
      const wire = [
        0x00, 0xff, 0x42, // noise before anything
        ...encodeFrame(good(1), mode),
        0x55, 0x7e, 0x00, // noise with a start delimiter and a half length
        ...encodeFrame(good(4), mode),
        ...corrupted,
        ...encodeFrame(good(5), mode),
        ...truncated,
        ...encodeFrame(good(6), mode),
      ];
      const decoder = new FrameDecoder(mode);
      const events = [...decoder.push(wire), ...decoder.expire()];
      expect(frames(events)).toEqual([1, 4, 5, 6].map((n) => toHex(good(n))));
      expect(decoder.stats.frames).toBe(4);
      expect(decoder.stats.checksum + decoder.stats.truncated + decoder.stats.length).toBeGreaterThanOrEqual(2);
      expect(decoder.stats.noise).toBeGreaterThanOrEqual(1);
    });

    test(`mode ${mode}: a frame cut off at the end is reported by expire(), and the next one decodes`, () => {
      const decoder = new FrameDecoder(mode);
      expect(decoder.push([...encodeFrame(good(1), mode)].slice(0, 10))).toEqual([]);
      expect(decoder.pending).toBe(true);
      expect(errors(decoder.expire())).toEqual(["truncated"]);
      expect(decoder.pending).toBe(false);
      expect(frames(decoder.push(encodeFrame(good(2), mode)))).toEqual([toHex(good(2))]);
    });

    test(`mode ${mode}: an impossible length is dropped at once rather than waited for`, () => {
      const decoder = new FrameDecoder(mode, { maxFrameLength: 300 });
      const events = decoder.push([0x7e, 0x70, 0x00, ...encodeFrame(good(1), mode)]);
      expect(frames(events)).toEqual([toHex(good(1))]);
      expect(errors(events)).toContain("length");
    });
  }

  test("mode 1: a false start in noise that happens to pass its checksum cannot swallow the frame behind it", () => {
    const real = encodeFrame(good(9), 1);
    // 7E 00 LL <filler> ... chosen so that the false frame covers the real one and its checksum works out.
    const falseLength = 4 + real.length;
    const falseFrame = [0x7e, 0x00, falseLength, 0x90, 0x01, 0x02, 0x03, ...real];
    const sum = falseFrame.slice(3).reduce((a, b) => a + b, 0);
    falseFrame.push(0xff - (sum & 0xff));
    expect(falseFrame.length).toBe(3 + falseLength + 1);
    const decoder = new FrameDecoder(1);
    const events = [...decoder.push(falseFrame), ...decoder.expire()];
    expect(frames(events)).toEqual([toHex(good(9))]);
  });

  test("mode 1: a 0x7E inside a good frame's data does not split it", () => {
    const decoder = new FrameDecoder(1);
    const events = decoder.push(encodeFrame(good(0x7e), 1));
    expect(frames(events)).toEqual([toHex(good(0x7e))]);
    expect(errors(events)).toEqual([]);
  });

  test("mode 2: an unescaped 0x7E inside a frame means it was cut short", () => {
    const decoder = new FrameDecoder(2);
    const events = decoder.push([...encodeFrame(good(1), 2).slice(0, 12), ...encodeFrame(good(2), 2)]);
    expect(errors(events)).toEqual(["truncated"]);
    expect(frames(events)).toEqual([toHex(good(2))]);
  });
});

describe("typed frames", () => {
  test("malformed known types are errors, not crashes", () => {
    expect(() => parseFrameData(hex("90 00 13"))).toThrow("RX packet (0x90) frame needs at least 12 bytes");
    expect(() => parseFrameData(hex("92 00 13 A2 00 40 52 2B AA 7D 84 01 01 00 1C 02 00 14"))).toThrow("is 20 bytes, got 18");
  });

  test("IO sample with the supply voltage (analog bit 7) and no digital lines", () => {
    const io: IoSample = {
      type: FrameType.IO_SAMPLE, source64: "0013a200-40522bab", source16: 0x1234, options: 1,
      digitalMask: 0, analogMask: 0x81, digital: new Map(), analog: new Map([[0, 512], [7, 0x0b6e]]),
    };
    const data = encodeFrameData({ ...io, source64: normalizeAddress64(io.source64) });
    const back = parseFrameData(data) as IoSample;
    expect(back.source64).toBe("0013A20040522BAB");
    expect([...back.analog]).toEqual([[0, 512], [7, 0x0b6e]]);
    expect(back.digital.size).toBe(0);
  });

  test("node discovery data round-trips (MY, SH/SL, NI, parent, type, status, profile, manufacturer)", () => {
    const node = {
      address16: 0x7d84, address64: "0013A20040522BAA", nodeIdentifier: "WELL12", parent16: 0xfffe,
      deviceType: 1, status: 0, profileId: 0xc105, manufacturerId: 0x101e,
    };
    const data = encodeNodeDiscovery(node);
    expect(toHex(data)).toBe("7D 84 00 13 A2 00 40 52 2B AA 57 45 4C 4C 31 32 00 FF FE 01 00 C1 05 10 1E");
    expect(parseNodeDiscovery(data)).toEqual(node);
    expect(() => parseNodeDiscovery(data.subarray(0, 12))).toThrow("truncated");
  });
});

describe("streaming decoder under heavy noise (seeded, reproducible)", () => {
  /** mulberry32: a small seeded PRNG, so a failure replays exactly. */
  function random(seed: number) {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), a | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  for (const mode of [1, 2] as const) {
    test(`mode ${mode}: 3000 frames with random payloads, a third followed by garbage, corrupted or truncated frames: every good frame decodes once`, () => {
      const rand = random(20240 + mode);
      const byte = () => Math.floor(rand() * 256);
      const sent: string[] = [];
      const wire: number[] = [];
      for (let i = 0; i < 3000; i++) {
        const payload = Uint8Array.from({ length: 1 + Math.floor(rand() * 24) }, byte);
        const data = encodeFrameData({ type: FrameType.RX_PACKET, source64: "0013A20040522BAA", source16: 0x7d84, options: 1, data: payload });
        wire.push(...encodeFrame(data, mode));
        sent.push(toHex(data));
        const r = rand();
        if (r < 0.11) {
          for (let n = 1 + Math.floor(rand() * 12); n > 0; n--) wire.push(rand() < 0.2 ? 0x7e : byte()); // garbage, start delimiters included
        } else if (r < 0.22) {
          const bad = [...encodeFrame(encodeFrameData({ type: FrameType.RX_PACKET, source64: "0013A20040522BAA", source16: 1, options: 1, data: Uint8Array.of(byte(), byte()) }), mode)];
          bad[3 + Math.floor(rand() * (bad.length - 3))]! ^= 1 << Math.floor(rand() * 8); // one flipped bit after the delimiter
          wire.push(...bad);
        } else if (r < 0.33) {
          const cut = [...encodeFrame(encodeFrameData({ type: FrameType.RX_PACKET, source64: "0013A20040522BAA", source16: 2, options: 1, data: Uint8Array.of(byte(), byte(), byte()) }), mode)];
          wire.push(...cut.slice(0, 1 + Math.floor(rand() * (cut.length - 2))));
        }
      }
      const decoder = new FrameDecoder(mode);
      const events: DecodeEvent[] = [];
      for (let offset = 0; offset < wire.length;) {
        const size = 1 + Math.floor(rand() * 64); // arbitrary read sizes
        events.push(...decoder.push(wire.slice(offset, offset + size)));
        offset += size;
      }
      events.push(...decoder.expire());
      const decoded = frames(events);
      // Every good frame is delivered, once, in order; no corrupted or truncated one is.
      expect(decoded).toEqual(sent);
      expect(decoder.stats.checksum + decoder.stats.truncated + decoder.stats.length + decoder.stats.noise).toBeGreaterThan(500);
    });
  }
});
