"""A stranger on the LAN (lan3 of the LAN lab) trying the agent's LAN port.

    lan_stranger.py HOST:PORT AGENT_KEY_HEX

Three connections, one after the other, each reported as "result" {mode, closed, received}:
`handshake` — a complete KKpsk0 message 1 with its own identity key and a made-up pair secret,
addressed to the agent's real public key (a stranger may have seen it in a QR code);
`junk` — an HTTP request; `silence` — nothing at all. Each waits for the agent to close the
connection and counts the bytes it got back (it should get none).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys

from crypto.keys import generate_identity
from peer_agent.handshake import LAN_PROLOGUE, SecureSession, hello_for
from peer_agent.lan_signal import PREAMBLE, parse_address, record_header


async def attempt(host: str, port: int, payload: bytes) -> tuple[bool, int]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(payload)
    received = 0
    try:
        async with asyncio.timeout(15):
            while chunk := await reader.read(65536):
                received += len(chunk)
        closed = True
    except ConnectionResetError:
        closed = True
    except TimeoutError:
        closed = False
    writer.close()
    return closed, received


async def main(target: str, agent_key: bytes) -> None:
    host, port = parse_address(target)
    me = generate_identity()
    secure = SecureSession.for_reconnect(role="initiator", hello=hello_for("Stranger", me, "cli"), identity=me,
                                         pair_secret=secrets.token_bytes(32), peer_key=agent_key,
                                         prologue=LAN_PROLOGUE)
    msg1 = secure.start()
    for mode, payload in (("handshake", PREAMBLE + record_header(len(msg1)) + msg1),
                          ("junk", b"GET / HTTP/1.1\r\nHost: agent\r\n\r\n"),
                          ("silence", b"")):
        closed, received = await attempt(host, port, payload)
        print(json.dumps({"event": "result", "mode": mode, "closed": closed, "received": received}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], bytes.fromhex(sys.argv[2])))
