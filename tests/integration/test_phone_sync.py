"""Page sync on the phone (docs/SYNC.md), in real Chromium as a phone against the real agent.

Same lab as test_phone_app.py: the signal server and `peerbeam agent` in "pc", Chromium at
phone size with touch in "phone". The article the PC shares is served inside "pc" by this
module itself (``python -m tests.integration.test_phone_sync serve HOST PORT``); the agent
fetches it and builds the reader view with readability-lxml (`peerbeam sync start URL`, or the
phone's "Follow my PC" answered through a stand-in of the browser extension: ``... standin
SOCKET URL``), the phone shows it. Operations on the PC side go through `peerbeam sync op`; what the agent holds is read from
its `sync_applied` events and `peerbeam sync show`, what the phone holds from the page and from
its IndexedDB. Screenshots of every sync screen go to tests/artifacts/phone/.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_pairing import run_cli
from tests.integration.test_phone_app import Phone, pair_phone
from tests.lab import REPO_ROOT, Host
from tests.peer_process import PeerProcess

pytestmark = pytest.mark.netns

SITE_PORT = 8080
PHONE = "Android phone"
WORDS = ("harbour lantern orchard meadow copper violet signal quiet river marble thunder saffron willow "
         "beacon granite ember lagoon cedar prism falcon tundra velvet cobalt ripple summit").split()


# ---- the article the PC shares --------------------------------------------------------------


def _sentence(i: int, j: int) -> str:
    return " ".join(WORDS[(i * 7 + j * 3 + k) % len(WORDS)] for k in range(9)).capitalize() + "."


def article_html() -> str:
    """A page readability-lxml reads as 46 blocks: headings, paragraphs, a list, a quote and two
    pictures (blocks 6 and 32); "zebra" occurs in blocks 7, 22 and 24."""
    parts = ["<!doctype html><html><head><meta charset=utf-8><title>The Lighthouse Keepers — Field Notes</title>",
             "</head><body><header><nav><a href=/>Home</a> <a href=/about>About</a></nav></header><main><article>",
             "<h1>The Lighthouse Keepers</h1>"]
    n = 0
    for section in range(4):
        parts.append(f"<h2>Section {section + 1}: the {WORDS[section]} watch</h2>")
        for p in range(9):
            n += 1
            text = " ".join(_sentence(n, j) for j in range(4))
            if n == 5:
                text += " The keeper wrote about the zebra crossing near the harbour."
            parts.append(f"<p>Paragraph {n}. {text}</p>")
            if (section, p) in ((0, 3), (2, 5)):
                k = 1 if section == 0 else 2
                parts.append(f'<p><img src="/img/photo{k}.jpg" alt="Photo {k} of the coast" width="800" height="500"></p>')
        if section == 1:
            parts.append("<ul><li>First zebra item of the list, long enough to be kept as text.</li>"
                         "<li>Second item of the list, about the copper lantern.</li></ul>")
            parts.append("<blockquote><p>A quote from the logbook: the zebra light never failed.</p></blockquote>")
    parts.append("</article></main><footer>Footer links</footer></body></html>")
    return "".join(parts)


def photo(k: int) -> bytes:
    """Two clearly different pictures (the agent drops near-duplicates from a card)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (800, 500), (20, 60, 120) if k == 1 else (180, 110, 30))
    draw = ImageDraw.Draw(image)
    for i in range(0, 800, 40 * k):
        draw.rectangle((i, 0, i + 12 * k, 500), fill=(240, 240, 200) if k == 1 else (30, 30, 30))
    draw.ellipse((300, 150, 500, 350), fill=(200, 30, 30) if k == 1 else (30, 160, 60))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def long_html() -> str:
    """More paragraphs than a reader view keeps (2000 blocks): the rest stays on the PC."""
    paragraphs = "".join(f"<p>Line {n} of the very long logbook, kept for the record.</p>" for n in range(2100))
    return f"<!doctype html><html><head><title>The long logbook</title></head><body><article>{paragraphs}</article></body></html>"


async def serve(host: str, port: int) -> None:
    from aiohttp import web

    pictures = {f"/img/photo{k}.jpg": photo(k) for k in (1, 2)}
    pages = {"/article.html": article_html(), "/long.html": long_html()}

    async def page(request: web.Request) -> web.Response:
        if request.path in pictures:
            return web.Response(body=pictures[request.path], content_type="image/jpeg")
        if request.path in pages:
            return web.Response(text=pages[request.path], content_type="text/html")
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(json.dumps({"event": "site", "url": f"http://{host}:{port}"}), flush=True)
    await asyncio.Event().wait()


