"""A direct LAN connection between a Python peer and its agent: the end-to-end dialogue that
otherwise goes through the signaling server, carried by one TCP connection instead.

mDNS says where the agent is (peer_agent/mdns_browser.py), or the user does
(``peerbeam connect NAME --address IP:PORT``); nothing on this connection is trusted before the
KKpsk0 handshake (DESIGN "Reconnect"). ``LanSignal`` has the surface of ``SignalClient`` that
``session.Dialogue`` uses — ``send(Relay)``, ``recv() -> Relay``, ``close()`` — so the same
handshake, offer/answer, trickle ICE and channel binding run over it unchanged. It also carries
the LAN fast path (peer_agent/fast_path.py): file data frames as Noise transport messages.

The wire, version 1::

    dialer → listener:  PREAMBLE                          (15 bytes, once)
    both ways:          u32 length (big-endian) | envelope (handshake.py: kind byte + body)

An envelope is at most 1 + 65535 bytes: a kind byte and one Noise message (Noise rev 34 §3).
The first one the listener reads — the initiator's handshake message, before anything is
authenticated — is capped far lower (MAX_FIRST_ENVELOPE). A length over the cap closes the
connection: there is no way to resynchronise a stream after a bad length, and no reason to.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
from collections.abc import Sequence
from typing import Final

from signaling.schema import ClientMessage, ErrorCode, Relay, ServerMessage

from .errors import PeerbeamError, PeerGone

logger = logging.getLogger(__name__)

PREAMBLE: Final = b"peerbeam/lan 1\n"
MAX_ENVELOPE: Final = 1 + 65535
# KKpsk0 message 1 is 32 bytes of ephemeral key, the sealed Hello (~120 bytes of JSON: name of at
# most 64 characters, key, device) and a 16-byte tag: 1 KiB leaves room and bounds what a
# stranger can make us buffer.
MAX_FIRST_ENVELOPE: Final = 1024
_LENGTH = struct.Struct(">I")
LENGTH_BYTES: Final = _LENGTH.size
# Write buffer marks for bulk data (asyncio's defaults are 64 KiB / 16 KiB): a few frames in our
# buffer keep the socket busy between wake-ups; the kernel's socket buffer does the rest.
WRITE_HIGH: Final = 1024 * 1024
WRITE_LOW: Final = 256 * 1024
# How much the reader buffers before it stops reading the socket (asyncio.StreamReader limit:
# it pauses at twice this). Large enough for many frames per wake-up.
READ_LIMIT: Final = 1024 * 1024


class LanWireError(PeerbeamError):
    """The device at the other end of the LAN connection does not speak peerbeam's LAN protocol."""

    code = ErrorCode.BAD_MESSAGE
    remote = True


class LanUnreachable(PeerbeamError):
    """The device could not be reached at the LAN address given."""

    code = ErrorCode.CONNECT_TIMEOUT
    remote = True


def record_header(length: int) -> bytes:
    if not 0 < length <= MAX_ENVELOPE:
        raise ValueError(f"an envelope is 1..{MAX_ENVELOPE} bytes")
    return _LENGTH.pack(length)


def parse_header(header: bytes, limit: int = MAX_ENVELOPE) -> int:
    """The length announced by a record header; refuses empty and oversized records."""
    length: int = _LENGTH.unpack(header)[0]
    if not 0 < length <= limit:
        raise LanWireError(f"The other device announced a message of {length} bytes (at most {limit}).")
    return length


def parse_address(text: str) -> tuple[str, int]:
    """``IP:PORT`` or ``[IPv6%scope]:PORT`` → (host, port). Raises ValueError with a sentence."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r} is not an address with a port, like 192.168.1.20:40123.")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address.") from None
    return host, int(port_text)


def tune(writer: asyncio.StreamWriter) -> None:
    """No Nagle delay (handshake and signals are small, latency matters); big write buffer."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = writer.transport
    if isinstance(transport, asyncio.WriteTransport):
        transport.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_LOW)


class LanSignal:
    """One authenticated-to-be TCP connection, speaking envelopes. See the module docstring."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 pending: Sequence[bytes] = ()) -> None:
        self._reader = reader
        self._writer = writer
        # Envelopes already read by the listener (the handshake message it matched a pairing
        # with) come out of recv() first.
        self._pending = list(pending)
        self._closed = False
        peer = writer.get_extra_info("peername")
        self.peer = format_address(peer) if peer else "?"
        tune(writer)

    @classmethod
    async def dial(cls, targets: Sequence[tuple[str, int]], timeout: float) -> LanSignal:
        """Connect to the first of ``targets`` that answers (each within ``timeout``)."""
        errors = []
        for host, port in targets:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port, limit=READ_LIMIT), timeout)
            except (OSError, TimeoutError) as exc:
                errors.append(f"{format_address((host, port))}: {type(exc).__name__}")
                continue
            signal = cls(reader, writer)
            writer.write(PREAMBLE)
            return signal
        raise LanUnreachable(f"No answer on the local network at {', '.join(errors) or 'no address'}.")

    # -- the SignalClient surface the Dialogue uses --------------------------------------------

    async def send(self, message: ClientMessage) -> None:
        if not isinstance(message, Relay):
            raise RuntimeError("only end-to-end envelopes travel on a LAN connection")
        self.write_envelope(message.data)
        await self.drain()

    async def recv(self) -> ServerMessage | None:
        """The next envelope, as a Relay. A closed connection raises PeerGone (never None: the
        Dialogue's words for None are about the signaling server)."""
        if self._pending:
            return Relay(data=self._pending.pop(0))
        try:
            length = parse_header(await self._reader.readexactly(LENGTH_BYTES))
            data = await self._reader.readexactly(length)
        except asyncio.IncompleteReadError:
            raise PeerGone("The other device closed the LAN connection.") from None
        except OSError as exc:
            raise PeerGone(f"The LAN connection to the other device broke ({type(exc).__name__}).") from None
        # Relay's 46 KiB cap is for base64 in a JSON frame to the server; msgspec checks it
        # when decoding, not here, and a LAN envelope needs none of it.
        return Relay(data=data)

    # -- the fast path's side --------------------------------------------------------------------

    def write_envelope(self, envelope: bytes) -> None:
        """Queue one envelope. Synchronous on purpose: whoever sealed it writes it before any
        other envelope can be sealed, so Noise nonces stay in stream order."""
        if self.closed:
            raise PeerGone("The LAN connection to the other device is closed.")
        self._writer.write(record_header(len(envelope)) + envelope)

    def write_envelope_of(self, kind: int, body: bytes) -> None:
        """``write_envelope(bytes([kind]) + body)`` without copying ``body``: the header and the
        body go to the transport as two buffers (uvloop sends them with one writev)."""
        if self.closed:
            raise PeerGone("The LAN connection to the other device is closed.")
        self._writer.writelines((record_header(len(body) + 1) + bytes([kind]), body))

    async def drain(self) -> None:
        """Returns at once below the write buffer's high mark; past it, waits for the low one."""
        try:
            await self._writer.drain()
        except OSError as exc:
            raise PeerGone(f"The LAN connection to the other device broke ({type(exc).__name__}).") from None

    @property
    def closed(self) -> bool:
        return self._closed or self._writer.is_closing()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), 2.0)


def format_address(address: tuple[str, int] | tuple[str, int, int, int]) -> str:
    """host:port for people and logs ([v6]:port; IPv4 shown plain through a dual-stack socket)."""
    host, port = address[0], address[1]
    if host.startswith("::ffff:") and "." in host:
        host = host[len("::ffff:"):]  # IPv4 through a dual-stack socket
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
