"""Page cards end to end against a hostile local web server (127.0.0.1 only, generated images):
report → build_card → frames → CardAssembler → CardReady → save_card."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import random
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image

from peer_agent.frames import HEADER_BYTES, decode_frame
from peer_agent.images import ImageLimits
from peer_agent.cards import CardAssembler, CardReady, save_card
from peer_agent.page import (
    SCREENSHOT,
    BadPageReport,
    Card,
    PageNotAvailable,
    build_card,
    report_from_extension,
    report_from_url,
)
from signaling.schema import (
    MAX_FRAME_BYTES,
    MAX_THUMB_BYTES,
    ErrorCode,
    PagePush,
    decode_channel,
    encode,
)
from tests.unit.test_images import encode as encode_image
from tests.unit.test_images import gif_with_many_frames, photo, png_header_only

MB = 1_000_000
HUGE = 50 * MB
FAST = ImageLimits(request_timeout=1.0, total_deadline=10.0)


def noise(width: int, height: int) -> bytes:
    rng = random.Random(width * height)
    return encode_image(Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3)), "PNG")


IMAGES: dict[str, tuple[bytes, str]] = {
    # Three photos whose sizes, not their place on the page, decide the order.
    "mid.jpg": (encode_image(photo(1200, 800, 12), quality=90), "image/jpeg"),
    "large.jpg": (encode_image(photo(1600, 1000, 11), quality=90), "image/jpeg"),
    "small.jpg": (encode_image(photo(800, 600, 13), quality=90), "image/jpeg"),
    "icon.png": (encode_image(photo(16, 16), "PNG"), "image/png"),
    "ad.jpg": (encode_image(photo(90, 60)), "image/jpeg"),
    "bomb.png": (png_header_only(30000, 30000), "image/png"),
    "frames.gif": (gif_with_many_frames(5000), "image/gif"),
    "fake.jpg": (b"<!doctype html><html><body>Not found</body></html>" * 20, "image/jpeg"),
    # Same natural size, different pictures: the rendered area breaks the tie.
    "tie-a.jpg": (encode_image(photo(1000, 700, 21), quality=90), "image/jpeg"),
    "tie-b.jpg": (encode_image(photo(1000, 700, 22), quality=90), "image/jpeg"),
    "noise.png": (noise(900, 900), "image/png"),
}

PAGE = """<!doctype html><html><head><title>Photos of things</title></head><body>
<img src="/img/icon.png" width="16" height="16"><img src="/img/ad.jpg">
<img src="/img/mid.jpg"><img src="/img/bomb.png"><img src="/img/large.jpg">
<img src="/img/frames.gif"><img src="/img/fake.jpg"><img src="/img/missing.jpg">
<img src="/img/slow.jpg"><img src="/img/huge.jpg"><img src="/img/small.jpg">
<img src="javascript:alert(1)"><img src="data:image/png;base64,iVBORw0KGgo=">
</body></html>"""


async def image(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in IMAGES:
        raise web.HTTPNotFound()
    body, content_type = IMAGES[name]
    return web.Response(body=body, content_type=content_type)


async def numbered(request: web.Request) -> web.Response:
    """A distinct small picture per number (the query string is ignored)."""
    number = int(request.match_info["n"])
    return web.Response(body=encode_image(photo(120, 120, 1000 + number)), content_type="image/jpeg")


async def slow(request: web.Request) -> web.StreamResponse:
    """Headers at once, then one byte every 50 ms, forever."""
    response = web.StreamResponse(headers={"Content-Type": request.match_info.get("type", "image/jpeg")})
    await response.prepare(request)
    await response.write(b"\xff\xd8\xff" if "image" in response.content_type else b"<html>")
    try:
        while True:
            await asyncio.sleep(0.05)
            await response.write(b" ")
    except (ConnectionError, RuntimeError):
        pass
    return response


async def slow_page(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/html"})
    await response.prepare(request)
    try:
        while True:
            await response.write(b"<p>")
            await asyncio.sleep(0.05)
    except (ConnectionError, RuntimeError):
        pass
    return response


async def huge(request: web.Request) -> web.StreamResponse:
    """50 MB of JPEG-looking bytes, chunked (no Content-Length to refuse early)."""
    response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    block = b"\xff\xd8\xff" + b"\x00" * (MB - 3)
    try:
        for _ in range(HUGE // MB):
            await response.write(block)
    except (ConnectionError, RuntimeError):
        pass
    return response


async def page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


async def many(request: web.Request) -> web.Response:
    pad = "p" * 2000  # image CDNs do carry long query strings
    body = "".join(f'<img src="/n/{n}.jpg?{pad}">' for n in range(32))
    return web.Response(text=f"<title>Many</title>{body}", content_type="text/html")


async def to_page(request: web.Request) -> web.Response:
    raise web.HTTPFound("/page.html")


async def to_file(request: web.Request) -> web.Response:
    raise web.HTTPFound("file:///etc/passwd")


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    app = web.Application()
    app.router.add_get("/img/slow.jpg", slow)
    app.router.add_get("/img/huge.jpg", huge)
    app.router.add_get("/img/{name}", image)
    app.router.add_get("/n/{n}.jpg", numbered)
    app.router.add_get("/page.html", page)
    app.router.add_get("/many.html", many)
    app.router.add_get("/slow.html", slow_page)
    app.router.add_get("/to-page", to_page)
    app.router.add_get("/to-file", to_file)
    test_server = TestServer(app, host="127.0.0.1")  # loopback only
    await test_server.start_server()
    yield test_server
    await test_server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def url(server: TestServer, path: str) -> str:
    return str(server.make_url(path))


def name(source: str | None) -> str | None:
    return None if source is None else source.rsplit("/", 1)[1].split("?")[0]


def check_wire(card: Card) -> None:
    """What the other device will check: the push fits the schema and one control message,
    each thumbnail is one frame at offset 0 named by its id, with the promised size and hash."""
    wire = encode(card.push)
    assert len(wire) <= MAX_FRAME_BYTES
    assert decode_channel(wire) == card.push
    assert len(card.frames) == len(card.push.thumbs)
    for thumb, raw in zip(card.push.thumbs, card.frames):
        frame = decode_frame(raw)
        assert (frame.transfer_id, frame.offset) == (thumb.id, 0)
        assert len(raw) <= MAX_FRAME_BYTES and len(frame.payload) == thumb.size <= MAX_THUMB_BYTES
        assert hashlib.sha256(frame.payload).hexdigest() == thumb.sha256
        with Image.open(io.BytesIO(frame.payload)) as shown:
            assert thumb.mime == {"WEBP": "image/webp", "JPEG": "image/jpeg"}[shown.format]
            assert shown.size == (thumb.width, thumb.height)


async def test_a_fetched_page_gives_exactly_the_good_thumbnails_largest_first(server, session):
    report = await report_from_url(url(server, "/to-page#photos"), FAST, session)
    assert report.url == url(server, "/page.html") + "#photos"  # after the redirect, fragment kept
    assert report.title == "Photos of things"
    started = time.perf_counter()
    card = await build_card(report, FAST, session, pull="pull-1")
    assert time.perf_counter() - started < 5  # the slow image is cut at 1 s, the 50 MB at 10 MiB
    check_wire(card)
    thumbs = card.push.thumbs
    assert [name(t.source) for t in thumbs] == ["large.jpg", "mid.jpg", "small.jpg", "frames.gif"]
    assert [(t.width, t.height, t.natural_width, t.natural_height) for t in thumbs] == [
        (320, 200, 1600, 1000), (320, 213, 1200, 800), (320, 240, 800, 600), (200, 200, 200, 200)]
    assert all(t.kind == "image" and t.mime == "image/webp" for t in thumbs)
    assert (card.push.url, card.push.title, card.push.pull) == (report.url, report.title, "pull-1")
    why = {name(u): reason.split(":")[0] for u, reason in card.rejected.items()}
    assert why == {
        "icon.png": "too_small",  # known small from its width/height attributes: never fetched
        "ad.jpg": "too_small",
        "bomb.png": "too_many_pixels",
        "fake.jpg": "not_image",
        "missing.jpg": "http_status",
        "slow.jpg": "timeout",
        "huge.jpg": "too_large",
    }


async def test_an_extension_report_orders_by_size_then_on_screen_area_and_puts_the_screenshot_last(
        server, session):
    shot = encode_image(photo(1280, 720, 5), quality=80)
    report = report_from_extension({
        "url": url(server, "/page.html"),
        "title": "Live tab",
        "images": [
            {"src": url(server, "/img/tie-a.jpg"), "width": 1000, "height": 700, "area": 2000.0},
            {"src": url(server, "/img/icon.png"), "width": 16, "height": 16, "area": 256.0},
            {"src": "data:image/png;base64,iVBORw0KGgo=", "width": 640, "height": 480, "area": 1e5},
            {"src": "javascript:alert(1)", "width": 640, "height": 480, "area": 1e5},
            {"src": "/img/tie-b.jpg", "width": 1000, "height": 700, "area": 90000.0},
            {"src": url(server, "/img/small.jpg"), "width": 0, "height": 0, "area": 0},
            {"src": url(server, "/img/bomb.png"), "width": 30000, "height": 30000, "area": 1.0},
        ],
        "screenshot": "data:image/jpeg;base64," + base64.b64encode(shot).decode(),
    })
    card = await build_card(report, FAST, session)
    check_wire(card)
    thumbs = card.push.thumbs
    assert [(t.kind, name(t.source)) for t in thumbs] == [
        ("image", "tie-b.jpg"), ("image", "tie-a.jpg"), ("image", "small.jpg"), ("screenshot", None)]
    assert (thumbs[-1].width, thumbs[-1].height, thumbs[-1].natural_width) == (320, 180, 1280)
    assert {name(u): r.split(":")[0] for u, r in card.rejected.items()} == {
        "icon.png": "too_small", "bomb.png": "too_many_pixels"}


async def test_a_card_travels_through_the_assembler_and_is_saved_byte_for_byte(server, session, tmp_path):
    report = await report_from_url(url(server, "/page.html"), FAST, session)
    card = await build_card(report, FAST, session)
    cards = CardAssembler()
    received = decode_channel(encode(card.push))
    assert isinstance(received, PagePush)
    events = cards.receive_push(received, now=0.0)
    for raw in reversed(card.frames):  # order does not matter
        frame = decode_frame(raw)
        assert cards.owns(frame.transfer_id)
        events += cards.receive_frame(frame, now=0.1)
    [ready] = events
    assert isinstance(ready, CardReady) and ready.dropped == {}
    assert ready.push == card.push
    assert [data for _, data in ready.images] == [raw[HEADER_BYTES:] for raw in card.frames]

    where = save_card(tmp_path, ready.push, ready.images)
    assert where == tmp_path / "Photos of things"
    saved = json.loads((where / "card.json").read_text())
    assert saved["url"] == card.push.url
    assert [t["file"] for t in saved["thumbs"]] == ["01.webp", "02.webp", "03.webp", "04.webp"]
    for entry, (thumb, data) in zip(saved["thumbs"], ready.images):
        assert (where / entry["file"]).read_bytes() == data
        assert entry["sha256"] == thumb.sha256 == hashlib.sha256(data).hexdigest()


async def test_long_image_urls_are_left_out_of_the_push_until_it_fits_one_message(server, session):
    limits = ImageLimits(min_side=100, request_timeout=5.0)
    report = await report_from_url(url(server, "/many.html"), limits, session)
    card = await build_card(report, limits, session)
    check_wire(card)
    assert len(card.push.thumbs) == 32
    sources = [t.source for t in card.push.thumbs]
    assert None in sources and any(s is not None for s in sources)  # only as many as needed go


async def test_a_thumbnail_over_one_frame_is_shrunk_to_fit(server, session):
    limits = ImageLimits(thumb_edge=900, quality=95)
    report = report_from_extension({"url": url(server, "/"), "title": "", "screenshot": None, "images": [
        {"src": url(server, "/img/noise.png"), "width": 900, "height": 900, "area": 1.0}]})
    card = await build_card(report, limits, session)
    check_wire(card)
    [thumb] = card.push.thumbs
    assert thumb.size <= MAX_THUMB_BYTES and thumb.natural_width == 900
    assert card.rejected == {}


async def test_a_screenshot_that_is_not_an_image_is_reported_not_sent(server, session):
    report = report_from_extension({"url": url(server, "/"), "title": "t", "images": [],
                                    "screenshot": "data:image/png;base64,"
                                                  + base64.b64encode(png_header_only(30000, 30000)).decode()})
    card = await build_card(report, FAST, session)
    assert card.push.thumbs == [] and card.rejected[SCREENSHOT].startswith("too_many_pixels")


@pytest.mark.parametrize("path, code, words", [
    ("/missing.html", ErrorCode.PAGE_UNREACHABLE, "the server answered with an error (HTTP 404)"),
    ("/img/large.jpg", ErrorCode.NOT_HTML, "it is not a web page"),
    ("/slow.html", ErrorCode.PAGE_UNREACHABLE, "it did not load in time"),
    ("/to-file", ErrorCode.BAD_SCHEME, "it leads to an address that is not http or https"),
])
async def test_pages_that_cannot_be_sent_say_why_in_plain_words(server, session, path, code, words):
    with pytest.raises(PageNotAvailable) as info:
        await report_from_url(url(server, path), FAST, session)
    assert info.value.code is code and info.value.remote
    assert info.value.message.startswith(f"The page could not be sent: {words}")


async def test_an_unreachable_server_is_page_unreachable(session):
    with pytest.raises(PageNotAvailable) as info:
        await report_from_url("http://127.0.0.1:9/", FAST, session)  # discard port: refused
    assert info.value.code is ErrorCode.PAGE_UNREACHABLE
    assert "the server cannot be reached" in info.value.message


@pytest.mark.parametrize("bad", ["javascript:alert(1)", "file:///etc/passwd", "ftp://files.example/"])
async def test_non_web_addresses_are_refused_before_any_request(session, bad):
    with pytest.raises(BadPageReport) as info:
        await report_from_url(bad, FAST, session)
    assert info.value.code is ErrorCode.BAD_SCHEME and not info.value.remote


async def test_with_more_images_than_the_cap_the_most_prominent_on_screen_are_fetched(server, session):
    limits = ImageLimits(max_images=2, request_timeout=5.0)
    report = report_from_extension({"url": url(server, "/"), "title": "", "screenshot": None, "images": [
        {"src": url(server, f"/img/{file}"), "width": 0, "height": 0, "area": area}
        for file, area in [("large.jpg", 10.0), ("mid.jpg", 5000.0), ("small.jpg", 9000.0)]]})
    card = await build_card(report, limits, session)
    # The largest picture is first in the page but smallest on screen: it is not fetched.
    assert [name(t.source) for t in card.push.thumbs] == ["mid.jpg", "small.jpg"]
    assert {name(u): r.split(":")[0] for u, r in card.rejected.items()} == {"large.jpg": "over_count"}
