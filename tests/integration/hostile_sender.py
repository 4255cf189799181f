"""A paired device that sends files dishonestly (for the receiver's fault tests).

    python hostile_sender.py LINK HOME MODE

Joins like `peerbeam join`, then, on the real channel with the real codecs:

* ``lie-hash``   offers 1 MB with a sha-256 that does not match, sends every byte;
* ``lie-size``   offers 200 000 bytes and sends 300 000;
* ``stall``      offers 1 MB, sends one frame, then nothing (the channel stays alive);
* ``oversize``   sends a 70 KiB text message, then a normal text;
* ``junk``       sends 3000 binary frames for no transfer, then a normal text.

Every channel message it receives is printed as ``{"event": "got", "t": TAG, ...}``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from pathlib import Path

import msgspec

from crypto.link import parse_link
from peer_agent.config import NodeConfig
from peer_agent.frames import MAX_PAYLOAD_BYTES, encode_frame, new_transfer_id
from peer_agent.node import Node
from peer_agent.report import JsonReporter
from peer_agent.session import PeerSession
from signaling.schema import ChannelMessage, Text, TransferAccept, TransferOffer


def show(message: ChannelMessage) -> None:
    fields = msgspec.to_builtins(message)
    print(json.dumps({"event": "got", **fields}), flush=True)


async def send_file(session: PeerSession, accepted: asyncio.Queue[TransferAccept], *, offered: int,
                    sent: int, sha256: str | None, stop_after: int | None = None) -> None:
    data = os.urandom(sent)
    tid = new_transfer_id()
    session.link.send(TransferOffer(id=tid, name="honest.bin", size=offered,
                                    sha256=sha256 or hashlib.sha256(data).hexdigest()))
    accept = await asyncio.wait_for(accepted.get(), 20)
    offset, frames = accept.offset, 0
    while offset < sent and (stop_after is None or frames < stop_after):
        chunk = data[offset:offset + MAX_PAYLOAD_BYTES]
        session.link.send_frame(encode_frame(tid, offset, chunk))
        await session.link.wait_writable()
        offset += len(chunk)
        frames += 1


async def main(link: str, home: str, mode: str) -> None:
    reporter = JsonReporter()
    node = Node(NodeConfig(home=Path(home), name="Hostile", device="cli"), reporter)
    await node.start()
    try:
        record = await node.join(parse_link(link))
        session = node.sessions[record.peer_key]
        accepted: asyncio.Queue[TransferAccept] = asyncio.Queue()
        normal = session.link.on_message

        def spy(message: ChannelMessage) -> None:
            show(message)
            if isinstance(message, TransferAccept):
                accepted.put_nowait(message)
            elif normal is not None:
                normal(message)

        session.link.on_message = spy
        if mode == "lie-hash":
            await send_file(session, accepted, offered=1_000_000, sent=1_000_000, sha256="0" * 64)
        elif mode == "lie-size":
            await send_file(session, accepted, offered=200_000, sent=300_000, sha256=None)
        elif mode == "stall":
            await send_file(session, accepted, offered=1_000_000, sent=1_000_000, sha256=None, stop_after=1)
        elif mode == "oversize":
            assert session.link._channel is not None
            session.link._channel.send(json.dumps({"t": "text", "v": 1, "id": "big", "text": "x" * 70_000}))
            session.link.send(Text(id="after", text="still here"))
        elif mode == "junk":
            for i in range(3000):
                session.link.send_frame(b"\x00junk" + i.to_bytes(4, "big") * 100)
                await session.link.wait_writable()
            await asyncio.sleep(3)  # the receiver's message budget refills
            session.link.send(Text(id="after", text="still here"))
        else:
            raise SystemExit(f"unknown mode {mode}")
        reporter.emit("done", mode=mode)
        await asyncio.Event().wait()
    finally:
        await node.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
