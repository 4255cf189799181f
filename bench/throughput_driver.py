"""Both ends of the throughput baselines: a bare aiortc data channel, and plain TCP.

One process per end, each started by bench/throughput.py inside a lab namespace (never in the
host namespace); each does one transfer and exits:

    throughput_driver.py rtc-recv --listen HOST:PORT --size N [--loop L] [--tune ...]
    throughput_driver.py rtc-send --connect HOST:PORT --file F [--loop L] [--tune ...]
    throughput_driver.py tcp-recv --listen HOST:PORT --size N [--loop L]
    throughput_driver.py tcp-send --connect HOST:PORT --file F [--loop L]

The sender reads F in 64 KiB pieces and sends each as one binary message (rtc) or one write
(tcp). rtc flow control is the one peer_agent.rtc uses: stop above 1 MiB buffered, resume on
``bufferedamountlow`` at 256 KiB (W3C RTCDataChannel). tcp waits on ``drain()`` after each
write. The receiver sha-256es what arrives (it writes nothing to disk).

Clocks: both ends read CLOCK_MONOTONIC, which is one clock for every process on the machine
(network namespaces do not change it), so the orchestrator may subtract the sender's ``t0``
(just before the first byte is handed to aiortc / the socket) from the receiver's ``t_end``
(just after the last byte was hashed). Lines printed:

    sender:   {"event": "sent", "t0": ..., "t_queued": ...}
    receiver: {"event": "receiving"} at the first byte (rtc), then
              {"event": "received", "bytes": N, "sha256": ..., "t_first": ..., "t_end": ...}

The SDP offer/answer goes over a TCP connection that stays open; when the receiver has every
byte it writes ``done`` on it, and only then does the sender close its RTCPeerConnection (an
early close would drop what SCTP still has queued).

``--tune`` applies experiments from BENCHMARKS.md ("Transfer throughput", next bottleneck). All
of them reach into aiortc/aioice/asyncio private attributes (``sackbatch`` even replaces an
aiortc method): they are for measuring, not for peer_agent. ICE servers are always given explicitly (empty): aiortc would otherwise ask a
public STUN server.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import socket
import sys
import time
from pathlib import Path
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bare_aiortc import emit, loop_factory, recv_json, send_json, split_address

CHUNK = 64 * 1024
BUFFER_HIGH = 1024 * 1024  # the same marks as peer_agent.rtc
BUFFER_LOW = 256 * 1024
# --tune NAME[=BYTES]: experiments, with their default sizes.
TUNES = {"rcvbuf": 4 << 20, "sndbuf": 4 << 20, "rwnd": 256 << 10, "readsize": 2048, "sackbatch": 1,
         "high": BUFFER_HIGH, "low": BUFFER_LOW}  # the last two: public API (flow-control marks)


def now() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


# -- experiments (private attributes; see the module docstring) ------------------------------


def parse_tunes(text: str) -> dict[str, int]:
    tunes: dict[str, int] = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if name not in TUNES:
            raise ValueError(f"unknown --tune {name!r}; choose from {', '.join(TUNES)}")
        tunes[name] = int(value) if value else TUNES[name]
    return tunes


def patch_sack_per_batch() -> None:
    """--tune sackbatch: what an upstream change would gain, not something to ship.

    aiortc answers every SCTP packet with its own SACK (one DTLS record, one sendmsg each way).
    RFC 4960 §6.2 asks for a SACK for at least every second packet; this defers it until the
    datagrams that were already read are all handled (one SACK per batch, at most one pending).
    """
    from aiortc.rtcsctptransport import RTCSctpTransport

    original = RTCSctpTransport._send_sack
    pending: set[int] = set()

    async def send_sack_after_batch(self: RTCSctpTransport) -> None:
        if id(self) in pending:
            return
        pending.add(id(self))

        def fire() -> None:
            pending.discard(id(self))
            if self._sack_needed:
                asyncio.ensure_future(original(self))

        asyncio.get_running_loop().call_soon(fire)

    RTCSctpTransport._send_sack = send_sack_after_batch  # type: ignore[method-assign]


def tune_connection(pc: RTCPeerConnection, tunes: dict[str, int]) -> None:
    """Apply --tune options that must be set before the SCTP association starts."""
    if "rwnd" in tunes and pc.sctp is not None:
        # The receive window we advertise in INIT / INIT ACK and then in every SACK (RFC 4960
        # §6.2): it caps what the peer keeps in flight. aiortc starts at 1 MiB.
        pc.sctp._advertised_rwnd = tunes["rwnd"]


def tune_sockets(pc: RTCPeerConnection, tunes: dict[str, int]) -> None:
    """Apply --tune options to the UDP sockets of aioice's connection (after gathering)."""
    if pc.sctp is None:
        return
    ice = pc.sctp.transport.transport._connection  # RTCDtlsTransport → RTCIceTransport → aioice
    for protocol in ice._protocols:
        transport = getattr(protocol, "transport", None)
        if transport is None:
            continue
        sock = transport.get_extra_info("socket")
        # The kernel caps these at net.core.rmem_max / wmem_max (4 MiB on this machine; 208 KiB
        # on many desktops) and doubles them for its own bookkeeping (socket(7)).
        if "rcvbuf" in tunes:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, tunes["rcvbuf"])
        if "sndbuf" in tunes:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, tunes["sndbuf"])
        if "readsize" in tunes and hasattr(transport, "max_size"):
            # asyncio's selector loop asks recvfrom() for max_size (256 KiB) per datagram.
            transport.max_size = tunes["readsize"]


