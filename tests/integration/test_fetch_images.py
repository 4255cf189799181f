"""Pages and images fetched from a hostile local server (127.0.0.1 only, generated images)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image

from peer_agent.fetch import (
    CHUNK,
    FetchCode,
    FetchedImage,
    FetchFailure,
    PageFetchError,
    fetch_images,
    fetch_page,
    fetch_thumbnails,
)
from peer_agent.harvest import harvest_html
from peer_agent.images import ImageLimits, Reason, Rejected, prefilter, select
from tests.unit.test_images import encode, gif_with_many_frames, photo, png_header_only

MB = 1_000_000
HUGE = 50 * MB


@dataclass
class Served:
    """What the server saw, for assertions about what the client did not read."""

    huge_sent: int = 0
    huge_done: asyncio.Event = field(default_factory=asyncio.Event)
    slow_open: int = 0


SERVED = web.AppKey("served", Served)

BIG1 = encode(photo(1200, 800, 1), quality=90)
BIG2 = encode(photo(2000, 1200, 2), quality=90)
BIG1_RECOMPRESSED = encode(photo(1200, 800, 1).resize((600, 400)), quality=50)
IMAGES: dict[str, tuple[bytes, str]] = {
    "big1.jpg": (BIG1, "image/jpeg"),
    "big2.jpg": (BIG2, "image/jpeg"),
    "copy-of-big1.jpg": (BIG1, "image/jpeg"),
    "big1-small.jpg": (BIG1_RECOMPRESSED, "image/jpeg"),
    "icon.png": (encode(photo(16, 16), "PNG"), "image/png"),
    "ad.jpg": (encode(photo(90, 60)), "image/jpeg"),
    "bomb.png": (png_header_only(30000, 30000), "image/png"),
    "zeros.png": (encode(Image.new("L", (7000, 7000)), "PNG"), "image/png"),
    "frames.gif": (gif_with_many_frames(5000), "image/gif"),
    "fake.jpg": (b"<!doctype html><html><body>Not found</body></html>" * 20, "image/jpeg"),
}

PAGE = """<!doctype html><html><head><title>Bad images</title>
<meta property="og:image" content="/img/big1.jpg"></head><body>
<img src="/img/icon.png"><img src="/img/ad.jpg"><img src="/img/big2.jpg">
<img src="/img/bomb.png"><img src="/img/zeros.png"><img src="/img/frames.gif">
<img src="/img/fake.jpg"><img src="/img/missing.jpg"><img src="/img/slow.jpg">
<img src="/img/huge.jpg"><img src="/img/copy-of-big1.jpg"><img src="/img/big1-small.jpg">
<img src="javascript:alert(1)"><img src="data:image/png;base64,iVBORw0KGgo=">
</body></html>"""


async def image(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in IMAGES:
        raise web.HTTPNotFound()
    body, content_type = IMAGES[name]
    return web.Response(body=body, content_type=content_type)


async def slow(request: web.Request) -> web.StreamResponse:
    """Headers at once, then one byte every 50 ms, forever."""
    request.app[SERVED].slow_open += 1
    response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
    await response.prepare(request)
    await response.write(b"\xff\xd8\xff")
    try:
        while True:
            await asyncio.sleep(0.05)
            await response.write(b"\x00")
    except (ConnectionError, RuntimeError):
        pass
    return response


async def huge(request: web.Request) -> web.StreamResponse:
    """50 MB of JPEG-looking bytes, chunked (no Content-Length to reject early)."""
    served = request.app[SERVED]
    response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    block = b"\xff\xd8\xff" + b"\x00" * (MB - 3)
    try:
        while served.huge_sent < HUGE:
            await response.write(block)
            served.huge_sent += len(block)
    except (ConnectionError, RuntimeError):
        pass
    finally:
        served.huge_done.set()
    return response


async def huge_declared(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
    response.content_length = HUGE
    await response.prepare(request)
    try:
        await response.write(b"\xff\xd8\xff" + b"\x00" * (MB - 3))
    except (ConnectionError, RuntimeError):
        pass
    return response


async def page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


async def long_page(request: web.Request) -> web.Response:
    head = '<html><head><meta property="og:image" content="/img/big1.jpg"></head><body>'
    return web.Response(text=head + "<p>filler</p>" * 1_000_000, content_type="text/html")


async def png_as_html(request: web.Request) -> web.Response:
    return web.Response(body=IMAGES["big1-small.jpg"][0], content_type="text/html")


async def json_page(request: web.Request) -> web.Response:
    return web.json_response({"not": "html"})


async def loop(request: web.Request) -> web.Response:
    raise web.HTTPFound(f"/loop?n={int(request.query.get('n', '0')) + 1}")


async def to_file(request: web.Request) -> web.Response:
    raise web.HTTPFound("file:///etc/passwd")


async def hop(request: web.Request) -> web.Response:
    raise web.HTTPFound("/img/big2.jpg")


def make_app() -> web.Application:
    """The hostile site: also served inside a lab namespace by tests/integration/page_site.py."""
    app = web.Application()
    app[SERVED] = Served()
    app.router.add_get("/img/slow.jpg", slow)
    app.router.add_get("/img/huge.jpg", huge)
    app.router.add_get("/img/huge-declared.jpg", huge_declared)
    app.router.add_get("/img/{name}", image)
    app.router.add_get("/page.html", page)
    app.router.add_get("/long.html", long_page)
    app.router.add_get("/png-as-html", png_as_html)
    app.router.add_get("/data.json", json_page)
    app.router.add_get("/loop", loop)
    app.router.add_get("/to-file", to_file)
    app.router.add_get("/hop", hop)
    return app


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    test_server = TestServer(make_app(), host="127.0.0.1")  # loopback only: never another address
    await test_server.start_server()
    yield test_server
    await test_server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


FAST = ImageLimits(request_timeout=1.0, total_deadline=10.0)


def url(server: TestServer, path: str) -> str:
    return str(server.make_url(path))


async def test_a_page_full_of_bad_images_gives_exactly_the_good_thumbnails(server, session):
    final_url, html = await fetch_page(url(server, "/page.html"), FAST, session)
    info = harvest_html(html, final_url)
    assert info.title == "Bad images"
    assert all(c.url.startswith("http://127.0.0.1:") for c in info.images)  # no js:, data:
    candidates = prefilter(info.images, FAST)
    started = time.perf_counter()
    made, failed = await fetch_thumbnails(candidates, FAST, session)
    assert time.perf_counter() - started < 5  # the slow one is cut at 1 s, not waited for
    card = select(made, FAST)
    names = [item.candidate.url.rsplit("/", 1)[1] for item in card]
    # Largest first; the same bytes at two URLs and the recompressed copy fold into big1.
    assert names == ["big2.jpg", "big1.jpg", "frames.gif"]
    assert [(i.thumbnail.width, i.thumbnail.height) for i in card] == [
        (320, 192), (320, 213), (200, 200)]
    assert all(i.thumbnail.format == "WEBP" for i in card)
    why = {u.rsplit("/", 1)[1]: (f.code if isinstance(f, FetchFailure) else f.reason)
           for u, f in failed.items()}
    assert why == {
        "icon.png": Reason.TOO_SMALL,
        "ad.jpg": Reason.TOO_SMALL,
        "bomb.png": Reason.TOO_MANY_PIXELS,
        "zeros.png": Reason.TOO_MANY_PIXELS,
        "fake.jpg": FetchCode.NOT_IMAGE,
        "missing.jpg": FetchCode.HTTP_STATUS,
        "slow.jpg": FetchCode.TIMEOUT,
        "huge.jpg": FetchCode.TOO_LARGE,
    }


async def test_html_labelled_image_jpeg_is_not_an_image(server, session):
    [result] = await fetch_images([url(server, "/img/fake.jpg")], FAST, session)
    assert isinstance(result, FetchFailure) and result.code is FetchCode.NOT_IMAGE
    assert result.status == 200


async def test_404_is_a_failure_with_its_status(server, session):
    [result] = await fetch_images([url(server, "/img/missing.jpg")], FAST, session)
    assert isinstance(result, FetchFailure)
    assert (result.code, result.status) == (FetchCode.HTTP_STATUS, 404)


async def test_never_ending_response_is_cut_by_the_request_timeout(server, session):
    started = time.perf_counter()
    [result] = await fetch_images([url(server, "/img/slow.jpg")],
                                  ImageLimits(request_timeout=0.5), session)
    elapsed = time.perf_counter() - started
    assert isinstance(result, FetchFailure) and result.code is FetchCode.TIMEOUT
    assert 0.4 < elapsed < 2.0
    assert 0 < result.bytes_read < 100  # it was trickling, and we stopped listening


async def test_total_deadline_stops_the_batch(server, session):
    limits = ImageLimits(request_timeout=0.6, total_deadline=1.0, concurrency=1)
    started = time.perf_counter()
    results = await fetch_images([url(server, "/img/slow.jpg")] * 4, limits, session)
    assert time.perf_counter() - started < 2.5
    codes = [r.code for r in results if isinstance(r, FetchFailure)]
    assert codes[0] is FetchCode.TIMEOUT and codes[-1] is FetchCode.DEADLINE
    assert server.app[SERVED].slow_open == 2  # the later ones were never even requested


async def test_50_mb_image_is_cut_at_the_byte_cap_without_reading_it_all(server, session):
    limits = ImageLimits(max_bytes_per_image=4 * MB)
    [result] = await fetch_images([url(server, "/img/huge.jpg")], limits, session)
    assert isinstance(result, FetchFailure) and result.code is FetchCode.TOO_LARGE
    assert 4 * MB < result.bytes_read <= 4 * MB + CHUNK
    # The server notices the dropped connection long before it has written 50 MB.
    await asyncio.wait_for(server.app[SERVED].huge_done.wait(), 5)
    assert server.app[SERVED].huge_sent < HUGE // 2


async def test_declared_50_mb_is_refused_before_reading_a_byte(server, session):
    [result] = await fetch_images([url(server, "/img/huge-declared.jpg")], FAST, session)
    assert isinstance(result, FetchFailure) and result.code is FetchCode.TOO_LARGE
    assert result.bytes_read == 0


async def test_total_byte_budget_is_shared_by_the_batch(server, session):
    limits = ImageLimits(max_total_bytes=len(BIG1) + len(BIG2) // 2, concurrency=1)
    results = await fetch_images([url(server, "/img/big1.jpg"), url(server, "/img/big2.jpg")],
                                 limits, session)
    assert isinstance(results[0], FetchedImage) and results[0].data == BIG1
    assert isinstance(results[1], FetchFailure) and results[1].code is FetchCode.BUDGET


async def test_redirects_are_limited_and_must_stay_http(server, session):
    loop_result, file_result, hop_result, js_result = await fetch_images(
        [url(server, "/loop"), url(server, "/to-file"), url(server, "/hop"),
         "javascript:alert(1)"], FAST, session)
    assert isinstance(loop_result, FetchFailure)
    assert loop_result.code is FetchCode.TOO_MANY_REDIRECTS
    assert isinstance(file_result, FetchFailure) and file_result.code is FetchCode.BAD_SCHEME
    assert isinstance(hop_result, FetchedImage) and hop_result.data == BIG2
    assert isinstance(js_result, FetchFailure) and js_result.code is FetchCode.BAD_SCHEME


async def test_image_count_is_capped(server, session):
    results = await fetch_images([url(server, "/img/big1.jpg")] * 10,
                                 ImageLimits(max_images=3), session)
    assert len(results) == 3


@pytest.mark.parametrize("path", ["/img/big1.jpg", "/data.json", "/png-as-html"])
async def test_a_page_that_is_not_html_is_refused(server, session, path):
    with pytest.raises(PageFetchError) as info:
        await fetch_page(url(server, path), FAST, session)
    assert info.value.reason is FetchCode.NOT_HTML


@pytest.mark.parametrize("bad", ["file:///etc/passwd", "javascript:alert(1)", "ftp://x.test/",
                                 "data:text/html,<p>hi"])
async def test_non_http_pages_are_refused_without_a_request(session, bad):
    with pytest.raises(PageFetchError) as info:
        await fetch_page(bad, FAST, session)
    assert info.value.reason is FetchCode.BAD_SCHEME
    assert "page could not be fetched" in info.value.message


async def test_page_errors_have_codes(server, session):
    with pytest.raises(PageFetchError) as info:
        await fetch_page(url(server, "/missing.html"), FAST, session)
    assert info.value.reason is FetchCode.HTTP_STATUS
    with pytest.raises(PageFetchError) as info:
        await fetch_page(url(server, "/loop"), FAST, session)
    assert info.value.reason is FetchCode.TOO_MANY_REDIRECTS
    with pytest.raises(PageFetchError) as info:
        await fetch_page(url(server, "/to-file"), FAST, session)
    assert info.value.reason is FetchCode.BAD_SCHEME


async def test_a_long_page_is_cut_at_the_cap_and_still_harvested(server, session):
    limits = ImageLimits(max_html_bytes=100_000)
    final_url, html = await fetch_page(url(server, "/long.html"), limits, session)
    assert len(html.encode()) == 100_000
    assert [c.url for c in harvest_html(html, final_url).images] == [url(server, "/img/big1.jpg")]


async def test_rejections_carry_reasons_for_the_card_log(server, session):
    candidates = harvest_html('<img src="/img/bomb.png">', url(server, "/")).images
    made, failed = await fetch_thumbnails(candidates, FAST, session)
    assert made == []
    [why] = failed.values()
    assert isinstance(why, Rejected) and why.reason is Reason.TOO_MANY_PIXELS
