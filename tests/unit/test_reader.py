"""The reader view's blocks (peer_agent/reader.py) and the card that carries them (cards.py)."""

from __future__ import annotations

import gzip
import hashlib
import os

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peer_agent.cards import CardAssembler, CardReady, ThumbRefused
from peer_agent.frames import DataFrame, new_transfer_id
from peer_agent.page import report_from_extension
from peer_agent.reader import (
    MAX_READER_GZIP,
    Block,
    Reader,
    ReaderError,
    decode_reader,
    encode_reader,
    reader_from_html,
    reader_from_report,
)
from signaling.schema import PagePush, PageText, decode_channel, encode
from tests.unit.test_page import thumb_for

ARTICLE = """<!doctype html><html><head><title>Tides of the North Sea</title></head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/about">About us</a></li></ul></nav>
<header><p>Subscribe to our newsletter for more!</p></header>
<article>
<h1>Tides of the   North Sea</h1>
""" + "\n".join(
    f"<p>Paragraph {i}: the tide\n   comes in twice a day, and the moon pulls the water along the long coast of "
    f"the sea, which is why harbours empty and fill on a schedule sailors learn by heart.</p>"
    for i in range(25)
) + """
<figure><img src="/img/harbour.jpg" alt="The  harbour at low tide"></figure>
<blockquote><p>Time and tide wait for no one.</p></blockquote>
<p>Final paragraph about spring tides and neap tides, long enough to be kept by the extractor itself.</p>
</article>
<footer><p>Copyright 2026 Example News. All rights reserved.</p></footer>
</body></html>"""


def test_readability_keeps_the_article_in_order_and_leaves_out_the_chrome():
    reader = reader_from_html(ARTICLE, "http://news.example/tides")
    texts = [b.t for b in reader.blocks]
    assert reader.blocks[0] == Block("h1", "Tides of the North Sea")  # whitespace collapsed
    paragraphs = [t for t in texts if t.startswith("Paragraph ")]
    assert [p.split(":")[0] for p in paragraphs] == [f"Paragraph {i}" for i in range(25)]
    assert "comes in twice a day, and" in paragraphs[0] and "\n" not in paragraphs[0]
    assert Block("img", "The harbour at low tide", "http://news.example/img/harbour.jpg") in reader.blocks
    assert Block("quote", "Time and tide wait for no one.") in reader.blocks  # not a <p> of its own too
    assert not any("Time and tide" in t for t in texts if t != "Time and tide wait for no one.")
    assert not any("Copyright" in t or "newsletter" in t or t == "About us" for t in texts)
    assert not reader.truncated


def test_the_reader_travels_gzip_d_and_comes_back_equal():
    reader = reader_from_html(ARTICLE, "http://news.example/tides")
    packed = encode_reader(reader)
    assert packed[:2] == b"\x1f\x8b" and len(packed) < 4096
    assert decode_reader(packed) == reader


def test_a_reader_too_big_for_one_frame_is_cut_and_says_so():
    # Random hex does not compress: 300 blocks of 6000 characters cannot fit 64 KiB.
    reader = Reader(url="http://x.example/", title="big",
                    blocks=[Block("p", os.urandom(3000).hex()) for _ in range(300)])
    packed = encode_reader(reader)
    assert len(packed) <= MAX_READER_GZIP
    back = decode_reader(packed)
    assert back.truncated and 0 < len(back.blocks) < 300
    assert back.blocks == reader.blocks[:len(back.blocks)]  # cut from the end, in order


def test_a_gzip_bomb_is_refused_before_it_unpacks():
    bomb = gzip.compress(b"[" + b" " * (8 * 1024 * 1024) + b"]")
    assert len(bomb) < 64 * 1024
    with pytest.raises(ReaderError, match="more than 1 MiB"):
        decode_reader(bomb)


@pytest.mark.parametrize("data", [b"", b"not gzip", gzip.compress(b"{}"), gzip.compress(b'{"url": 1}'),
                                  gzip.compress(b'{"url":"u","title":"t","blocks":[{"k":"script","t":"x"}]}')])
