"""The extension's page-sync parts in real Chromium (docs/SYNC.md "Reader view", "Applying
remote state", "Extension <-> agent").

1. sync_content.js in a page's main world (it needs no chrome.* but its port): the reader view
   of a long article with nav/footer noise, nested lists, images and whitespace-heavy markup;
   scroll reports and remote scrolls across viewport sizes; find with the CSS Custom Highlight
   API; the offset <-> DOM mapping that find and highlights stand on.
2. The unpacked extension with its real native host (`peerbeam extension-host`), whose agent
   end is this test (a control socket that speaks the agent's side of the contract): the new
   permissions and menu items, sync.capture, sync.state applied to the real tab, the sync.op
   and sync.page messages the worker sends, and the bookmark folder mirrored both ways.

Nothing here uses WebRTC or mDNS: pages are served on 127.0.0.1 and the native host talks to a
Unix socket, so the tests run in the host's network namespace.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from PIL import Image
from playwright.async_api import Page, async_playwright

from peer_agent.control import Conn, ControlServer
from tests.lab import REPO_ROOT

EXTENSION = REPO_ROOT / "browser_client" / "extension"
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TITLE = "Tide pools of the north coast"
WAIT = 20.0

PARAGRAPHS = [
    "The north coast has some of the richest tide pools of the whole Pacific shore, and the best of them "
    f"lie below the old lighthouse, where the reef runs flat for a mile (story part {i})." if i % 3 == 0 else
    f"An urchin grazes the kelp at night; by morning the Urchin has moved a hand's width, and a second "
    f"urchin has taken its place in the same rock hollow (story part {i})." if i % 3 == 1 else
    f"Visitors should watch the swell, wear shoes with a good grip, and come back before the flood tide "
    f"covers the causeway again, which it does quickly (story part {i})."
    for i in range(24)
]
# Whitespace-heavy on purpose: runs of spaces and newlines, a <br>, &nbsp;, a comment, a
# hidden span, words split by inline elements, and two characters only Python's \s calls
# whitespace (U+001F, U+0085: the agent normalizes the blocks again).
LEDE = """
      When the   tide goes out,
   the <em>rocks</em>   of the north\x1f coast
   open\x85  a small world:<br>anemones,&nbsp;urchins and <b>cr</b>abs.<!-- a comment -->
   <span hidden>SECRET</span>
"""
ARTICLE = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{TITLE}</title>
<style>
  body {{ margin: 0; font: 18px/1.6 serif; }}
  article {{ max-width: 38em; margin: 0 auto; padding: 0 1em; }}
  img {{ display: block; width: 320px; height: 200px; }}
  nav li {{ display: inline; }}
</style></head>
<body>
<header class="site-header"><nav class="menu"><ul><li><a href="/">Home</a></li><li><a href="/shop">Shop</a></li>
<li><a href="/about">About us</a></li></ul></nav></header>
<main><article>
<h1>{TITLE}</h1>
<p class="lede">{LEDE}</p>
<figure><img src="pool.png" alt="  A   tide pool
   at dawn "><figcaption>  The pool at   Cape Arago. </figcaption></figure>
{"".join(f"<p>{p}</p>" for p in PARAGRAPHS[:8])}
<h2>What lives   there</h2>
<ul>
  <li>Anemones
    <ul>
      <li>Giant green anemone</li>
      <li>Aggregating   anemone</li>
    </ul>
  </li>
  <li><p>Sea stars, <strong>ochre</strong> and purple</p></li>
</ul>
<blockquote><p>Look, but do not touch.</p>
  <p>Leave every rock as you   found it.</p></blockquote>
<pre>  low tide  06:42
  high tide 12:58</pre>
<img src="pixel.png" data-src="crab.png" alt="A crab">
{"".join(f"<p>{p}</p>" for p in PARAGRAPHS[8:])}
</article></main>
<aside class="sidebar"><h3>Related</h3><p>Ten beaches to visit this summer, sponsored.</p></aside>
<footer class="site-footer"><p>Copyright 2024 Coast Weekly. All rights reserved.</p></footer>
</body></html>
"""
KELP = ("Kelp forests grow fast, up to half a metre a day in summer, and shelter fish of every size between "
        "their fronds, which sway with the swell (kelp part {}).")
SECOND = """<!doctype html><html><head><meta charset="utf-8"><title>Kelp forests</title></head><body>
<article><h2>Kelp</h2>""" + "".join(f"<p>{KELP.format(i)}</p>" for i in range(12)) + "</article></body></html>"


def expected_blocks(origin: str) -> list[dict[str, str]]:
    """The reader view of ARTICLE, written out by hand. Readability drops the <h1> that repeats
    the title (the title travels on its own) and the nav, aside and footer."""
    p = [{"k": "p", "t": text} for text in PARAGRAPHS]
    return [
        {"k": "p", "t": "When the tide goes out, the rocks of the north coast open a small world: "
                        "anemones, urchins and crabs."},
        {"k": "img", "t": "A tide pool at dawn", "src": f"{origin}/pool.png"},
        {"k": "p", "t": "The pool at Cape Arago."},
        *p[:8],
        {"k": "h2", "t": "What lives there"},
        {"k": "li", "t": "Anemones"},
        {"k": "li", "t": "Giant green anemone"},
        {"k": "li", "t": "Aggregating anemone"},
        {"k": "li", "t": "Sea stars, ochre and purple"},
        {"k": "quote", "t": "Look, but do not touch."},
        {"k": "quote", "t": "Leave every rock as you found it."},
        {"k": "pre", "t": "low tide 06:42 high tide 12:58"},
        {"k": "img", "t": "A crab", "src": f"{origin}/crab.png"},  # data-src: the real picture
        *p[8:],
    ]