# -- rtc --------------------------------------------------------------------------------------


async def rtc_recv(listen: str, size: int, tunes: dict[str, int]) -> None:
    host, port = split_address(listen)
    finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        hasher = hashlib.sha256()
        received = 0
        t_first = 0.0
        complete = asyncio.Event()

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            @channel.on("message")
            def on_message(data: str | bytes) -> None:
                nonlocal received, t_first
                if not received:
                    t_first = now()
                    emit("receiving")  # bench/profile_transfer.py starts sampling here
                assert isinstance(data, bytes)
                hasher.update(data)
                received += len(data)
                if received >= size:
                    emit("received", bytes=received, sha256=hasher.hexdigest(), t_first=t_first, t_end=now())
                    complete.set()

        try:
            offer = await recv_json(reader)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
            tune_connection(pc, tunes)
            await pc.setLocalDescription(await pc.createAnswer())
            tune_sockets(pc, tunes)
            await send_json(writer, {"type": "answer", "sdp": pc.localDescription.sdp})
            await complete.wait()
            await send_json(writer, {"type": "done"})
            await reader.read()  # until the sender closes its end
        finally:
            await pc.close()
            writer.close()
            if not finished.done():
                finished.set_result(None)

    server = await asyncio.start_server(serve, host, port)
    emit("listening", address=f"{host}:{port}")
    async with server:
        await finished


async def sample_in_flight(pc: RTCPeerConnection, out: list[int]) -> None:
    """How many DATA chunks wait for a SACK: aiortc walks that whole list on every SACK."""
    sctp = pc.sctp
    assert sctp is not None
    while True:
        out.append(len(sctp._sent_queue))
        await asyncio.sleep(0.01)


