"""Page cards: the page the PC shows, as one ``page.push`` and one binary frame per thumbnail,
and the same card put back together on the other side.

Sender: ``report_from_extension`` (live DOM) or ``report_from_url`` (fetched HTML) gives a
``PageReport``; ``build_card`` fetches its images and gives a ``Card``. Receiver: the pure
``CardAssembler`` turns the push and its frames into ``CardReady``; a headless peer then calls
``save_card``.

A thumbnail travels as exactly one frame at offset 0 whose transfer id is the thumbnail's id
(peer_agent/frames.py). ``PageThumb.size`` and ``sha256`` describe that frame payload — the
encoded thumbnail — not the source image, so the receiver checks exactly the bytes it got.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import dataclasses
import errno
import hashlib
import hmac
import io
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Final, Literal, TypeAlias
from urllib.parse import urlsplit

import aiohttp
import msgspec
from PIL import Image

from signaling.schema import (
    MAX_FRAME_BYTES,
    MAX_THUMB_BYTES,
    MAX_THUMBNAILS,
    MAX_URL_CHARS,
    ErrorCode,
    PagePush,
    PageThumb,
    SchemaError,
    decode_channel,
    encode,
)

from .downloads import DiskFull, DownloadError, safe_name
from .errors import PeerbeamError
from .fetch import FetchCode, FetchFailure, PageFetchError, fetch_page, fetch_thumbnails
from .frames import DataFrame, encode_frame, new_transfer_id
from .harvest import harvest_html, resolve
from .images import (
    ImageCandidate,
    ImageLimits,
    Rejected,
    Source,
    Thumbnail,
    make_thumbnail,
    prefilter,
    select,
    sniff_format,
)

log = logging.getLogger(__name__)

MAX_TITLE_CHARS: Final = 1024  # PagePush.title
MAX_DOM_IMAGES: Final = 200
MAX_SCREENSHOT_CHARS: Final = 8 * 1024 * 1024
SCREENSHOT: Final = "screenshot"  # the key of the screenshot in Card.rejected
CARD_TIMEOUT: Final = 30.0
MAX_PENDING_CARDS: Final = 4
_SENTENCE: Final = 1024  # schema.Sentence
_MIME: Final[dict[str, Literal["image/webp", "image/jpeg"]]] = {"WEBP": "image/webp", "JPEG": "image/jpeg"}
_EXTENSION = {"image/webp": ".webp", "image/jpeg": ".jpg"}
_DATA_URL = re.compile(r"data:image/(jpeg|png);base64,", re.IGNORECASE)
_UNSAFE_URL = re.compile(r"[\x00-\x20\x7f]")
# Each step shrinks a thumbnail that came out over one frame: (edge factor, quality).
_SHRINK_STEPS = ((1.0, 60), (1.0, 40), (0.75, 40), (0.5, 30), (0.25, 30))


class PageError(PeerbeamError):
    """The page could not be made into a card."""

    code = ErrorCode.BAD_MESSAGE


class BadPageReport(PageError):
    """The page report (from the browser extension, or the address given) is not usable."""


class PageNotAvailable(PageError):
    """The page could not be loaded."""

    code = ErrorCode.PAGE_UNREACHABLE
    remote = True


def _sentence(text: str) -> str:
    return text if len(text) <= _SENTENCE else text[: _SENTENCE - 1] + "…"


# ---- what the page offers ------------------------------------------------------------------


@dataclass(frozen=True)
class PageReport:
    url: str
    title: str
    candidates: list[ImageCandidate]
    screenshot: bytes | None = None  # JPEG or PNG bytes of the visible tab


class _DomImage(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # data: srcs can be long; they are dropped below, not refused, so the cap here is generous.
    src: Annotated[str, msgspec.Meta(max_length=MAX_SCREENSHOT_CHARS)]
    width: Annotated[int, msgspec.Meta(ge=0)]  # naturalWidth; 0 until a lazy image loads
    height: Annotated[int, msgspec.Meta(ge=0)]
    area: Annotated[float, msgspec.Meta(ge=0)]  # rendered area in CSS pixels


class _ExtensionPage(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    url: Annotated[str, msgspec.Meta(max_length=MAX_URL_CHARS)]
    title: str
    images: Annotated[list[_DomImage], msgspec.Meta(max_length=MAX_DOM_IMAGES)]
    screenshot: Annotated[str, msgspec.Meta(max_length=MAX_SCREENSHOT_CHARS)] | None = None


def report_from_extension(page: object) -> PageReport:
    """Check what the browser extension reports about the current tab (hostile until checked)."""
    try:
        raw = msgspec.convert(page, _ExtensionPage)
    except msgspec.ValidationError as exc:
        raise BadPageReport(_sentence(f"The browser extension sent a page report that is not valid: {exc}.")) from None
    url = _page_url(raw.url)
    seen: dict[str, int] = {}
    candidates: list[ImageCandidate] = []
    for image in raw.images:
        src = resolve(image.src, url)  # http(s) only: data:, blob:, javascript: are dropped
        if src is None:
            continue
        if src in seen:  # the same image shown twice: keep its larger rendering as the hint
            i = seen[src]
            candidates[i] = dataclasses.replace(candidates[i], prominence=max(candidates[i].prominence or 0.0,
                                                                              image.area))
            continue
        seen[src] = len(candidates)
        candidates.append(ImageCandidate(
            url=src, source=Source.DOM, order=len(candidates),
            natural_width=image.width or None, natural_height=image.height or None, prominence=image.area))
    screenshot = None if raw.screenshot is None else _screenshot_bytes(raw.screenshot)
    return PageReport(url=url, title=_title(raw.title), candidates=candidates, screenshot=screenshot)


def _page_url(url: str) -> str:
    """The address of the page to send: http(s), a host, no spaces or control characters."""
    if len(url) > MAX_URL_CHARS:
        raise BadPageReport(f"The address of the page is longer than {MAX_URL_CHARS} characters.")
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        raise BadPageReport("The address of the page is malformed.") from None
    if parts.scheme.lower() not in ("http", "https"):
        scheme = parts.scheme.lower() if re.fullmatch(r"[a-z][a-z0-9+.-]{0,19}", parts.scheme.lower()) else ""
        shown = f"a {scheme}: address" if scheme else "an address without a scheme"
        raise BadPageReport(f"Only web pages (http or https) can be sent, not {shown}.",
                            code=ErrorCode.BAD_SCHEME)
    if not parts.hostname or _UNSAFE_URL.search(url):
        raise BadPageReport("The address of the page is malformed.")
    return url


def _title(title: str) -> str:
    return " ".join(title.split())[:MAX_TITLE_CHARS]


def _screenshot_bytes(data_url: str) -> bytes:
    match = _DATA_URL.match(data_url)
    if match is None:
        raise BadPageReport("The screenshot of the tab is not a JPEG or PNG data URL.")
    try:
        data = base64.b64decode(data_url[match.end():], validate=True)
    except (binascii.Error, ValueError):
        raise BadPageReport("The screenshot of the tab is not valid base64.") from None
    declared = "JPEG" if match.group(1).lower() == "jpeg" else "PNG"
    if sniff_format(data) != declared:
        raise BadPageReport(f"The screenshot of the tab is not the {declared} image it claims to be.")
    return data


_FETCH_SENTENCES = {
    FetchCode.BAD_SCHEME: (ErrorCode.BAD_SCHEME, "it leads to an address that is not http or https"),
    FetchCode.NOT_HTML: (ErrorCode.NOT_HTML, "it is not a web page"),
    FetchCode.HTTP_STATUS: (ErrorCode.PAGE_UNREACHABLE, "the server answered with an error"),
    FetchCode.TIMEOUT: (ErrorCode.PAGE_UNREACHABLE, "it did not load in time"),
    FetchCode.TOO_MANY_REDIRECTS: (ErrorCode.PAGE_UNREACHABLE, "it redirects too many times"),
    FetchCode.NETWORK: (ErrorCode.PAGE_UNREACHABLE, "the server cannot be reached"),
}


async def report_from_url(url: str, limits: ImageLimits, session: aiohttp.ClientSession) -> PageReport:
    """Fetch the page at ``url`` and find its title and images (``peerbeam send URL``)."""
    _page_url(url)
    try:
        final_url, html = await fetch_page(url, limits, session)
    except PageFetchError as exc:
        code, what = _FETCH_SENTENCES.get(exc.reason, (ErrorCode.PAGE_UNREACHABLE, "it could not be loaded"))
        raise PageNotAvailable(_sentence(f"The page could not be sent: {what} ({exc.detail})."),
                               code=code) from None
    # A redirect without a fragment inherits the original one (RFC 9110 §10.2.2).
    fragment = urlsplit(url).fragment
    if fragment and not urlsplit(final_url).fragment:
        final_url = f"{final_url}#{fragment}"
    if len(final_url) > MAX_URL_CHARS:
        raise PageNotAvailable("The page could not be sent: its address is too long.")
    info = await asyncio.to_thread(harvest_html, html, final_url, limits)  # up to 5 MiB of HTML
    return PageReport(url=final_url, title=_title(info.title or ""), candidates=list(info.images))


# ---- the card a sender sends ---------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    push: PagePush
    frames: list[bytes]  # one encoded frame per thumbnail, in the order of push.thumbs
    rejected: dict[str, str] = field(default_factory=dict)  # image URL (or "screenshot") -> why


async def build_card(report: PageReport, limits: ImageLimits, session: aiohttp.ClientSession, *,
                     pull: str | None = None) -> Card:
    """Fetch the report's images and make the card: the largest distinct pictures first, the
    screenshot (if any) last. Every image that got no thumbnail is in ``Card.rejected``."""
    rejected: dict[str, str] = {}
    wanted = _to_fetch(report.candidates, limits, rejected)
    made, failed = await fetch_thumbnails(wanted, limits, session)
    for url, why in failed.items():
        rejected[url] = _why(why)
    chosen = select(made, limits)[: MAX_THUMBNAILS - 1]
    kept = {item.candidate.url for item in chosen}
    for item in made:
        if item.candidate.url not in kept:
            # select() only stops early at the count cap; before that it drops duplicates only.
            rejected[item.candidate.url] = ("duplicate: the same picture is already on the card"
                                            if len(chosen) < limits.max_images else "over_count: not among the largest")
    pictures: list[tuple[Literal["image", "screenshot"], Thumbnail, str | None]] = [
        ("image", item.thumbnail, item.candidate.url) for item in chosen]
    if report.screenshot is not None:
        # A screenshot of a small popup is still what the user sees: no minimum side for it.
        shot = await asyncio.to_thread(make_thumbnail, report.screenshot, dataclasses.replace(limits, min_side=1))
        if isinstance(shot, Rejected):
            rejected[SCREENSHOT] = _why(shot)
        else:
            pictures.append(("screenshot", shot, None))
    fitted = await asyncio.to_thread(lambda: [fit_thumbnail(thumb, limits) for _, thumb, _ in pictures])
    thumbs: list[PageThumb] = []
    frames: list[bytes] = []
    for (kind, _, source), thumb in zip(pictures, fitted):
        if thumb is None:
            rejected[source or SCREENSHOT] = f"too_large: no thumbnail fits in {MAX_THUMB_BYTES} bytes"
            continue
        thumb_id = new_transfer_id()
        thumbs.append(PageThumb(
            id=thumb_id, kind=kind, mime=_MIME[thumb.format], width=thumb.width, height=thumb.height,
            natural_width=_pixels(thumb.natural_width), natural_height=_pixels(thumb.natural_height),
            size=len(thumb.data), sha256=hashlib.sha256(thumb.data).hexdigest(), source=source))
        frames.append(encode_frame(thumb_id, 0, thumb.data))
    push = _fit_push(PagePush(id=new_transfer_id(), url=report.url, title=_title(report.title),
                              thumbs=thumbs, pull=pull))
    try:  # what the other side will check, checked here: never send a card it must refuse
        decode_channel(encode(push))
    except SchemaError as exc:
        raise BadPageReport(_sentence(f"The page cannot be sent as a card: {exc.message}")) from None
    log.info("card %s: %d thumbnails, %d images left out", push.id, len(thumbs), len(rejected))
    return Card(push, frames, rejected)


def _to_fetch(candidates: Sequence[ImageCandidate], limits: ImageLimits,
              rejected: dict[str, str]) -> list[ImageCandidate]:
    """What to fetch: og:image first, then the most prominent on screen, then document order."""
    worth = prefilter(candidates, dataclasses.replace(limits, max_images=len(candidates)))
    worth.sort(key=lambda c: (c.source != Source.OG, -(c.prominence or 0.0), c.order))
    fetchable = {c.url for c in worth}
    for candidate in candidates:
        if candidate.url not in fetchable:
            size = f"{candidate.natural_width or '?'}x{candidate.natural_height or '?'}"
            rejected.setdefault(candidate.url, f"too_small: {size} on the page")
    for candidate in worth[limits.max_images:]:
        rejected[candidate.url] = f"over_count: only {limits.max_images} images are fetched"
    return worth[: limits.max_images]


def _why(why: FetchFailure | Rejected) -> str:
    return f"{why.code}: {why.detail}" if isinstance(why, FetchFailure) else f"{why.reason}: {why.detail}"


def _pixels(side: int) -> int:
    return min(max(side, 1), 1_000_000)  # schema.Pixels


def fit_thumbnail(thumb: Thumbnail, limits: ImageLimits, max_bytes: int = MAX_THUMB_BYTES) -> Thumbnail | None:
    """The thumbnail, re-encoded smaller (lower quality, then a shorter edge) until it fits in
    one frame; None if nothing fits. Decodes only our own encoder's output, never a source."""
    if len(thumb.data) <= max_bytes:
        return thumb
    with Image.open(io.BytesIO(thumb.data), formats=[thumb.format]) as opened:
        opened.load()
        picture = opened.copy()
    for factor, quality in _SHRINK_STEPS:
        size = (max(1, round(picture.width * factor)), max(1, round(picture.height * factor)))
        smaller = picture.resize(size, Image.Resampling.LANCZOS) if factor < 1 else picture
        out = io.BytesIO()
        if thumb.format == "WEBP":
            smaller.save(out, "WEBP", quality=quality, method=limits.webp_method)
        else:
            smaller.convert("RGB").save(out, "JPEG", quality=quality, optimize=True)
        if out.tell() <= max_bytes:
            log.info("thumbnail re-encoded to %d bytes to fit one frame", out.tell())
            return dataclasses.replace(thumb, width=size[0], height=size[1], data=out.getvalue())
    return None


