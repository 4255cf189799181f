"""Fetching pages and images from hostile servers, with hard limits (the aiohttp shell).

Every limit is enforced while bytes arrive, not after: a 50 MB image stops being read at the
per-image cap, a response that never ends stops at the request timeout, and the whole batch
stops at a total deadline. Content is sniffed; Content-Type is believed only for pages, and
even there not for bytes that are plainly an image.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from peer_agent.errors import PeerbeamError
from peer_agent.images import (
    ImageCandidate,
    ImageLimits,
    PageImage,
    Rejected,
    make_thumbnail,
    sniff_format,
)

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_SNIFF_BYTES = 16  # enough for every magic number sniff_format knows


class FetchCode(enum.StrEnum):
    """Stable codes for a fetch that failed."""

    BAD_SCHEME = "bad_scheme"
    HTTP_STATUS = "http_status"
    TIMEOUT = "timeout"
    DEADLINE = "deadline"
    TOO_LARGE = "too_large"
    BUDGET = "budget"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    NOT_IMAGE = "not_image"
    NOT_HTML = "not_html"
    NETWORK = "network"


@dataclass(frozen=True)
class FetchedImage:
    url: str
    data: bytes
    format: str  # sniffed from the bytes


@dataclass(frozen=True)
class FetchFailure:
    url: str
    code: FetchCode
    detail: str
    status: int | None = None
    bytes_read: int = 0


FetchResult = FetchedImage | FetchFailure


class PageFetchError(PeerbeamError):
    """The page could not be fetched."""

    remote = True

    def __init__(self, reason: FetchCode, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"The page could not be fetched ({reason}): {detail}")


class _Cut(Exception):
    """Stop reading this response (the limit that was hit says why)."""

    def __init__(self, code: FetchCode, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(detail)


def _http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class _Budget:
    """Bytes all images of one batch may still use (limits.max_total_bytes)."""

    def __init__(self, total: int) -> None:
        self.left = total


async def fetch_images(urls: Sequence[str], limits: ImageLimits,
                       session: aiohttp.ClientSession) -> list[FetchResult]:
    """Fetch up to ``limits.max_images`` images; one result per URL fetched, in input order."""
    urls = list(urls)[: limits.max_images]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.total_deadline
    gate = asyncio.Semaphore(limits.concurrency)
    budget = _Budget(limits.max_total_bytes)

    async def one(url: str) -> FetchResult:
        async with gate:
            left = deadline - loop.time()
            if left <= 0:
                return FetchFailure(url, FetchCode.DEADLINE, "the batch ran out of time")
            return await _fetch_image(url, limits, session, budget,
                                      min(limits.request_timeout, left))

    return list(await asyncio.gather(*(one(url) for url in urls)))


async def _fetch_image(url: str, limits: ImageLimits, session: aiohttp.ClientSession,
                       budget: _Budget, timeout: float) -> FetchResult:
    if not _http_url(url):
        return FetchFailure(url, FetchCode.BAD_SCHEME, "only http and https URLs are fetched")
    body = bytearray()
    status: int | None = None
    try:
        async with asyncio.timeout(timeout), session.get(
            url, max_redirects=limits.max_redirects, allow_redirects=True
        ) as response:
            status = response.status
            if status != 200:
                raise _Cut(FetchCode.HTTP_STATUS, f"HTTP {status}")
            declared = response.content_length
            if declared is not None and declared > limits.max_bytes_per_image:
                raise _Cut(FetchCode.TOO_LARGE, f"declares {declared} bytes")
            try:
                async for chunk in response.content.iter_chunked(CHUNK):
                    body += chunk
                    budget.left -= len(chunk)
                    if len(body) > limits.max_bytes_per_image:
                        raise _Cut(FetchCode.TOO_LARGE, f"more than {limits.max_bytes_per_image} bytes")
                    if budget.left < 0:
                        raise _Cut(FetchCode.BUDGET, "the batch's byte budget is used up")
                    if len(body) - len(chunk) < _SNIFF_BYTES <= len(body) and sniff_format(
                            bytes(body[:_SNIFF_BYTES])) is None:
                        raise _Cut(FetchCode.NOT_IMAGE, "the content is not an image")
            except _Cut:
                # Drop the connection: releasing it would read the rest of the body first.
                response.close()
                raise
    except _Cut as cut:
        log.info("image %s: %s", url, cut.code)
        return FetchFailure(url, cut.code, cut.detail, status, len(body))
    except TimeoutError:
        return FetchFailure(url, FetchCode.TIMEOUT, f"no complete answer in {timeout:.1f} s",
                            status, len(body))
    except aiohttp.TooManyRedirects:
        return FetchFailure(url, FetchCode.TOO_MANY_REDIRECTS,
                            f"more than {limits.max_redirects} redirects", status)
    except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
        # NonHttpUrlRedirectClientError: a redirect to file:, javascript:, ...
        return FetchFailure(url, FetchCode.BAD_SCHEME, f"bad URL or redirect: {exc}", status)
    except (aiohttp.ClientError, OSError) as exc:
        return FetchFailure(url, FetchCode.NETWORK, f"{type(exc).__name__}: {exc}", status,
                            len(body))
    kind = sniff_format(bytes(body[:_SNIFF_BYTES]))
    if kind is None:
        return FetchFailure(url, FetchCode.NOT_IMAGE, "the content is not an image", status,
                            len(body))
    return FetchedImage(url, bytes(body), kind)


async def fetch_page(url: str, limits: ImageLimits,
                     session: aiohttp.ClientSession) -> tuple[str, str]:
    """(final URL after redirects, HTML text); at most ``limits.max_html_bytes`` are read,
    a longer page is cut there (its <head>, where og:image lives, comes first)."""
    if not _http_url(url):
        raise PageFetchError(FetchCode.BAD_SCHEME, "only http and https pages can be sent")
    body = bytearray()
    try:
        async with asyncio.timeout(limits.request_timeout), session.get(
            url, max_redirects=limits.max_redirects
        ) as response:
            if response.status != 200:
                raise PageFetchError(FetchCode.HTTP_STATUS, f"HTTP {response.status}")
            final_url = str(response.url)
            if response.content_type not in _HTML_TYPES:
                raise PageFetchError(FetchCode.NOT_HTML,
                                     f"the server sent {response.content_type}, not HTML")
            charset = response.charset or "utf-8"
            async for chunk in response.content.iter_chunked(CHUNK):
                body += chunk
                if len(body) >= limits.max_html_bytes:
                    log.info("page %s cut at %d bytes", url, limits.max_html_bytes)
                    del body[limits.max_html_bytes:]
                    response.close()
                    break
    except TimeoutError:
        raise PageFetchError(FetchCode.TIMEOUT,
                             f"no complete answer in {limits.request_timeout:.1f} s") from None
    except aiohttp.TooManyRedirects:
        raise PageFetchError(FetchCode.TOO_MANY_REDIRECTS,
                             f"more than {limits.max_redirects} redirects") from None
    except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
        raise PageFetchError(FetchCode.BAD_SCHEME, f"bad URL or redirect: {exc}") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise PageFetchError(FetchCode.NETWORK, f"{type(exc).__name__}: {exc}") from None
    head = bytes(body[:512])
    # A text/html label on image bytes or binary junk (NUL is never in HTML text).
    if sniff_format(head) is not None or b"\x00" in head:
        raise PageFetchError(FetchCode.NOT_HTML, "the content is not HTML")
    try:
        text = bytes(body).decode(charset, errors="replace")
    except LookupError:  # an unknown charset label
        text = bytes(body).decode("utf-8", errors="replace")
    return final_url, text


async def fetch_thumbnails(candidates: Sequence[ImageCandidate], limits: ImageLimits,
                           session: aiohttp.ClientSession,
                           ) -> tuple[list[PageImage], dict[str, FetchFailure | Rejected]]:
    """Fetch the candidates and make their thumbnails (decoding runs in worker threads, off
    the event loop). Returns what worked, in candidate order, and why the rest did not, by URL.
    """
    fetched = await fetch_images([c.url for c in candidates], limits, session)
    failed: dict[str, FetchFailure | Rejected] = {}
    ready: list[tuple[ImageCandidate, FetchedImage]] = []
    for candidate, result in zip(candidates, fetched):
        if isinstance(result, FetchFailure):
            failed[candidate.url] = result
        else:
            ready.append((candidate, result))
    outcomes = await asyncio.gather(
        *(asyncio.to_thread(make_thumbnail, image.data, limits) for _, image in ready))
    made: list[PageImage] = []
    for (candidate, _), outcome in zip(ready, outcomes):
        if isinstance(outcome, Rejected):
            failed[candidate.url] = outcome
        else:
            made.append(PageImage(candidate, outcome))
    return made, failed
