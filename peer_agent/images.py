"""Thumbnails of untrusted images, and which of them a page card shows (pure: no network).

Every byte here came from a web server we do not control (DESIGN.md "Hardening"), so the
order of checks matters: size of the payload, then the magic bytes, then the dimensions from
the header, and only then a decode — at reduced scale for JPEG (``draft()``), first frame only
for GIF and animated WEBP. The output carries no metadata: EXIF (GPS), ICC and XMP stay behind.
"""

from __future__ import annotations

import enum
import hashlib
import io
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from PIL import Image, ImageOps

log = logging.getLogger(__name__)

MiB = 1024 * 1024


@dataclass(frozen=True)
class ImageLimits:
    """The one configuration object of image harvesting, fetching and thumbnails."""

    max_images: int = 40
    max_bytes_per_image: int = 10 * MiB
    max_total_bytes: int = 60 * MiB
    # Checked from the header before decoding; Image.MAX_IMAGE_PIXELS stays as a second net.
    max_pixels: int = 40_000_000
    # Ads (90x60) and icons (16 px) are below this on their short side.
    min_side: int = 100
    allowed_formats: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF")
    thumb_edge: int = 320
    thumb_format: str = "WEBP"
    quality: int = 80
    # libwebp effort 0-6. Measured on 320 px thumbnails (bench/thumbnails.py): 2 costs ~2 ms
    # and ~5 % more bytes than the default 4, which costs ~5 ms.
    webp_method: int = 2
    # Perceptual duplicates: dHash Hamming distance at or below this is "the same picture".
    dhash_distance: int = 6
    # Fetching (fetch.py).
    concurrency: int = 6
    request_timeout: float = 10.0
    total_deadline: float = 30.0
    max_redirects: int = 3
    max_html_bytes: int = 5 * MiB
    # Harvest (harvest.py): candidates kept from one page before any fetch.
    max_candidates: int = 200


class Reason(enum.StrEnum):
    """Stable codes for an image that gets no thumbnail."""

    TOO_SMALL = "too_small"
    FORMAT = "format"
    TOO_MANY_PIXELS = "too_many_pixels"
    UNDECODABLE = "undecodable"
    TOO_LARGE = "too_large"


class Source(enum.StrEnum):
    """Where a candidate image was found."""

    OG = "og"  # <meta property="og:image">: the page's own choice, so it leads on ties
    IMG = "img"  # <img>/<picture> in fetched HTML
    DOM = "dom"  # the live DOM, reported by the extension


@dataclass(frozen=True)
class ImageCandidate:
    """An image URL found on a page, before it is fetched.

    ``natural_width``/``natural_height`` are what is known before fetching: the natural size
    from the live DOM, or, from fetched HTML, a srcset ``w`` descriptor or the width/height
    attributes. They only decide what is not worth fetching; the decoded header decides the rest.
    ``prominence`` is an optional DOM hint (e.g. the rendered area); larger is more prominent.
    """

    url: str
    source: Source
    order: int
    natural_width: int | None = None
    natural_height: int | None = None
    prominence: float | None = None


@dataclass(frozen=True)
class Thumbnail:
    width: int
    height: int
    natural_width: int
    natural_height: int
    format: str  # "WEBP" or "JPEG"
    data: bytes
    sha256: str  # of the source bytes
    dhash: int  # 64-bit difference hash, for near-duplicates


@dataclass(frozen=True)
class Rejected:
    reason: Reason
    detail: str


@dataclass(frozen=True)
class Decoded:
    """The first frame, decoded at reduced scale where the format allows it."""

    image: Image.Image
    natural_width: int  # from the header, stored orientation
    natural_height: int
    scale: int  # JPEG DCT scale divisor used by draft(); 1 = full size


@dataclass(frozen=True)
class PageImage:
    """A candidate that became a thumbnail."""

    candidate: ImageCandidate
    thumbnail: Thumbnail


