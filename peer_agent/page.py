"""Page cards: the page the PC shows, as one ``page.push`` and one binary frame per thumbnail.

Sender: ``report_from_extension`` (live DOM) or ``report_from_url`` (fetched HTML) gives a
``PageReport``; ``build_card`` fetches its images and gives a ``Card``. The receiving side is
``peer_agent/cards.py``.

A thumbnail travels as exactly one frame at offset 0 whose transfer id is the thumbnail's id
(peer_agent/frames.py). ``PageThumb.size`` and ``sha256`` describe that frame payload — the
encoded thumbnail — not the source image, so the receiver checks exactly the bytes it got.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hashlib
import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Final, Literal
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
    PageText,
    PageThumb,
    SchemaError,
    decode_channel,
    encode,
)

from .errors import PeerbeamError
from .fetch import FetchCode, FetchFailure, PageFetchError, fetch_page, fetch_thumbnails
from .frames import encode_frame, new_transfer_id
from .harvest import harvest_html, resolve
from .reader import Reader, ReaderError, encode_reader, reader_from_html, reader_from_report
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
_SENTENCE: Final = 1024  # schema.Sentence
_MIME: Final[dict[str, Literal["image/webp", "image/jpeg"]]] = {"WEBP": "image/webp", "JPEG": "image/jpeg"}
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
    reader: Reader | None = None  # the readable text, for the reader view of a synced tab


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
    # Checked block by block in reader.py (bad blocks are dropped, not the whole page).
    reader: dict[str, object] | None = None


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
    reader = None if raw.reader is None else reader_from_report(raw.reader, url)
    return PageReport(url=url, title=_title(raw.title), candidates=candidates, screenshot=screenshot, reader=reader)


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


async def report_from_url(url: str, limits: ImageLimits, session: aiohttp.ClientSession, *,
                          reader: bool = False) -> PageReport:
    """Fetch the page at ``url`` and find its title and images (``peerbeam send URL``); with
    ``reader``, also its readable text (readability-lxml) for the reader view of page sync."""
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
    text = await asyncio.to_thread(reader_from_html, html, final_url) if reader else None
    return PageReport(url=final_url, title=_title(info.title or ""), candidates=list(info.images), reader=text)


# ---- the card a sender sends ---------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    push: PagePush
    frames: list[bytes]  # one encoded frame per thumbnail, in the order of push.thumbs; then the text's
    rejected: dict[str, str] = field(default_factory=dict)  # image URL (or "screenshot") -> why


async def build_card(report: PageReport, limits: ImageLimits, session: aiohttp.ClientSession, *,
                     pull: str | None = None, doc: str | None = None, card_id: str | None = None) -> Card:
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
    text = None
    if report.reader is not None and doc is not None:  # a reader view goes with a synced tab's card
        try:
            packed = await asyncio.to_thread(encode_reader, report.reader)
        except ReaderError as exc:
            log.info("reader view left out: %s", exc.message)
        else:
            text = PageText(id=new_transfer_id(), size=len(packed), sha256=hashlib.sha256(packed).hexdigest())
            frames.append(encode_frame(text.id, 0, packed))
    push = _fit_push(PagePush(id=card_id or new_transfer_id(), url=report.url, title=_title(report.title),
                              thumbs=thumbs, pull=pull, text=text, doc=doc))
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