async def start_site(pc: Host) -> str:
    site = await pc.spawn([sys.executable, "-m", "tests.integration.test_phone_sync", "serve", pc.address,
                           str(SITE_PORT)], cwd=REPO_ROOT)
    return str((await site.expect("site"))["url"])


async def extension_standin(socket_path: str, url: str) -> None:
    """The browser extension's side of "Follow my PC" on the agent's control socket: one tab
    ("t7", showing URL) answers every ``sync.capture`` without a reader view of its own (as for
    a tab the extension may not script), so the agent fetches URL and reads it itself. The
    real extension is tested with Chromium elsewhere; here the phone is what is tested."""
    reader, writer = await asyncio.open_unix_connection(socket_path, limit=16 * 1024 * 1024)
    writer.write(json.dumps({"cmd": "extension", "origin": "chrome-extension://standin", "version": 1}).encode() + b"\n")
    await writer.drain()
    hello = json.loads(await reader.readline())
    print(json.dumps({"event": "extension", **hello}), flush=True)
    while line := await reader.readline():
        message = json.loads(line)
        if message.get("type") == "sync.capture":
            tab = {"key": "t7", "url": url, "title": "The Lighthouse Keepers (tab)", "order": 0}
            writer.write(json.dumps({"type": "sync.capture.result", "request_id": message["request_id"], "ok": True,
                                     "tab_key": "t7", "page": {"url": url, "title": tab["title"], "images": []},
                                     "tabs": [tab], "active": "t7"}).encode() + b"\n")
            await writer.drain()
            print(json.dumps({"event": "captured", "url": url}), flush=True)


def expected_blocks(url: str) -> list[list[str]]:
    from peer_agent.reader import reader_from_html

    return [[b.k, b.t] for b in reader_from_html(article_html(), url).blocks]


# ---- both sides' view of the document ------------------------------------------------------


async def sync_cli(pc: Host, home: Path, *args: str) -> dict[str, Any]:
    code, events = await run_cli(pc, home, "sync", *args)
    assert code == 0, events
    return events[-1]


async def sync_op(pc: Host, home: Path, op: str, **args: Any) -> None:
    await sync_cli(pc, home, "op", op, json.dumps(args))


async def agent_state(pc: Host, home: Path) -> dict[str, Any]:
    return (await sync_cli(pc, home, "show"))["state"]


