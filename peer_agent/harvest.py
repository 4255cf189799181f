"""What a fetched HTML page offers a page card: title, canonical URL, candidate images (pure).

Used by ``peerbeam send URL``, where no live DOM exists (DESIGN.md "Page capture and
thumbnails"). The HTML is hostile input: its size is capped before parsing, only http(s) URLs
leave this module, and nothing in it raises on any string.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import urldefrag, urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from peer_agent.images import ImageCandidate, ImageLimits, Source

log = logging.getLogger(__name__)

ALLOWED_SCHEMES = ("http", "https")
MAX_URL_CHARS = 2048
MAX_TITLE_CHARS = 300
# Attributes lazy-loading scripts keep the real image in, most specific first.
_LAZY_SRC = ("data-src", "data-lazy-src", "data-original")
_LAZY_SRCSET = ("data-srcset", "data-lazy-srcset")
_OG_IMAGE = ("og:image", "og:image:url", "og:image:secure_url", "twitter:image")
_SPACE = re.compile(r"\s+")
_DESCRIPTOR = re.compile(r"^(\d{1,7}(?:\.\d{1,4})?)([wx])$")
_INT = re.compile(r"^\s*(\d{1,6})(?:px)?\s*$")


@dataclass(frozen=True)
class PageInfo:
    url: str
    title: str | None
    canonical_url: str | None
    images: tuple[ImageCandidate, ...]


def harvest_html(html: str, base_url: str, limits: ImageLimits | None = None) -> PageInfo:
    """Title, canonical URL and image candidates (og:image first, then document order)."""
    limits = limits or ImageLimits()
    # Cap before parsing (characters ≤ bytes in UTF-8, so this is at most the byte cap), and
    # replace lone surrogates, which cannot be encoded for the parser.
    text = html[: limits.max_html_bytes].encode("utf-8", "replace").decode("utf-8")
    tree = LexborHTMLParser(text)
    base = _base(tree, base_url)
    found: list[tuple[str, Source, int | None, int | None]] = []
    for name in _OG_IMAGE:
        for node in tree.css(f'meta[property="{name}"], meta[name="{name}"]'):
            found.append((_attr(node, "content"), Source.OG, None, None))
    for node in tree.css("img, picture source"):
        found.append(_from_img(node))
    seen: set[str] = set()
    images: list[ImageCandidate] = []
    for raw, source, width, height in found:
        url = resolve(raw, base)
        if url is None or url in seen:
            continue
        seen.add(url)
        images.append(ImageCandidate(url=url, source=source, order=len(images),
                                     natural_width=width, natural_height=height))
        if len(images) == limits.max_candidates:
            break
    canonical = None
    for node in tree.css("link[rel][href]"):
        if "canonical" in _attr(node, "rel").lower().split():
            canonical = resolve(_attr(node, "href"), base)
            break
    return PageInfo(url=base_url, title=_title(tree), canonical_url=canonical,
                    images=tuple(images))


def resolve(raw: str, base: str) -> str | None:
    """An absolute http(s) URL without fragment, or None (data:, javascript:, file:, junk)."""
    raw = raw.strip()
    if not raw or len(raw) > MAX_URL_CHARS:
        return None
    try:
        url, _fragment = urldefrag(urljoin(base, raw))
        parts = urlsplit(url)
        if parts.scheme not in ALLOWED_SCHEMES or not parts.hostname:
            return None
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return None
    return url if len(url) <= MAX_URL_CHARS else None


def _attr(node: LexborNode, name: str) -> str:
    value = node.attributes.get(name)
    return value if isinstance(value, str) else ""


def _base(tree: LexborHTMLParser, base_url: str) -> str:
    # HTML §4.2.3: the first <base href> sets the document base URL.
    node = tree.css_first("base[href]")
    if node is not None:
        resolved = resolve(_attr(node, "href"), base_url)
        if resolved is not None:
            return resolved
    return base_url


def _title(tree: LexborHTMLParser) -> str | None:
    for node in tree.css('meta[property="og:title"], meta[name="og:title"]'):
        title = _SPACE.sub(" ", _attr(node, "content")).strip()
        if title:
            return title[:MAX_TITLE_CHARS]
    title_node = tree.css_first("title")
    if title_node is not None:
        title = _SPACE.sub(" ", title_node.text() or "").strip()
        if title:
            return title[:MAX_TITLE_CHARS]
    return None


def _from_img(node: LexborNode) -> tuple[str, Source, int | None, int | None]:
    """The best URL of one <img> or <source>: lazy srcset, srcset, lazy src, then src."""
    for name in (*_LAZY_SRCSET, "srcset"):
        best = largest_in_srcset(_attr(node, name))
        if best is not None:
            url, width = best
            if width is not None:  # a w descriptor is the resource's own width
                return url, Source.IMG, width, None
            return url, Source.IMG, _int(_attr(node, "width")), _int(_attr(node, "height"))
    for name in (*_LAZY_SRC, "src"):
        value = _attr(node, name).strip()
        if value and not value.lower().startswith("data:"):
            return value, Source.IMG, _int(_attr(node, "width")), _int(_attr(node, "height"))
    return "", Source.IMG, None, None


def _int(value: str) -> int | None:
    match = _INT.match(value)
    return int(match.group(1)) if match else None


def largest_in_srcset(srcset: str) -> tuple[str, int | None] | None:
    """The largest candidate of a srcset, with its ``w`` width if it had one.

    Follows the HTML "parse a srcset attribute" steps (§4.8.4.3.10) closely enough for URLs
    that contain commas (image CDNs do: ``w_400,h_300``): a URL runs to whitespace, and a
    comma only ends it when it is the URL's last character.
    """
    best: tuple[float, bool, str, int | None] | None = None  # (size, is_w, url, width)
    pos, end = 0, len(srcset)
    while pos < end:
        while pos < end and (srcset[pos].isspace() or srcset[pos] == ","):
            pos += 1
        start = pos
        while pos < end and not srcset[pos].isspace():
            pos += 1
        url = srcset[start:pos]
        descriptor = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            start = pos
            depth = 0
            while pos < end and (srcset[pos] != "," or depth > 0):
                depth += {"(": 1, ")": -1}.get(srcset[pos], 0)
                pos += 1
            descriptor = srcset[start:pos].strip()
        if not url:
            continue
        size, is_w = 1.0, False
        match = _DESCRIPTOR.match(descriptor.split()[0]) if descriptor else None
        if match:
            size, is_w = float(match.group(1)), match.group(2) == "w"
        elif descriptor:
            continue  # h descriptors or junk: not a candidate we can rank
        # w candidates outrank x candidates: only they say how large the resource is.
        if best is None or (is_w, size) > (best[1], best[0]):
            best = (size, is_w, url, int(size) if is_w else None)
    if best is None:
        return None
    return best[2], best[3]