def make_site(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text(ARTICLE, encoding="utf-8")
    (root / "second.html").write_text(SECOND, encoding="utf-8")
    Image.new("RGB", (640, 400), (20, 120, 160)).save(root / "pool.png")
    Image.new("RGB", (600, 400), (200, 90, 40)).save(root / "crab.png")
    Image.new("RGB", (1, 1), (255, 255, 255)).save(root / "pixel.png")


@asynccontextmanager
async def serve(root: Path) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_static("/", root)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def browser() -> AsyncIterator[Any]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def load_content(page: Page, readability: bool = True) -> None:
    """What the worker injects, in the main world (the logic needs no chrome.*)."""
    if readability:
        await page.add_script_tag(path=str(EXTENSION / "vendor" / "readability.js"))
    await page.add_script_tag(path=str(EXTENSION / "sync_content.js"))


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[str]:
    make_site(tmp_path / "site")
    async with serve(tmp_path / "site") as origin:
        yield origin


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    async with browser() as b:
        yield b


async def open_article(chromium: Any, origin: str, width: int = 1280, height: int = 800,
                       readability: bool = True) -> Page:
    page = await chromium.new_page(viewport={"width": width, "height": height})
    await page.goto(f"{origin}/index.html", wait_until="load")
    await load_content(page, readability)
    return page


# ---- 1. the content script ----------------------------------------------------------------------

async def test_reader_view_keeps_the_article_in_order_with_normalized_text_and_images(chromium, site):
    page = await open_article(chromium, site)
    reader = await page.evaluate("peerbeamSync.extract()")
    assert reader["url"] == f"{site}/index.html" and reader["title"] == TITLE
    assert reader["truncated"] is False
    assert reader["blocks"] == expected_blocks(site)
    # Every block maps back to a live element whose text is the block's, the anchors of scroll,
    # find and highlights.
    assert await page.evaluate("peerbeamSync.blocks.every((b, i) => b.el.isConnected && "
                               "(b.k === 'img' ? b.el.tagName === 'IMG' : peerbeamSync.textOf(i) === b.t))")
    assert await page.evaluate("document.documentElement.dataset.peerbeamBlocks") == str(len(reader["blocks"]))
    # The agent's own check of the report keeps every block as it is: indices cannot drift.
    from peer_agent.reader import reader_from_report

    checked = reader_from_report(reader, reader["url"])
    assert [{"k": b.k, "t": b.t, **({"src": b.src} if b.src else {})} for b in checked.blocks] == reader["blocks"]
    # Injecting again (the worker does after a restart) keeps the instance and its blocks.
    await load_content(page)
    assert await page.evaluate("peerbeamSync.blocks.length") == len(reader["blocks"])


async def test_without_readability_the_fallback_leaves_out_nav_header_footer_and_aside(chromium, site):
    page = await open_article(chromium, site, readability=False)
    reader = await page.evaluate("peerbeamSync.extract()")
    texts = [b["t"] for b in reader["blocks"]]
    assert reader["blocks"][0] == {"k": "h1", "t": TITLE}  # nothing removes the title here
    assert reader["blocks"][1:] == expected_blocks(site)
    assert not any(t in ("Home", "Shop", "About us", "Related") or "Copyright" in t or "sponsored" in t for t in texts)


async def test_caps_cut_blocks_and_say_so(chromium, site):
    page = await chromium.new_page()
    long = " ".join(f"word{i}" for i in range(2000))  # > 8000 chars
    many = "".join(f"<p>Paragraph number {i}, short but real.</p>" for i in range(2100))
    await page.goto(f"{site}/second.html")
    await page.evaluate("([long, many]) => { document.body.innerHTML = `<article><p>${long}</p>${many}</article>`; }",
                        [long, many])
    await load_content(page, readability=False)
    reader = await page.evaluate("peerbeamSync.extract()")
    assert reader["truncated"] is True
    assert len(reader["blocks"]) == 2000
    assert len(reader["blocks"][0]["t"]) <= 8000 and reader["blocks"][0]["t"] == long[:8000].rstrip()


TOP_BLOCK = """() => {
  // The block really at the top edge: the innermost block element under a point just below it
  // (or, when the edge falls in the margin between two, the first one below it).
  const blocks = peerbeamSync.blocks.map((b) => b.el);
  const x = document.querySelector('article').getBoundingClientRect().left + 120;
  for (let y = 1; y < innerHeight; y += 2) {
    for (let el = document.elementFromPoint(x, y); el; el = el.parentElement) {
      const i = blocks.indexOf(el);
      if (i >= 0) return i;
    }
  }
  return null;
}"""


async def scroll_block_to_top(page: Page, block: int, offset: float) -> None:
    await page.evaluate("""([i, offset]) => {
      const rect = peerbeamSync.blocks[i].el.getBoundingClientRect();
      window.scrollTo({top: window.scrollY + rect.top + offset * rect.height, behavior: 'instant'});
    }""", [block, offset])


async def block_height(page: Page, block: int) -> float:
    height: float = await page.evaluate("(i) => peerbeamSync.blocks[i].el.getBoundingClientRect().height", block)
    return height


async def test_scroll_position_names_the_block_really_at_the_top(chromium, site):
    page = await open_article(chromium, site)
    await page.evaluate("peerbeamSync.extract()")
    for block, offset in [(5, 0.5), (14, 0.2), (16, 0.0), (24, 0.75)]:
        await scroll_block_to_top(page, block, offset)
        position = await page.evaluate("peerbeamSync.position()")
        assert position["block"] == block == await page.evaluate(TOP_BLOCK), position
        # scrollY is whole pixels: the offset is exact to a pixel of the block's height.
        assert abs(position["offset"] - offset) * await block_height(page, block) <= 1.01
        scroll = await page.evaluate("[window.scrollY, document.documentElement.scrollHeight - innerHeight]")
        assert position["fraction"] == pytest.approx(scroll[0] / scroll[1], abs=1e-3)
        assert await page.evaluate("document.documentElement.dataset.peerbeamBlock") == str(block)


async def test_scrolling_is_reported_at_most_ten_times_a_second_and_where_it_stopped(chromium, site):
    page = await open_article(chromium, site)
    await page.evaluate("peerbeamSync.extract()")
    # One second of scrolling, one step per frame (~60 scroll events), then it stops.
    started = await page.evaluate("""() => new Promise((done) => {
      const start = performance.now();
      const step = () => {
        window.scrollBy(0, 25);
        if (performance.now() - start < 1000) requestAnimationFrame(step); else done(start);
      };
      requestAnimationFrame(step);
    })""")
    await page.wait_for_function(
        "() => { const last = peerbeamSync.outbox.at(-1); const p = peerbeamSync.position();"
        " return last && last.block === p.block && last.offset === p.offset; }", timeout=5000)
    reports = await page.evaluate("peerbeamSync.outbox.filter((m) => m.type === 'scroll')")
    assert 3 <= len(reports) <= 12, reports  # ≤ 10 per second over ~1.1 s, plus the final one
    assert [r["fraction"] for r in reports] == sorted(r["fraction"] for r in reports)
    assert reports[-1]["block"] == await page.evaluate(TOP_BLOCK)
    assert started > 0


async def test_a_remote_scroll_lands_on_the_same_block_at_another_viewport_and_is_not_echoed(chromium, site):
    pc = await open_article(chromium, site, 1280, 800)
    phone = await open_article(chromium, site, 390, 700)
    await pc.evaluate("peerbeamSync.extract()")
    await phone.evaluate("peerbeamSync.extract()")
    for block, offset in [(9, 0.4), (20, 0.0), (3, 0.9)]:
        await scroll_block_to_top(pc, block, offset)
        position = await pc.evaluate("peerbeamSync.position()")
        before = await phone.evaluate("peerbeamSync.outbox.length")
        applied = await phone.evaluate("(p) => peerbeamSync.applyScroll(p)", position)
        assert applied["block"] == block == await phone.evaluate(TOP_BLOCK)
        assert abs(applied["offset"] - position["offset"]) * await block_height(phone, block) <= 1.01
        # The quiet window (300 ms) passes with the scroll events the apply caused: no report.
        await phone.evaluate("new Promise((done) => setTimeout(done, 450))")
        assert await phone.evaluate("peerbeamSync.outbox.length") == before
    # A block index the page does not have: the fraction is used instead.
    await phone.evaluate("peerbeamSync.applyScroll({fraction: 1, block: 99999, offset: 0})")
    assert await phone.evaluate("Math.abs(window.scrollY - (document.documentElement.scrollHeight - innerHeight)) < 2")


async def test_find_highlights_every_match_and_scrolls_the_current_one_into_view(chromium, site):
    page = await open_article(chromium, site, 1280, 600)
    reader = await page.evaluate("peerbeamSync.extract()")
    query = "URCHIN"
    expected = sum(len(re.findall(query.lower(), b["t"].lower())) for b in reader["blocks"])
    assert expected >= 20
    current = expected - 3
    result = await page.evaluate("([q, m]) => peerbeamSync.find(q, m)", [query, current])
    assert result == {"query": query, "count": expected, "match": current}
    state = await page.evaluate("""() => {
      const all = CSS.highlights.get('peerbeam-find');
      const now = CSS.highlights.get('peerbeam-find-current');
      const [range] = [...now];
      const rect = range.getBoundingClientRect();
      return {others: all.size, current: now.size, texts: [...all, range].map((r) => r.toString()),
              top: rect.top, bottom: rect.bottom, height: innerHeight,
              styled: [...document.styleSheets].some((s) => [...s.cssRules].some(
                (r) => r.cssText.includes('::highlight(peerbeam-find-current)')))};
    }""")
    assert state["others"] == expected - 1 and state["current"] == 1
    assert {t.lower() for t in state["texts"]} == {"urchin"}
    assert 0 <= state["top"] and state["bottom"] <= state["height"], state  # scrolled into view
    assert state["styled"]
    assert await page.evaluate("document.documentElement.dataset.peerbeamFind") == str(expected)
    # The next match, and then no query: highlights are cleared.
    assert (await page.evaluate("peerbeamSync.find('urchin', 0)"))["count"] == expected
    assert await page.evaluate("peerbeamSync.find('', -1)") == {"query": "", "count": 0, "match": -1}
    assert await page.evaluate("['peerbeam-find', 'peerbeam-find-current'].some((n) => CSS.highlights.has(n))") is False
    assert (await page.evaluate("peerbeamSync.find('a crab', 0)"))["count"] == 1  # an img block's alt counts too


ROUND_TRIP = """() => {
  // Seeded pairs of offsets in every text block: rangeFor -> the text the user sees (what a
  // selection of the range copies) and back with offsetsFor.
  let seed = 7;
  const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  const norm = (s) => s.replace(/[\\s\\x1c-\\x1f\\x85]+/g, ' ').trim();  // as sync_content.js
  const failures = [];
  let checked = 0;
  peerbeamSync.blocks.forEach((b, i) => {
    if (b.k === 'img') return;
    const pairs = [[0, b.t.length]];
    for (let n = 0; n < 12; n++) { const a = rand(b.t.length); pairs.push([a, a + 1 + rand(b.t.length - a)]); }
    for (const [start, end] of pairs) {
      const range = peerbeamSync.rangeFor(i, start, end);
      const selection = getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      const seen = norm(selection.toString());
      const wanted = b.t.slice(start, end).trim();
      let s = start, e = end;
      while (b.t[s] === ' ') s++;
      while (e > s && b.t[e - 1] === ' ') e--;
      const back = peerbeamSync.offsetsFor(range);
      checked++;
      const ok = wanted === '' ? seen === '' && back.length === 0  // only a collapsed space: nothing to keep
        : seen === wanted && back.length === 1 && back[0].block === i && back[0].start === s && back[0].end === e
          && back[0].quote === wanted;
      if (!ok) failures.push({i, start, end, seen, wanted, back});
    }
  });
  getSelection().removeAllRanges();
  return {checked, failures: failures.slice(0, 5)};
}"""


async def test_offsets_and_dom_ranges_round_trip_on_whitespace_heavy_markup(chromium, site):
    page = await open_article(chromium, site)
    await page.evaluate("peerbeamSync.extract()")
    result = await page.evaluate(ROUND_TRIP)
    assert result["failures"] == [] and result["checked"] > 300
    # The lede: its <br>, &nbsp;, comment, hidden span and the word split by <b>.
    lede = await page.evaluate("""() => {
      const t = peerbeamSync.blocks[0].t;
      const at = t.indexOf('world: anemones, urchins and crabs');
      const range = peerbeamSync.rangeFor(0, at, t.length);
      return {text: range.toString(), start: [range.startContainer.data, range.startOffset],
              end: [range.endContainer.data, range.endOffset]};
    }""")
    # The DOM text under the range: the <br> has none, the comment and hidden span are outside.
    assert lede["text"] == "world:anemones,\xa0urchins and crabs."
    assert lede["end"] == ["abs.", 4]


async def test_highlights_cover_exactly_the_quoted_text_and_the_selection_becomes_highlights(chromium, site):
    page = await open_article(chromium, site)
    reader = await page.evaluate("peerbeamSync.extract()")
    lede = reader["blocks"][0]["t"]
    start = lede.index("rocks of the north")
    quote = "rocks of the north coast open a small world: anemones"
    para = reader["blocks"][4]["t"]
    shown = await page.evaluate("(list) => peerbeamSync.renderHighlights(list)", [
        {"id": "a" * 16, "block": 0, "start": start, "end": start + len(quote), "quote": quote, "color": "green"},
        # Offsets that no longer hold the quote (the page changed): found by its quote.
        {"id": "b" * 16, "block": 4, "start": 0, "end": 6, "quote": para[10:30], "color": "pink"},
        {"id": "c" * 16, "block": 4, "start": 0, "end": 6, "quote": "not on this page", "color": "blue"},
    ])
    assert shown == 2
    texts = await page.evaluate("""() => Object.fromEntries(['green', 'pink', 'blue', 'yellow'].map((c) => {
      const h = CSS.highlights.get('peerbeam-highlight-' + c);
      return [c, h ? [...h].map((r) => { const s = getSelection(); s.removeAllRanges(); s.addRange(r);
                                         return s.toString().replace(/[\\s\\x1c-\\x1f\\x85]+/g, ' '); }) : []];
    }))""")
    assert texts == {"green": [quote], "pink": [para[10:30]], "blue": [], "yellow": []}
    assert await page.evaluate("document.documentElement.dataset.peerbeamHighlights") == "2"

    # The user selects from inside one paragraph into the next: one highlight per block.
    await page.evaluate("""() => {
      const [a, b] = [peerbeamSync.blocks[4].el, peerbeamSync.blocks[5].el];
      getSelection().setBaseAndExtent(a.firstChild, a.firstChild.data.length - 12, b.firstChild, 9);
    }""")
    parts = await page.evaluate("peerbeamSync.highlightSelection('blue', 'two paragraphs')")
    p4, p5 = reader["blocks"][4]["t"], reader["blocks"][5]["t"]
    assert parts == [
        {"block": 4, "start": len(p4) - 12, "end": len(p4), "quote": p4[-12:], "note": "two paragraphs", "color": "blue"},
        {"block": 5, "start": 0, "end": 8, "quote": p5[:8], "note": "two paragraphs", "color": "blue"},
    ]
    outbox = await page.evaluate("peerbeamSync.outbox.filter((m) => m.type === 'highlight')")
    assert outbox == [{"type": "highlight", **part} for part in parts]


# ---- 2. the extension, its native host, and this test as the agent ------------------------------

EXTENSION_ID = "iclcciocnhkjfigkjgokpjcindniackh"  # fixed by the manifest's key
HEX16 = re.compile(r"[0-9a-f]{16}")
DOC = "d0c0ffee12345678"
PHONE_TAB = "a1b2c3d4e5f60718"


class Agent:
    """The agent's end of the control socket, played by the test: it answers the native host's
    hello, answers pings, and hands every other line the extension sends to `expect`."""

    def __init__(self, home: Path) -> None:
        self.server = ControlServer(home / "control.sock", self._handle)
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.seen: list[dict[str, Any]] = []  # every message taken from the inbox
        self.conn: Conn | None = None
        self.connected = asyncio.Event()
        self._ids = iter(range(1, 1 << 30))

    async def _handle(self, request: dict[str, Any], conn: Conn) -> dict[str, Any]:
        conn.send({"ok": True, "name": "Desk PC", "active": True, "devices": [{"name": "Test Phone", "path": {}}]})
        self.conn = conn
        self.connected.set()
        while (message := await conn.recv()) is not None:
            if message.get("type") == "ping":
                conn.send({"type": "pong", "active": True, "devices": [{"name": "Test Phone", "path": {}}]})
            else:
                await self.inbox.put(message)
        return {"ok": True}

    def send(self, message: dict[str, Any]) -> None:
        assert self.conn is not None
        self.conn.send(message)

    def request(self, message: dict[str, Any]) -> int:
        request_id = next(self._ids)
        self.send({**message, "request_id": request_id})
        return request_id

    async def expect(self, wanted: Callable[[dict[str, Any]], bool], timeout: float = WAIT
                     ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The next message `wanted` accepts, and the ones that came before it."""
        skipped: list[dict[str, Any]] = []
        while True:
            message = await asyncio.wait_for(self.inbox.get(), timeout)
            self.seen.append(message)
            if wanted(message):
                return message, skipped
            skipped.append(message)

    async def op(self, name: str, timeout: float = WAIT) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        message, skipped = await self.expect(lambda m: m.get("type") == "sync.op" and m.get("op") == name, timeout)
        assert message["doc"] == DOC
        return message["args"], skipped

    def state(self, state: dict[str, Any] | None) -> None:
        self.send({"type": "sync.state", "doc": DOC if state is not None else None,
                   "state": json.loads(json.dumps(state)) if state is not None else None})


def ops(messages: list[dict[str, Any]]) -> list[str]:
    return [m["op"] for m in messages if m.get("type") == "sync.op"]


def empty_state() -> dict[str, Any]:
    return {"tabs": {}, "active": None, "scroll": {}, "find": {}, "highlights": {}, "bookmarks": {},
            "follow": {"phone_follows_pc": True, "pc_follows_phone": True}, "reader": {}}


class Browser:
    """Chromium (Playwright persistent context) with the unpacked extension, whose native host
    (`peerbeam extension-host`, installed into the fresh profile) reaches the test's Agent."""

    def __init__(self, context: Any, worker: Any) -> None:
        self.context = context
        self.worker = worker
        self.page: Page = context.pages[0]

    async def eval(self, expression: str, arg: Any = None) -> Any:
        return await self.worker.evaluate(expression, arg)

    async def tab_id(self, page: Page | None = None) -> int:
        url = (page or self.page).url
        found: int = await self.eval("(url) => chrome.tabs.query({}).then((t) => t.find((x) => x.url === url).id)", url)
        return found

    async def click_action(self) -> None:
        """The toolbar button, as a click: CDP Extensions.triggerAction on the tab (extension_driver.py)."""
        browser = self.context.browser
        cdp = await browser.new_browser_cdp_session()
        tabs = (await cdp.send("Target.getTargets", {"filter": [{"type": "tab"}]}))["targetInfos"]
        (target,) = [t["targetId"] for t in tabs if t["url"] == self.page.url]
        await cdp.send("Extensions.triggerAction", {"id": EXTENSION_ID, "targetId": target})

    async def until(self, expression: str, arg: Any = None) -> Any:
        """Poll the worker until `expression` is truthy (chrome.* state has no page event)."""
        for _ in range(int(WAIT / 0.05)):
            value = await self.eval(expression, arg)
            if value:
                return value
            await asyncio.sleep(0.05)
        raise AssertionError(f"never true in the worker: {expression}")


@asynccontextmanager
async def extension(tmp: Path, source: Path = EXTENSION) -> AsyncIterator[tuple[Browser, Agent]]:
    from peer_agent.native_install import install_host, peerbeam_command

    home = tmp / "home"
    profile = tmp / "profile"
    install_host([profile], [EXTENSION_ID], home, peerbeam_command())
    agent = Agent(home)
    await agent.server.start()
    (tmp / "chromium-home").mkdir(exist_ok=True)
    try:
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                str(profile), executable_path=CHROMIUM, headless=True,
                ignore_default_args=["--disable-extensions"],  # Playwright's default; the extension is the point
                args=[*FLAGS, "--enable-unsafe-extension-debugging", f"--disable-extensions-except={source}",
                      f"--load-extension={source}"],
                env={"HOME": str(tmp / "chromium-home"), "PATH": "/usr/bin:/bin"})
            try:
                worker = next((w for w in context.service_workers if EXTENSION_ID in w.url), None) \
                    or await context.wait_for_event("serviceworker", predicate=lambda w: EXTENSION_ID in w.url)
                await worker.evaluate(
                    "new Promise((done) => { const check = () => globalThis.peerbeam ? done() : setTimeout(check, 20); check(); })")
                if not context.pages:
                    await context.new_page()
                await asyncio.wait_for(agent.connected.wait(), WAIT)
                yield Browser(context, worker), agent
            finally:
                await context.close()
    finally:
        await agent.server.close()


def host_access_copy(tmp: Path) -> Path:
    """The extension as it is after the user allowed access to sites ("Mirror" asks for it):
    the same files and key, with the loopback origin granted at install."""
    copy = tmp / "extension-granted"
    shutil.copytree(EXTENSION, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["host_permissions"] = ["http://127.0.0.1/*"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


MAIN_TOP_TEXT = """() => {
  // In the page's main world (the content script lives in another): the text of the block
  // element under a point just below the top edge.
  const x = document.querySelector('article').getBoundingClientRect().left + 120;
  let el = document.elementFromPoint(x, 1);
  while (el && !/^(P|LI|H[1-6]|PRE|FIGCAPTION|IMG)$/.test(el.tagName)) el = el.parentElement;
  return el ? (el.tagName === 'IMG' ? el.alt : el.textContent).replace(/\\s+/g, ' ').trim() : null;
}"""
SCROLL_TO_TEXT = """(text) => {
  const el = [...document.querySelectorAll('p, li, h2')].find((e) => e.textContent.replace(/\\s+/g, ' ').trim() === text);
  window.scrollTo({top: window.scrollY + el.getBoundingClientRect().top, behavior: 'instant'});
}"""
SELECT_IN = """([text, length]) => {
  const el = [...document.querySelectorAll('p')].find((e) => e.textContent.replace(/\\s+/g, ' ').trim() === text);
  getSelection().setBaseAndExtent(el.firstChild, 0, el.firstChild, length);
}"""


def dataset(name: str) -> str:
    return f"document.documentElement.dataset.{name}"


async def test_extension_loads_with_its_sync_permissions_and_menu_items(tmp_path):
    async with extension(tmp_path) as (chrome, _agent):
        manifest = await chrome.eval("chrome.runtime.getManifest()")
        assert {"contextMenus", "bookmarks", "storage", "activeTab", "scripting", "nativeMessaging", "tabs"} \
            == set(manifest["permissions"])
        assert manifest["optional_host_permissions"] == ["http://*/*", "https://*/*"]
        assert "host_permissions" not in manifest  # nothing is readable without the user's say
        assert await chrome.eval("chrome.permissions.contains({origins: ['http://*/*']})") is False
        assert sorted(await chrome.until("peerbeam.sync.menus().then((m) => m.length === 4 && m)")) == [
            "peerbeam-follow", "peerbeam-highlight", "peerbeam-mirror", "peerbeam-stop"]
        assert await chrome.eval("peerbeam.sync.session.doc") is None


async def test_mirror_capture_and_remote_state_drive_the_real_tab(tmp_path, site):
    async with extension(tmp_path) as (chrome, agent):
        page = chrome.page
        await page.set_viewport_size({"width": 1280, "height": 800})
        await page.goto(f"{site}/index.html", wait_until="load")
        tab = await chrome.tab_id()
        key = f"t{tab}"

        # "Mirror" before any click or grant: the agent's capture is refused with a sentence.
        mirroring = asyncio.ensure_future(chrome.eval("(id) => peerbeam.mirror(id)", tab))
        begin, _ = await agent.expect(lambda m: m.get("type") == "sync.begin")
        request = agent.request({"type": "sync.capture", "tab": None})
        refused, _ = await agent.expect(lambda m: m.get("type") == "sync.capture.result")
        assert refused["request_id"] == request and refused["ok"] is False and refused["code"] == "no_access"
        assert "Click the peerbeam button" in refused["message"] and refused["tab_key"] == key
        agent.send({"type": "sync.begin.result", "request_id": begin["request_id"], "ok": False,
                    "code": "no_access", "message": refused["message"]})
        assert (await mirroring)["ok"] is False

        # A click grants activeTab (and beams; this agent declines the beam).
        await chrome.click_action()
        beam, _ = await agent.expect(lambda m: m.get("type") == "beam")
        agent.send({"type": "beam.result", "request_id": beam["request_id"], "ok": False, "code": "no_page",
                    "message": "not in this test"})
        mirroring = asyncio.ensure_future(chrome.eval("(id) => peerbeam.mirror(id)", tab))
        begin, _ = await agent.expect(lambda m: m.get("type") == "sync.begin")
        request = agent.request({"type": "sync.capture", "tab": None})
        captured, _ = await agent.expect(lambda m: m.get("type") == "sync.capture.result")
        assert captured["ok"] is True, captured
        assert captured["tab_key"] == key and captured["active"] == key
        assert captured["tabs"] == [{"key": key, "url": f"{site}/index.html", "title": TITLE, "order": 0}]
        report = captured["page"]
        assert report["url"] == f"{site}/index.html" and report["title"] == TITLE and report["screenshot"] is None
        assert {i["src"] for i in report["images"]} >= {f"{site}/pool.png", f"{site}/crab.png"}
        blocks = expected_blocks(site)
        assert report["reader"] == {"url": f"{site}/index.html", "title": TITLE, "blocks": blocks, "truncated": False}
        agent.send({"type": "sync.begin.result", "request_id": begin["request_id"], "ok": True, "doc": DOC,
                    "name": "Test Phone"})
        assert (await mirroring)["ok"] is True

        doc = empty_state()
        doc["tabs"][key] = {"url": f"{site}/index.html", "title": TITLE, "order": 0, "by": "pc"}
        doc["active"] = key
        doc["reader"][key] = {"card": "00112233aabbccdd", "url": f"{site}/index.html"}
        agent.state(doc)
        await chrome.until("peerbeam.sync.session.doc === 'd0c0ffee12345678'")

        # The phone scrolled: block 24 half-way at the top of the PC tab.
        doc["scroll"][key] = {"fraction": 0.6, "block": 24, "offset": 0.5, "by": "phone", "n": 1}
        agent.state(doc)
        await page.wait_for_function(f"{dataset('peerbeamScrollApplied')} === '1'")
        assert await page.evaluate(dataset("peerbeamBlock")) == "24"
        assert await page.evaluate(MAIN_TOP_TEXT) == blocks[24]["t"]

        # The user scrolls: the op names the block now at the top; the remote scroll was not echoed.
        await page.evaluate(SCROLL_TO_TEXT, blocks[8]["t"])
        scroll, before = await agent.op("scroll")
        assert scroll["tab"] == key and scroll["block"] == 8 and scroll["offset"] < 0.01 and scroll["by"] == "pc"
        assert 0 < scroll["fraction"] < 1 and ops(before) == []

        # The phone finds "urchin", third match current: highlighted and scrolled to here.
        count = sum(b["t"].lower().count("urchin") for b in blocks)
        doc["find"][key] = {"query": "urchin", "match": 2, "count": count, "by": "phone"}
        agent.state(doc)
        await page.wait_for_function(f"{dataset('peerbeamFind')} === '{count}' && {dataset('peerbeamFindCurrent')} === '2'")
        # The registry is the document's: the page's own world sees the content script's highlights.
        sizes = "['peerbeam-find', 'peerbeam-find-current'].map((n) => CSS.highlights.get(n)?.size)"
        assert await page.evaluate(sizes) == [count - 1, 1]

        # The user highlights a selection (the selection menu item's path).
        await page.evaluate(SELECT_IN, [blocks[4]["t"], 28])
        await chrome.eval("(id) => peerbeam.sync.highlightSelection(id)", tab)
        highlight, _ = await agent.op("add_highlight")
        assert HEX16.fullmatch(highlight.pop("id"))
        assert highlight == {"url": f"{site}/index.html", "block": 4, "start": 0, "end": 28,
                             "quote": blocks[4]["t"][:28], "note": "", "color": "yellow", "by": "pc"}
        await page.wait_for_function(f"{dataset('peerbeamHighlights')} === '1'")  # shown before any state has it

        # The phone opens a tab: it opens here, and is not reported back as a PC tab.
        doc["tabs"][PHONE_TAB] = {"url": f"{site}/second.html", "title": "Kelp forests", "order": 1, "by": "phone"}
        async with chrome.context.expect_page() as opened:
            agent.state(doc)
        phone_page = await opened.value
        await phone_page.wait_for_load_state("load")
        # A tab the user opens on the PC is reported (by then the phone's tab has finished loading).
        await chrome.eval("(url) => chrome.tabs.create({url, active: false})", f"{site}/second.html?pc=1")
        opened_here, before = await agent.op("open_tab")
        local_key = opened_here["key"]
        assert re.fullmatch(r"t\d+", local_key) and opened_here["url"] == f"{site}/second.html?pc=1"
        assert opened_here["by"] == "pc" and ops(before) == []  # nothing about the phone's tab
        if opened_here["title"] != "Kelp forests":  # reported while loading: its title follows
            titled, before = await agent.op("navigate")
            assert titled == {"key": local_key, "url": f"{site}/second.html?pc=1", "title": "Kelp forests", "by": "pc"}
            assert ops(before) == []
        doc["tabs"][local_key] = {"url": f"{site}/second.html?pc=1", "title": "Kelp forests", "order": 2, "by": "pc"}
        doc["highlights"]["feedc0de00000001"] = {
            "url": f"{site}/index.html", "block": 0, "start": 0, "end": 8, "quote": "When the", "note": "",
            "color": "pink", "by": "phone"}
        agent.state(doc)
        await page.wait_for_function(f"{dataset('peerbeamHighlights')} === '2'")

        # The phone closes the PC's new tab and makes its own tab the active one.
        del doc["tabs"][local_key]
        doc["active"] = PHONE_TAB
        agent.state(doc)
        await chrome.until(f"chrome.tabs.get({local_key[1:]}).then(() => false, () => true)")
        await chrome.until("(url) => chrome.tabs.query({active: true}).then((t) => t[0].url === url)", f"{site}/second.html")
        # And back to the first tab; then the user navigates it (no host access: no reader view).
        doc["active"] = key
        agent.state(doc)
        await chrome.until("(id) => chrome.tabs.get(id).then((t) => t.active)", tab)
        # Another origin (localhost, still loopback): Chromium ends activeTab when the tab
        # leaves the site it was granted on.
        elsewhere = site.replace("127.0.0.1", "localhost") + "/second.html?next=1"
        await page.goto(elsewhere, wait_until="load")
        navigate, before = await agent.op("navigate")
        assert navigate == {"key": key, "url": elsewhere, "title": "Kelp forests", "by": "pc"}
        # No echo of what the phone did: no close_tab, set_active or open_tab went back.
        assert ops(before) == [], before
        moved, _ = await agent.expect(lambda m: m.get("type") == "sync.page" and m["tab_key"] == key)
        assert moved["doc"] == DOC and moved["page"]["url"] == elsewhere and moved["page"]["title"] == "Kelp forests"
        assert moved["page"]["reader"] is None and moved["page"]["images"] == []  # the agent fetches it
        assert "may not read this page" in await chrome.eval("(tabId) => chrome.action.getTitle({tabId})", tab)

        # The session ends.
        agent.state(None)
        await chrome.until("peerbeam.sync.session.doc === null")


async def test_with_host_access_mirroring_follows_navigations_both_ways(tmp_path, site):
    async with extension(tmp_path, host_access_copy(tmp_path)) as (chrome, agent):
        page = chrome.page
        await page.goto(f"{site}/index.html", wait_until="load")
        tab = await chrome.tab_id()
        key = f"t{tab}"
        # No click: host access is enough to capture (the phone's "Follow my PC").
        request = agent.request({"type": "sync.capture", "tab": None})
        captured, _ = await agent.expect(lambda m: m.get("type") == "sync.capture.result")
        assert captured["request_id"] == request and captured["ok"] is True
        assert captured["page"]["reader"]["blocks"] == expected_blocks(site)
        doc = empty_state()
        doc["tabs"][key] = {"url": f"{site}/index.html", "title": TITLE, "order": 0, "by": "pc"}
        doc["active"] = key
        doc["reader"][key] = {"card": "00112233aabbccdd", "url": f"{site}/index.html"}
        agent.state(doc)
        await chrome.until("peerbeam.sync.session.doc === 'd0c0ffee12345678'")

        # The phone navigates the tab: it goes there, and its new reader view is sent.
        doc["tabs"][key] = {"url": f"{site}/second.html", "title": "Kelp forests", "order": 0, "by": "phone"}
        agent.state(doc)
        moved, before = await agent.expect(lambda m: m.get("type") == "sync.page")
        assert moved["tab_key"] == key and moved["page"]["url"] == f"{site}/second.html"
        kelp = moved["page"]["reader"]["blocks"]
        # (Readability drops the <h2> "Kelp": it repeats the title "Kelp forests".)
        assert [b["t"] for b in kelp] == [KELP.format(i) for i in range(12)]
        assert ops(before) == []  # the phone's navigation is not reported back

        # The user navigates back: reported, with the reader view of the page it lands on.
        await page.goto(f"{site}/index.html", wait_until="load")
        navigate, _ = await agent.op("navigate")
        assert navigate["url"] == f"{site}/index.html" and navigate["title"] == TITLE
        back, _ = await agent.expect(lambda m: m.get("type") == "sync.page")
        assert back["page"]["reader"]["blocks"] == expected_blocks(site)
        doc["tabs"][key] = {"url": f"{site}/index.html", "title": TITLE, "order": 0, "by": "pc"}
        doc["reader"][key] = {"card": "00112233aabbccee", "url": f"{site}/index.html"}

        # "PC follows phone" off: the phone's scroll is not applied; back on: the next one is.
        await page.wait_for_function(f"{dataset('peerbeamBlocks')} === '{len(expected_blocks(site))}'")
        doc["follow"]["pc_follows_phone"] = False
        doc["scroll"][key] = {"fraction": 0.3, "block": 10, "offset": 0.0, "by": "phone", "n": 1}
        agent.state(doc)
        await chrome.until("peerbeam.sync.session.state.follow.pc_follows_phone === false")
        doc["follow"]["pc_follows_phone"] = True
        doc["scroll"][key] = {"fraction": 0.5, "block": 20, "offset": 0.0, "by": "phone", "n": 2}
        agent.state(doc)
        await page.wait_for_function(f"{dataset('peerbeamScrollApplied')} === '1'")
        assert await page.evaluate(dataset("peerbeamBlock")) == "20"
        await chrome.eval("peerbeam.sync.settled()")
        assert await page.evaluate(dataset("peerbeamScrollApplied")) == "1"


BOOKMARKS = """async () => {
  const [root] = await chrome.bookmarks.getTree();
  const other = root.children.find((c) => c.folderType === 'other') || root.children[1];
  const folder = (await chrome.bookmarks.getChildren(other.id)).find((c) => !c.url && c.title === 'peerbeam');
  if (!folder) return null;
  const items = await chrome.bookmarks.getChildren(folder.id);
  return {id: folder.id, items: items.map((b) => ({id: b.id, url: b.url, title: b.title}))};
}"""


async def test_the_peerbeam_bookmark_folder_mirrors_the_documents_bookmarks(tmp_path, site):
    async with extension(tmp_path) as (chrome, agent):
        # A bookmark put in the folder before any session is imported when one starts.
        await chrome.eval("""async (url) => {
          const [root] = await chrome.bookmarks.getTree();
          const other = root.children.find((c) => c.folderType === 'other') || root.children[1];
          const folder = await chrome.bookmarks.create({parentId: other.id, title: 'peerbeam'});
          await chrome.bookmarks.create({parentId: folder.id, title: 'Kept from before', url});
        }""", f"{site}/second.html")
        doc = empty_state()
        doc["bookmarks"]["b000000000000001"] = {"url": f"{site}/index.html", "title": "Tide pools", "created": 1.7e9,
                                                "by": "phone"}
        doc["bookmarks"]["b000000000000002"] = {"url": "javascript:alert(1)", "title": "Evil", "created": 1.7e9,
                                                "by": "phone"}
        agent.state(doc)
        imported, _ = await agent.op("add_bookmark")
        old_id = imported.pop("id")
        assert HEX16.fullmatch(old_id)
        assert imported["url"] == f"{site}/second.html" and imported["title"] == "Kept from before"
        assert imported["by"] == "pc" and isinstance(imported["created"], int) and imported["created"] > 1.6e9
        folder = await chrome.until(f"({BOOKMARKS})().then((f) => f && f.items.length === 2 && f)")
        assert sorted((b["url"], b["title"]) for b in folder["items"]) == [
            (f"{site}/index.html", "Tide pools"), (f"{site}/second.html", "Kept from before")]  # no javascript:
        doc["bookmarks"][old_id] = {**imported, "created": float(imported["created"])}

        # Renamed on the phone: renamed here, and not reported back.
        doc["bookmarks"]["b000000000000001"]["title"] = "Tide pools (north)"
        agent.state(doc)
        await chrome.until(f"({BOOKMARKS})().then((f) => f.items.some((b) => b.title === 'Tide pools (north)'))")
        # Added here: reported (the first op after the rename is this one: no rename echo).
        await chrome.eval("(args) => chrome.bookmarks.create(args)",
                          {"parentId": folder["id"], "title": "Crabs", "url": f"{site}/crab.png"})
        added, before = await agent.op("add_bookmark")
        assert ops(before) == [] and added["url"] == f"{site}/crab.png" and added["title"] == "Crabs"
        crab_id = added["id"]
        assert HEX16.fullmatch(crab_id) and crab_id != old_id
        # Renamed and removed here.
        chrome_crab = await chrome.eval(f"({BOOKMARKS})().then((f) => f.items.find((b) => b.title === 'Crabs').id)")
        await chrome.eval("(id) => chrome.bookmarks.update(id, {title: 'Crab photo'})", chrome_crab)
        assert await agent.op("rename_bookmark") == ({"id": crab_id, "title": "Crab photo"}, [])
        await chrome.eval("(id) => chrome.bookmarks.remove(id)", chrome_crab)
        assert await agent.op("delete_bookmark") == ({"id": crab_id}, [])

        # Deleted on the phone: removed here, not reported back.
        del doc["bookmarks"]["b000000000000001"]
        agent.state(doc)
        await chrome.until(f"({BOOKMARKS})().then((f) => f.items.length === 1)")
        await chrome.eval("(args) => chrome.bookmarks.create(args)",
                          {"parentId": folder["id"], "title": "Marker", "url": f"{site}/pool.png"})
        marker, before = await agent.op("add_bookmark")
        assert marker["title"] == "Marker" and ops(before) == []


PLAN_CASES = """async () => {
  const plan = await import('/sync_plan.js');
  const node = (id, title, url = 'https://a.example/' + id) => ({id, title, url, dateAdded: 1.7e12});
  const rec = (title, url) => ({url, title, created: 1.7e9, by: 'phone'});
  const run = (args) => plan.planBookmarks({prev: null, nodes: [], mapping: {}, stateAt: 10000, now: 10000,
                                            newId: () => 'ffffffffffffffff', ...args});
  const out = {};
  // Our add never reached the document (the link was down): sent again, same id.
  out.lost = run({next: {}, nodes: [node('5', 'A')],
                  mapping: {aaaaaaaaaaaaaaaa: {chromeId: '5', title: 'A', url: 'https://a.example/5', sentAt: 1000}}});
  // The same, but the state may have left before our add arrived: wait.
  out.pending = run({next: {}, stateAt: 1500, nodes: [node('5', 'A')],
                     mapping: {aaaaaaaaaaaaaaaa: {chromeId: '5', title: 'A', url: 'https://a.example/5', sentAt: 1000}}});
  // Seen in a state once, gone now: the other side deleted it.
  out.deleted = run({next: {}, nodes: [node('5', 'A')],
                     mapping: {aaaaaaaaaaaaaaaa: {chromeId: '5', title: 'A', url: 'https://a.example/5', seen: true}}});
  // While apart: renamed here / renamed there / removed here.
  const m = {aaaaaaaaaaaaaaaa: {chromeId: '5', title: 'Old', url: 'https://a.example/5', seen: true}};
  out.renamedHere = run({next: {aaaaaaaaaaaaaaaa: rec('Old', 'https://a.example/5')}, nodes: [node('5', 'New')], mapping: m});
  out.renamedThere = run({next: {aaaaaaaaaaaaaaaa: rec('New', 'https://a.example/5')}, nodes: [node('5', 'Old')], mapping: m});
  out.removedHere = run({next: {aaaaaaaaaaaaaaaa: rec('Old', 'https://a.example/5')}, nodes: [], mapping: m});
  // The phone's bookmark of a URL the folder has unmirrored: adopted, not doubled; javascript: never.
  out.twin = run({next: {bbbbbbbbbbbbbbbb: rec('Same', 'https://a.example/7'),
                         cccccccccccccccc: rec('Evil', 'javascript:alert(1)')}, nodes: [node('7', 'Mine')]});
  // Tabs: a state that crossed our own set_active does not switch back; following off: nothing.
  const tabs = [{id: 1, url: 'https://a.example/1', active: false}, {id: 2, url: 'https://a.example/2', active: true}];
  const state = (active, follow = true) => ({tabs: {t1: {url: 'https://a.example/1', title: '', order: 0, by: 'pc'},
    t2: {url: 'https://a.example/2', title: '', order: 1, by: 'pc'},
    [`${'e'.repeat(16)}`]: {url: 'https://b.example/', title: '', order: 2, by: 'phone'}},
    active, follow: {pc_follows_phone: follow, phone_follows_pc: true}});
  out.crossed = plan.planTabs({prev: state('t0'), next: state('t1'), tabs, map: {eeeeeeeeeeeeeeee: 9},
                               ownActive: [{key: 't1', at: 9000}], now: 10000});
  out.remote = plan.planTabs({prev: state('t2'), next: state('t1'), tabs, map: {}, ownActive: [], now: 10000});
  out.off = plan.planTabs({prev: state('t2'), next: state('t1', false), tabs, map: {}, ownActive: [], now: 10000});
  return out;
}"""


async def test_the_sync_plans_for_lost_writes_changes_made_apart_and_crossed_states(chromium):
    async with serve(EXTENSION) as origin:
        page = await chromium.new_page()
        await page.goto(f"{origin}/icons/icon-16.png")  # any page of that origin, for import()
        out = await page.evaluate(PLAN_CASES)
    a = "a" * 16
    add_again = {"op": "add_bookmark", "args": {"id": a, "url": "https://a.example/5", "title": "A",
                                                "created": 1700000000, "by": "pc"}}
    assert out["lost"]["ops"] == [add_again] and out["lost"]["mapping"][a]["sentAt"] == 10000
    assert out["pending"]["ops"] == [] and a in out["pending"]["mapping"]
    assert out["deleted"]["remove"] == ["5"] and out["deleted"]["mapping"] == {} and out["deleted"]["ops"] == []
    assert out["renamedHere"]["ops"] == [{"op": "rename_bookmark", "args": {"id": a, "title": "New"}}]
    assert out["renamedThere"]["retitle"] == [{"chromeId": "5", "title": "New"}] and out["renamedThere"]["ops"] == []
    assert out["removedHere"]["ops"] == [{"op": "delete_bookmark", "args": {"id": a}}]
    assert out["twin"]["create"] == [] and out["twin"]["ops"] == []
    assert out["twin"]["retitle"] == [{"chromeId": "7", "title": "Same"}]
    assert out["twin"]["mapping"] == {"b" * 16: {"chromeId": "7", "title": "Same", "url": "https://a.example/7",
                                                 "seen": True}}
    assert out["crossed"] == []
    # The phone made tab 1 active. Its own tab, closed here since (tab 9 is gone), is not reopened:
    # only a tab new in this state would be.
    assert out["remote"] == [{"do": "activate", "tabId": 1}]
    assert out["off"] == []
