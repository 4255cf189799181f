"""The baseline of the pairing benchmark: a bare aiortc offer/answer connect.

Two roles, each a long-lived process inside a lab namespace (never in the host namespace):

    bare_aiortc.py answer --listen HOST:PORT --loop uvloop|asyncio
    bare_aiortc.py offer  --connect HOST:PORT --loop uvloop|asyncio

The SDP travels over one plain TCP connection, opened once before any run: no signaling
server, no crypto, no binding MAC — only what every WebRTC connect needs (ICE gathering and
checks, DTLS, SCTP, the DCEP open). The offerer does one run per ``run`` line on stdin, each
with a fresh RTCPeerConnection on both sides, and prints one JSON line per run:

    {"event": "result", "ok": true, "open_ms": ..., "rtt_ms": ..., "phases": {...}}

``open_ms`` is from constructing the RTCPeerConnection (then createOffer) to the channel's
"open"; ``rtt_ms`` from the same start to the echo of a first message. Both sides close their
RTCPeerConnection before the result is printed, so runs do not overlap.

ICE servers are always given explicitly (empty): aiortc would otherwise ask Google's public
STUN server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)

STEP_TIMEOUT_S = 30.0  # far above a LAN connect; only a broken lab gets near it


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def split_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def send_json(writer: asyncio.StreamWriter, obj: dict[str, Any]) -> None:
    writer.write(json.dumps(obj).encode() + b"\n")
    await writer.drain()


async def recv_json(reader: asyncio.StreamReader) -> dict[str, Any]:
    line = await asyncio.wait_for(reader.readline(), STEP_TIMEOUT_S)
    if not line:
        raise EOFError("the other side closed the SDP connection")
    obj = json.loads(line)
    assert isinstance(obj, dict)
    return obj


# -- answerer (pc namespace) ----------------------------------------------------------------


async def answer(listen: str) -> None:
    host, port = split_address(listen)
    finished = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pc: RTCPeerConnection | None = None
        try:
            while line := await reader.readline():
                msg = json.loads(line)
                if msg["type"] == "offer":
                    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))

                    @pc.on("datachannel")
                    def on_datachannel(channel: RTCDataChannel) -> None:
                        @channel.on("message")
                        def on_message(data: str | bytes) -> None:
                            channel.send(data)  # the echo is the whole protocol

                    await pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="offer"))
                    await pc.setLocalDescription(await pc.createAnswer())
                    await send_json(writer, {"type": "answer", "sdp": pc.localDescription.sdp})
                elif msg["type"] == "close":
                    if pc is not None:
                        await pc.close()
                        pc = None
                    await send_json(writer, {"type": "closed"})
        finally:
            if pc is not None:
                await pc.close()
            writer.close()
            if not finished.done():
                finished.set_result(None)

    server = await asyncio.start_server(serve, host, port)
    emit("listening", address=f"{host}:{port}")
    async with server:
        await finished  # one offerer per process: when it leaves, so do we


# -- offerer (phone namespace) --------------------------------------------------------------


async def one_run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    opened: asyncio.Future[float] = loop.create_future()
    echoed: asyncio.Future[float] = loop.create_future()

    t0 = time.perf_counter()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        channel = pc.createDataChannel("bench", ordered=True)

        @channel.on("open")
        def on_open() -> None:
            if not opened.done():
                opened.set_result(time.perf_counter())

        @channel.on("message")
        def on_message(_data: str | bytes) -> None:
            if not echoed.done():
                echoed.set_result(time.perf_counter())

        # aiortc gathers every candidate inside setLocalDescription (no trickle).
        await pc.setLocalDescription(await pc.createOffer())
        t_offer = time.perf_counter()
        await send_json(writer, {"type": "offer", "sdp": pc.localDescription.sdp})
        reply = await recv_json(reader)
        t_answer = time.perf_counter()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
        t_open = await asyncio.wait_for(opened, STEP_TIMEOUT_S)
        channel.send("ping")
        t_echo = await asyncio.wait_for(echoed, STEP_TIMEOUT_S)
    finally:
        await pc.close()
    await send_json(writer, {"type": "close"})
    await recv_json(reader)  # "closed": the answerer's side is gone too
    return {
        "ok": True,
        "open_ms": (t_open - t0) * 1000,
        "rtt_ms": (t_echo - t0) * 1000,
        "phases": {
            "offer_ms": (t_offer - t0) * 1000,
            "answer_ms": (t_answer - t0) * 1000,
            "open_ms": (t_open - t0) * 1000,
            "round_trip_only_ms": (t_echo - t_open) * 1000,
        },
    }


async def offer(connect: str, loop_name: str) -> None:
    host, port = split_address(connect)
    reader, writer = await asyncio.open_connection(host, port)
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    emit("ready", loop=loop_name)
    try:
        while (await commands.readline()).strip() == b"run":
            try:
                emit("result", **await one_run(reader, writer))
            except Exception as exc:  # noqa: BLE001 -- reported; the orchestrator stops the benchmark
                emit("result", ok=False, code=type(exc).__name__, message=str(exc))
                return
    finally:
        writer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=["offer", "answer"])
    parser.add_argument("--listen", help="answer: HOST:PORT to listen on")
    parser.add_argument("--connect", help="offer: HOST:PORT of the answerer")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="asyncio")
    args = parser.parse_args()
    if args.role == "answer":
        main_coro = answer(args.listen)
    else:
        main_coro = offer(args.connect, args.loop)
    with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
        runner.run(main_coro)
    return 0


if __name__ == "__main__":
    sys.exit(main())
