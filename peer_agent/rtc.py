"""The aiortc layer: one RTCPeerConnection with one data channel, bound to the Noise session.

Three rules from DESIGN "Pairing" step 5 live here:

* exactly one sha-256 DTLS fingerprint per side: we strip the others from our SDP before it
  leaves, and refuse a remote SDP that carries anything but one sha-256 fingerprint (aiortc
  would otherwise accept a certificate matching any of several);
* the first message each side sends on the channel is a MAC over (role, handshake hash, local
  and remote fingerprints) under a key derived from the Noise chaining key. Until the peer's MAC
  verifies, nothing but that MAC is read and nothing else is sent: a mismatch closes the
  channel before any application byte flows;
* every message is framed and capped by us (≤ 64 KiB): aiortc does not enforce the
  max-message-size it advertises.

ICE servers are always passed explicitly (aiortc adds a public STUN server otherwise).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from aiortc import RTCConfiguration, RTCDataChannel, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from crypto.binding import binding_key, binding_mac, normalise_fingerprint, verify_binding
from crypto.errors import BindingError
from signaling.schema import (
    MAX_FRAME_BYTES,
    Bind,
    ChannelMessage,
    ErrorCode,
    IceCandidate,
    IceServer,
    SchemaError,
    Sdp,
    decode_channel,
    encode,
)

from .errors import InterceptionError, PeerbeamError
from .path import PathInfo, describe_path

logger = logging.getLogger(__name__)

Role = Literal["initiator", "responder"]
# The early queue is for the few milliseconds between binding and the session's handler; a
# peer that fills it then is flooding (each message may be 64 KiB).
MAX_EARLY_MESSAGES = 64
# Flow control for bulk frames: stop writing above HIGH buffered bytes, resume when aiortc
# says the buffer fell to LOW (W3C RTCDataChannel bufferedAmountLowThreshold). Enough in
# flight to keep SCTP busy, little enough that a cancel or a text is not stuck behind
# seconds of queued data.
BUFFER_HIGH = 1024 * 1024
BUFFER_LOW = 256 * 1024
_FINGERPRINT = re.compile(r"^a=fingerprint:(\S+) (\S+)\s*$", re.MULTILINE)


class BadSdp(PeerbeamError):
    """The other device offered a connection this version of peerbeam does not accept."""

    code = ErrorCode.BAD_MESSAGE
    remote = True


def keep_sha256_fingerprint(sdp: str) -> tuple[str, str]:
    """Our outgoing SDP with only its sha-256 fingerprint line; returns (sdp, fingerprint).

    Line by line, so that no empty line is left where another fingerprint was: browsers refuse
    an SDP with one ("Invalid SDP line", RFC 8866 §5 has no empty lines).
    """
    found: list[str] = []
    kept: list[str] = []
    for line in re.split(r"\r?\n", sdp):
        match = _FINGERPRINT.match(line)
        if match is not None:
            if match.group(1).lower() != "sha-256":
                continue
            found.append(normalise_fingerprint(match.group(2)))
        if line:
            kept.append(line)
    if len(set(found)) != 1:
        raise BadSdp("Our own SDP has no single sha-256 fingerprint (aiortc changed?).")
    return "\r\n".join(kept) + "\r\n", found[0]


def remote_fingerprint(sdp: str) -> str:
    """The one sha-256 fingerprint a remote SDP may carry; anything else is refused."""
    found = _FINGERPRINT.findall(sdp)
    algorithms = {algorithm.lower() for algorithm, _ in found}
    values = {value.upper() for _, value in found}
    if algorithms != {"sha-256"} or len(values) != 1:
        raise BadSdp("The other device's connection offer must carry exactly one sha-256 fingerprint.")
    try:
        return normalise_fingerprint(values.pop())
    except BindingError:
        raise BadSdp("The other device's DTLS fingerprint is malformed.") from None


@dataclass(frozen=True)
class BindingContext:
    """What the channel MAC binds: our role and the Noise session's hash and chaining key."""

    role: Role
    handshake_hash: bytes
    chaining_key: bytes

    @property
    def peer_role(self) -> Role:
        return "responder" if self.role == "initiator" else "initiator"


def to_rtc_ice_servers(servers: list[IceServer]) -> list[RTCIceServer]:
    return [RTCIceServer(urls=s.urls, username=s.username, credential=s.credential) for s in servers]


MessageHandler = Callable[[ChannelMessage], None]