async def agent_sees(agent: PeerProcess, check: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
    """The agent's state once a change from the phone made `check` true (its sync_applied events)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        newest = next((e for e in reversed(agent.events) if e["event"] == "sync_applied"), None)
        if newest is not None and check(newest["state"]):
            return newest["state"]
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"the agent never saw it; its newest state: {newest and newest['state']}")
        await agent.expect("sync_applied", timeout=remaining)


# The document as the phone stored it in IndexedDB (store/sync.js), read back with the app's own
# SyncDoc: what survives a reload.
PHONE_STATE = """(async () => {
  const { SyncDoc } = await import('/app/core/sync_doc.js');
  const db = await new Promise((ok, no) => { const r = indexedDB.open('peerbeam-sync'); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
  const saved = await new Promise((ok) => { const r = db.transaction('docs').objectStore('docs').getAll(); r.onsuccess = () => ok(r.result); });
  db.close();
  if (saved.length !== 1) return { count: saved.length };
  const doc = new SyncDoc();
  doc.applyUpdate(saved[0].state, 'store');
  return { count: 1, doc: saved[0].doc, viewing: saved[0].viewing, state: doc.state() };
})()"""


async def phone_stored(phone: Phone, check: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
    """The phone's stored document once `check` holds. IndexedDB has no change event a page
    outside the app could await: polled every 200 ms."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        stored = await phone.eval(PHONE_STATE)
        if stored.get("count") == 1 and check(stored["state"]):
            return stored
        if loop.time() > deadline:
            raise AssertionError(f"the phone never stored it: {stored}\npage console:\n{phone.console()}")
        await asyncio.sleep(0.2)


BLOCKS = """[...document.querySelectorAll('#reader-blocks [data-block]')].map((el) => ({
  i: Number(el.dataset.block), tag: el.tagName.toLowerCase(), text: (el.querySelector('[data-text]') ?? el).textContent,
  img: el.querySelector('img') && { complete: el.querySelector('img').complete, natural: el.querySelector('img').naturalWidth,
                                    src: el.querySelector('img').src.slice(0, 5) },
}))"""
TOP = "document.documentElement.dataset.peerbeamBlock"


async def select_text(phone: Phone, block: int, start: int, end: int) -> None:
    """Select characters [start, end) of a block's text, as a long press and drag would."""
    await phone.eval(f"""(() => {{
      const el = document.querySelector('[data-text="{block}"]');
      const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
      const range = document.createRange();
      let at = 0, node;
      while ((node = walker.nextNode())) {{
        const len = node.data.length;
        if (at <= {start} && {start} <= at + len) range.setStart(node, {start} - at);
        if (at <= {end} && {end} <= at + len) {{ range.setEnd(node, {end} - at); break; }}
        at += len;
      }}
      getSelection().removeAllRanges();
      getSelection().addRange(range);
    }})()""")


async def start_sync(pc: Host, phone: Phone, home: Path, url: str) -> dict[str, Any]:
    """`peerbeam sync start URL` on the PC: the phone opens the reader view by itself."""
    started = await sync_cli(pc, home, "start", url, "--to", PHONE)
    assert started["event"] == "sync_started" and started["url"] == url, started
    await phone.do("wait", js="document.body.dataset.screen === 'reader' && document.body.dataset.reader === 'shown'"
                              " && [...document.querySelectorAll('#reader-blocks img')].every((i) => i.complete && i.naturalWidth > 0)",
                   timeout=40)
    return started


# ---- the tests -------------------------------------------------------------------------------


async def test_reader_view_follows_the_pc_and_the_pc_sees_the_phone(lan_pair, tmp_path):
    pc, phone_host = lan_pair
    site = await start_site(pc)
    url = f"{site}/article.html"
    home = tmp_path / "pc"
    agent, phone, _ = await pair_phone(pc, phone_host, tmp_path)

    # The main screen offers "Follow my PC" once connected.
    assert await phone.eval("document.getElementById('follow')?.textContent") == "Follow my PC"
    await phone.shot("50-sync-main")
    started = await start_sync(pc, phone, home, url)
    tab = started["tab"]

    # The reader view: the article's blocks in order, as readability-lxml cut them on the PC,
    # the two pictures as the card's thumbnails at their blocks, the PC's name and path above.
    blocks = await phone.eval(BLOCKS)
    expected = expected_blocks(url)
    assert [b["i"] for b in blocks] == list(range(len(expected))) and len(expected) == 46
    assert [b["text"] for b in blocks] == [t for _, t in expected]
    tags = {(k, b["tag"]) for (k, _), b in zip(expected, blocks)}
    assert tags == {("h1", "h2"), ("h2", "h3"), ("p", "p"), ("img", "figure"), ("li", "li"), ("quote", "blockquote")}
    pictures = [b for b in blocks if b["img"]]
    assert [b["i"] for b in pictures] == [6, 32]
    assert all(b["img"]["natural"] > 0 and b["img"]["src"] == "blob:" for b in pictures)
    state = await phone.screen("reader")
    assert state["status"].startswith("Desk PC\nConnected") and state["path"] == "lan"
    # The tab's title (the page's <title>) heads the view.
    assert await phone.eval("document.getElementById('reader-title').textContent") == "The Lighthouse Keepers — Field Notes"
    assert await phone.eval("document.getElementById('reader-truncated').hidden") is True
    await phone.shot("51-sync-reader")

    # The PC scrolls to block 17: the phone's view puts block 17 at its top...
    await sync_op(pc, home, "scroll", tab=tab, fraction=0.3, block=17, offset=0)
    await phone.do("wait", js=f"{TOP} === '17'")
    await phone.shot("52-sync-followed")
    # ...and does not report that scroll back as its own (no echo): the PC's entry stays the
    # PC's. An absence, so it takes a wait: three times the phone's 300 ms quiet window.
    await asyncio.sleep(1.0)
    scroll = (await agent_state(pc, home))["scroll"][tab]
    assert scroll["by"] == "pc" and scroll["block"] == 17, scroll

    # The phone scrolls to block 30: the PC's document says so, by the phone.
    await phone.eval("document.querySelector('[data-block=\"30\"]').scrollIntoView({ block: 'start' })")
    await phone.do("wait", js=f"{TOP} === '30'")
    seen = await agent_sees(agent, lambda s: s["scroll"].get(tab, {}).get("by") == "phone"
                            and s["scroll"][tab]["block"] == 30)
    assert 0 < seen["scroll"][tab]["fraction"] < 1 and 0 <= seen["scroll"][tab]["offset"] < 0.2

    # Find on the phone: every match marked, the current one stronger and in view; the PC's
    # document has the query, the current match and the count.
    await phone.tap("#bar-find")
    await phone.do("fill", selector="#find-input", text="zebra")
    await phone.do("wait", js="document.getElementById('find-count').textContent === '1 of 3'")
    marks = await phone.eval("""[...document.querySelectorAll('mark.find')].map((m) => ({
      block: Number(m.closest('[data-block]').dataset.block), text: m.textContent, current: m.dataset.current === 'true' }))""")
    assert marks == [{"block": 7, "text": "zebra", "current": True}, {"block": 22, "text": "zebra", "current": False},
                     {"block": 24, "text": "zebra", "current": False}]
    assert await phone.eval("""(() => { const r = document.querySelector('mark.find[data-current]').getBoundingClientRect();
      return r.top >= 0 && r.bottom <= innerHeight; })()""")
    await agent_sees(agent, lambda s: s["find"].get(tab) == {"query": "zebra", "match": 0.0, "count": 3.0, "by": "phone"})
    await phone.tap("#find-next")
    await phone.do("wait", js="document.getElementById('find-count').textContent === '2 of 3'")
    await agent_sees(agent, lambda s: s["find"].get(tab, {}).get("match") == 1.0)
    await phone.shot("53-sync-find")
    # The PC moves to the third match: the phone follows.
    await sync_op(pc, home, "find", tab=tab, query="zebra", match=2, count=3)
    await phone.do("wait", js="document.getElementById('find-count').textContent === '3 of 3' && "
                              "document.querySelector('mark.find[data-current]').closest('[data-block]').dataset.block === '24'")
    await phone.tap("#find-close")
    await agent_sees(agent, lambda s: s["find"].get(tab, {}).get("query") == "")

    # A highlight made on the phone, with a note and a color: the PC's document has it, with
    # the block, the offsets in the block's text and the quote.
    await phone.eval("document.querySelector('[data-block=\"13\"]').scrollIntoView({ block: 'center' })")
    await select_text(phone, 13, 0, 13)
    await phone.do("wait", js="!document.getElementById('highlight').hidden")
    await phone.shot("54-sync-select")
    await phone.tap("#highlight")
    await phone.do("wait", js="document.getElementById('sheet').dataset.kind === 'highlight'")
    await phone.do("fill", selector="#hl-note", text="Check the log for this one")
    await phone.tap(".color-dot[data-color='green']")
    await phone.tap("#hl-save")
    await phone.do("wait", js="document.getElementById('hl-saved')?.textContent === 'Saved.'")
    added = await agent_sees(agent, lambda s: any(h["note"] for h in s["highlights"].values())
                             and any(h["color"] == "green" for h in s["highlights"].values()))
    (highlight,) = added["highlights"].values()
    assert highlight == {"url": url, "block": 13.0, "start": 0.0, "end": 13.0, "quote": "Paragraph 10.",
                         "note": "Check the log for this one", "color": "green", "by": "phone"}
    mark = await phone.eval("(() => { const m = document.querySelector('mark.hl'); return m && { text: m.textContent, "
                            "color: m.dataset.color, block: m.closest('[data-block]').dataset.block }; })()")
    assert mark == {"text": "Paragraph 10.", "color": "green", "block": "13"}
    await phone.shot("55-sync-highlight")
    await phone.tap("#sheet-close")
    # One the PC makes shows on the phone, in its block.
    await sync_op(pc, home, "add_highlight", id="00000000000000aa", url=url, block=15, start=0, end=13,
                  quote="Paragraph 12.", note="", color="pink")
    await phone.do("wait", js="document.querySelector('[data-block=\"15\"] mark.hl[data-color=\"pink\"]')?.textContent === 'Paragraph 12.'")

    # Bookmarks: one added on the PC, one on the phone; both sides list both.
    await sync_op(pc, home, "add_bookmark", id="00000000000000bb", url=url, title="Saved on the PC", created=1_700_000_000)
    await phone.tap("#bar-bookmarks")
    await phone.do("wait", js="document.querySelectorAll('#bookmark-list .bookmark').length === 1")
    await phone.tap("#bookmark-add")
    await phone.do("wait", js="document.querySelectorAll('#bookmark-list .bookmark').length === 2")
    both = await agent_sees(agent, lambda s: len(s["bookmarks"]) == 2)
    ours = next(b for b in both["bookmarks"].values() if b["by"] == "phone")
    assert ours["url"] == url and ours["title"] == "The Lighthouse Keepers — Field Notes"
    titles = await phone.eval("[...document.querySelectorAll('#bookmark-list .row-title')].map((t) => t.textContent)")
    assert titles == ["Saved on the PC", "The Lighthouse Keepers — Field Notes"]
    # Rename the phone's bookmark on the phone: the PC sees the new title.
    await phone.tap("#bookmark-list .bookmark:nth-child(2) .rename")
    await phone.do("fill", selector=".rename-input", text="Lighthouse, read later")
    await phone.tap("#bookmark-list .save")
    await agent_sees(agent, lambda s: any(b["title"] == "Lighthouse, read later" for b in s["bookmarks"].values()))
    await phone.shot("56-sync-bookmarks")
    await phone.tap("#sheet-close")

    # Tabs: the PC's tab is listed; one opened on the phone joins the document after it.
    await phone.tap("#bar-tabs")
    await phone.do("fill", selector="#tab-url", text=f"{site}/second.html")
    await phone.tap("#tab-open-url")
    opened = await agent_sees(agent, lambda s: len(s["tabs"]) == 2)
    new_key, new_tab = next((k, t) for k, t in opened["tabs"].items() if k != tab)
    assert new_tab == {"url": f"{site}/second.html", "title": f"{site}/second.html", "order": 1.0, "by": "phone"}
    assert len(new_key) == 16 and int(new_key, 16) >= 0
    await phone.do("wait", js="document.querySelectorAll('#tab-list .tab-row').length === 2")
    await phone.shot("57-sync-tabs")
    await phone.tap(f"#tab-list .tab-row[data-tab='{new_key}'] .tab-close")
    await agent_sees(agent, lambda s: list(s["tabs"]) == [tab])
    await phone.tap("#sheet-close")

    # "Phone follows PC" off: the PC's document says so, and a PC scroll no longer moves the view.
    await phone.tap("#bar-sync")
    await phone.tap("#follow-pc")
    await phone.do("wait", js="document.getElementById('follow-pc').getAttribute('aria-checked') === 'false'")
    await agent_sees(agent, lambda s: s["follow"]["phone_follows_pc"] is False)
    await phone.shot("58-sync-settings")
    await phone.tap("#sheet-close")
    before = await phone.eval(TOP)
    await sync_op(pc, home, "scroll", tab=tab, fraction=0.05, block=3, offset=0)
    await phone_stored(phone, lambda s: s["scroll"][tab]["by"] == "pc" and s["scroll"][tab]["block"] == 3)
    assert await phone.eval(TOP) == before != "3"
    # On again: the view catches up with the PC.
    await phone.tap("#bar-sync")
    await phone.tap("#follow-pc")
    await phone.do("wait", js=f"{TOP} === '3'")

    # Stop sync on the phone: both drop the document; the main screen is back.
    await phone.tap("#sync-stop")
    await phone.screen("connected")
    await agent.expect("sync_stopped", timeout=20)
    assert await phone.eval("document.getElementById('open-reader').hidden") is True
    assert (await phone.eval(PHONE_STATE))["count"] == 0


async def test_follow_my_pc_refused_then_started_and_a_long_page(lan_pair, tmp_path):
    pc, phone_host = lan_pair
    site = await start_site(pc)
    home = tmp_path / "pc"
    agent, phone, _ = await pair_phone(pc, phone_host, tmp_path)

    # "Follow my PC" while the PC cannot tell its page (no browser extension): refused, and
    # the phone says what to do.
    await phone.tap("#follow")
    status = await phone.do("wait", js="document.getElementById('sync-status').textContent")
    assert "extension" in status["value"], status
    assert await phone.eval("document.getElementById('follow').disabled") is False
    await phone.shot("59-sync-follow-refused")

    # With the extension there (its stand-in), the same tap starts a session for the PC's tab:
    # the reader view opens by itself, on the tab the extension reported.
    standin = await pc.spawn([sys.executable, "-m", "tests.integration.test_phone_sync", "standin",
                              str(home / "control.sock"), f"{site}/article.html"], cwd=REPO_ROOT)
    await standin.expect("extension")
    await phone.tap("#follow")
    await phone.do("wait", js="document.body.dataset.screen === 'reader' && document.body.dataset.reader === 'shown'",
                   timeout=60)
    await standin.expect("captured")
    assert await phone.eval("document.getElementById('reader-title').textContent") == "The Lighthouse Keepers (tab)"
    state = await agent_state(pc, home)
    assert state["active"] == "t7" and state["reader"]["t7"]["url"] == f"{site}/article.html"

    # A page longer than a reader view keeps: 2000 blocks, and the view says the rest is on the PC.
    await sync_cli(pc, home, "start", f"{site}/long.html", "--to", PHONE)
    await phone.do("wait", js="document.querySelectorAll('#reader-blocks [data-block]').length === 2000 && "
                              "!document.getElementById('reader-truncated').hidden", timeout=60)
    assert await phone.eval("document.querySelector('[data-block=\"1999\"]').textContent") == \
        "Line 1999 of the very long logbook, kept for the record."
    await phone.eval("document.getElementById('reader-truncated').scrollIntoView({ block: 'center' })")
    await phone.shot("63-sync-truncated")


def cut(host: Host, on: bool) -> None:
    """Drop (or let through again) everything `host` sends or receives but loopback."""
    for tool in ("iptables", "ip6tables"):
        for chain, flag in (("INPUT", "-i"), ("OUTPUT", "-o")):
            done = host.run([tool, "-A" if on else "-D", chain, "!", flag, "lo", "-j", "DROP"])
            assert done.returncode == 0, done.stderr


async def test_offline_edits_merge_and_a_reload_comes_back(lan_pair, tmp_path):
    pc, phone_host = lan_pair
    site = await start_site(pc)
    url = f"{site}/article.html"
    home = tmp_path / "pc"
    agent, phone, _ = await pair_phone(pc, phone_host, tmp_path)
    tab = (await start_sync(pc, phone, home, url))["tab"]
    await sync_op(pc, home, "add_bookmark", id="0000000000000b00", url=url, title="Before the cut", created=1_700_000_000)
    await phone_stored(phone, lambda s: "0000000000000b00" in s["bookmarks"])
    await phone.eval("document.querySelector('[data-block=\"20\"]').scrollIntoView({ block: 'start' })")
    await phone.do("wait", js=f"{TOP} === '20'")
    await agent_sees(agent, lambda s: s["scroll"].get(tab, {}).get("block") == 20)

    # The link is cut: both sides notice, and the reader view stays, usable, on the phone.
    cut(phone_host, True)
    try:
        await agent.expect("disconnected", name=PHONE, timeout=60)
        await phone.do("wait", js="document.body.dataset.state !== 'connected'", timeout=60)
        assert await phone.eval("document.body.dataset.screen") == "reader"
        assert "kept and shared when Desk PC is back" in await phone.eval("document.getElementById('offline-hint').innerText")
        # Apart, both edit: the phone adds a bookmark and a highlight and renames the shared
        # bookmark; the PC adds a bookmark and deletes the shared one (a delete wins over a rename).
        await phone.tap("#bar-bookmarks")
        await phone.tap("#bookmark-add")
        await phone.do("wait", js="document.querySelectorAll('#bookmark-list .bookmark').length === 2")
        await phone.tap("#bookmark-list .bookmark[data-bookmark='0000000000000b00'] .rename")
        await phone.do("fill", selector=".rename-input", text="Renamed on the phone")
        await phone.tap("#bookmark-list .save")
        await phone.tap("#sheet-close")
        await select_text(phone, 21, 0, 13)
        await phone.do("wait", js="!document.getElementById('highlight').hidden")
        await phone.tap("#highlight")
        await phone.tap("#sheet-close")
        await phone.shot("60-sync-offline-edits")
        await sync_op(pc, home, "add_bookmark", id="0000000000000c00", url=url, title="Added on the PC", created=1_700_000_100)
        await sync_op(pc, home, "delete_bookmark", id="0000000000000b00")
        await sync_op(pc, home, "add_highlight", id="0000000000000d00", url=url, block=26, start=0, end=13,
                      quote="Paragraph 19.", note="from the PC", color="blue")
        offline = await phone_stored(phone, lambda s: len(s["bookmarks"]) == 2 and len(s["highlights"]) == 1)
        assert offline["state"]["bookmarks"]["0000000000000b00"]["title"] == "Renamed on the phone"
    finally:
        cut(phone_host, False)

    # Back together: each side gets what the other did; the delete wins over the rename.
    await agent.expect("connected", name=PHONE, timeout=90)

    def merged(state: dict[str, Any]) -> bool:
        marks = state["bookmarks"]
        return ("0000000000000c00" in marks and "0000000000000b00" not in marks and len(marks) == 2
                and len(state["highlights"]) == 2)

    await agent_sees(agent, merged, timeout=60)
    on_phone = (await phone_stored(phone, merged, timeout=60))["state"]
    on_pc = await agent_state(pc, home)
    for side in (on_pc, on_phone):
        assert {b["by"] for b in side["bookmarks"].values()} == {"pc", "phone"}
        assert {h["by"] for h in side["highlights"].values()} == {"pc", "phone"}
    assert on_phone["bookmarks"] == (await agent_state(pc, home))["bookmarks"]
    assert on_phone["highlights"] == (await agent_state(pc, home))["highlights"]
    await phone.do("wait", js="document.querySelector('[data-block=\"26\"] mark.hl[data-color=\"blue\"]') !== null "
                              "&& document.querySelector('[data-block=\"21\"] mark.hl') !== null")
    await phone.screen("reader")
    await phone.tap("#bar-bookmarks")
    titles = await phone.eval("[...document.querySelectorAll('#bookmark-list .row-title')].map((t) => t.textContent)")
    assert titles == ["Added on the PC", "The Lighthouse Keepers — Field Notes"]
    await phone.shot("61-sync-merged")
    await phone.tap("#sheet-close")

    # Reload with no direct path (UDP dropped: the page and its server still load over TCP, the
    # data channel cannot open): the reader view, its highlights and the scroll position come
    # back from IndexedDB alone.
    for tool in ("iptables", "ip6tables"):
        for chain in ("INPUT", "OUTPUT"):
            assert phone_host.run([tool, "-A", chain, "-p", "udp", "-j", "DROP"]).returncode == 0
    try:
        await phone.do("reload")
        await phone.do("wait", js="document.body.dataset.screen === 'reader' && document.body.dataset.reader === 'shown'")
        assert await phone.eval("document.body.dataset.state") != "connected"
        assert [b["text"] for b in await phone.eval(BLOCKS)] == [t for _, t in expected_blocks(url)]
        assert await phone.eval("document.querySelectorAll('mark.hl').length") == 2
        await phone.do("wait", js=f"{TOP} === '20'")
        await phone.shot("62-sync-reloaded-offline")
    finally:
        for tool in ("iptables", "ip6tables"):
            for chain in ("INPUT", "OUTPUT"):
                phone_host.run([tool, "-D", chain, "-p", "udp", "-j", "DROP"])
    # And the agent: connected again, the same document, still in sync both ways.
    await phone.do("wait", js="document.body.dataset.state === 'connected'", timeout=90)
    await sync_op(pc, home, "add_bookmark", id="0000000000000e00", url=url, title="After the reload", created=1_700_000_200)
    await phone_stored(phone, lambda s: "0000000000000e00" in s["bookmarks"])
    assert (await agent_state(pc, home))["bookmarks"].keys() == (await phone.eval(PHONE_STATE))["state"]["bookmarks"].keys()

    # A reader view the phone no longer holds (its stored copy gone): after a reload it asks the
    # PC for it (sync.reader) and shows it again, pictures included.
    await phone.eval("""new Promise((done) => { const r = indexedDB.open('peerbeam-sync'); r.onsuccess = () => {
      const tx = r.result.transaction('readers', 'readwrite'); tx.objectStore('readers').clear();
      tx.oncomplete = () => { r.result.close(); done(true); }; }; })""")
    await phone.do("reload")
    await phone.do("wait", js="document.body.dataset.screen === 'reader' && document.body.dataset.reader === 'waiting'")
    await phone.do("wait", js="document.body.dataset.reader === 'shown' && "
                              "[...document.querySelectorAll('#reader-blocks img')].every((i) => i.complete && i.naturalWidth > 0)",
                   timeout=60)
    assert [b["text"] for b in await phone.eval(BLOCKS)] == [t for _, t in expected_blocks(url)]


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        asyncio.run(serve(sys.argv[2], int(sys.argv[3])))
    else:
        asyncio.run(extension_standin(sys.argv[2], sys.argv[3]))
