#!/usr/bin/env python3
"""An independent OPC UA server (asyncua 2.1, PyPI) for the OPC UA adapter's interoperability tests.

Usage:
    asyncua_server.py --port 4840 [--security None,Basic256Sha256_Sign,...] [--user NAME:PASSWORD]
                      [--cert-dir DIR] [--held-timestamp EPOCH_MS] [--interval-ms 200]

Namespace "urn:gateway-test:asyncua" (index 2), under Objects/Plant:

    ns=2;s=Counter      Int32    +1 every --interval-ms; source timestamp = time of the change
    ns=2;s=Temperature  Double   20 + (counter % 10) / 2, changing with the counter
    ns=2;s=Running      Boolean  counter is even
    ns=2;s=Name         String   "asyncua-plant" (constant)
    ns=2;s=Uncertain    Double   1.5 with status UncertainLastUsableValue
    ns=2;s=BadSensor    Double   null with status BadSensorFailure
    ns=2;s=Held         Double   42.5 with source timestamp --held-timestamp (default: start time),
                                 so a restarted server serves exactly the sample served before
    ns=2;s=Big          Int64    9007199254740993 (2^53 + 1)

--security lists the endpoints: None, and <policy>_<Sign|SignAndEncrypt> for the policies
Basic256Sha256, Aes128Sha256RsaOaep, Aes256Sha256RsaPss. With any secure endpoint a self-signed
server certificate is made at start in --cert-dir (a temporary folder by default); client
certificates are accepted without a trust list (asyncua's default).

--user NAME:PASSWORD allows only that user (anonymous and other users are refused).

Prints "READY <port>" on stdout once listening; exits 0 on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import signal
import socket
import sys
import tempfile
from pathlib import Path

from asyncua import Server, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import User, UserRole
from cryptography.x509.oid import ExtendedKeyUsageOID

NAMESPACE = "urn:gateway-test:asyncua"
APP_URI = "urn:gateway-test:asyncua:server"

POLICIES = {
    "None": ua.SecurityPolicyType.NoSecurity,
    "Basic256Sha256_Sign": ua.SecurityPolicyType.Basic256Sha256_Sign,
    "Basic256Sha256_SignAndEncrypt": ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    "Aes128Sha256RsaOaep_Sign": ua.SecurityPolicyType.Aes128Sha256RsaOaep_Sign,
    "Aes128Sha256RsaOaep_SignAndEncrypt": ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt,
    "Aes256Sha256RsaPss_Sign": ua.SecurityPolicyType.Aes256Sha256RsaPss_Sign,
    "Aes256Sha256RsaPss_SignAndEncrypt": ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
}


class OneUser:
    def __init__(self, name: str, password: str) -> None:
        self.name = name
        self.password = password

    def get_user(self, iserver, username=None, password=None, certificate=None):
        if username == self.name and password == self.password:
            return User(role=UserRole.User)
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--security", default="None")
    parser.add_argument("--user", default=None)
    parser.add_argument("--cert-dir", default=None)
    parser.add_argument("--held-timestamp", type=int, default=None)
    parser.add_argument("--interval-ms", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)

    port = args.port or free_port()
    security = [s.strip() for s in args.security.split(",") if s.strip()]
    unknown = [s for s in security if s not in POLICIES]
    if unknown:
        print(f"unknown --security {unknown}; expected {list(POLICIES)}", file=sys.stderr)
        return 2

    user_manager = None
    if args.user:
        name, _, password = args.user.partition(":")
        user_manager = OneUser(name, password)
    server = Server(user_manager=user_manager)
    await server.init()
    endpoint = f"opc.tcp://127.0.0.1:{port}/"
    server.set_endpoint(endpoint)
    server.set_server_name("gateway-test asyncua server")
    await server.set_application_uri(APP_URI)
    server.set_security_policy([POLICIES[s] for s in security])
    if args.user:
        server.set_identity_tokens([ua.UserNameIdentityToken])

    if any(s != "None" for s in security):
        cert_dir = Path(args.cert_dir or tempfile.mkdtemp(prefix="asyncua-"))
        cert_dir.mkdir(parents=True, exist_ok=True)
        key_file, cert_file = cert_dir / "server-key.pem", cert_dir / "server-cert.der"
        await setup_self_signed_certificate(
            key_file, cert_file, APP_URI, "127.0.0.1", [ExtendedKeyUsageOID.SERVER_AUTH],
            {"countryName": "NO", "organizationName": "gateway-test", "commonName": "asyncua test server"},
        )
        await server.load_certificate(str(cert_file))
        await server.load_private_key(str(key_file))

    idx = await server.register_namespace(NAMESPACE)
    plant = await server.nodes.objects.add_object(ua.NodeId("Plant", idx), ua.QualifiedName("Plant", idx))

    async def variable(name: str, value, vtype: ua.VariantType):
        return await plant.add_variable(ua.NodeId(name, idx), ua.QualifiedName(name, idx), ua.Variant(value, vtype))

    counter = await variable("Counter", 0, ua.VariantType.Int32)
    temperature = await variable("Temperature", 20.0, ua.VariantType.Double)
    running = await variable("Running", True, ua.VariantType.Boolean)
    await variable("Name", "asyncua-plant", ua.VariantType.String)
    uncertain = await variable("Uncertain", 1.5, ua.VariantType.Double)
    bad = await variable("BadSensor", 0.0, ua.VariantType.Double)
    held = await variable("Held", 42.5, ua.VariantType.Double)
    await variable("Big", 9007199254740993, ua.VariantType.Int64)

    started = now()
    held_at = (
        datetime.datetime.fromtimestamp(args.held_timestamp / 1000, datetime.timezone.utc)
        if args.held_timestamp is not None else started
    )

    async def write(node, variant: ua.Variant, status=ua.StatusCodes.Good, at=None):
        at = at or now()
        await server.write_attribute_value(
            node.nodeid, ua.DataValue(variant, StatusCode=ua.StatusCode(status), SourceTimestamp=at, ServerTimestamp=now())
        )

    await write(uncertain, ua.Variant(1.5, ua.VariantType.Double), ua.StatusCodes.UncertainLastUsableValue)
    await write(bad, ua.Variant(None, ua.VariantType.Null), ua.StatusCodes.BadSensorFailure)
    await write(held, ua.Variant(42.5, ua.VariantType.Double), at=held_at)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async with server:
        print(f"READY {port}", flush=True)
        n = 0
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=args.interval_ms / 1000)
                break
            except asyncio.TimeoutError:
                pass
            n += 1
            at = now()
            await write(counter, ua.Variant(n, ua.VariantType.Int32), at=at)
            await write(temperature, ua.Variant(20 + (n % 10) / 2, ua.VariantType.Double), at=at)
            await write(running, ua.Variant(n % 2 == 0, ua.VariantType.Boolean), at=at)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