class RtcLink:
    """The WebRTC side of one connected session."""

    # As a carrier of file frames (files.FrameCarrier): what the user is told, and the cap.
    label: Final = "data channel"
    max_frame_bytes: Final = MAX_FRAME_BYTES

    def __init__(self, ice_servers: list[IceServer], binding: BindingContext) -> None:
        # Explicit, possibly empty: never let aiortc fall back to a public STUN server.
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=to_rtc_ice_servers(ice_servers)))
        self._binding = binding
        self._key = binding_key(binding.chaining_key)
        self._local_fp: str | None = None
        self._remote_fp: str | None = None
        self._channel: RTCDataChannel | None = None
        self._bound: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Mark a failure as retrieved even when nobody waits for it any more.
        self._bound.add_done_callback(lambda f: None if f.cancelled() else f.exception())
        self.closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        # Messages that arrive once bound but before the session attaches its handler (the node
        # is still writing the pairing record) are kept and handed over in order, not dropped.
        self._handler: MessageHandler | None = None
        self._early: collections.deque[ChannelMessage] = collections.deque()
        # Binary data frames (file chunks) go to this handler; JSON text to on_message.
        self.on_frame: Callable[[bytes], None] | None = None
        # Told when a message after binding does not fit the schema (the session answers it).
        self.on_refused: Callable[[SchemaError], None] | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._closing = False

        @self.pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            if self._channel is not None or channel.label != "peerbeam":
                channel.close()
                return
            self._attach(channel)

        @self.pc.on("connectionstatechange")
        async def on_state() -> None:
            state = self.pc.connectionState
            logger.debug("connection state %s", state)
            if state in ("failed", "closed"):
                self._set_closed(f"connection {state}")

    # -- offer / answer -----------------------------------------------------------------------

    async def make_offer(self) -> Sdp:
        self._attach(self.pc.createDataChannel("peerbeam", ordered=True))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp, self._local_fp = keep_sha256_fingerprint(self.pc.localDescription.sdp)
        return Sdp(type="offer", sdp=sdp)

    async def accept_offer(self, offer: Sdp) -> Sdp:
        if offer.type != "offer":
            raise BadSdp("Expected a connection offer.")
        self._remote_fp = remote_fingerprint(offer.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        sdp, self._local_fp = keep_sha256_fingerprint(self.pc.localDescription.sdp)
        return Sdp(type="answer", sdp=sdp)

    async def accept_answer(self, answer: Sdp) -> None:
        if answer.type != "answer":
            raise BadSdp("Expected a connection answer.")
        self._remote_fp = remote_fingerprint(answer.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))

    async def add_candidate(self, message: IceCandidate) -> None:
        """A trickled remote candidate (RFC 8838); empty means end-of-candidates."""
        if not message.candidate:
            await self.pc.addIceCandidate(None)
            return
        text = message.candidate.removeprefix("candidate:")
        try:
            candidate = candidate_from_sdp(text)
        except (ValueError, IndexError):
            logger.debug("ignored an unparsable ICE candidate")
            return
        candidate.sdpMid = message.sdp_mid
        candidate.sdpMLineIndex = message.sdp_mline_index if message.sdp_mline_index is not None else 0
        await self.pc.addIceCandidate(candidate)

    # -- the channel --------------------------------------------------------------------------

    def _attach(self, channel: RTCDataChannel) -> None:
        self._channel = channel
        channel.bufferedAmountLowThreshold = BUFFER_LOW

        @channel.on("bufferedamountlow")
        def on_low() -> None:
            self._writable.set()

        @channel.on("open")
        def on_open() -> None:
            self._send_bind()

        @channel.on("message")
        def on_message(data: str | bytes) -> None:
            self._receive(data)

        @channel.on("close")
        def on_close() -> None:
            self._writable.set()  # wake writers so they see the close
            self._set_closed("channel closed")

        if channel.readyState == "open":
            self._send_bind()

    def _send_bind(self) -> None:
        assert self._channel is not None
        if self._local_fp is None or self._remote_fp is None:
            self._fail(BadSdp("The channel opened before both fingerprints were known."))
            return
        mac = binding_mac(
            self._key, self._binding.role, self._binding.handshake_hash, self._local_fp, self._remote_fp
        )
        self._channel.send(encode(Bind(mac=mac)).decode())

    def _receive(self, data: str | bytes) -> None:
        if len(data) > MAX_FRAME_BYTES:
            if not self._bound.done():
                self._fail(PeerbeamError("The other device sent a message over 64 KiB.",
                                         code=ErrorCode.FRAME_TOO_LARGE))
            else:
                # Dropped and answered; the session goes on. (aiortc has already reassembled
                # the whole SCTP message by now: it enforces no inbound size of its own.)
                logger.info("dropped a channel message over 64 KiB")
                if self.on_refused is not None:
                    self.on_refused(SchemaError(ErrorCode.FRAME_TOO_LARGE, "The message is larger than 64 KiB."))
            return
        if isinstance(data, bytes):
            # Binary frames are file data: never before the binding MAC, never parsed as JSON.
            if not self._bound.done():
                self._fail(InterceptionError())
            elif self.on_frame is None:
                logger.info("dropped a data frame: no transfer is running")
            else:
                self.on_frame(data)
            return
        try:
            message = decode_channel(data)
        except SchemaError as exc:
            if not self._bound.done():
                self._fail(InterceptionError())
                return
            logger.info("dropped a channel message that does not fit the schema (%s)", exc.code)
            if self.on_refused is not None:
                self.on_refused(exc)
            return
        if not self._bound.done():
            self._check_bind(message)
            return
        if isinstance(message, Bind):
            return  # a duplicate; harmless
        if self._handler is None or self._early:
            if len(self._early) >= MAX_EARLY_MESSAGES:
                logger.info("dropped a channel message that arrived before the session was ready")
                return
            self._early.append(message)
            return
        self._handler(message)

    @property
    def on_message(self) -> MessageHandler | None:
        return self._handler

    @on_message.setter
    def on_message(self, handler: MessageHandler | None) -> None:
        self._handler = handler
        if self._early:
            # Soon, not now: the caller is still setting itself up (PeerSession.__init__).
            asyncio.get_running_loop().call_soon(self._hand_over_early)

    def _hand_over_early(self) -> None:
        while self._early and self._handler is not None:
            self._handler(self._early.popleft())

    def _check_bind(self, message: ChannelMessage) -> None:
        if not isinstance(message, Bind) or self._local_fp is None or self._remote_fp is None:
            self._fail(InterceptionError())
            return
        try:
            # The peer's "local" fingerprint is our remote one, and the other way round.
            verify_binding(
                self._key,
                self._binding.peer_role,
                self._binding.handshake_hash,
                self._remote_fp,
                self._local_fp,
                message.mac,
            )
        except BindingError:
            self._fail(InterceptionError())
            return
        self._bound.set_result(None)

    def _fail(self, error: PeerbeamError) -> None:
        if not self._bound.done():
            self._bound.set_exception(error)
        self._set_closed(error.message)
        asyncio.ensure_future(self.close())

    def _set_closed(self, reason: str) -> None:
        if not self.closed.done():
            self.closed.set_result(reason)
        if not self._bound.done():
            self._bound.set_exception(PeerbeamError(f"The connection closed before it was ready ({reason}).",
                                                    code=ErrorCode.CONNECT_TIMEOUT))

    async def wait_bound(self, timeout: float) -> None:
        """Until the channel is open and the peer's binding MAC verified."""
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._bound)
        except TimeoutError:
            raise PeerbeamError(
                f"No network path to the other device worked within {timeout:g} s. Check that both "
                "devices are online; across different networks a TURN relay may be needed.",
                code=ErrorCode.CONNECT_TIMEOUT,
            ) from None

    def send(self, message: ChannelMessage) -> None:
        if not self._bound.done() or self._bound.exception() is not None:
            raise RuntimeError("channel not bound")
        data = encode(message)
        if len(data) > MAX_FRAME_BYTES:
            raise ValueError("message over 64 KiB")
        assert self._channel is not None
        if self._channel.readyState != "open":
            raise PeerbeamError("The connection is closed.", code=ErrorCode.PEER_GONE)
        self._channel.send(data.decode())

    def send_frame(self, frame: bytes) -> None:
        """One binary frame (≤ 64 KiB). Callers pace themselves with ``wait_writable``."""
        if not self._bound.done() or self._bound.exception() is not None:
            raise RuntimeError("channel not bound")
        if len(frame) > MAX_FRAME_BYTES:
            raise ValueError("frame over 64 KiB")
        assert self._channel is not None
        if self._channel.readyState != "open":
            raise PeerbeamError("The connection is closed.", code=ErrorCode.PEER_GONE)
        self._channel.send(frame)
        if self._channel.bufferedAmount > BUFFER_HIGH:
            self._writable.clear()

    async def wait_writable(self) -> None:
        """Until the send buffer has drained below the low mark (or the channel closed)."""
        while not self._writable.is_set():
            await self._writable.wait()
        if self.closed.done():
            raise PeerbeamError("The connection closed during the transfer.", code=ErrorCode.PEER_GONE)

    @property
    def buffered_amount(self) -> int:
        return self._channel.bufferedAmount if self._channel is not None else 0

    def path(self) -> PathInfo | None:
        return describe_path(self.pc)

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._writable.set()
        self._set_closed("closed")
        await self.pc.close()
