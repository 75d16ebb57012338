#!/usr/bin/env python3
"""An independent Modbus TCP server (pymodbus 3.16) for the adapter's interoperability tests.

Usage:
    pymodbus_server.py --port 0 --unit-ids 1,2 --registers registers.json
    pymodbus_server.py --port 5020 --registers '{"holding": {"0": 4660}}'

--registers is a JSON file or a JSON string:

    {
      "holding":  {"<address>": word | [word, ...]},   # FC3, 16-bit raw words
      "input":    {"<address>": word | [word, ...]},   # FC4
      "coils":    {"<address>": bool | [bool, ...]},   # FC1
      "discrete": {"<address>": bool | [bool, ...]},   # FC2
      "units":    {"<unit id>": {same four tables}}    # replaces the tables above for that unit
    }

Addresses are 0-based PDU addresses (what goes on the wire). A list fills consecutive addresses.
Each table is served densely from address 0 to its last address + 16, unset entries being 0 /
false, so reads that span unmapped gaps succeed as on a typical PLC.

Prints "READY <port>" on stdout once listening (port 0 picks a free port); exits 0 on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

TABLES = ("coils", "discrete", "holding", "input")  # SimDevice's tuple order
PAD = 16


def dense(table: dict, bits: bool) -> list:
    values: dict[int, int | bool] = {}
    for key, value in (table or {}).items():
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            address = int(key) + i
            if not 0 <= address <= 65535:
                raise ValueError(f"address {address} outside 0-65535")
            if bits:
                values[address] = bool(item)
            else:
                if not isinstance(item, int) or not 0 <= item <= 0xFFFF:
                    raise ValueError(f"register {address}: {item!r} is not a 16-bit word")
                values[address] = item
    size = min(max(values, default=-1) + 1 + PAD, 65536)
    return [values.get(a, False if bits else 0) for a in range(size)]


def device(unit_id: int, tables: dict) -> SimDevice:
    blocks = []
    for name in TABLES:
        bits = name in ("coils", "discrete")
        values = dense(tables.get(name, {}), bits)
        datatype = DataType.BITS if bits else DataType.REGISTERS
        blocks.append([SimData(address=0, values=values, datatype=datatype)])
    # Separate tables: coil/discrete-input addresses count bits, as on the wire.
    return SimDevice(id=unit_id, simdata=tuple(blocks), use_bit_addressing=True)


def load(arg: str) -> dict:
    if not arg:
        return {}
    if arg.lstrip().startswith("{"):
        return json.loads(arg)
    with open(arg, encoding="utf-8") as f:
        return json.load(f)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--unit-ids", default="1", help="comma-separated unit ids, e.g. 1,2")
    parser.add_argument("--registers", default="", help="JSON file or JSON string (see module doc)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.ERROR, stream=sys.stderr)

    spec = load(args.registers)
    per_unit = spec.get("units", {})
    unit_ids = [int(u) for u in args.unit_ids.split(",") if u.strip()]
    devices = [device(u, per_unit.get(str(u), spec)) for u in unit_ids]

    server = ModbusTcpServer(devices, address=(args.host, args.port))
    await server.serve_forever(background=True)
    port = server.transport.sockets[0].getsockname()[1]

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {port}", flush=True)
    await stop.wait()
    await server.shutdown()
    return 0


if __name__ == "__main__":
    code = asyncio.run(main())
    sys.stdout.flush()
    os._exit(code)
