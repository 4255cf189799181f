"""File transfers as pure state machines: messages and frames in, events and messages out.

No I/O and no clock: every input carries ``now``, as in aioquic. The shell reads file chunks
for ``OutgoingTransfer.next_read()``, writes ``ChunkReceived`` payloads into a ``PartFile``,
sends what ``pop_messages()`` returns, and turns events into what people see.

The conversation (tags from ``signaling.schema``)::

    sender                         receiver
    transfer.offer   ───────────▶  (user or --auto-accept decides)
                     ◀───────────  transfer.accept {offset}   (offset > 0: resume)
    frames from offset ─────────▶  checked in order, hashed, written to name.part
                     ◀───────────  transfer.progress          (throttled)
                     ◀───────────  transfer.done              (sha-256 matched, renamed)
                                   or transfer.failed {code}  (bad_frame, hash_mismatch, disk_full)
    transfer.cancel  ◀──────────▶  from either side, until the last byte has left

The channel is reliable and ordered (RFC 8831 §6.6 default), which is what makes this simple:
a frame at any offset but the next expected one is a protocol violation, never reordering, and
a cancel from the sender cannot overtake its own earlier frames — so once the receiver has
verified the last byte, no cancel can still be in flight and the file is kept.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal, TypeAlias

from signaling.schema import (
    ChannelMessage,
    ErrorCode,
    TransferAccept,
    TransferCancel,
    TransferDone,
    TransferFailure,
    TransferOffer,
    TransferProgress,
    TransferReject,
)

from .frames import MAX_PAYLOAD_BYTES, DataFrame, FrameError, decode_frame, encode_frame
from .progress import Progress, RateMeter

if TYPE_CHECKING:
    from hashlib import _Hash

By = Literal["local", "peer"]


class TransferState(enum.Enum):
    OFFERED = "offered"
    TRANSFERRING = "transferring"
    SENT = "sent"  # sender: every byte has left; waiting for done / failed
    VERIFIED = "verified"  # receiver: every byte arrived and the sha-256 matches; commit now
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # the channel went away; the receiver keeps its .part


TERMINAL = frozenset(
    {TransferState.COMPLETED, TransferState.REJECTED, TransferState.CANCELLED, TransferState.FAILED,
     TransferState.INTERRUPTED}
)
_S = TransferState


# ---- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransferEvent:
    transfer_id: str


@dataclass(frozen=True, slots=True)
class TransferOffered(TransferEvent):
    offer: TransferOffer


@dataclass(frozen=True, slots=True)
class TransferAccepted(TransferEvent):
    offset: int


@dataclass(frozen=True, slots=True)
class TransferRejected(TransferEvent):
    by: By
    message: str


@dataclass(frozen=True, slots=True)
class ChunkReceived(TransferEvent):
    offset: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ProgressUpdated(TransferEvent):
    progress: Progress


@dataclass(frozen=True, slots=True)
class TransferVerified(TransferEvent):
    """Receiver: all bytes are in and the sha-256 matches. Commit the .part, then ``committed()``."""


@dataclass(frozen=True, slots=True)
class TransferCompleted(TransferEvent):
    pass


@dataclass(frozen=True, slots=True)
class TransferCancelled(TransferEvent):
    by: By
    message: str


@dataclass(frozen=True, slots=True)
class TransferFailed(TransferEvent):
    by: By
    code: ErrorCode
    message: str


@dataclass(frozen=True, slots=True)
class TransferInterrupted(TransferEvent):
    done: int


@dataclass(frozen=True, slots=True)
class FrameRefused(TransferEvent):
    """A binary frame that fits no live transfer (malformed, or for an unknown or finished id).

    Frames still in flight after a cancel land here too, so this is logged, not answered."""

    code: ErrorCode
    message: str


Event: TypeAlias = (
    TransferOffered | TransferAccepted | TransferRejected | ChunkReceived | ProgressUpdated | TransferVerified
    | TransferCompleted | TransferCancelled | TransferFailed | TransferInterrupted | FrameRefused
)


# ---- the machines -----------------------------------------------------------------------------


class _Transfer:
    """What both directions share: state, outbox, progress, cancel/fail/interrupt."""

    # (state, message type) -> handler; anything else in a live state is a protocol violation.
    _TABLE: ClassVar[dict[tuple[TransferState, type], Callable[..., list[Event]]]] = {}

    def __init__(self, transfer_id: str, size: int, done: int, now: float) -> None:
        self.id = transfer_id
        self.size = size
        self.state = _S.OFFERED
        self._outbox: list[ChannelMessage] = []
        self._meter = RateMeter(size, done, now)

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL

    def progress(self, now: float) -> Progress:
        return self._meter.progress(now)

    def pop_messages(self) -> list[ChannelMessage]:
        out, self._outbox = self._outbox, []
        return out

    def receive(self, message: ChannelMessage, now: float) -> list[Event]:
        if self.finished:
            return []  # late messages after an end are normal: progress crossing a cancel
        handler = self._TABLE.get((self.state, type(message)))
        if handler is None:
            return self.fail(ErrorCode.BAD_MESSAGE,
                             f"The other device sent {type(message).__name__} while the transfer was "
                             f"{self.state.value}.", now)
        return handler(self, message, now)

    def cancel(self, message: str, now: float) -> list[Event]:
        """Stop from this side. Too late once the last byte has left (sent) or been verified."""
        if self.finished or self.state in (_S.SENT, _S.VERIFIED):
            return []
        self.state = _S.CANCELLED
        self._outbox.append(TransferCancel(id=self.id, message=message))
        return [TransferCancelled(self.id, "local", message)]

    def fail(self, code: ErrorCode, message: str, now: float) -> list[Event]:
        """A local fault (or a violation we detected): tell the peer, end here."""
        if self.finished:
            return []
        self.state = _S.FAILED
        self._outbox.append(TransferFailure(id=self.id, code=code, message=message))
        return [TransferFailed(self.id, "local", code, message)]

    def interrupt(self, now: float) -> list[Event]:
        """The channel is gone. Nothing can be sent; a receiver keeps its .part for resuming."""
        if self.finished:
            return []
        self.state = _S.INTERRUPTED
        return [TransferInterrupted(self.id, self._meter.done)]

    def _peer_cancelled(self, message: TransferCancel, now: float) -> list[Event]:
        self.state = _S.CANCELLED
        return [TransferCancelled(self.id, "peer", message.message)]

    def _peer_failed(self, message: TransferFailure, now: float) -> list[Event]:
        self.state = _S.FAILED
        return [TransferFailed(self.id, "peer", message.code, message.message)]


class OutgoingTransfer(_Transfer):
    """Sender side. The offer is queued at construction; frames start at the accepted offset.

    Progress (rate, ETA) counts what the receiver reports as written, not what left our
    buffer: that is what the person waiting on the other side sees too.
    """

    def __init__(self, *, transfer_id: str, name: str, size: int, sha256: str, now: float,
                 mime: str | None = None, chunk_size: int = MAX_PAYLOAD_BYTES) -> None:
        super().__init__(transfer_id, size, 0, now)
        if not 0 < chunk_size <= MAX_PAYLOAD_BYTES:
            raise ValueError("chunk size out of range")
        self.chunk_size = chunk_size
        self.sent = 0
        self.offer = TransferOffer(id=transfer_id, name=name, size=size, sha256=sha256, mime=mime)
        self._outbox.append(self.offer)

    def next_read(self) -> tuple[int, int] | None:
        """(offset, length) of the next chunk to read from the file, or None if nothing to send."""
        if self.state is not _S.TRANSFERRING:
            return None
        return self.sent, min(self.chunk_size, self.size - self.sent)

    def encode_chunk(self, data: bytes, now: float) -> bytes:
        """Frame the chunk just read for ``next_read()``; moves to SENT after the last one."""
        expected = self.next_read()
        if expected is None or len(data) != expected[1]:
            raise ValueError("encode_chunk() wants exactly the bytes next_read() asked for")
        frame = encode_frame(self.id, self.sent, data)
        self.sent += len(data)
        if self.sent == self.size:
            self.state = _S.SENT
        return frame

    def _on_accept(self, message: TransferAccept, now: float) -> list[Event]:
        if message.offset > self.size:
            return self.fail(ErrorCode.BAD_MESSAGE, "The other device asked to resume beyond the end of the file.",
                             now)
        self.sent = message.offset
        self._meter = RateMeter(self.size, message.offset, now)
        self.state = _S.SENT if message.offset == self.size else _S.TRANSFERRING
        return [TransferAccepted(self.id, message.offset)]

    def _on_reject(self, message: TransferReject, now: float) -> list[Event]:
        self.state = _S.REJECTED
        return [TransferRejected(self.id, "peer", message.message)]

    def _on_progress(self, message: TransferProgress, now: float) -> list[Event]:
        if not self._meter.done <= message.received <= self.sent:
            return self.fail(ErrorCode.BAD_MESSAGE, "The other device reported progress it cannot have made.", now)
        self._meter.update(message.received, now)
        return [ProgressUpdated(self.id, self._meter.progress(now))]

    def _on_done(self, message: TransferDone, now: float) -> list[Event]:
        self._meter.update(self.size, now)
        self.state = _S.COMPLETED
        return [TransferCompleted(self.id)]


class IncomingTransfer(_Transfer):
    """Receiver side, from an offer. ``resume_offset``/``resume_digest`` describe a .part prefix
    already on disk (``PartFile`` re-hashes it); the accept asks for the rest."""

    def __init__(self, offer: TransferOffer, *, now: float, resume_offset: int = 0,
                 resume_digest: _Hash | None = None, progress_interval: float = 0.25) -> None:
        if not 0 <= resume_offset <= offer.size:
            raise ValueError("resume offset beyond the offered size")
        if resume_offset and resume_digest is None:
            raise ValueError("a resumed prefix needs its digest")
        super().__init__(offer.id, offer.size, resume_offset, now)
        self.offer = offer
        self.received = resume_offset
        self._digest = resume_digest if resume_digest is not None else hashlib.sha256()
        self._progress_interval = progress_interval
        self._progress_sent_at = now

    def accept(self, now: float) -> list[Event]:
        if self.state is not _S.OFFERED:
            return []
        self.state = _S.TRANSFERRING
        self._outbox.append(TransferAccept(id=self.id, offset=self.received))
        return self._check_complete(now)

    def reject(self, message: str, now: float) -> list[Event]:
        if self.state is not _S.OFFERED:
            return []
        self.state = _S.REJECTED
        self._outbox.append(TransferReject(id=self.id, message=message))
        return [TransferRejected(self.id, "local", message)]

    def receive_frame(self, frame: DataFrame, now: float) -> list[Event]:
        if self.finished:
            return []  # frames in flight when we cancelled
        if self.state is not _S.TRANSFERRING:
            return self.fail(ErrorCode.BAD_FRAME, "The other device sent data before the transfer was accepted.",
                             now)
        if frame.offset != self.received:
            return self.fail(ErrorCode.BAD_FRAME,
                             f"The other device sent data at offset {frame.offset}, expected {self.received}.", now)
        if frame.end > self.size:
            return self.fail(ErrorCode.BAD_FRAME, "The other device sent more bytes than it offered.", now)
        self._digest.update(frame.payload)
        self.received = frame.end
        self._meter.update(self.received, now)
        events: list[Event] = [ChunkReceived(self.id, frame.offset, frame.payload)]
        if self.received == self.size or now - self._progress_sent_at >= self._progress_interval:
            self._progress_sent_at = now
            self._outbox.append(TransferProgress(id=self.id, received=self.received))
        return events + self._check_complete(now)

    def committed(self, now: float) -> list[Event]:
        """The shell renamed the verified .part to its final name: say done."""
        if self.state is not _S.VERIFIED:
            return []
        self.state = _S.COMPLETED
        self._outbox.append(TransferDone(id=self.id))
        return [TransferCompleted(self.id)]

    def _check_complete(self, now: float) -> list[Event]:
        if self.received < self.size:
            return []
        if not hmac.compare_digest(self._digest.hexdigest(), self.offer.sha256):
            return self.fail(ErrorCode.HASH_MISMATCH,
                             "The file arrived damaged: its sha-256 does not match the offer.", now)
        self.state = _S.VERIFIED
        return [TransferVerified(self.id)]


OutgoingTransfer._TABLE = {
    (_S.OFFERED, TransferAccept): OutgoingTransfer._on_accept,
    (_S.OFFERED, TransferReject): OutgoingTransfer._on_reject,
    (_S.TRANSFERRING, TransferProgress): OutgoingTransfer._on_progress,
    (_S.SENT, TransferProgress): OutgoingTransfer._on_progress,
    (_S.SENT, TransferDone): OutgoingTransfer._on_done,
    **{(state, TransferCancel): _Transfer._peer_cancelled for state in (_S.OFFERED, _S.TRANSFERRING, _S.SENT)},
    **{(state, TransferFailure): _Transfer._peer_failed for state in (_S.OFFERED, _S.TRANSFERRING, _S.SENT)},
}
IncomingTransfer._TABLE = {
    **{(state, TransferCancel): _Transfer._peer_cancelled for state in (_S.OFFERED, _S.TRANSFERRING)},
    **{(state, TransferFailure): _Transfer._peer_failed for state in (_S.OFFERED, _S.TRANSFERRING)},
}

Transfer: TypeAlias = OutgoingTransfer | IncomingTransfer
TransferMessage = (TransferAccept, TransferReject, TransferProgress, TransferCancel, TransferDone, TransferFailure)


class Transfers:
    """The live transfers of one channel, by id: routes messages and frames, gathers the outbox."""

    def __init__(self) -> None:
        self._live: dict[str, Transfer] = {}

    def add(self, transfer: Transfer) -> None:
        if transfer.id in self._live:
            raise ValueError("a transfer with this id is already live")
        self._live[transfer.id] = transfer

    def get(self, transfer_id: str) -> Transfer | None:
        return self._live.get(transfer_id)

    def receive_message(self, message: ChannelMessage, now: float) -> list[Event]:
        if isinstance(message, TransferOffer):
            if message.id in self._live:
                return []  # a replayed offer for a live id; the live transfer goes on
            return [TransferOffered(message.id, message)]
        if isinstance(message, TransferMessage):
            transfer = self._live.get(message.id)
            return [] if transfer is None else transfer.receive(message, now)
        return []

    def receive_frame(self, data: bytes, now: float) -> list[Event]:
        try:
            frame = decode_frame(data)
        except FrameError as exc:
            return [FrameRefused("", exc.code, exc.message)]
        transfer = self._live.get(frame.transfer_id)
        if not isinstance(transfer, IncomingTransfer) or transfer.finished:
            return [FrameRefused(frame.transfer_id, ErrorCode.UNKNOWN_TRANSFER, "A data frame for no live transfer.")]
        return transfer.receive_frame(frame, now)

    def interrupt_all(self, now: float) -> list[Event]:
        events = [event for transfer in self._live.values() for event in transfer.interrupt(now)]
        self._live.clear()
        return events

    def pop_messages(self) -> list[ChannelMessage]:
        """Everything to send, in order; transfers that ended are dropped once their last word is out."""
        out = [message for transfer in self._live.values() for message in transfer.pop_messages()]
        self._live = {tid: t for tid, t in self._live.items() if not t.finished}
        return out
