"""Page cards, pure parts: the extension's report checked as hostile input, the receiver's
card assembler (in memory, ``now`` passed in), thumbnails shrunk to one frame, cards on disk."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import random

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from peer_agent.errors import PeerbeamError
from peer_agent.frames import DataFrame, new_transfer_id
from peer_agent.images import ImageLimits, Source, Thumbnail, make_thumbnail
from peer_agent.cards import CARD_TIMEOUT, CardAssembler, CardFailed, CardReady, ThumbRefused, save_card
from peer_agent.page import MAX_DOM_IMAGES, MAX_TITLE_CHARS, BadPageReport, fit_thumbnail, report_from_extension
from signaling.schema import (
    MAX_THUMB_BYTES,
    ErrorCode,
    PagePush,
    PageThumb,
    decode_channel,
    encode,
)
from tests.unit.test_images import encode as encode_image
from tests.unit.test_images import photo

PAGE_URL = "https://news.example/articles/42?x=1#comments"


def thumb_for(data: bytes, kind: str = "image") -> PageThumb:
    return PageThumb(id=new_transfer_id(), kind=kind, mime="image/webp", width=320, height=200,
                     natural_width=1200, natural_height=750, size=len(data),
                     sha256=hashlib.sha256(data).hexdigest(), source="https://news.example/a.jpg")


def push_of(*payloads: bytes, title: str = "A page") -> PagePush:
    push = PagePush(id=new_transfer_id(), url=PAGE_URL, title=title,
                    thumbs=[thumb_for(p) for p in payloads])
    # As the receiver gets it: through the wire schema.
    decoded = decode_channel(encode(push))
    assert isinstance(decoded, PagePush)
    return decoded


def frame(thumb: PageThumb, payload: bytes, offset: int = 0) -> DataFrame:
    return DataFrame(thumb.id, offset, payload)


# ---- the assembler -----------------------------------------------------------------------------


def test_a_card_is_ready_when_every_thumbnail_arrived_intact_in_any_order():
    payloads = [bytes([n]) * (100 + n) for n in range(3)]
    push = push_of(*payloads)
    cards = CardAssembler()
    assert cards.receive_push(push, now=0.0) == []
    assert all(cards.owns(t.id) for t in push.thumbs)
    assert cards.receive_frame(frame(push.thumbs[2], payloads[2]), 0.1) == []
    assert cards.receive_frame(frame(push.thumbs[0], payloads[0]), 0.2) == []
    [ready] = cards.receive_frame(frame(push.thumbs[1], payloads[1]), 0.3)
    assert ready == CardReady(push, list(zip(push.thumbs, payloads)), {})
    assert not any(cards.owns(t.id) for t in push.thumbs)  # later frames go elsewhere
    assert cards.next_deadline() is None


def test_a_card_without_thumbnails_is_ready_at_once():
    push = push_of()
    assert CardAssembler().receive_push(push, 0.0) == [CardReady(push, [], {})]


@pytest.mark.parametrize("tamper", ["hash", "size", "offset"])
def test_a_tampered_thumbnail_is_dropped_and_the_card_completes_without_it(tamper):
    good, bad = b"good" * 50, b"bad!" * 50
    push = push_of(good, bad)
    cards = CardAssembler()
    cards.receive_push(push, 0.0)
    cards.receive_frame(frame(push.thumbs[0], good), 0.1)
    wrong = {"hash": frame(push.thumbs[1], b"BAD!" * 50),
             "size": frame(push.thumbs[1], bad + b"x"),
             "offset": frame(push.thumbs[1], bad, offset=1)}[tamper]
    refused, ready = cards.receive_frame(wrong, 0.2)
    assert isinstance(refused, ThumbRefused) and refused.transfer_id == push.thumbs[1].id
    assert refused.code is (ErrorCode.HASH_MISMATCH if tamper == "hash" else ErrorCode.BAD_FRAME)
    assert isinstance(ready, CardReady)
    assert ready.images == [(push.thumbs[0], good)]
    assert ready.dropped == {push.thumbs[1].id: refused.message}


def test_a_frame_for_no_pending_card_is_refused_and_not_claimed():
    cards = CardAssembler()
    stranger = new_transfer_id()
    assert not cards.owns(stranger)
    [refused] = cards.receive_frame(DataFrame(stranger, 0, b"x"), 0.0)
    assert refused == ThumbRefused(stranger, ErrorCode.UNKNOWN_TRANSFER, refused.message)


def test_a_repeated_frame_is_refused_and_changes_nothing():
    first, second = b"1" * 10, b"2" * 10
    push = push_of(first, second)
    cards = CardAssembler()
    cards.receive_push(push, 0.0)
    assert cards.receive_frame(frame(push.thumbs[0], first), 0.1) == []
    [refused] = cards.receive_frame(frame(push.thumbs[0], first), 0.2)
    assert refused.code is ErrorCode.BAD_FRAME
    [ready] = cards.receive_frame(frame(push.thumbs[1], second), 0.3)
    assert isinstance(ready, CardReady) and ready.images == list(zip(push.thumbs, [first, second]))


def test_a_repeated_push_is_ignored_while_pending_and_after_it_finished():
    data = b"x" * 10
    push = push_of(data)
    cards = CardAssembler()
    cards.receive_push(push, 0.0)
    assert cards.receive_push(push, 0.1) == []
    [ready] = cards.receive_frame(frame(push.thumbs[0], data), 0.2)
    assert isinstance(ready, CardReady)
    assert cards.receive_push(push, 0.3) == []  # not shown twice
    assert not cards.owns(push.thumbs[0].id)


def test_an_incomplete_card_fails_after_the_timeout_keeping_what_arrived():
    a, b = b"a" * 10, b"b" * 10
    push = push_of(a, b)
    cards = CardAssembler()
    cards.receive_push(push, 100.0)
    cards.receive_frame(frame(push.thumbs[0], a), 101.0)
    assert cards.next_deadline() == 100.0 + CARD_TIMEOUT
    assert cards.expire(100.0 + CARD_TIMEOUT - 0.01) == []
    [failed] = cards.expire(100.0 + CARD_TIMEOUT)
    assert isinstance(failed, CardFailed)
    assert (failed.card_id, failed.code) == (push.id, ErrorCode.STALLED)
    assert "1 of 2 thumbnails" in failed.message
    assert failed.images == [(push.thumbs[0], a)]
    assert not cards.owns(push.thumbs[1].id) and cards.next_deadline() is None
    # The late frame is no longer this card's.
    [late] = cards.receive_frame(frame(push.thumbs[1], b), 200.0)
    assert late.code is ErrorCode.UNKNOWN_TRANSFER


def test_a_stale_card_is_expired_by_the_next_push_even_without_a_timer():
    stale, fresh = push_of(b"s"), push_of()
    cards = CardAssembler()
    cards.receive_push(stale, 0.0)
    failed, ready = cards.receive_push(fresh, CARD_TIMEOUT + 1)
    assert isinstance(failed, CardFailed) and failed.card_id == stale.id
    assert isinstance(ready, CardReady) and ready.push == fresh


def test_at_most_four_cards_are_pending_and_a_slot_frees_when_one_completes():
    cards = CardAssembler()
    pending = [push_of(b"p" * (n + 1)) for n in range(4)]
    for push in pending:
        assert cards.receive_push(push, 0.0) == []
    fifth = push_of(b"5")
    [refused] = cards.receive_push(fifth, 0.1)
    assert isinstance(refused, CardFailed) and refused.code is ErrorCode.RATE_LIMITED
    assert not cards.owns(fifth.thumbs[0].id)
    cards.receive_frame(frame(pending[0].thumbs[0], b"p"), 0.2)
    assert cards.receive_push(fifth, 0.3) == []  # a refused card may come again
    assert cards.owns(fifth.thumbs[0].id)


def test_thumbnail_ids_may_not_repeat_within_or_across_cards():
    data = b"d" * 10
    one = push_of(data)
    twice = PagePush(id=new_transfer_id(), url=PAGE_URL, title="", thumbs=[one.thumbs[0]] * 2)
    cards = CardAssembler()
    [failed] = cards.receive_push(twice, 0.0)
    assert isinstance(failed, CardFailed) and failed.code is ErrorCode.BAD_MESSAGE
    cards.receive_push(one, 0.0)
    clash = PagePush(id=new_transfer_id(), url=PAGE_URL, title="", thumbs=[one.thumbs[0]])
    [failed] = cards.receive_push(clash, 0.0)
    assert failed.code is ErrorCode.BAD_MESSAGE
    assert cards.owns(one.thumbs[0].id)  # the first card still holds its thumbnail


def test_interrupt_fails_every_pending_card():
    cards = CardAssembler()
    pushes = [push_of(b"x"), push_of(b"y")]
    for push in pushes:
        cards.receive_push(push, 0.0)
    events = cards.interrupt_all()
    assert [(e.card_id, e.code) for e in events if isinstance(e, CardFailed)] == [
        (p.id, ErrorCode.PEER_GONE) for p in pushes]
    assert cards.interrupt_all() == []


# ---- the extension's report -------------------------------------------------------------------


def jpeg_data_url(width: int = 64, height: int = 40) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(encode_image(photo(width, height))).decode()


def report(**changes: object) -> dict[str, object]:
    page: dict[str, object] = {
        "url": PAGE_URL,
        "title": "  Forty-two\n\tthings  ",
        "images": [
            {"src": "https://cdn.example/hero.jpg", "width": 1600, "height": 900, "area": 500_000.0},
            {"src": "/img/inline.png#frag", "width": 0, "height": 0, "area": 0},  # lazy, not loaded
            {"src": "data:image/png;base64,iVBORw0KGgo=", "width": 10, "height": 10, "area": 100},
            {"src": "blob:https://news.example/123", "width": 800, "height": 600, "area": 10},
            {"src": "javascript:alert(1)", "width": 800, "height": 600, "area": 10},
            {"src": "https://cdn.example/hero.jpg", "width": 1600, "height": 900, "area": 900_000.5},
        ],
        "screenshot": None,
    }
    page.update(changes)
    return page


def test_a_good_report_resolves_http_images_and_drops_the_rest():
    page = report_from_extension(report())
    assert page.url == PAGE_URL
    assert page.title == "Forty-two things"
    assert [(c.url, c.source, c.order, c.natural_width, c.natural_height, c.prominence)
            for c in page.candidates] == [
        ("https://cdn.example/hero.jpg", Source.DOM, 0, 1600, 900, 900_000.5),  # larger rendering
        ("https://news.example/img/inline.png", Source.DOM, 1, None, None, 0.0),
    ]
    assert page.screenshot is None


def test_the_screenshot_data_url_is_decoded_and_checked():
    data_url = jpeg_data_url()
    page = report_from_extension(report(screenshot=data_url))
    assert page.screenshot == base64.b64decode(data_url.split(",", 1)[1])
    without = {k: v for k, v in report().items() if k != "screenshot"}
    assert report_from_extension(without).screenshot is None  # the key may be left out


@pytest.mark.parametrize("url", ["javascript:alert(1)", "chrome://newtab/", "file:///etc/passwd",
                                 "data:text/html,hi", "about:blank", "ftp://files.example/"])
def test_only_web_pages_can_be_sent(url):
    with pytest.raises(BadPageReport) as info:
        report_from_extension(report(url=url))
    assert info.value.code is ErrorCode.BAD_SCHEME
    assert info.value.message.startswith("Only web pages (http or https) can be sent")


@pytest.mark.parametrize("url", ["https://", "http://exa mple.test/", "https://x.test/\nSet-Cookie: a",
                                 "https://x.test:99999/", "https://x.test/" + "a" * 8200])
def test_malformed_page_addresses_are_refused(url):
    with pytest.raises(BadPageReport) as info:
        report_from_extension(report(url=url))
    assert info.value.code is ErrorCode.BAD_MESSAGE


def test_a_huge_title_is_cut_not_refused():
    page = report_from_extension(report(title="é" * 100_000))
    assert page.title == "é" * MAX_TITLE_CHARS


def test_too_many_images_are_refused():
    images = [{"src": f"https://cdn.example/{n}.jpg", "width": 500, "height": 500, "area": 1.0}
              for n in range(MAX_DOM_IMAGES + 1)]
    with pytest.raises(BadPageReport) as info:
        report_from_extension(report(images=images))
    assert info.value.code is ErrorCode.BAD_MESSAGE
    assert "not valid" in info.value.message and "$.images" in info.value.message
    assert len(report_from_extension(report(images=images[:MAX_DOM_IMAGES])).candidates) == MAX_DOM_IMAGES


@pytest.mark.parametrize("screenshot", [
    "data:image/jpeg;base64,@@not base64@@",
    "data:image/gif;base64,R0lGODlhAQABAAAAACw=",
    "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",
    "data:image/png;base64," + jpeg_data_url().split(",", 1)[1],  # a JPEG calling itself PNG
    "data:image/jpeg;base64,",
    "https://news.example/shot.jpg",
    "data:image/jpeg;base64," + "A" * (8 * 1024 * 1024),  # over the 8 MiB cap
])
def test_bad_screenshots_are_refused(screenshot):
    with pytest.raises(BadPageReport) as info:
        report_from_extension(report(screenshot=screenshot))
    assert info.value.code is ErrorCode.BAD_MESSAGE
    assert "screenshot" in info.value.message.lower()


@pytest.mark.parametrize("page", [
    None, "https://x.test/", [], {"url": PAGE_URL},
    report(extra=1),
    report(images=[{"src": "https://x.test/a.jpg", "width": -1, "height": 5, "area": 1}]),
    report(images=[{"src": "https://x.test/a.jpg", "width": "5", "height": 5, "area": 1}]),
    report(images=[{"src": "https://x.test/a.jpg", "width": 5, "height": 5, "area": -3}]),
    report(title=None),
])
def test_malformed_reports_are_refused_with_a_sentence(page):
    with pytest.raises(BadPageReport) as info:
        report_from_extension(page)
    assert info.value.code is ErrorCode.BAD_MESSAGE
    assert info.value.message.startswith("The browser extension sent a page report that is not valid")
    assert len(info.value.message) <= 1024


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                     max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({
    "url": st.one_of(st.text(), st.just(PAGE_URL), st.from_regex(r"\Ahttps?://[a-z.]{1,20}/\S{0,30}\Z")),
    "title": st.text(),
    "images": st.lists(st.fixed_dictionaries({
        "src": st.one_of(st.text(), st.from_regex(r"\A(https?:|data:|blob:|javascript:)?/{0,2}\S{0,30}\Z")),
        "width": st.integers(-2, 10**7), "height": st.integers(-2, 10**7),
        "area": st.floats(min_value=-1, max_value=1e9)}), max_size=5),
    "screenshot": st.one_of(st.none(), st.text(max_size=50)),
}) | _json)
def test_any_input_gives_a_report_of_web_urls_or_a_bad_report_error(page):
    try:
        result = report_from_extension(page)
    except PeerbeamError as exc:
        assert isinstance(exc, BadPageReport)
        assert exc.code in (ErrorCode.BAD_MESSAGE, ErrorCode.BAD_SCHEME)
        return
    assert result.url.lower().startswith(("http://", "https://"))
    assert all(c.url.startswith(("http://", "https://")) for c in result.candidates)
    assert len(result.title) <= MAX_TITLE_CHARS


# ---- thumbnails that must fit one frame -------------------------------------------------------


def noisy_thumbnail() -> Thumbnail:
    rng = random.Random(7)
    noise = Image.frombytes("RGB", (900, 900), rng.randbytes(900 * 900 * 3))
    made = make_thumbnail(encode_image(noise, "PNG"), ImageLimits(thumb_edge=900, quality=95))
    assert isinstance(made, Thumbnail)
    return made


def test_a_thumbnail_over_one_frame_is_re_encoded_to_fit():
    big = noisy_thumbnail()
    assert len(big.data) > MAX_THUMB_BYTES
    fitted = fit_thumbnail(big, ImageLimits())
    assert fitted is not None and len(fitted.data) <= MAX_THUMB_BYTES
    with Image.open(io.BytesIO(fitted.data)) as image:
        assert image.format == "WEBP" and image.size == (fitted.width, fitted.height)
    assert (fitted.natural_width, fitted.natural_height, fitted.sha256) == (900, 900, big.sha256)


def test_a_thumbnail_that_cannot_fit_is_dropped_and_one_that_fits_is_untouched():
    big = noisy_thumbnail()
    assert fit_thumbnail(big, ImageLimits(), max_bytes=50) is None
    assert fit_thumbnail(big, ImageLimits(), max_bytes=len(big.data)) is big


# ---- cards on disk ----------------------------------------------------------------------------


def saved_push(title: str, url: str = PAGE_URL) -> tuple[PagePush, list[tuple[PageThumb, bytes]]]:
    webp, jpeg = b"RIFF....WEBPdata", b"\xff\xd8\xffjpeg"
    thumbs = [thumb_for(webp), msgspec.structs.replace(thumb_for(jpeg, "screenshot"), mime="image/jpeg",
                                                       source=None)]
    return (PagePush(id=new_transfer_id(), url=url, title=title, thumbs=thumbs),
            list(zip(thumbs, [webp, jpeg])))


def test_a_card_is_saved_as_a_folder_with_card_json_and_numbered_thumbnails(tmp_path):
    push, images = saved_push("Forty-two things")
    where = save_card(tmp_path, push, images)
    assert where == tmp_path / "Forty-two things"
    assert sorted(os.listdir(where)) == ["01.webp", "02.jpg", "card.json"]
    assert (where / "01.webp").read_bytes() == images[0][1]
    assert (where / "02.jpg").read_bytes() == images[1][1]
    card = json.loads((where / "card.json").read_text())
    assert (card["id"], card["url"], card["title"]) == (push.id, PAGE_URL, "Forty-two things")
    assert [(t["file"], t["kind"], t["sha256"], t["source"]) for t in card["thumbs"]] == [
        ("01.webp", "image", images[0][0].sha256, "https://news.example/a.jpg"),
        ("02.jpg", "screenshot", images[1][0].sha256, None)]
    again = save_card(tmp_path, push, images)
    assert again == tmp_path / "Forty-two things (1)"


@pytest.mark.parametrize("title, expected", [
    ("../../etc", "-.-etc"), ("AC/DC live", "AC-DC live"), ("", "news.example"), (".hidden", "hidden"),
    ("CON", "_CON"),
])
def test_hostile_titles_stay_one_folder_inside(tmp_path, title, expected):
    push, images = saved_push(title)
    where = save_card(tmp_path / "in", push, images)
    assert where.parent == tmp_path / "in" and where.name == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_a_planted_symlink_is_never_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "Trap").symlink_to(outside)
    (folder / "Trap (1)").symlink_to(tmp_path / "dangling")
    push, images = saved_push("Trap")
    where = save_card(folder, push, images)
    assert where == folder / "Trap (2)" and not where.is_symlink()
    assert list(outside.iterdir()) == [] and not (tmp_path / "dangling").exists()
