"""The LAN connection in one process, over real TCP on loopback (no mDNS, no WebRTC: those run
in the LAN lab, test_lan_session.py): the agent's listener, a peer's LanSignal, the KK handshake
and signals through two Dialogues, fast-path frames, and what strangers get.

A tap between the two ends records (and can alter) every byte on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from crypto.keys import generate_identity, public_bytes
from crypto.records import PairingRecord
from peer_agent.errors import InterceptionError, PeerbeamError, PeerGone
from peer_agent.fast_path import MAX_FAST_FRAME, FastPath
from peer_agent.frames import HEADER_BYTES, encode_frame
from peer_agent.handshake import LAN_PROLOGUE, SecureSession, hello_for
from peer_agent.lan_listener import LanLimits, LanListener
from peer_agent.lan_signal import MAX_ENVELOPE, PREAMBLE, LanSignal, LanUnreachable, record_header
from peer_agent.session import Dialogue
from signaling.schema import Relay, Sdp

LOOPBACK = "127.0.0.1"
# Long enough that random ciphertext does not contain them by chance.
PEER_NAME = f"Peer {secrets.token_hex(8)}"
AGENT_NAME = f"Agent {secrets.token_hex(8)}"
OFFER = f"v=0 offer {secrets.token_hex(8)}"
ANSWER = f"v=0 answer {secrets.token_hex(8)}"
MIDDLE = f"in the middle {secrets.token_hex(8)}"


@dataclass
class Tap:
    """A TCP relay on loopback that keeps what flows each way; ``alter`` may change it."""

    target: tuple[str, int]
    to_server: bytearray = field(default_factory=bytearray)
    to_client: bytearray = field(default_factory=bytearray)
    alter: Callable[[bytes], bytes] | None = None
    server: asyncio.Server | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, LOOPBACK, 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _relay(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        s_reader, s_writer = await asyncio.open_connection(*self.target)

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: bytearray,
                       alter: bool) -> None:
            with contextlib.suppress(OSError):
                while data := await reader.read(65536):
                    log += data
                    writer.write(self.alter(data) if alter and self.alter else data)
                    await writer.drain()
            writer.close()

        for task in (asyncio.create_task(pump(c_reader, s_writer, self.to_server, True)),
                     asyncio.create_task(pump(s_reader, c_writer, self.to_client, False))):
            self.tasks.add(task)

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@dataclass
class Agent:
    listener: LanListener
    identity: object
    arrived: asyncio.Queue[tuple[PairingRecord, Dialogue]]
    refused: list[tuple[str, str]]
    dialogues: list[Dialogue]


def record(peer_key: bytes, secret: bytes, name: str = "Peer") -> PairingRecord:
    return PairingRecord(peer_name=name, peer_key=peer_key, pair_secret=secret, role="responder", server="",
                         paired_at=0.0, last_seen=time.time())


@contextlib.asynccontextmanager
async def agent_listening(records: list[PairingRecord], limits: LanLimits = LanLimits()) -> AsyncIterator[Agent]:
    identity = generate_identity()
    arrived: asyncio.Queue[tuple[PairingRecord, Dialogue]] = asyncio.Queue()
    refused: list[tuple[str, str]] = []
    dialogues: list[Dialogue] = []

    async def on_peer(rec: PairingRecord, signal: LanSignal) -> None:
        dialogue = Dialogue(signal, SecureSession.for_reconnect(
            role="responder", hello=hello_for(AGENT_NAME, identity, "pc"), identity=identity,
            pair_secret=rec.pair_secret, peer_key=rec.peer_key, prologue=LAN_PROLOGUE))
        dialogues.append(dialogue)
        await dialogue.handshake(5)
        await arrived.put((rec, dialogue))

    listener = LanListener(port=0, host=LOOPBACK, records=lambda: records, hello=lambda: hello_for(AGENT_NAME, identity, "pc"),
                           identity=identity, on_peer=on_peer, on_refused=lambda a, r: refused.append((a, r)),
                           limits=limits)
    await listener.start()
    try:
        yield Agent(listener, identity, arrived, refused, dialogues)
    finally:
        await listener.close()
        for dialogue in dialogues:
            await dialogue.close()


async def dial_peer(port: int, agent_identity: object, peer_identity: object, secret: bytes) -> Dialogue:
    signal = await LanSignal.dial([(LOOPBACK, port)], timeout=2)
    dialogue = Dialogue(signal, SecureSession.for_reconnect(
        role="initiator", hello=hello_for(PEER_NAME, peer_identity, "cli"), identity=peer_identity,  # type: ignore[arg-type]
        pair_secret=secret, peer_key=public_bytes(agent_identity), prologue=LAN_PROLOGUE))  # type: ignore[arg-type]
    await signal.send(Relay(data=dialogue.secure.start()))
    return dialogue


async def test_handshake_signals_and_fast_frames_over_tcp_and_the_wire_shows_none_of_it() -> None:
    peer_id, secret = generate_identity(), secrets.token_bytes(32)
    decoy = record(public_bytes(generate_identity()), secrets.token_bytes(32), name="Other")
    mine = record(public_bytes(peer_id), secret)
    async with agent_listening([decoy, mine]) as agent:
        tap = Tap((LOOPBACK, agent.listener.port))
        peer = await dial_peer(await tap.start(), agent.identity, peer_id, secret)
        try:
            done = await peer.handshake(5)
            rec, agent_side = await asyncio.wait_for(agent.arrived.get(), 5)
            assert rec == mine and done.peer.name == AGENT_NAME
            # Signals both ways, as establish() sends them.
            await peer.send(Sdp(type="offer", sdp=OFFER))
            assert (await agent_side.expect(Sdp, 5, "offer")).sdp == OFFER
            await agent_side.send(Sdp(type="answer", sdp=ANSWER))
            assert (await peer.expect(Sdp, 5, "answer")).sdp == ANSWER
            # Fast-path frames, the largest that fit, interleaved with a signal: all in order.
            got: list[bytes] = []
            agent_side.on_frame = got.append
            payloads = [os.urandom(MAX_FAST_FRAME - HEADER_BYTES) for _ in range(40)]
            assert isinstance(peer.signal, LanSignal)
            fast = FastPath(peer.secure, peer.signal)
            offset = 0
            for i, payload in enumerate(payloads):
                fast.send_frame(encode_frame("0123456789abcdef", offset, payload))
                offset += len(payload)
                if i == 20:
                    await peer.send(Sdp(type="offer", sdp=MIDDLE))
                await fast.wait_writable()
            assert (await agent_side.expect(Sdp, 5, "offer")).sdp == MIDDLE
            while len(got) < len(payloads):
                await asyncio.sleep(0.01)
            assert [g[HEADER_BYTES:] for g in got] == payloads
            # The wire: the preamble, then ciphertext only. Neither name, nor any SDP, nor any
            # part of the file data went in the clear.
            wire = bytes(tap.to_server) + bytes(tap.to_client)
            assert tap.to_server.startswith(PREAMBLE)
            for secret_text in (PEER_NAME, AGENT_NAME, OFFER, ANSWER, MIDDLE):
                assert secret_text.encode() not in wire
            assert public_bytes(peer_id) not in wire
            assert not any(p[:32] in wire or p[-32:] in wire for p in payloads)
            assert len(tap.to_server) > sum(map(len, payloads))
        finally:
            await peer.close()
            await tap.close()


async def test_a_frame_altered_on_the_wire_ends_the_session_and_is_not_delivered() -> None:
    peer_id, secret = generate_identity(), secrets.token_bytes(32)
    async with agent_listening([record(public_bytes(peer_id), secret)]) as agent:
        marker = os.urandom(64)
        tap = Tap((LOOPBACK, agent.listener.port))
        peer = await dial_peer(await tap.start(), agent.identity, peer_id, secret)
        try:
            await peer.handshake(5)
            _, agent_side = await asyncio.wait_for(agent.arrived.get(), 5)
            got: list[bytes] = []
            agent_side.on_frame = got.append
            assert isinstance(peer.signal, LanSignal)
            # From now on the tap flips the last bit it relays: the tag of the frame below
            # (one small write, one segment on loopback).
            tap.alter = lambda data: data[:-1] + bytes([data[-1] ^ 1])
            peer.signal.write_envelope(peer.secure.seal_frame(encode_frame("0123456789abcdef", 0, marker)))
            error = await asyncio.wait_for(agent_side.fatal, 5)
            assert isinstance(error, InterceptionError)
            assert got == []
        finally:
            await peer.close()
            await tap.close()


async def test_an_oversized_record_after_the_handshake_ends_the_dialogue() -> None:
    peer_id, secret = generate_identity(), secrets.token_bytes(32)
    async with agent_listening([record(public_bytes(peer_id), secret)]) as agent:
        peer = await dial_peer(agent.listener.port, agent.identity, peer_id, secret)
        try:
            await peer.handshake(5)
            _, agent_side = await asyncio.wait_for(agent.arrived.get(), 5)
            assert isinstance(peer.signal, LanSignal)
            peer.signal._writer.write((MAX_ENVELOPE + 1).to_bytes(4, "big"))
            error = await asyncio.wait_for(agent_side.fatal, 5)
            assert error.code == "bad_message"
            # The session owning it then closes the connection, and the peer sees that.
            await agent_side.close()
            assert isinstance(await asyncio.wait_for(peer.fatal, 5), PeerGone)
        finally:
            await peer.close()


async def raw(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(LOOPBACK, port)


async def closed_without_a_byte(reader: asyncio.StreamReader, within: float) -> bool:
    """The other end closed and sent nothing (a close with our bytes unread is a reset)."""
    try:
        return await asyncio.wait_for(reader.read(), within) == b""
    except ConnectionResetError:
        return True


async def test_strangers_are_closed_without_an_answer_and_the_agent_keeps_serving() -> None:
    peer_id, secret = generate_identity(), secrets.token_bytes(32)
    limits = LanLimits(handshake_deadline=0.5)
    async with agent_listening([record(public_bytes(peer_id), secret)], limits) as agent:
        port = agent.listener.port
        # A stranger with its own keys and pair secret, and even the agent's real public key.
        stranger = await dial_peer(port, agent.identity, generate_identity(), secrets.token_bytes(32))
        error = await asyncio.wait_for(stranger.fatal, 5)
        assert isinstance(error, PeerGone)
        # Not our protocol; an oversized first message; nothing at all (the deadline).
        reader, writer = await raw(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await closed_without_a_byte(reader, 2)
        reader, writer = await raw(port)
        writer.write(PREAMBLE + record_header(5000) + bytes(5000))
        assert await closed_without_a_byte(reader, 2)
        reader, writer = await raw(port)
        started = time.monotonic()
        assert await closed_without_a_byte(reader, 3)
        assert 0.4 < time.monotonic() - started < 2.0
        reasons = [r for _, r in agent.refused]
        assert reasons == ["handshake refused: no pairing matches", "not the peerbeam LAN protocol",
                           "not the peerbeam LAN protocol", "no handshake in time"]
        assert all(a.startswith("127.0.0.1:") for a, _ in agent.refused)
        assert agent.arrived.empty()
        # The paired peer still gets in.
        peer = await dial_peer(port, agent.identity, peer_id, secret)
        try:
            await peer.handshake(5)
            rec, _ = await asyncio.wait_for(agent.arrived.get(), 5)
            assert rec.peer_key == public_bytes(peer_id)
        finally:
            await peer.close()
            await stranger.close()


async def test_unauthenticated_connections_are_bounded_per_address_and_by_rate() -> None:
    limits = LanLimits(pending=16, pending_per_address=3, per_address_per_minute=6, handshake_deadline=3)
    async with agent_listening([], limits) as agent:
        port = agent.listener.port
        held = [await raw(port) for _ in range(3)]
        # The fourth at once from the same address is closed at once, long before the deadline.
        reader, _ = await raw(port)
        started = time.monotonic()
        assert await closed_without_a_byte(reader, 2)
        assert time.monotonic() - started < 1.0
        for _, writer in held:
            writer.close()
        await asyncio.sleep(0.1)  # the listener sees the three closes
        # Six a minute: two more go in (then they are refused: closed before the handshake)...
        for _ in range(2):
            reader, writer = await raw(port)
            writer.write(b"x" * len(PREAMBLE))
            assert await closed_without_a_byte(reader, 2)
        # ...and the seventh is refused up front, whatever it sends.
        reader, writer = await raw(port)
        writer.write(b"x" * len(PREAMBLE))
        assert await closed_without_a_byte(reader, 2)
        refused = [r for _, r in agent.refused]
        assert refused.count("not the peerbeam LAN protocol") == 2


async def test_dial_tries_each_address_and_says_which_failed() -> None:
    async with agent_listening([]) as agent:
        closed = socket_port_nobody_listens_on()
        signal = await LanSignal.dial([(LOOPBACK, closed), (LOOPBACK, agent.listener.port)], timeout=2)
        assert signal.peer == f"127.0.0.1:{agent.listener.port}"
        await signal.close()
    with pytest.raises(LanUnreachable) as raised:
        await LanSignal.dial([(LOOPBACK, closed)], timeout=2)
    assert f"127.0.0.1:{closed}" in raised.value.message
    assert isinstance(raised.value, PeerbeamError)


def socket_port_nobody_listens_on() -> int:
    import socket

    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])