# Magic numbers from each format's spec: JPEG SOI (ITU T.81 B.1.1.2), PNG signature
# (RFC 2083 §3.1), GIF87a/89a header, RIFF....WEBP (RFC 9649 §2.5).
def sniff_format(data: bytes) -> str | None:
    """The image format the bytes really are (Pillow's name), or None; never the Content-Type."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:2] == b"BM":
        return "BMP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    return None


# What Pillow raises on hostile input besides OSError (UnidentifiedImageError is one).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError,
                  KeyError, MemoryError)


def decode(data: bytes, limits: ImageLimits) -> Decoded | Rejected:
    """Open and decode the first frame, at the smallest scale a thumbnail still needs.

    Returns the decoded image in its stored orientation (EXIF not applied yet).
    """
    if len(data) > limits.max_bytes_per_image:
        return Rejected(Reason.TOO_LARGE, f"{len(data)} bytes")
    kind = sniff_format(data)
    if kind is None or kind not in limits.allowed_formats:
        return Rejected(Reason.FORMAT, f"not an allowed image ({kind or 'unknown'})")
    try:
        # formats=[kind]: only the plugin the magic bytes named gets to parse the data.
        image = Image.open(io.BytesIO(data), formats=[kind])
    except Image.DecompressionBombError as exc:
        return Rejected(Reason.TOO_MANY_PIXELS, str(exc))
    except _DECODE_ERRORS as exc:
        return Rejected(Reason.UNDECODABLE, f"{type(exc).__name__}: {exc}")
    width, height = image.size  # from the header; nothing is decoded yet
    if width <= 0 or height <= 0 or width * height > limits.max_pixels:
        image.close()
        return Rejected(Reason.TOO_MANY_PIXELS, f"{width}x{height}")
    if min(width, height) < limits.min_side:
        image.close()
        return Rejected(Reason.TOO_SMALL, f"{width}x{height}")
    scale = 1
    if image.format == "JPEG":
        # DCT scaling (ITU T.81 allows decoding at 1/2, 1/4, 1/8): ask for the smallest size
        # whose long edge still covers the thumbnail edge.
        ratio = limits.thumb_edge / max(width, height)
        if ratio < 1:
            wanted = (max(1, int(width * ratio)), max(1, int(height * ratio)))
            if image.draft("RGB", wanted) is not None:
                scale = max(1, round(width / image.size[0]))
    try:
        # load() decodes frame 0 only: GIF and animated WEBP frames are decoded on seek(),
        # which we never call.
        image.load()
    except Image.DecompressionBombError as exc:
        return Rejected(Reason.TOO_MANY_PIXELS, str(exc))
    except _DECODE_ERRORS as exc:
        return Rejected(Reason.UNDECODABLE, f"{type(exc).__name__}: {exc}")
    return Decoded(image, width, height, scale)


def make_thumbnail(data: bytes, limits: ImageLimits) -> Thumbnail | Rejected:
    """A bounded, upright, metadata-free thumbnail of untrusted image bytes, or why not."""
    decoded = decode(data, limits)
    if isinstance(decoded, Rejected):
        return decoded
    source = decoded.image
    natural_width, natural_height = decoded.natural_width, decoded.natural_height
    try:
        upright = ImageOps.exif_transpose(source)
        if _has_alpha(upright):
            picture = upright.convert("RGBA")
        else:
            picture = upright.convert("RGB")
        picture.thumbnail((limits.thumb_edge, limits.thumb_edge), Image.Resampling.LANCZOS)
    except _DECODE_ERRORS as exc:
        return Rejected(Reason.UNDECODABLE, f"{type(exc).__name__}: {exc}")
    finally:
        source.close()
    if upright.size != source.size:  # EXIF orientation 5-8 swaps the sides
        natural_width, natural_height = natural_height, natural_width
    # A fresh info dict: nothing of the source's EXIF, ICC profile or XMP reaches the encoder.
    picture.info = {}
    encoded, fmt = _encode(picture, limits)
    return Thumbnail(
        width=picture.width,
        height=picture.height,
        natural_width=natural_width,
        natural_height=natural_height,
        format=fmt,
        data=encoded,
        sha256=hashlib.sha256(data).hexdigest(),
        dhash=dhash(picture),
    )


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode == "P" and "transparency" in image.info)


def _encode(picture: Image.Image, limits: ImageLimits) -> tuple[bytes, str]:
    if limits.thumb_format == "WEBP":
        out = io.BytesIO()
        try:
            picture.save(out, "WEBP", quality=limits.quality,
                        method=limits.webp_method)
            return out.getvalue(), "WEBP"
        except (OSError, ValueError, KeyError) as exc:
            log.warning("WEBP encoding failed, falling back to JPEG: %s", exc)
    if picture.mode == "RGBA":
        # JPEG has no alpha: composite on white, as a browser shows a transparent image.
        flat = Image.new("RGB", picture.size, (255, 255, 255))
        flat.paste(picture, mask=picture.getchannel("A"))
        picture = flat
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=limits.quality, optimize=True)
    return out.getvalue(), "JPEG"


def dhash(image: Image.Image) -> int:
    """64-bit difference hash (Krawetz): each bit says whether a pixel of a 9x8 grayscale
    version is brighter than its right neighbour. Survives recompression and rescaling."""
    small = image.convert("L").resize((9, 8), Image.Resampling.BILINEAR)
    pixels = small.tobytes()  # mode "L": one byte per pixel, row by row
    bits = 0
    for row in range(8):
        for col in range(8):
            left = pixels[row * 9 + col]
            right = pixels[row * 9 + col + 1]
            bits = (bits << 1) | (1 if left > right else 0)
    return bits


def _informative(hash_value: int) -> bool:
    # Flat or smooth pictures hash to (nearly) all zeros or all ones: such hashes say nothing
    # about identity, so only the exact source hash may de-duplicate them.
    return 4 <= hash_value.bit_count() <= 60


def prefilter(candidates: Iterable[ImageCandidate], limits: ImageLimits) -> list[ImageCandidate]:
    """What is worth fetching: known-small ones dropped, each URL once, og:image first, capped."""
    seen: set[str] = set()
    kept: list[ImageCandidate] = []
    for candidate in candidates:
        if candidate.url in seen:
            continue
        seen.add(candidate.url)
        known = [side for side in (candidate.natural_width, candidate.natural_height)
                 if side is not None]
        if known and min(known) < limits.min_side:
            continue
        kept.append(candidate)
    kept.sort(key=lambda c: (c.source != Source.OG, c.order))
    return kept[: limits.max_images]


def _rank(item: PageImage) -> tuple[int, float, bool, int]:
    thumb = item.thumbnail
    prominence = item.candidate.prominence
    return (
        -(thumb.natural_width * thumb.natural_height),
        -(prominence if prominence is not None else 0.0),
        item.candidate.source != Source.OG,
        item.candidate.order,
    )


def select(items: Sequence[PageImage], limits: ImageLimits) -> list[PageImage]:
    """The card's thumbnails: large enough, no duplicates (the larger copy stays), largest and
    most prominent first, at most ``limits.max_images``."""
    kept: list[PageImage] = []
    for item in sorted(items, key=_rank):
        thumb = item.thumbnail
        if min(thumb.natural_width, thumb.natural_height) < limits.min_side:
            continue
        if any(_same_picture(thumb, other.thumbnail, limits) for other in kept):
            continue  # sorted largest first: the copy already kept is the larger one
        kept.append(item)
        if len(kept) == limits.max_images:
            break
    return kept


def _same_picture(a: Thumbnail, b: Thumbnail, limits: ImageLimits) -> bool:
    if a.sha256 == b.sha256:
        return True
    if not (_informative(a.dhash) and _informative(b.dhash)):
        return False
    return (a.dhash ^ b.dhash).bit_count() <= limits.dhash_distance
