"""A minimal aiortc peer for the lab test: one data channel, one echoed message.

Usage: rtc_echo.py offer|answer. Signaling goes through the test, one JSON line each way:
the offerer prints {"event":"offer","sdp":...}; the test writes that line to the answerer's
stdin; the answerer prints {"event":"answer","sdp":...}; the test writes it to the offerer.
The offerer sends "ping <nonce>" when the channel opens; the answerer echoes it back with a
"pong " prefix; both print what they receive and exit 0. Everything else is an event too, so
the test sees where a failure happened.

Run inside a lab namespace only: ICE gathers host candidates from the namespace's interfaces
and, with iceServers=[] given explicitly, asks no STUN server (aiortc would otherwise add
Google's public one).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)

DEADLINE_S = 30.0


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def read_json_line(reader: asyncio.StreamReader) -> dict[str, Any]:
    line = await reader.readline()
    if not line:
        raise EOFError("stdin closed before the remote description arrived")
    obj = json.loads(line)
    assert isinstance(obj, dict)
    return obj


def nominated_pair(pc: RTCPeerConnection) -> dict[str, str] | None:
    # aioice keeps the nominated pair privately (pinned aioice==0.13.0); report only.
    try:
        conn = pc.sctp.transport.transport._connection  # type: ignore[union-attr]
        pair = next(iter(conn._nominated.values()))
        return {"local": f"{pair.local_candidate.host}:{pair.local_candidate.port}",
                "remote": f"{pair.remote_candidate.host}:{pair.remote_candidate.port}"}
    except (AttributeError, StopIteration):
        return None


async def run(role: str) -> None:
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    done: asyncio.Future[str] = loop.create_future()

    def wire(channel: RTCDataChannel) -> None:
        @channel.on("close")
        def on_close() -> None:
            if not done.done():
                done.set_result("closed")

        @channel.on("message")
        def on_message(message: str | bytes) -> None:
            text = message if isinstance(message, str) else message.decode()
            emit("received", data=text)
            if role == "answer":
                channel.send("pong " + text)
                # Wait for the offerer to close: leaving now could drop the reply unsent.
            elif not done.done():
                done.set_result(text)

    @pc.on("connectionstatechange")
    def on_state() -> None:
        emit("state", state=pc.connectionState)
        if pc.connectionState == "failed" and not done.done():
            done.set_exception(RuntimeError("connection failed"))

    try:
        if role == "offer":
            channel = pc.createDataChannel("echo")
            wire(channel)
            nonce = secrets.token_hex(8)

            @channel.on("open")
            def on_open() -> None:
                emit("open", label=channel.label, pair=nominated_pair(pc))
                channel.send(f"ping {nonce}")

            # aiortc gathers every candidate inside setLocalDescription (no trickle).
            await pc.setLocalDescription(await pc.createOffer())
            emit("offer", sdp=pc.localDescription.sdp, type=pc.localDescription.type)
            answer = await read_json_line(stdin)
            await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        else:
            @pc.on("datachannel")
            def on_datachannel(channel: RTCDataChannel) -> None:
                emit("open", label=channel.label, pair=nominated_pair(pc))
                wire(channel)

            offer = await read_json_line(stdin)
            await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            emit("answer", sdp=pc.localDescription.sdp, type=pc.localDescription.type)
        emit("done", result=await asyncio.wait_for(done, DEADLINE_S))
    finally:
        await pc.close()


def main() -> int:
    if len(sys.argv) != 2 or sys.argv[1] not in ("offer", "answer"):
        print("usage: rtc_echo.py offer|answer", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(sys.argv[1]))
    except Exception as exc:  # noqa: BLE001 -- reported as an event, shown by the test
        emit("error", error=f"{type(exc).__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