async def rtc_send(connect: str, path: Path, tunes: dict[str, int]) -> None:
    host, port = split_address(connect)
    reader, writer = await asyncio.open_connection(host, port)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        channel = pc.createDataChannel("bench", ordered=True)
        channel.bufferedAmountLowThreshold = tunes.get("low", BUFFER_LOW)
        high = tunes.get("high", BUFFER_HIGH)
        opened = asyncio.Event()
        low = asyncio.Event()
        channel.on("open", opened.set)
        channel.on("bufferedamountlow", low.set)
        await pc.setLocalDescription(await pc.createOffer())
        tune_connection(pc, tunes)
        tune_sockets(pc, tunes)
        await send_json(writer, {"type": "offer", "sdp": pc.localDescription.sdp})
        answer = await recv_json(reader)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        await asyncio.wait_for(opened.wait(), 30)
        in_flight: list[int] = []  # SCTP chunks sent and not yet acknowledged, every 10 ms
        sampler = asyncio.create_task(sample_in_flight(pc, in_flight))
        with path.open("rb") as f:
            t0 = now()
            while chunk := f.read(CHUNK):
                if channel.bufferedAmount > high:
                    low.clear()  # no await since the check: the event cannot be missed
                    await low.wait()
                channel.send(chunk)
        t_queued = now()
        sampler.cancel()
        in_flight.sort()
        emit("sent", t0=t0, t_queued=t_queued, in_flight_median=in_flight[len(in_flight) // 2] if in_flight else 0,
             in_flight_max=in_flight[-1] if in_flight else 0)
        done = await reader.readline()  # the receiver has every byte
        if done.strip() != b'{"type": "done"}':
            raise RuntimeError(f"receiver said {done!r}")
    finally:
        await pc.close()
        writer.close()


# -- tcp --------------------------------------------------------------------------------------


class _HashingProtocol(asyncio.Protocol):
    def __init__(self, size: int, finished: asyncio.Future[None]) -> None:
        self.size = size
        self.finished = finished
        self.hasher = hashlib.sha256()
        self.received = 0
        self.t_first = 0.0

    def data_received(self, data: bytes) -> None:
        if not self.received:
            self.t_first = now()
        self.hasher.update(data)
        self.received += len(data)
        if self.received >= self.size and not self.finished.done():
            emit("received", bytes=self.received, sha256=self.hasher.hexdigest(),
                 t_first=self.t_first, t_end=now())
            self.finished.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            self.finished.set_exception(EOFError(f"closed after {self.received} bytes"))


async def tcp_recv(listen: str, size: int) -> None:
    host, port = split_address(listen)
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[None] = loop.create_future()
    server = await loop.create_server(lambda: _HashingProtocol(size, finished), host, port)
    emit("listening", address=f"{host}:{port}")
    async with server:
        await finished


async def tcp_send(connect: str, path: Path) -> None:
    host, port = split_address(connect)
    _, writer = await asyncio.open_connection(host, port)
    with path.open("rb") as f:
        t0 = now()
        while chunk := f.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
    emit("sent", t0=t0, t_queued=now())
    writer.close()
    await writer.wait_closed()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=["rtc-recv", "rtc-send", "tcp-recv", "tcp-send"])
    parser.add_argument("--listen", help="receivers: HOST:PORT")
    parser.add_argument("--connect", help="senders: HOST:PORT of the receiver")
    parser.add_argument("--file", type=Path, help="senders: what to send")
    parser.add_argument("--size", type=int, help="receivers: how many bytes to expect")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="asyncio")
    parser.add_argument("--tune", default="", help=f"rtc: comma-separated NAME[=BYTES], NAME one of {', '.join(TUNES)}")
    args = parser.parse_args()
    try:
        tunes = parse_tunes(args.tune)
    except ValueError as exc:
        parser.error(str(exc))
    if "sackbatch" in tunes:
        patch_sack_per_batch()
    main_coro: Any
    if args.role == "rtc-recv":
        main_coro = rtc_recv(args.listen, args.size, tunes)
    elif args.role == "rtc-send":
        main_coro = rtc_send(args.connect, args.file, tunes)
    elif args.role == "tcp-recv":
        main_coro = tcp_recv(args.listen, args.size)
    else:
        main_coro = tcp_send(args.connect, args.file)
    with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
        runner.run(main_coro)
    return 0


if __name__ == "__main__":
    sys.exit(main())
