"""The aiortc end of bench/phone.py's baseline: a bare data channel with Chromium.

Runs inside the lab's "pc" namespace (never the host's). Signaling is stdin/stdout, one JSON
line each way, relayed by bench/phone.py to and from the page:

    in:  {"offer": SDP}      -> out: {"event": "answer", "sdp": SDP}
                                (a fresh RTCPeerConnection; the previous one is closed)

Then on the page's channel ("bench", ordered), text messages are commands:

    "recv N": read N bytes of binary messages, then answer "got N"
    "send N": send N bytes as 64 KiB binary messages, with the flow control peer_agent.rtc
              uses (stop above 1 MiB buffered, resume on ``bufferedamountlow`` at 256 KiB)

No signaling server, no Noise, no binding, no files on disk, no hashing: only ICE, DTLS, SCTP.
ICE servers are given explicitly (empty): aiortc would otherwise ask Google's STUN server.
The event loop is the one the CLI runs the agent on (uvloop when installed).

Chromium hides its host candidates behind random .local names. Given them in a complete offer,
aioice waits for their mDNS resolution before its checks (about 1 s when no answer comes), a
wait the agent does not have (its candidates arrive trickled). So they are dropped here:
aiortc learns Chromium's address from Chromium's own checks (a peer-reflexive candidate,
RFC 8445 §7.3.1.3), as the agent usually does.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

CHUNK = 64 * 1024
BUFFER_HIGH = 1024 * 1024
BUFFER_LOW = 256 * 1024


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class Bench:
    def __init__(self, channel: RTCDataChannel) -> None:
        self.channel = channel
        self.expect = 0
        self.got = 0
        self.low = asyncio.Event()
        channel.bufferedAmountLowThreshold = BUFFER_LOW
        channel.on("bufferedamountlow", self.low.set)
        channel.on("message", self.on_message)

    def on_message(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            self.got += len(message)
            if self.expect and self.got >= self.expect:
                self.channel.send(f"got {self.got}")
                self.expect = self.got = 0
            return
        verb, _, count = message.partition(" ")
        if verb == "recv":
            self.expect, self.got = int(count), 0
        elif verb == "send":
            asyncio.ensure_future(self.send(int(count)))

    async def send(self, size: int) -> None:
        block = bytes(range(256)) * (CHUNK // 256)
        left = size
        while left > 0:
            if self.channel.bufferedAmount > BUFFER_HIGH:
                self.low.clear()  # no await since the check: the event cannot be missed
                await self.low.wait()
            piece = block[: min(CHUNK, left)]
            self.channel.send(piece)
            left -= len(piece)


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    pc: RTCPeerConnection | None = None
    benches: list[Bench] = []
    emit("ready")
    while line := await reader.readline():
        offer = "".join(
            sdp_line for sdp_line in json.loads(line)["offer"].splitlines(keepends=True)
            if not (sdp_line.startswith("a=candidate:") and ".local " in sdp_line)
        )
        if pc is not None:
            await pc.close()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.on("datachannel", lambda channel: benches.append(Bench(channel)))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        emit("answer", sdp=pc.localDescription.sdp)
    if pc is not None:
        await pc.close()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
