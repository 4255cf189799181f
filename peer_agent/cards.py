"""A page card put back together on the receiving side, and saved by the headless peer.

``CardAssembler`` is pure (no I/O, ``now`` passed in): a ``page.push`` names the thumbnails,
then each arrives as exactly one binary frame whose id is the thumbnail's id, checked for size
and sha-256 (``PageThumb`` describes the encoded thumbnail, so the receiver checks exactly the
bytes it got). ``save_card`` writes a received card into a fresh folder.
"""

from __future__ import annotations

import collections
import errno
import hashlib
import hmac
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeAlias
from urllib.parse import urlsplit

import msgspec

from signaling.schema import ErrorCode, PagePush, PageThumb

from .downloads import DiskFull, DownloadError, safe_name
from .frames import DataFrame

log = logging.getLogger(__name__)

CARD_TIMEOUT: Final = 30.0
MAX_PENDING_CARDS: Final = 4
_EXTENSIONS: Final = {"image/webp": ".webp", "image/jpeg": ".jpg"}


def thumb_file_name(number: int, thumb: PageThumb) -> str:
    """The name ``save_card`` gives the card's ``number``-th thumbnail (from 1)."""
    return f"{number:02d}{_EXTENSIONS[thumb.mime]}"


# ---- the card a receiver puts together (pure: no I/O, ``now`` passed in) -----------------------


@dataclass(frozen=True, slots=True)
class CardReady:
    """Every thumbnail arrived or was dropped. ``images`` are in the order of ``push.thumbs``;
    ``dropped`` says, by thumbnail id, why one is missing (wrong size or sha-256, bad frame)."""

    push: PagePush
    images: list[tuple[PageThumb, bytes]]
    dropped: dict[str, str] = field(default_factory=dict)
    text: bytes | None = None  # the reader view's gzip'd blocks (push.text), checked


@dataclass(frozen=True, slots=True)
class CardFailed:
    """No complete card: refused (too many at once, clashing ids), timed out, or the channel
    went away. ``push`` and the ``images`` that did arrive are kept: nothing delivered is lost."""

    card_id: str
    code: ErrorCode
    message: str
    push: PagePush | None = None
    images: list[tuple[PageThumb, bytes]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ThumbRefused:
    """A frame that fits no thumbnail (unknown id, twice, not at offset 0, wrong size or
    sha-256). Logged by the shell, not answered: the card goes on without it."""

    transfer_id: str
    code: ErrorCode
    message: str


CardEvent: TypeAlias = CardReady | CardFailed | ThumbRefused


@dataclass
class _Pending:
    push: PagePush
    started: float
    arrived: dict[str, bytes] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)

    def ids(self) -> list[str]:
        """Every frame id this card waits for: its thumbnails, then its text (if any)."""
        return [t.id for t in self.push.thumbs] + ([self.push.text.id] if self.push.text else [])

    @property
    def complete(self) -> bool:
        return len(self.arrived) + len(self.dropped) == len(self.ids())

    def images(self) -> list[tuple[PageThumb, bytes]]:
        return [(t, self.arrived[t.id]) for t in self.push.thumbs if t.id in self.arrived]

    def text(self) -> bytes | None:
        return self.arrived.get(self.push.text.id) if self.push.text else None


