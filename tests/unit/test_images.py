"""Thumbnails of hostile images, and the choice and order of a page card's thumbnails."""

from __future__ import annotations

import io
import random
import struct
import time
import zlib

import pytest
from PIL import ExifTags, Image, ImageCms, ImageDraw

from peer_agent.images import (
    ImageCandidate,
    ImageLimits,
    PageImage,
    Reason,
    Rejected,
    Source,
    Thumbnail,
    decode,
    make_thumbnail,
    prefilter,
    select,
    sniff_format,
)

LIMITS = ImageLimits()


def photo(width: int, height: int, seed: int = 1) -> Image.Image:
    """A textured picture (shapes on a gradient), so that its dHash says something."""
    rng = random.Random(seed)
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(25):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(max(2, width // 20), max(3, width // 4))
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    return image


def encode(image: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload)))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height and whose data is junk: decoding it would
    fail, so "too_many_pixels" proves the header was checked before any decode."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", b"not zlib at all") + png_chunk(b"IEND", b""))


def thumb(data: bytes, limits: ImageLimits = LIMITS) -> Thumbnail:
    result = make_thumbnail(data, limits)
    assert isinstance(result, Thumbnail), result
    return result


def rejected(data: bytes, limits: ImageLimits = LIMITS) -> Reason:
    result = make_thumbnail(data, limits)
    assert isinstance(result, Rejected), result
    return result.reason


# --- sniffing -------------------------------------------------------------------------------

def test_sniffing_reads_magic_bytes_not_labels():
    image = photo(120, 120)
    assert sniff_format(encode(image, "JPEG")) == "JPEG"
    assert sniff_format(encode(image, "PNG")) == "PNG"
    assert sniff_format(encode(image, "GIF")) == "GIF"
    assert sniff_format(encode(image, "WEBP")) == "WEBP"
    assert sniff_format(b"<!doctype html><html>") is None
    assert sniff_format(b"") is None


def test_html_bytes_are_rejected_as_format_whatever_they_claim():
    assert rejected(b"<!doctype html><title>404</title>" * 50) is Reason.FORMAT


def test_formats_outside_the_allowlist_are_rejected():
    bmp = encode(photo(200, 200), "BMP")
    assert rejected(bmp) is Reason.FORMAT
    assert rejected(encode(photo(200, 200), "PNG"),
                    ImageLimits(allowed_formats=("JPEG",))) is Reason.FORMAT


# --- size and pixel limits ------------------------------------------------------------------

def test_icons_and_ads_are_too_small():
    assert rejected(encode(photo(16, 16), "PNG")) is Reason.TOO_SMALL
    assert rejected(encode(photo(90, 60), "JPEG")) is Reason.TOO_SMALL
    assert isinstance(make_thumbnail(encode(photo(100, 100)), LIMITS), Thumbnail)


def test_bytes_over_the_cap_are_too_large():
    data = encode(photo(400, 300))
    assert rejected(data, ImageLimits(max_bytes_per_image=len(data) - 1)) is Reason.TOO_LARGE


def test_png_declaring_30000_squared_is_rejected_before_decode():
    assert rejected(png_header_only(30000, 30000)) is Reason.TOO_MANY_PIXELS


def test_pixel_cap_is_ours_not_only_pillows():
    # 48 Mpx is under Pillow's MAX_IMAGE_PIXELS (89 Mpx) but over our 40 Mpx; the data is
    # junk, so a decode would have said "undecodable".
    assert 8000 * 6000 < (Image.MAX_IMAGE_PIXELS or 0)
    assert rejected(png_header_only(8000, 6000)) is Reason.TOO_MANY_PIXELS
    assert rejected(png_header_only(400, 300)) is Reason.UNDECODABLE


def test_real_mostly_zero_png_bomb_is_rejected_without_decoding():
    bomb = encode(Image.new("L", (7000, 7000)), "PNG", optimize=True)
    assert len(bomb) < 200_000  # small on the wire, 49 Mpx once decoded
    started = time.perf_counter()
    assert rejected(bomb) is Reason.TOO_MANY_PIXELS
    assert time.perf_counter() - started < 0.5


