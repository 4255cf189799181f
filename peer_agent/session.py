"""One device-to-device session: the end-to-end dialogue through the server, then the channel.

``Dialogue`` pumps the signaling socket — or a direct LAN connection (lan_signal.py), which
speaks the same envelopes — into the pure ``SecureSession`` and back. ``establish``
walks a session from the first handshake message to an open, bound data channel, each wait
bounded. ``PeerSession`` then owns the connected channel: text, delivery receipts, liveness
pings (which also measure the round-trip time shown with the path) and unpairing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from signaling.ratelimit import TokenBucket
from signaling.schema import (
    Bye,
    ChannelError,
    ChannelMessage,
    Delivered,
    Error,
    ErrorCode,
    Hello,
    IceCandidate,
    IceServer,
    JoinRefused,
    PagePull,
    PagePush,
    PageRefused,
    PairAccept,
    PairReject,
    PairRemoved,
    PeerLeft,
    PeerSignal,
    Ping,
    Pong,
    Relay,
    SchemaError,
    Sdp,
    SyncOpen,
    SyncReader,
    SyncRefused,
    SyncStart,
    SyncStop,
    SyncUpdate,
    Text,
    TransferAccept,
    TransferCancel,
    TransferDone,
    TransferFailure,
    TransferOffer,
    TransferProgress,
    TransferReject,
    Unpair,
)

from .config import NodeConfig
from .errors import (
    InterceptionError,
    PairingRejected,
    PeerbeamError,
    PeerGone,
    ServerRefused,
)
from . import ice_order
from .fast_path import FastPath
from .files import Decide, FileShell
from .handshake import (
    FrameReceived,
    HandshakeCompleted,
    PeerAborted,
    Role,
    SecureSession,
    SignalReceived,
    abort_envelope,
)
from .lan_signal import LanSignal
from .relay_check import RelayVerdict, check_relay
from .report import Reporter
from .rtc import BindingContext, RtcLink
from .signal_client import SignalClient

logger = logging.getLogger(__name__)

S = TypeVar("S", bound=PeerSignal)
Confirm = Callable[[Hello, str], Awaitable[bool]]
_TRANSFER_MESSAGES = (TransferOffer, TransferAccept, TransferReject, TransferProgress, TransferCancel, TransferDone,
                      TransferFailure)
_SYNC_MESSAGES = (SyncStart, SyncOpen, SyncUpdate, SyncReader, SyncStop, SyncRefused)


class DeviceRemoved(PeerbeamError):
    """The other device no longer has a pairing with this one. Pair again with a new QR code."""

    code = ErrorCode.UNKNOWN_DEVICE
    remote = True


class ToldRemoved(PeerbeamError):
    """The other device reconnected to a pairing removed here, and has now been told."""

    code = ErrorCode.UNKNOWN_DEVICE


class Dialogue:
    """The encrypted conversation between two devices, routed by the signaling server or
    carried by a direct LAN connection."""

    def __init__(
        self,
        signal: SignalClient | LanSignal,
        secure: SecureSession,
        on_refused_join: Callable[[JoinRefused], None] | None = None,
    ) -> None:
        self.signal = signal
        self.secure = secure
        # The agent's pairing socket stays this session's route, so the server's notice that
        # someone replayed the QR arrives here.
        self._on_refused_join = on_refused_join
        self._events: asyncio.Queue[HandshakeCompleted | SignalReceived] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self.fatal: asyncio.Future[PeerbeamError] = loop.create_future()
        self._link: RtcLink | None = None
        self._pending_candidates: list[IceCandidate] = []
        # Fast-path data frames (LAN only): the session installs its frame handler here.
        self.on_frame: Callable[[bytes], None] | None = None
        self._task = asyncio.create_task(self._pump())

    @property
    def over_lan(self) -> bool:
        return isinstance(self.signal, LanSignal)

    def _die(self, error: PeerbeamError) -> None:
        if not self.fatal.done():
            self.fatal.set_result(error)

    async def _pump(self) -> None:
        try:
            while True:
                msg = await self.signal.recv()
                if msg is None:
                    self._die(PeerGone("The signaling server closed the connection."))
                    return
                if isinstance(msg, PeerLeft):
                    self._die(PeerGone("The other device went offline."))
                    return
                if isinstance(msg, Error):
                    self._die(ServerRefused(msg.message, code=msg.code))
                    return
                if isinstance(msg, Relay):
                    await self._on_envelope(msg.data)
                elif isinstance(msg, JoinRefused) and self._on_refused_join is not None:
                    self._on_refused_join(msg)
        except PeerbeamError as exc:
            self._die(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: fail this session loudly, not the whole process
            logger.exception("dialogue pump failed")
            self._die(PeerbeamError(f"Internal error: {type(exc).__name__}"))

    async def _on_envelope(self, envelope: bytes) -> None:
        try:
            out, events = self.secure.receive(envelope)
        except InterceptionError as exc:
            # Tell the other side so that both report the same thing, then stop reading.
            with contextlib.suppress(PeerbeamError):
                await self.signal.send(Relay(data=abort_envelope("interception")))
            self._die(exc)
            return
        for envelope_out in out:
            await self.signal.send(Relay(data=envelope_out))
        for event in events:
            if isinstance(event, FrameReceived):
                if self.on_frame is not None:
                    self.on_frame(event.frame)
                else:  # only a LAN session takes frames this way
                    logger.info("dropped a data frame that came outside a LAN session")
            elif isinstance(event, PeerAborted):
                if event.reason == "interception":
                    self._die(InterceptionError())
                else:
                    self._die(PeerGone(f"The other device aborted ({event.reason})."))
            elif isinstance(event, SignalReceived) and isinstance(event.signal, IceCandidate):
                if self._link is None:
                    self._pending_candidates.append(event.signal)
                else:
                    await self._link.add_candidate(event.signal)
            elif isinstance(event, SignalReceived) and isinstance(event.signal, Bye):
                self._die(PeerGone(event.signal.message or "The other device closed the session."))
            elif isinstance(event, SignalReceived) and isinstance(event.signal, PairRemoved):
                self._die(DeviceRemoved())
            else:
                self._events.put_nowait(event)

    def detach(self) -> None:
        """The link of a failed attempt is gone: candidates wait for the next one."""
        self._link = None
        self._pending_candidates = []

    async def attach(self, link: RtcLink) -> None:
        """From now on trickled candidates go straight to ``link`` (buffered ones first)."""
        self._link = link
        pending, self._pending_candidates = self._pending_candidates, []
        for candidate in pending:
            await link.add_candidate(candidate)

    async def race(self, awaitable: Awaitable[Any], timeout: float, what: str) -> Any:
        """Await ``awaitable`` unless the dialogue dies first or ``timeout`` passes."""
        task = asyncio.ensure_future(awaitable)
        try:
            done, _ = await asyncio.wait({task, self.fatal}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task in done:
            return task.result()
        task.cancel()
        if self.fatal.done():
            raise self.fatal.result()
        raise PeerbeamError(f"The other device did not {what} within {timeout:g} s.", code=ErrorCode.CONNECT_TIMEOUT)

    async def handshake(self, timeout: float) -> HandshakeCompleted:
        event = await self.race(self._events.get(), timeout, "answer the secure handshake")
        if not isinstance(event, HandshakeCompleted):
            raise InterceptionError()
        return event

    async def expect(self, kind: type[S], timeout: float, what: str) -> S:
        event = await self.race(self._events.get(), timeout, what)
        if not isinstance(event, SignalReceived) or not isinstance(event.signal, kind):
            if isinstance(event, SignalReceived) and isinstance(event.signal, PairReject) and kind is PairAccept:
                raise PairingRejected(f"The other device declined: {event.signal.message}")
            raise PeerbeamError(
                f"The other device sent {type(getattr(event, 'signal', event)).__name__} out of order.",
                code=ErrorCode.BAD_MESSAGE,
            )
        return event.signal

    async def send(self, signal: PeerSignal) -> None:
        await self.signal.send(Relay(data=self.secure.seal(signal)))

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.signal.close()


async def establish(
    dialogue: Dialogue,
    *,
    role: Role,
    pairing: bool,
    ice_servers: list[IceServer],
    config: NodeConfig,
    confirm: Confirm | None = None,
    on_handshake: Callable[[HandshakeCompleted], None] | None = None,
    tombstone: bool = False,
    first_attempt: int = 0,
    on_retry: Callable[[RelayVerdict, str], None] | None = None,
    handshake_timeout: float | None = None,
) -> tuple[HandshakeCompleted, RtcLink]:
    """From the first Noise message to a bound data channel. Every wait is bounded: one
    connect timeout per TURN transport offered (``first_attempt`` picks the first one), and
    the error then says what failed (relay_check.py). ``handshake_timeout`` bounds the Noise
    handshake alone (default: the connect timeout); on a LAN it is short, so that a device
    that answers and then says nothing is given up on quickly.

    With ``tombstone`` (we removed this pairing while the other device was away) the KK
    handshake still runs — so only the real device learns it — then we say "removed" and stop.
    """
    if role == "initiator":
        await dialogue.signal.send(Relay(data=dialogue.secure.start()))
    done = await dialogue.handshake(handshake_timeout if handshake_timeout is not None else config.connect_timeout)
    if on_handshake is not None:
        on_handshake(done)
    if tombstone:
        await dialogue.send(PairRemoved())
        raise ToldRemoved()
    if pairing:
        if role == "responder":
            assert confirm is not None
            if not await dialogue.race(confirm(done.peer, done.code), 300, "wait for the confirmation"):
                await dialogue.send(PairReject(message="The pairing was declined on the other device."))
                raise PairingRejected("You declined the pairing.")
            await dialogue.send(PairAccept())
        else:
            # The user on the other side is reading the code and deciding: give them time.
            await dialogue.expect(PairAccept, 300, "accept the pairing")

    # aiortc tries one TURN transport per connection (ice_order.py): when an attempt finds no
    # path, both sides start a fresh one with the next transport, still inside this dialogue —
    # so a first pairing behind a UDP-blocking firewall does not burn its single-use QR token.
    plans = ice_order.attempts(ice_servers, first_attempt)
    for number, plan in enumerate(plans, start=1):
        try:
            link = await _connect_once(dialogue, role, plan.servers, done, config)
        except PeerbeamError as exc:
            if exc.code != ErrorCode.CONNECT_TIMEOUT:
                raise
            verdict = await check_relay(plan.servers)
            if number == len(plans) or verdict.outcome in ("none", "refused"):
                # Credentials are the same for every transport: a refusal will not change.
                raise _no_path(verdict, config.connect_timeout) from None
            following = plans[number].transport or "the same servers"
            logger.info("attempt %d found no path (%s); trying %s", number, verdict.outcome, following)
            if on_retry is not None:
                on_retry(verdict, following)
            dialogue.detach()
            continue
        return done, link
    raise AssertionError("attempts() returns at least one plan")


async def _connect_once(dialogue: Dialogue, role: Role, servers: list[IceServer], done: HandshakeCompleted,
                        config: NodeConfig) -> RtcLink:
    """One offer/answer and ICE run, bounded by the connect timeout."""
    link = RtcLink(servers, BindingContext(role, done.handshake_hash, done.chaining_key))
    try:
        if role == "initiator":
            await dialogue.send(await link.make_offer())
            answer = await dialogue.expect(Sdp, config.connect_timeout, "answer the connection offer")
            await link.accept_answer(answer)
        else:
            # The initiator's next offer comes once *its* attempt timed out, up to a timeout later.
            offer = await dialogue.expect(Sdp, 2 * config.connect_timeout, "send a connection offer")
            await dialogue.send(await link.accept_offer(offer))
        await dialogue.attach(link)
        await dialogue.race(link.wait_bound(config.connect_timeout), config.connect_timeout + 1, "connect")
    except BaseException:
        await link.close()
        raise
    return link


def _no_path(verdict: RelayVerdict, timeout: float) -> PeerbeamError:
    code = ErrorCode.RELAY_UNAVAILABLE if verdict.outcome in ("refused", "unreachable") else ErrorCode.CONNECT_TIMEOUT
    return PeerbeamError(f"No network path to the other device worked within {timeout:g} s. {verdict.sentence()}",
                         code=code)


class PeerSession:
    """A connected, bound channel to one paired device: text, files, pages, liveness."""

    def __init__(
        self,
        *,
        name: str,
        peer_key: bytes,
        pair_secret: bytes,
        dialogue: Dialogue,
        link: RtcLink,
        reporter: Reporter,
        config: NodeConfig,
        on_unpaired: Callable[[bytes], None],
        decide: Decide,
    ) -> None:
        self.name = name
        self.peer_key = peer_key
        self.dialogue = dialogue
        self.link = link
        self.reporter = reporter
        self.config = config
        self._on_unpaired = on_unpaired
        self._ping_ids = itertools.count(1)
        self._last_pong = time.monotonic()
        self.rtt_ms: float | None = None
        self._deliveries: dict[str, asyncio.Future[None]] = {}  # text id -> its receipt
        self._pings: dict[int, asyncio.Future[None]] = {}  # ping id -> its pong
        self._ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._unpairing = False
        # Everything from the network is rate-limited: a device flooding texts or pings gets
        # an error back and the excess is dropped; the session and this process stay usable.
        self._inbound = TokenBucket.full(rate=config.inbound_per_second, burst=config.inbound_per_second * 2,
                                         now=time.monotonic())
        self._warned_flood_at = -1e9
        # Over a direct LAN connection both ends are Python peers: file frames take the fast
        # path when this side allows it, and frames arriving that way are always taken.
        self.fast_path = (FastPath(dialogue.secure, dialogue.signal)
                          if isinstance(dialogue.signal, LanSignal) and config.lan_fast_path else None)
        if dialogue.over_lan:
            dialogue.on_frame = self._on_fast_frame
        self.files = FileShell(link=link, peer_name=name, pair_secret=pair_secret, config=config, reporter=reporter,
                               decide=decide, frames=self.fast_path)
        # Page messages (page.push / page.pull / page.refused) and the frames of their
        # thumbnails: the node installs these (peer_agent/node.py).
        self.on_page: Callable[[PeerSession, ChannelMessage], None] | None = None
        self.claim_frame: Callable[[bytes], bool] | None = None
        # Page sync's messages, and "a sync.update was dropped by the rate limit" (the document
        # then re-syncs by state vector): peer_agent/syncing.py installs these.
        self.on_sync: Callable[[PeerSession, ChannelMessage], None] | None = None
        self.on_sync_dropped: Callable[[PeerSession, SyncUpdate], None] | None = None
        link.on_message = self._on_message
        link.on_refused = self._on_bad_message
        link.on_frame = self._on_frame

    def path_fields(self) -> dict[str, Any]:
        info = self.link.path()
        fields: dict[str, Any] = info.as_dict() if info else {"kind": "unknown"}
        if self.rtt_ms is not None:
            fields["rtt_ms"] = round(self.rtt_ms, 2)
        # How the devices met (the server's rendezvous, or a direct LAN connection found by
        # mDNS or given with --address), and what carries files.
        signal = self.dialogue.signal
        fields["rendezvous"] = "lan" if isinstance(signal, LanSignal) else "server"
        if isinstance(signal, LanSignal):
            fields["lan_peer"] = signal.peer
        fields["files_via"] = self.files.frames.label
        return fields

    async def measure_rtt(self, timeout: float = 5.0) -> float | None:
        """One ping round trip, so the path we show comes with a real round-trip time."""
        ping_id = next(self._ping_ids)
        waiter = asyncio.get_running_loop().create_future()
        self._pings[ping_id] = waiter
        self.link.send(Ping(id=ping_id, sent_at=time.monotonic()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter, timeout)
        return self.rtt_ms

    def _flooded(self) -> bool:
        now = time.monotonic()
        if self._inbound.take(now):
            return False
        if now - self._warned_flood_at >= 1.0:  # one answer (and log line) per second of flood
            self._warned_flood_at = now
            self._send_quietly(ChannelError(code=ErrorCode.RATE_LIMITED,
                                            message="Too many messages: some were dropped."))
            logger.warning("dropping messages from %s: rate limit", self.name)
        return True

    def _on_frame(self, data: bytes, via: str = RtcLink.label) -> None:
        # Frames of a live transfer or card are paced by the protocol itself (in order, each
        # checked); anything else counts against the same budget as messages.
        if self.claim_frame is not None and self.claim_frame(data):
            return
        if not self.files.on_frame(data, via):
            self._flooded()

    def _on_fast_frame(self, data: bytes) -> None:
        # The same handler and checks as file frames from the channel: only the carrier
        # differs. (Page thumbnails, the frames claim_frame takes, always use the channel.)
        if not self.files.on_frame(data, FastPath.label):
            self._flooded()

    def _on_message(self, message: ChannelMessage) -> None:
        # Receipts and pongs answer what we sent: matched against our own pending ids, they cost
        # nothing and say nothing, so they do not use the budget (a flood of our own receipts
        # coming back must not crowd out the other side's error telling us to slow down).
        if not isinstance(message, (Delivered, Pong)) and self._flooded():
            if isinstance(message, SyncUpdate) and self.on_sync_dropped is not None:
                self.on_sync_dropped(self, message)
            return
        if isinstance(message, _TRANSFER_MESSAGES):
            self.files.on_message(message)
        elif isinstance(message, (PagePush, PagePull, PageRefused)):
            if self.on_page is not None:
                self.on_page(self, message)
        elif isinstance(message, _SYNC_MESSAGES):
            if self.on_sync is not None:
                self.on_sync(self, message)
        elif isinstance(message, Text):
            self.reporter.emit("message", name=self.name, text=message.text, id=message.id, **{"from": self.name})
            self._send_quietly(Delivered(id=message.id))
        elif isinstance(message, Delivered):
            waiter = self._deliveries.pop(message.id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif isinstance(message, Ping):
            self._send_quietly(Pong(id=message.id, sent_at=message.sent_at))
        elif isinstance(message, Pong):
            self._last_pong = time.monotonic()
            self.rtt_ms = (time.monotonic() - message.sent_at) * 1000
            waiter = self._pings.pop(message.id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif isinstance(message, Unpair):
            self._on_unpaired(self.peer_key)
            self.reporter.emit("unpaired", name=self.name, by="peer",
                               message=f"{self.name} removed the pairing.")
            self._end("unpaired")
        elif isinstance(message, ChannelError):
            self.reporter.emit("error", code=str(message.code), message=f"{self.name}: {message.message}",
                               name=self.name, remote=True)

    def _on_bad_message(self, exc: SchemaError) -> None:
        # Refused messages count against the same budget: a flood of them gets one answer a
        # second (rate_limited), not one error back per message.
        if self._flooded():
            return
        why = "it is over 64 KiB" if exc.code == ErrorCode.FRAME_TOO_LARGE else "it does not fit the schema"
        self._send_quietly(ChannelError(code=exc.code, message=f"A message was refused: {why}."))

    def send_quietly(self, message: ChannelMessage) -> None:
        """Send if the channel is still there; a closed channel is not an error here."""
        self._send_quietly(message)

    def _send_quietly(self, message: ChannelMessage) -> None:
        with contextlib.suppress(PeerbeamError, RuntimeError):
            self.link.send(message)

    @property
    def ended(self) -> bool:
        """Over, or about to be: nothing new should start on it."""
        return self._ended.done() or self.link.closed.done()

    def supersede(self) -> None:
        """A newer session with the same device replaces this one (it reconnected before we
        noticed that this one was gone): end it without reconnecting."""
        self._end("superseded")

    def _end(self, reason: str) -> None:
        if not self._ended.done():
            self._ended.set_result(reason)

    async def send_text(self, text: str, timeout: float = 10.0) -> str:
        message_id = secrets.token_urlsafe(9)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._deliveries[message_id] = waiter
        self.link.send(Text(id=message_id, text=text))
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            raise PeerbeamError(f"{self.name} did not confirm delivery within {timeout:g} s.",
                                code=ErrorCode.CONNECT_TIMEOUT) from None
        finally:
            self._deliveries.pop(message_id, None)
        return message_id

    async def unpair(self) -> None:
        # The other device closes its side as soon as it reads Unpair, often within the pause
        # below: run() must then still say "unpaired", or the node would start reconnecting.
        self._unpairing = True
        self._send_quietly(Unpair())
        # Give the message a moment to leave before the channel closes; the receipt of the
        # close itself is not needed.
        await asyncio.sleep(0.2)
        self._end("unpaired")

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.config.ping_interval)
            if time.monotonic() - self._last_pong > self.config.ping_timeout:
                self._end(f"no answer for {self.config.ping_timeout:g} s")
                return
            self._send_quietly(Ping(id=next(self._ping_ids), sent_at=time.monotonic()))

    async def run(self) -> str:
        """Until the session ends; returns why, in words for people."""
        keepalive = asyncio.create_task(self._keepalive())
        link_closed = asyncio.ensure_future(self.link.closed)
        try:
            waiters: set[asyncio.Future[Any]] = {self._ended, link_closed, self.dialogue.fatal}
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if self._unpairing:
                return "unpaired"
            if self._ended.done():
                return self._ended.result()
            if self.dialogue.fatal.done():
                return self.dialogue.fatal.result().message
            return link_closed.result()
        finally:
            keepalive.cancel()
            await self.close()

    async def close(self) -> None:
        self._end("closed")
        for waiter in [*self._deliveries.values(), *self._pings.values()]:
            if not waiter.done():
                waiter.cancel()
        await self.files.close()
        await self.link.close()
        await self.dialogue.close()
