"""The agent's LAN port: paired Python peers connect here directly (lan_signal.py), found by
mDNS (mdns.py advertises this port) or given with ``peerbeam connect --address``.

Anyone on the LAN can connect, so until the KKpsk0 handshake has picked out a pairing a
connection is a stranger's, and strangers get little: a bounded number of unauthenticated
connections at once (in all, and per address), a rate of new ones per address, a deadline for
the preamble and the first handshake message, and a cap on that message's size. A connection
that fails any of it is closed without an answer, and logged.

Which pairing? KK needs the initiator's static key before it can read message 1 (Noise rev 34
§7.5: ``ss`` is in it), and nothing on the wire says who is calling — a stable identifier there
would follow the device around, which the rotating mDNS tags exist to avoid. So ``identify``
tries the message against each pairing this agent answers as responder (trial decryption): only
the right pair secret and keys open its AEAD payload. It costs two X25519 operations per pairing
(~70 µs), which is why the number of pairings tried and the rate of attempts — per address, and
in all, against many addresses at once — are bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from crypto.records import PairingRecord
from signaling.ratelimit import ConcurrencyLimit, RateLimiter, TokenBucket, client_key
from signaling.schema import Hello

from .errors import InterceptionError, PeerbeamError
from .handshake import LAN_PROLOGUE, Kind, SecureSession
from .lan_signal import (
    LENGTH_BYTES,
    MAX_FIRST_ENVELOPE,
    PREAMBLE,
    READ_LIMIT,
    LanSignal,
    LanWireError,
    format_address,
    parse_header,
)

logger = logging.getLogger(__name__)

# The pairings a connection is tried against, most recently seen first (the same bound as the
# tags in the mDNS record, discovery.MAX_TAGS, times four: a peer whose tag dropped out of the
# advert can still connect by --address).
MAX_TRIED_PAIRINGS = 64

OnPeer = Callable[[PairingRecord, LanSignal], Awaitable[None]]
OnRefused = Callable[[str, str], None]


@dataclass(frozen=True)
class LanLimits:
    """What a stranger gets. ``pending``: connections not yet through the handshake."""

    pending: int = 16
    pending_per_address: int = 4
    per_address_per_minute: float = 60.0
    handshake_deadline: float = 5.0
    # Trial decryptions a second, all addresses together (burst: twice that): at most
    # MAX_TRIED_PAIRINGS each, so a LAN full of strangers costs this agent a bounded share of
    # one CPU.
    identify_per_second: float = 20.0


def identify(envelope: bytes, records: Iterable[PairingRecord], hello: Hello,
             identity: X25519PrivateKey) -> PairingRecord | None:
    """The pairing whose KKpsk0 message 1 ``envelope`` is, or None (pure: trial decryption)."""
    if not envelope or envelope[0] != Kind.HANDSHAKE:
        return None
    for record in records:
        trial = SecureSession.for_reconnect(role="responder", hello=hello, identity=identity,
                                            pair_secret=record.pair_secret, peer_key=record.peer_key,
                                            prologue=LAN_PROLOGUE)
        try:
            trial.receive(envelope)
        except InterceptionError:
            continue
        return record
    return None


def answerable(records: Iterable[PairingRecord]) -> list[PairingRecord]:
    """The pairings a LAN connection may belong to: those where we are the KK responder (the
    agent's side), tombstones included — a removed device that connects is told so."""
    mine = [r for r in records if r.role == "responder"]
    return sorted(mine, key=lambda r: r.last_seen, reverse=True)[:MAX_TRIED_PAIRINGS]


class LanListener:
    """Accepts LAN connections, matches each to a pairing, hands it to ``on_peer``.

    ``on_peer(record, signal)`` runs the rest of the session setup; the connection counts as
    pending until it returns, so it should return once the session is established (or failed).
    """

    def __init__(self, *, port: int, records: Callable[[], Sequence[PairingRecord]], hello: Callable[[], Hello],
                 identity: X25519PrivateKey, on_peer: OnPeer, on_refused: OnRefused | None = None,
                 limits: LanLimits = LanLimits(), host: str | None = None) -> None:
        self._port = port
        self._host = host
        self._records = records
        self._hello = hello
        self._identity = identity
        self._on_peer = on_peer
        self._on_refused = on_refused
        self.limits = limits
        self._rate: RateLimiter[str] = RateLimiter.per_minute(limits.per_address_per_minute)
        self._per_address: ConcurrencyLimit[str] = ConcurrencyLimit(limits.pending_per_address)
        self._identify = TokenBucket.full(rate=limits.identify_per_second, burst=2 * limits.identify_per_second,
                                          now=time.monotonic())
        self._pending = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        """Listen on every interface (one dual-stack socket where IPv6 exists), or on ``host``."""
        if self._host is not None:
            sock = socket.create_server((self._host, self._port))
        elif socket.has_dualstack_ipv6():
            try:
                sock = socket.create_server(("::", self._port), family=socket.AF_INET6, dualstack_ipv6=True)
            except OSError:  # IPv6 compiled in but switched off
                sock = socket.create_server(("0.0.0.0", self._port))
        else:
            sock = socket.create_server(("0.0.0.0", self._port))
        self._server = await asyncio.start_server(self._accept, sock=sock, limit=READ_LIMIT)
        logger.info("listening for paired devices on LAN port %d", self.port)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A task per connection, kept so that close() can end the ones still in their handshake.
        task = asyncio.create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _refuse(self, address: str, reason: str) -> None:
        logger.info("refused a LAN connection from %s: %s", address, reason)
        if self._on_refused is not None:
            self._on_refused(address, reason)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        host = str(peer[0]) if peer else "?"
        key = client_key(host)
        address = format_address(peer) if peer else "?"
        if self._closed or not self._rate.allow(key, time.monotonic()):
            logger.info("refused a LAN connection from %s: too many", address)
            await _drop(writer)
            return
        if self._pending >= self.limits.pending or not self._per_address.acquire(key):
            logger.info("refused a LAN connection from %s: too many at once", address)
            await _drop(writer)
            return
        self._pending += 1
        handed_over = False
        try:
            try:
                async with asyncio.timeout(self.limits.handshake_deadline):
                    if await reader.readexactly(len(PREAMBLE)) != PREAMBLE:
                        raise LanWireError("not the peerbeam LAN protocol")
                    length = parse_header(await reader.readexactly(LENGTH_BYTES), MAX_FIRST_ENVELOPE)
                    first = await reader.readexactly(length)
            except TimeoutError:
                self._refuse(address, "no handshake in time")
                return
            except (asyncio.IncompleteReadError, OSError):
                self._refuse(address, "closed before the handshake")
                return
            except LanWireError:
                self._refuse(address, "not the peerbeam LAN protocol")
                return
            if not self._identify.take(time.monotonic()):
                self._refuse(address, "too many handshakes at once")
                return
            record = identify(first, answerable(self._records()), self._hello(), self._identity)
            if record is None:
                self._refuse(address, "handshake refused: no pairing matches")
                return
            handed_over = True
            signal = LanSignal(reader, writer, pending=[first])
            try:
                await self._on_peer(record, signal)
            except PeerbeamError as exc:  # on_peer reports its own failures; never kill the listener
                logger.info("LAN session with %s failed: %s", address, exc.code)
        finally:
            self._pending -= 1
            self._per_address.release(key)
            if not handed_over:
                await _drop(writer)

    async def close(self) -> None:
        """Stop listening; end connections still in their handshake. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)


async def _drop(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)