class CardAssembler:
    """The cards arriving on one channel. The shell asks ``owns(frame.transfer_id)`` before it
    gives a binary frame to the file transfers: a thumbnail's frame is claimed from the push
    until its card is finished, so a repeated frame is refused here rather than elsewhere."""

    def __init__(self, *, timeout: float = CARD_TIMEOUT, max_pending: int = MAX_PENDING_CARDS) -> None:
        self.timeout = timeout
        self.max_pending = max_pending
        self._pending: dict[str, _Pending] = {}
        self._owner: dict[str, str] = {}  # thumbnail id -> card id
        # Finished card ids, so that a replayed push is not shown twice (bounded memory).
        self._finished: collections.deque[str] = collections.deque(maxlen=64)

    def owns(self, transfer_id: str) -> bool:
        return transfer_id in self._owner

    def next_deadline(self) -> float | None:
        """When ``expire`` has something to do (for the shell's timer)."""
        if not self._pending:
            return None
        return min(p.started for p in self._pending.values()) + self.timeout

    def receive_push(self, push: PagePush, now: float) -> list[CardEvent]:
        events = self.expire(now)
        if push.id in self._pending or push.id in self._finished:
            return events  # a replay: the card is already here
        ids = [thumb.id for thumb in push.thumbs] + ([push.text.id] if push.text else [])
        if len(set(ids)) != len(ids) or any(i in self._owner for i in ids):
            self._finished.append(push.id)
            return [*events, CardFailed(push.id, ErrorCode.BAD_MESSAGE,
                                        "The other device sent a page card whose thumbnails share ids.", push)]
        if len(self._pending) >= self.max_pending:
            return [*events, CardFailed(push.id, ErrorCode.RATE_LIMITED,
                                        "Too many page cards arrived at once; this one was left out.", push)]
        self._pending[push.id] = pending = _Pending(push, now)
        self._owner.update((i, push.id) for i in ids)
        return events + self._finish_if_complete(pending)

    def receive_frame(self, frame: DataFrame, now: float) -> list[CardEvent]:
        events = self.expire(now)
        card_id = self._owner.get(frame.transfer_id)
        if card_id is None:
            return [*events, ThumbRefused(frame.transfer_id, ErrorCode.UNKNOWN_TRANSFER,
                                          "A data frame for no pending page card.")]
        pending = self._pending[card_id]
        text = pending.push.text
        thumb = text if text is not None and text.id == frame.transfer_id else next(
            t for t in pending.push.thumbs if t.id == frame.transfer_id)
        if thumb.id in pending.arrived or thumb.id in pending.dropped:
            return [*events, ThumbRefused(thumb.id, ErrorCode.BAD_FRAME, "A thumbnail arrived twice.")]
        if frame.offset != 0:
            refused = ThumbRefused(thumb.id, ErrorCode.BAD_FRAME, "A thumbnail did not arrive as one frame.")
        elif len(frame.payload) != thumb.size:
            refused = ThumbRefused(thumb.id, ErrorCode.BAD_FRAME,
                                   f"A thumbnail arrived with {len(frame.payload)} bytes instead of {thumb.size}.")
        elif not hmac.compare_digest(hashlib.sha256(frame.payload).hexdigest(), thumb.sha256):
            refused = ThumbRefused(thumb.id, ErrorCode.HASH_MISMATCH,
                                   "A thumbnail arrived damaged: its sha-256 does not match the card.")
        else:
            pending.arrived[thumb.id] = frame.payload
            return events + self._finish_if_complete(pending)
        pending.dropped[thumb.id] = refused.message
        return [*events, refused, *self._finish_if_complete(pending)]

    def expire(self, now: float) -> list[CardEvent]:
        """Fail the cards still incomplete ``timeout`` seconds after their push."""
        events: list[CardEvent] = []
        for pending in [p for p in self._pending.values() if now - p.started >= self.timeout]:
            got, total = len(pending.arrived), len(pending.ids())
            events.append(self._fail(pending, ErrorCode.STALLED,
                                     f"The page card was incomplete after {self.timeout:.0f} s: "
                                     f"{got} of {total} thumbnails arrived."))
        return events

    def interrupt_all(self) -> list[CardEvent]:
        """The channel went away: every pending card fails with what it has."""
        return [self._fail(p, ErrorCode.PEER_GONE, "The other device went away while sending a page card.")
                for p in list(self._pending.values())]

    def _finish_if_complete(self, pending: _Pending) -> list[CardEvent]:
        if not pending.complete:
            return []
        self._forget(pending)
        return [CardReady(pending.push, pending.images(), dict(pending.dropped), pending.text())]

    def _fail(self, pending: _Pending, code: ErrorCode, message: str) -> CardFailed:
        self._forget(pending)
        return CardFailed(pending.push.id, code, message, pending.push, pending.images())

    def _forget(self, pending: _Pending) -> None:
        del self._pending[pending.push.id]
        for frame_id in pending.ids():
            self._owner.pop(frame_id, None)
        self._finished.append(pending.push.id)


# ---- a received card on disk (the headless peer) ------------------------------------------------


class _SavedThumb(msgspec.Struct, frozen=True):
    file: str
    kind: str
    mime: str
    width: int
    height: int
    natural_width: int
    natural_height: int
    size: int
    sha256: str
    source: str | None


class _SavedCard(msgspec.Struct, frozen=True):
    id: str
    url: str
    title: str
    thumbs: list[_SavedThumb]


_CARD_NAME_BYTES: Final = 120  # a readable folder name, with room for " (9999)"
_OPEN_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def save_card(folder: Path, push: PagePush, images: Sequence[tuple[PageThumb, bytes]]) -> Path:
    """Write ``folder/<title or host>[ (n)]/`` with ``card.json`` and ``01.webp``, ``02.jpg``...

    Blocking file I/O (run it in a thread). The card folder is created new (mkdir is atomic, so
    nothing that appeared under the name is reused) and every file is created with O_EXCL |
    O_NOFOLLOW relative to that folder's descriptor: no symlink is ever followed out of it.
    """
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    host = urlsplit(push.url).hostname or "page"
    # safe_name keeps only the last path component: "AC/DC" would become "DC".
    base = safe_name(re.sub(r"[/\\]", "-", push.title).strip() or host, _CARD_NAME_BYTES)
    parent = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        name = _new_folder(parent, base)
        written: list[str] = []
        card_fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        try:
            saved: list[_SavedThumb] = []
            for number, (thumb, data) in enumerate(images, 1):
                file = thumb_file_name(number, thumb)
                _write(card_fd, file, data, written)
                saved.append(_SavedThumb(file, thumb.kind, thumb.mime, thumb.width, thumb.height,
                                         thumb.natural_width, thumb.natural_height, thumb.size, thumb.sha256,
                                         thumb.source))
            record = _SavedCard(push.id, push.url, push.title, saved)
            _write(card_fd, "card.json", msgspec.json.format(msgspec.json.encode(record)) + b"\n", written)
        except OSError as exc:
            for file in written:
                os.unlink(file, dir_fd=card_fd)
            os.close(card_fd)
            os.rmdir(name, dir_fd=parent)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull() from exc
            raise DownloadError(f"The page card could not be saved ({os.strerror(exc.errno or 0)}).") from exc
        os.close(card_fd)
    finally:
        os.close(parent)
    log.info("card %s saved with %d thumbnails", push.id, len(images))
    return folder / name


def _new_folder(parent: int, base: str) -> str:
    for name in [base, *(f"{base} ({n})" for n in range(1, 10_000))]:
        try:
            os.mkdir(name, 0o700, dir_fd=parent)
            return name
        except FileExistsError:
            continue  # a file, folder or symlink (even dangling) has this name: take the next
    raise DownloadError("Too many page cards with this name in the downloads folder.")


def _write(dir_fd: int, name: str, data: bytes, written: list[str]) -> None:
    fd = os.open(name, _OPEN_FLAGS, 0o600, dir_fd=dir_fd)
    written.append(name)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
