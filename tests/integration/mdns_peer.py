"""A LAN-discovery peer for the LAN lab: runs peer_agent/mdns.py and mdns_browser.py for real,
inside a lab namespace.

    mdns_peer.py advertise SECRET_HEX [--clock-start T]
    mdns_peer.py browse SECRET_HEX [--find SECONDS]

`advertise` opens a TCP listener on an ephemeral port, advertises that port for one pairing
whose pair secret is SECRET_HEX, greets whoever connects, and on SIGTERM withdraws the service
(goodbye packets) before it exits 0. `--clock-start T` is the test's injected clock: the
advertiser's `now` starts at T and runs at real speed, so an epoch boundary can be put a few
seconds ahead.

`browse` prints every service added, updated or removed with its tags and whether they match
its own pairing (SECRET_HEX); with `--find`, it also looks for its agent, connects to the
address and port found, and reports the greeting.

One JSON event per line on stdout; each carries `mono` (CLOCK_MONOTONIC, the same in every
namespace) so that the test can time what happened in different processes. Never run it in the
host namespace: mDNS belongs in lab namespaces only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import time
from typing import Any

from crypto.records import PairingRecord
from peer_agent.mdns import LanAdvertiser
from peer_agent.mdns_browser import (
    LanBrowser,
    LanEvent,
    LanService,
    LanServiceAdded,
    LanServiceRemoved,
    LanServiceUpdated,
)

GREETING = b"peerbeam lan lab\n"


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "mono": time.monotonic(), **fields}), flush=True)


def record_for(secret: bytes) -> PairingRecord:
    return PairingRecord(peer_name="lab peer", peer_key=bytes(32), pair_secret=secret,
                         role="responder", server="", paired_at=0.0, last_seen=0.0)


def until_sigterm() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    return stop


async def advertise(secret: bytes, clock_start: float | None) -> None:
    stop = until_sigterm()
    clock = time.time
    if clock_start is not None:
        start_mono = time.monotonic()
        emit("clock", start=clock_start, mono0=start_mono)

        def clock() -> float:
            return clock_start + (time.monotonic() - start_mono)

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        emit("accepted", peer=writer.get_extra_info("peername")[0])
        writer.write(GREETING)
        await writer.drain()
        writer.close()

    # One dual-stack socket, so that IPv4 and IPv6 share the one port advertised.
    sock = socket.create_server(("::", 0), family=socket.AF_INET6, dualstack_ipv6=True)
    server = await asyncio.start_server(greet, sock=sock)
    port = sock.getsockname()[1]
    advertiser = LanAdvertiser(lambda: [record_for(secret)], port, now=clock)
    await advertiser.start()
    emit("advertising", name=advertiser.names.instance, host=advertiser.names.host, port=port,
         addresses=advertiser.addresses, txt=advertiser.txt.hex())
    await stop.wait()
    emit("stopping")
    await advertiser.close()
    emit("withdrawn")
    server.close()
    await server.wait_closed()


def describe(service: LanService, mine: PairingRecord, browser: LanBrowser) -> dict[str, Any]:
    matched = browser.match([mine], time.time())
    return {"name": service.name, "addresses": list(service.addresses), "port": service.port,
            "version": service.advert.version,
            "tags": sorted(t.hex() for t in service.advert.tags),
            "matched": matched is not None and matched.service.name == service.name}


async def browse(secret: bytes, find: float | None) -> None:
    stop = until_sigterm()
    mine = record_for(secret)
    browser: LanBrowser

    def on_event(event: LanEvent) -> None:
        if isinstance(event, LanServiceAdded):
            emit("added", **describe(event.service, mine, browser))
        elif isinstance(event, LanServiceUpdated):
            emit("updated", **describe(event.service, mine, browser))
        elif isinstance(event, LanServiceRemoved):
            emit("removed", name=event.name)

    browser = LanBrowser(on_event)
    await browser.start()
    emit("browsing")
    if find is not None:
        found = await browser.find([mine], find)
        if found is None:
            emit("not_found")
        else:
            emit("found", name=found.service.name, address=found.service.addresses[0],
                 port=found.service.port, addresses=list(found.service.addresses),
                 peer_name=found.record.peer_name)
            for address in found.service.addresses:  # IPv4 first, then IPv6
                reader, writer = await asyncio.open_connection(address, found.service.port)
                greeting = await reader.readline()
                emit("connected", address=address, greeting=greeting.decode(),
                     local=writer.get_extra_info("sockname")[0])
                writer.close()
    await stop.wait()
    await browser.close()
    emit("closed")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["advertise", "browse"])
    parser.add_argument("secret")
    parser.add_argument("--clock-start", type=float)
    parser.add_argument("--find", type=float)
    args = parser.parse_args()
    secret = bytes.fromhex(args.secret)
    if args.mode == "advertise":
        asyncio.run(advertise(secret, args.clock_start))
    else:
        asyncio.run(browse(secret, args.find))


if __name__ == "__main__":
    main()