def test_damaged_reader_text_is_refused_with_a_sentence(data):
    with pytest.raises(ReaderError) as caught:
        decode_reader(data)
    assert caught.value.code == "bad_frame" and caught.value.message.endswith(".")


def test_the_extension_s_blocks_are_checked_one_by_one():
    raw = {"title": "  A   title ", "truncated": False, "blocks": [
        {"k": "p", "t": "  kept \n text "},
        {"k": "p", "t": "   "},  # empty after normalizing: dropped
        {"k": "marquee", "t": "unknown kind"},
        {"k": "img", "t": "alt", "src": "javascript:alert(1)"},  # not http(s): dropped
        {"k": "img", "t": "alt", "src": "/pic.jpg"},
        {"k": "p", "t": "x" * 9000},  # over the cap: refused by the schema
        "junk",
        {"k": "li", "t": "item", "extra": 1},  # unknown field: dropped
    ]}
    reader = reader_from_report(raw, "https://site.example/a/b")
    assert reader.title == "A title"
    # Bad blocks become empty paragraphs in place: indexes are anchors into the live tab.
    empty = Block("p", "")
    assert reader.blocks == [Block("p", "kept text"), empty, empty, empty,
                             Block("img", "alt", "https://site.example/pic.jpg"), empty, empty, empty]


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
                    max_leaves=30))
def test_any_reader_report_gives_blocks_or_a_reader_error(raw):
    try:
        reader = reader_from_report(raw, "https://site.example/")
    except ReaderError:
        return
    assert len(reader.blocks) == min(len(raw["blocks"]), 2000)
    msgspec.json.encode(reader)


def test_a_page_report_from_the_extension_carries_its_reader():
    page = {"url": "https://site.example/a", "title": "T", "images": [],
            "reader": {"url": "https://site.example/a", "title": "T", "blocks": [{"k": "p", "t": "hello"}]}}
    report = report_from_extension(page)
    assert report.reader is not None and report.reader.blocks == [Block("p", "hello")]


# ---- a card with its text frame -------------------------------------------------------------------


def text_push(text: bytes, *thumb_payloads: bytes) -> PagePush:
    push = PagePush(id=new_transfer_id(), url="https://site.example/a", title="T",
                    thumbs=[thumb_for(p) for p in thumb_payloads], doc="00112233aabbccdd",
                    text=PageText(id=new_transfer_id(), size=len(text), sha256=hashlib.sha256(text).hexdigest()))
    decoded = decode_channel(encode(push))
    assert isinstance(decoded, PagePush)
    return decoded


def test_a_reader_card_waits_for_its_text_frame_and_hands_it_over():
    text, picture = encode_reader(reader_from_html(ARTICLE, "http://news.example/tides")), b"p" * 300
    push = text_push(text, picture)
    cards = CardAssembler()
    assert cards.receive_push(push, 0.0) == []
    assert push.text is not None and cards.owns(push.text.id)
    assert cards.receive_frame(DataFrame(push.thumbs[0].id, 0, picture), 0.1) == []  # the text is missing
    [ready] = cards.receive_frame(DataFrame(push.text.id, 0, text), 0.2)
    assert isinstance(ready, CardReady) and ready.text == text and len(ready.images) == 1
    assert not cards.owns(push.text.id)


def test_a_damaged_text_frame_is_dropped_and_the_card_completes_without_text():
    text = encode_reader(Reader(url="https://site.example/a", title="T", blocks=[Block("p", "x")]))
    push = text_push(text)
    cards = CardAssembler()
    cards.receive_push(push, 0.0)
    assert push.text is not None
    refused, ready = cards.receive_frame(DataFrame(push.text.id, 0, text[:10] + bytes([text[10] ^ 1]) + text[11:]), 0.1)
    assert isinstance(refused, ThumbRefused) and refused.code == "hash_mismatch"
    assert isinstance(ready, CardReady) and ready.text is None
