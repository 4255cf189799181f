"""What harvest_html takes from hostile HTML, and that it never raises."""

from __future__ import annotations

from urllib.parse import urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from peer_agent.harvest import harvest_html, largest_in_srcset, resolve
from peer_agent.images import ImageLimits, Source

BASE = "http://example.test/articles/page.html"

PAGE = """<!doctype html><html><head>
<title>  The   plain title </title>
<meta property="og:title" content="The OG title">
<meta property="og:image" content="/media/hero.jpg">
<link rel="alternate canonical" href="/articles/canonical">
</head><body>
<img src="/icons/star.png" width="16" height="16">
<img src="ad.gif" width="90" height="60px">
<img src="photo1.jpg">
<img src="data:image/gif;base64,R0lGOD" data-src="lazy.jpg">
<img srcset="s.jpg 400w, https://cdn.test/w_1600,h_900/l.jpg 1600w, m.jpg 800w" src="s.jpg">
<img src="one.jpg" srcset="one.jpg 1x, two.jpg 2x">
<img src="x.jpg" data-srcset="lazy-small.jpg 300w, lazy-big.jpg 1200w">
<picture><source srcset="pic.webp 1000w"><img src="pic.jpg"></picture>
<img src="javascript:alert(1)"><img src="file:///etc/passwd"><img src="ftp://x.test/a.jpg">
<img src="data:image/png;base64,iVBOR">
<img src="photo1.jpg#again"><img src="/media/hero.jpg">
<img src="//other.test/p.jpg">
<img><img src="   ">
</body></html>"""


def urls(html: str, base: str = BASE) -> list[str]:
    return [c.url for c in harvest_html(html, base).images]


def test_title_canonical_and_candidates_in_order():
    page = harvest_html(PAGE, BASE)
    assert page.title == "The OG title"
    assert page.canonical_url == "http://example.test/articles/canonical"
    assert [c.url for c in page.images] == [
        "http://example.test/media/hero.jpg",
        "http://example.test/icons/star.png",
        "http://example.test/articles/ad.gif",
        "http://example.test/articles/photo1.jpg",
        "http://example.test/articles/lazy.jpg",
        "https://cdn.test/w_1600,h_900/l.jpg",
        "http://example.test/articles/two.jpg",
        "http://example.test/articles/lazy-big.jpg",
        "http://example.test/articles/pic.webp",
        "http://example.test/articles/pic.jpg",
        "http://other.test/p.jpg",
    ]
    assert page.images[0].source is Source.OG
    assert all(c.source is Source.IMG for c in page.images[1:])
    assert [c.order for c in page.images] == list(range(len(page.images)))
    sizes = {c.url.rsplit("/", 1)[1]: (c.natural_width, c.natural_height) for c in page.images}
    assert sizes["star.png"] == (16, 16)
    assert sizes["ad.gif"] == (90, 60)
    assert sizes["l.jpg"] == (1600, None)  # the w descriptor is the resource's width
    assert sizes["photo1.jpg"] == (None, None)


def test_plain_title_when_no_og_title_and_none_when_absent():
    assert harvest_html("<title>\n Hello\t world </title>", BASE).title == "Hello world"
    assert harvest_html("<p>no title</p>", BASE).title is None
    assert harvest_html("<p>x</p>", BASE).canonical_url is None


def test_base_href_changes_resolution_but_not_to_other_schemes():
    assert urls('<base href="https://cdn.test/root/"><img src="a.jpg">') == [
        "https://cdn.test/root/a.jpg"]
    assert urls('<base href="javascript:void(0)/"><img src="a.jpg">') == [
        "http://example.test/articles/a.jpg"]


def test_only_http_and_https_urls_come_out():
    assert resolve("data:image/png;base64,AAAA", BASE) is None
    assert resolve("JavaScript:alert(1)", BASE) is None
    assert resolve("file:///etc/passwd", BASE) is None
    assert resolve("http://[::1", BASE) is None
    assert resolve("http://x.test:99999/a", BASE) is None
    assert resolve("https://x.test/a#frag", BASE) == "https://x.test/a"


def test_candidates_are_capped():
    html = "".join(f'<img src="/i{n}.jpg">' for n in range(500))
    assert len(urls(html)) == ImageLimits().max_candidates
    assert len(harvest_html(html, BASE, ImageLimits(max_candidates=7)).images) == 7


def test_html_is_cut_before_parsing():
    html = '<img src="/first.jpg">' + " " * 2000 + '<img src="/late.jpg">'
    page = harvest_html(html, BASE, ImageLimits(max_html_bytes=1000))
    assert [c.url for c in page.images] == ["http://example.test/first.jpg"]


def test_srcset_picks_the_largest_candidate():
    assert largest_in_srcset("a.jpg 100w, b.jpg 900w, c.jpg 300w") == ("b.jpg", 900)
    assert largest_in_srcset("a.jpg, b.jpg 3x, c.jpg 2x") == ("b.jpg", None)
    assert largest_in_srcset("a.jpg 2x, b.jpg 10w") == ("b.jpg", 10)  # w says how large
    assert largest_in_srcset("https://c.test/w_100,h_50/a.jpg 100w,https://c.test/b.jpg 200w") \
        == ("https://c.test/b.jpg", 200)
    assert largest_in_srcset("") is None
    assert largest_in_srcset(" , , ") is None
    assert largest_in_srcset("a.jpg 99999999999999w") is None  # junk descriptor: skipped


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2000), st.sampled_from([BASE, "https://x.test", "not a url", ""]))
def test_never_raises_on_any_text(html: str, base: str):
    page = harvest_html(html, base)
    for candidate in page.images:
        assert urlsplit(candidate.url).scheme in ("http", "https")


_ATTR_NAMES = st.sampled_from(["src", "srcset", "data-src", "data-srcset", "width", "height",
                               "href", "property", "content", "rel", "name"])
_ATTR_VALUES = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["a.jpg 2x, b.jpg 100w", "http://[::1", "og:image", "canonical",
                     "javascript:x", "//h.test/x.png", "1e999w", "x.jpg (1w)", "99999"]))
_TAGS = st.sampled_from(["img", "meta", "link", "base", "picture", "source", "title", "p"])


@st.composite
def html_like(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 12))):
        tag = draw(_TAGS)
        attrs = draw(st.lists(st.tuples(_ATTR_NAMES, _ATTR_VALUES), max_size=4))
        rendered = " ".join(f'{k}="{v}"' for k, v in attrs)
        parts.append(f"<{tag} {rendered}>{draw(st.text(max_size=10))}")
    return "".join(parts)


@settings(max_examples=300, deadline=None)
@given(html_like())
def test_never_raises_on_tag_soup(html: str):
    page = harvest_html(html, BASE)
    assert len(page.images) <= ImageLimits().max_candidates
    for candidate in page.images:
        assert urlsplit(candidate.url).scheme in ("http", "https")
    if page.canonical_url is not None:
        assert urlsplit(page.canonical_url).scheme in ("http", "https")