def _fit_push(push: PagePush) -> PagePush:
    # A control message is at most 64 KiB: 41 thumbnails with 2 KiB image URLs would not fit.
    # The source URLs are only informative, so the longest go first until the push fits.
    thumbs = list(push.thumbs)
    while len(encode(push)) > MAX_FRAME_BYTES:
        longest = max(range(len(thumbs)), key=lambda i: len(thumbs[i].source or ""), default=None)
        if longest is None or thumbs[longest].source is None:
            break
        thumbs[longest] = msgspec.structs.replace(thumbs[longest], source=None)
        push = msgspec.structs.replace(push, thumbs=list(thumbs))
    return push


# ---- the card a receiver puts together (pure: no I/O, ``now`` passed in) -----------------------


@dataclass(frozen=True, slots=True)
class CardReady:
    """Every thumbnail arrived or was dropped. ``images`` are in the order of ``push.thumbs``;
    ``dropped`` says, by thumbnail id, why one is missing (wrong size or sha-256, bad frame)."""

    push: PagePush
    images: list[tuple[PageThumb, bytes]]
    dropped: dict[str, str] = field(default_factory=dict)


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

    @property
    def complete(self) -> bool:
        return len(self.arrived) + len(self.dropped) == len(self.push.thumbs)

    def images(self) -> list[tuple[PageThumb, bytes]]:
        return [(t, self.arrived[t.id]) for t in self.push.thumbs if t.id in self.arrived]


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
        ids = [thumb.id for thumb in push.thumbs]
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
        thumb = next(t for t in pending.push.thumbs if t.id == frame.transfer_id)
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
            got, total = len(pending.arrived), len(pending.push.thumbs)
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
        return [CardReady(pending.push, pending.images(), dict(pending.dropped))]

    def _fail(self, pending: _Pending, code: ErrorCode, message: str) -> CardFailed:
        self._forget(pending)
        return CardFailed(pending.push.id, code, message, pending.push, pending.images())

    def _forget(self, pending: _Pending) -> None:
        del self._pending[pending.push.id]
        for thumb in pending.push.thumbs:
            self._owner.pop(thumb.id, None)
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
                file = f"{number:02d}{_EXTENSION[thumb.mime]}"
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