def test_truncated_jpeg_is_undecodable():
    data = encode(photo(800, 600))
    assert rejected(data[: len(data) // 2]) is Reason.UNDECODABLE


# --- decoding -------------------------------------------------------------------------------

def test_big_jpeg_is_decoded_at_one_eighth_scale_by_draft():
    decoded = decode(encode(photo(3000, 2000), quality=90), LIMITS)
    assert not isinstance(decoded, Rejected)
    assert decoded.scale == 8
    assert decoded.image.size == (375, 250)  # what the decoder produced, not 3000x2000
    assert (decoded.natural_width, decoded.natural_height) == (3000, 2000)
    made = thumb(encode(photo(3000, 2000)))
    assert (made.natural_width, made.natural_height) == (3000, 2000)
    assert (made.width, made.height) == (320, 213)


def test_draft_never_goes_below_the_thumbnail_edge():
    decoded = decode(encode(photo(1000, 700)), LIMITS)
    assert not isinstance(decoded, Rejected)
    assert decoded.scale == 2 and max(decoded.image.size) >= LIMITS.thumb_edge


def gif_with_many_frames(frames: int) -> bytes:
    """A real 200x200 first frame, then `frames` tiny frames, then a corrupt one and no
    trailer: anything that walks the frames fails or takes long; frame 0 alone is fine."""
    first = encode(photo(200, 200).convert("P"), "GIF")
    assert first.endswith(b";")
    tiny = bytearray()
    for i in range(frames):
        tiny += b"!\xf9\x04\x00\x01\x00\x00\x00"  # graphic control: 10 ms
        tiny += b"," + struct.pack("<HHHH", i % 200, (i // 200) % 200, 1, 1) + b"\x00"
        tiny += b"\x02\x02D\x01\x00"  # LZW min code 2: clear, pixel 0, end
    broken = b"," + struct.pack("<HHHH", 0, 0, 200, 200) + b"\x00\x08\xff" + b"\x00" * 40
    return first[:-1] + bytes(tiny) + broken


def test_gif_with_thousands_of_frames_uses_the_first_frame_only():
    data = gif_with_many_frames(20_000)
    # Walking the frames hits the corrupt tail: a thumbnailer that did would fail.
    with (pytest.raises((OSError, EOFError, SyntaxError, ValueError)),
          Image.open(io.BytesIO(data)) as walked):
        for index in range(walked.n_frames):
            walked.seek(index)
            walked.load()
    started = time.perf_counter()
    made = thumb(data)
    assert time.perf_counter() - started < 1.0
    assert (made.natural_width, made.natural_height) == (200, 200)


def test_animated_webp_gives_a_still_thumbnail():
    frames = [photo(300, 200, seed) for seed in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], duration=50)
    made = thumb(out.getvalue())
    with Image.open(io.BytesIO(made.data)) as shown:
        assert getattr(shown, "n_frames", 1) == 1


# --- orientation and metadata ---------------------------------------------------------------

def exif_rich_jpeg() -> bytes:
    """200x100, left half red and right half blue, EXIF orientation 6, GPS, ICC and XMP."""
    image = Image.new("RGB", (200, 100), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 100, 100))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "TestCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 29.0)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">secret place</x:xmpmeta>'
    return encode(image, "JPEG", exif=exif, icc_profile=icc, xmp=xmp, quality=95)


def test_exif_orientation_6_turns_a_landscape_jpeg_portrait():
    source = exif_rich_jpeg()
    with Image.open(io.BytesIO(source)) as check:  # the fixture really carries it all
        assert check.getexif()[ExifTags.Base.Orientation] == 6
        assert check.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    made = thumb(source)
    assert (made.width, made.height) == (100, 200)
    assert (made.natural_width, made.natural_height) == (100, 200)
    with Image.open(io.BytesIO(made.data)) as shown:
        red, _, blue = shown.convert("RGB").getpixel((50, 20))
        assert red > 200 and blue < 60  # 90° clockwise: the red left half is now on top


@pytest.mark.parametrize("fmt", ["WEBP", "JPEG"])
def test_thumbnails_carry_no_exif_gps_icc_or_xmp(fmt: str):
    made = thumb(exif_rich_jpeg(), ImageLimits(thumb_format=fmt))
    assert made.format == fmt
    with Image.open(io.BytesIO(made.data)) as shown:
        assert shown.format == fmt
        assert len(shown.getexif()) == 0
        assert not {"exif", "icc_profile", "xmp"} & set(shown.info)
    for marker in (b"Exif", b"EXIF", b"ICCP", b"ICC_PROFILE", b"XMP", b"TestCam", b"secret"):
        assert marker not in made.data


def test_transparent_png_survives_as_webp_and_flattens_for_jpeg():
    image = photo(300, 300).convert("RGBA")
    image.putalpha(128)
    data = encode(image, "PNG")
    assert Image.open(io.BytesIO(thumb(data).data)).mode == "RGBA"
    as_jpeg = thumb(data, ImageLimits(thumb_format="JPEG"))
    assert as_jpeg.format == "JPEG" and (as_jpeg.width, as_jpeg.height) == (300, 300)


# --- selection ------------------------------------------------------------------------------

def item(data: bytes, url: str, order: int, source: Source = Source.IMG,
         prominence: float | None = None) -> PageImage:
    return PageImage(ImageCandidate(url, source, order, prominence=prominence), thumb(data))


def test_largest_first_and_small_ones_dropped():
    small = item(encode(photo(300, 200, 1)), "http://x/small", 0)
    big = item(encode(photo(2000, 1000, 2)), "http://x/big", 1)
    mid = item(encode(photo(1200, 800, 3)), "http://x/mid", 2)
    chosen = select([small, big, mid], LIMITS)
    assert [i.candidate.url for i in chosen] == ["http://x/big", "http://x/mid", "http://x/small"]
    assert [i.candidate.url for i in select([small, big, mid], ImageLimits(min_side=500))] == [
        "http://x/big", "http://x/mid"]


def test_same_bytes_at_two_urls_appear_once():
    data = encode(photo(800, 600, 4))
    chosen = select([item(data, "http://x/a", 0), item(data, "http://y/b", 1)], LIMITS)
    assert [i.candidate.url for i in chosen] == ["http://x/a"]


def test_recompressed_smaller_copy_is_a_duplicate_and_the_larger_stays():
    original = photo(1200, 800, 5)
    copy = encode(original.resize((900, 600)), "JPEG", quality=55)
    big = item(encode(original, "PNG"), "http://x/original.png", 1)
    small = item(copy, "http://cdn/copy.jpg", 0)
    assert big.thumbnail.sha256 != small.thumbnail.sha256
    distance = (big.thumbnail.dhash ^ small.thumbnail.dhash).bit_count()
    assert distance <= LIMITS.dhash_distance
    assert [i.candidate.url for i in select([small, big], LIMITS)] == ["http://x/original.png"]


def test_different_pictures_are_not_merged():
    pictures = [item(encode(photo(800, 600, seed)), f"http://x/{seed}", seed)
                for seed in range(10, 20)]
    assert len(select(pictures, LIMITS)) == 10


def test_ties_go_to_prominence_then_og_then_document_order():
    a = item(encode(photo(800, 600, 30)), "http://x/a", 0)
    b = item(encode(photo(800, 600, 31)), "http://x/b", 1, prominence=5.0)
    c = item(encode(photo(800, 600, 32)), "http://x/c", 2, source=Source.OG)
    assert [i.candidate.url for i in select([a, b, c], LIMITS)] == [
        "http://x/b", "http://x/c", "http://x/a"]


def test_count_is_capped():
    pictures = [item(encode(photo(400, 300, seed)), f"http://x/{seed}", seed)
                for seed in range(40, 46)]
    assert len(select(pictures, ImageLimits(max_images=4))) == 4


def test_prefilter_skips_known_small_and_repeated_urls_and_puts_og_first():
    candidates = [
        ImageCandidate("http://x/icon.png", Source.IMG, 0, 16, 16),
        ImageCandidate("http://x/ad.gif", Source.IMG, 1, 90, 60),
        ImageCandidate("http://x/photo.jpg", Source.IMG, 2, None, None),
        ImageCandidate("http://x/photo.jpg", Source.IMG, 3, None, None),
        ImageCandidate("http://x/wide.jpg", Source.IMG, 4, 1600, None),
        ImageCandidate("http://x/og.jpg", Source.OG, 5),
    ]
    assert [c.url for c in prefilter(candidates, LIMITS)] == [
        "http://x/og.jpg", "http://x/photo.jpg", "http://x/wide.jpg"]
    assert len(prefilter(candidates, ImageLimits(max_images=1))) == 1
