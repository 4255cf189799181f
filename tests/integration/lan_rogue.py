"""A rogue on the LAN (lan3 of the LAN lab): it copies a real agent's mDNS advert — TXT record,
tags and all — into one of its own that points at its own TCP port, and records what a peer
that falls for it sends.

    lan_rogue.py garbage|silence

`garbage`: answers the first handshake message with a well-formed record of random bytes (a
fake handshake reply); `silence`: answers nothing. Events (one JSON object per line):
"advertising" {name, copied_from, port}, then per connection "connection" {kinds (the kind byte
of each record received), first_record (its length), received (all bytes, hex)}.
Never run it in the host namespace: mDNS belongs in lab namespaces only.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import sys
from typing import Any

from zeroconf import ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo

from peer_agent.discovery import SERVICE_TYPE, advertised_addresses
from peer_agent.lan_signal import PREAMBLE
from peer_agent.mdns import choose_interfaces, open_zeroconf


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def main(answer: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received = bytearray()
        kinds: list[int] = []
        first = None
        try:
            received += await reader.readexactly(len(PREAMBLE))
            while True:
                header = await reader.readexactly(4)
                length = int.from_bytes(header, "big")
                if not 0 < length <= 70000:
                    break
                body = await reader.readexactly(length)
                received += header + body
                kinds.append(body[0])
                first = first or length
                if answer == "garbage" and len(kinds) == 1:
                    reply = bytes([1]) + os.urandom(48)  # shaped like a KK reply: e, tag
                    writer.write(len(reply).to_bytes(4, "big") + reply)
        except (asyncio.IncompleteReadError, OSError):
            pass
        emit("connection", kinds=kinds, first_record=first, received=received.hex())
        writer.close()

    sock = socket.create_server(("::", 0), family=socket.AF_INET6, dualstack_ipv6=True)
    server = await asyncio.start_server(handle, sock=sock)
    port = sock.getsockname()[1]

    chosen = choose_interfaces(None)
    aiozc = open_zeroconf(chosen)
    found: asyncio.Queue[str] = asyncio.Queue()

    def on_change(zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Added:
            found.put_nowait(name)

    browser = AsyncServiceBrowser(aiozc.zeroconf, SERVICE_TYPE, handlers=[on_change])
    original = await found.get()
    info = AsyncServiceInfo(SERVICE_TYPE, original)
    if not await info.async_request(aiozc.zeroconf, 5000):
        sys.exit("could not resolve the agent's service")
    label = f"peerbeam-{secrets.token_hex(8)}"
    mine = AsyncServiceInfo(SERVICE_TYPE, f"{label}.{SERVICE_TYPE}", port=port, properties=info.text,
                            server=f"{label}.local.", parsed_addresses=advertised_addresses(chosen))
    await (await aiozc.async_register_service(mine))
    emit("advertising", name=mine.name, copied_from=original, port=port)
    await stop.wait()
    await browser.async_cancel()
    await (await aiozc.async_unregister_service(mine))
    await aiozc.async_close()
    server.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
