#!/usr/bin/env python3
"""An independent Modbus RTU slave (pymodbus 3.16 serial server) for the RTU adapter's interoperability tests.

Usage:
    pymodbus_rtu_server.py --device /tmp/pty-x/b --baud 19200 --parity N --unit-ids 1,2 --registers registers.json

--registers takes the same JSON as pymodbus_server.py (the TCP peer), whose table builders this
script reuses: {"holding": {...}, "input": {...}, "coils": {...}, "discrete": {...}, "units": {"<id>": {...}}}.

Unit ids not in --unit-ids get no answer at all, as a dead or absent slave on a real bus. pymodbus
3.16 answers them with exception 4 even with ignore_missing_devices (its simulator datastore raises
a generic error rather than NoSuchIdException), so outgoing frames for them are dropped in trace_packet.

Prints "READY <device>" on stdout once the port is open; exits 0 on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pymodbus.server import ModbusSerialServer  # noqa: E402

from pymodbus_server import device, load  # noqa: E402


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", required=True, help="serial device, e.g. one end of a socat pty pair")
    parser.add_argument("--baud", type=int, default=19200)
    parser.add_argument("--parity", choices=("N", "E", "O"), default="N")
    parser.add_argument("--stopbits", type=int, choices=(1, 2), default=1)
    parser.add_argument("--unit-ids", default="1", help="comma-separated unit ids, e.g. 1,2")
    parser.add_argument("--registers", default="", help="JSON file or JSON string (see pymodbus_server.py)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.ERROR, stream=sys.stderr)

    spec = load(args.registers)
    per_unit = spec.get("units", {})
    unit_ids = [int(u) for u in args.unit_ids.split(",") if u.strip()]
    devices = [device(u, per_unit.get(str(u), spec)) for u in unit_ids]

    served = set(unit_ids)

    def drop_replies_for_absent_units(sending: bool, data: bytes) -> bytes:
        if sending and data and data[0] not in served:
            return b""
        return data

    server = ModbusSerialServer(
        devices,
        port=args.device,
        baudrate=args.baud,
        parity=args.parity,
        bytesize=8,
        stopbits=args.stopbits,
        ignore_missing_devices=True,
        trace_packet=drop_replies_for_absent_units,
    )
    await server.serve_forever(background=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {args.device}", flush=True)
    await stop.wait()
    await server.shutdown()
    return 0


if __name__ == "__main__":
    code = asyncio.run(main())
    sys.stdout.flush()
    os._exit(code)
