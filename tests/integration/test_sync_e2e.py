"""Page sync end to end: the PC's Chromium with the extension on a real tab, the agent, and the
phone web app in another Chromium at phone size — nothing stands in for anything.

"pc": the signaling server, `peerbeam agent`, and Chromium with the unpacked extension and a
fresh profile (extension_driver.py, which also serves the article), linked to the agent by the
native host installed into that profile. "phone": Chromium at 390x844 with touch, paired by
scanning the agent's QR (test_phone_app.pair_phone).

The user clicks the extension's button on the article (CDP Extensions.triggerAction: the real
action path, which grants activeTab), then taps "Follow my PC" on the phone: the reader view
comes from the extension's Readability on the live tab, so both sides number the same
paragraphs. Then: scroll on the PC tab → the phone's view lands on the same paragraph; find on
the phone → highlighted in the PC tab; a bookmark added on each side → both see both.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_extension import DRIVER, EXTENSION, command
from tests.integration.test_pairing import run_cli
from tests.integration.test_phone_app import pair_phone
from tests.integration.test_phone_sync import article_html, photo
from tests.lab import REPO_ROOT

pytestmark = pytest.mark.netns

SITE_PORT = 8090
TOP = "document.documentElement.dataset.peerbeamBlock"


def make_site(root: Path) -> None:
    root.mkdir(parents=True)
    (root / "index.html").write_text(article_html(), encoding="utf-8")
    (root / "img").mkdir()
    for k in (1, 2):
        (root / "img" / f"photo{k}.jpg").write_bytes(photo(k))


async def in_page(driver: Any, expr: str) -> Any:
    return (await command(driver, "evaluated", cmd="eval_page", expr=expr))["value"]


async def in_worker(driver: Any, expr: str) -> Any:
    return (await command(driver, "evaluated", cmd="eval_worker", expr=expr))["value"]


async def page_until(driver: Any, expr: str, timeout: float = 20) -> Any:
    """Poll an expression in the PC tab until it is truthy (the content script's markers have no
    event a test outside the extension could await)."""
    return await in_page(driver, f"""new Promise((resolve, reject) => {{
      const until = Date.now() + {int(timeout * 1000)};
      const check = () => {{ const v = ({expr}); if (v) resolve(v); else if (Date.now() > until) reject(new Error('timed out: ' + {json.dumps(expr)})); else setTimeout(check, 50); }};
      check();
    }})""")


# The "peerbeam" folder's bookmarks once it holds two (polled: the worker's bookmark events
# are the extension's own, a test cannot subscribe to them).
BOOKMARKS_FOLDER = """(async () => {
  for (let i = 0; i < 200; i++) {
    const [root] = await chrome.bookmarks.getTree();
    const other = root.children.find((c) => c.id === '2') ?? root.children[root.children.length - 1];
    const folder = (await chrome.bookmarks.getChildren(other.id)).find((c) => !c.url && c.title === 'peerbeam');
    const items = folder ? await chrome.bookmarks.getChildren(folder.id) : [];
    if (items.length >= 2) return items.map((b) => ({ title: b.title, url: b.url }));
    await new Promise((r) => setTimeout(r, 100));
  }
  return null;
})()"""


async def test_extension_tab_and_phone_reader_stay_in_step(lan_pair, tmp_path):
    pc, phone_host = lan_pair
    make_site(tmp_path / "site")
    agent, phone, _ = await pair_phone(pc, phone_host, tmp_path)

    profile = tmp_path / "pc-profile"  # the phone's Chromium has "profile"
    code, events = await run_cli(pc, tmp_path / "pc", "install-extension-host", "--browser-dir", str(profile))
    assert code == 0, events
    (tmp_path / "pc-chromium-home").mkdir()  # the phone's Chromium has "chromium-home"
    driver = await pc.spawn(
        [sys.executable, str(DRIVER), "--via", "playwright", "--extension", str(EXTENSION), "--profile", str(profile),
         "--site", str(tmp_path / "site"), "--listen", f"{pc.address}:{SITE_PORT}"],
        env={"HOME": str(tmp_path / "pc-chromium-home")}, cwd=REPO_ROOT)
    await driver.expect("ready", timeout=90)
    await agent.expect("extension", connected=True, timeout=30)
    page_url = f"http://{pc.address}:{SITE_PORT}/index.html"

    # The PC's user clicks peerbeam's button on the article (a card goes to the phone, and the
    # extension may now read this tab); the phone's user taps "Follow my PC".
    await command(driver, "triggered", cmd="beam")
    assert (await command(driver, "results", cmd="results", count=1))["results"][0]["ok"] is True
    await phone.do("wait", js="document.getElementById('follow') && !document.getElementById('follow').disabled")
    await phone.tap("#follow")
    started = await agent.expect("sync_started", by="us", timeout=40)
    assert started["url"] == page_url
    await phone.do("wait", js="document.body.dataset.screen === 'reader' && document.body.dataset.reader === 'shown'",
                   timeout=40)
    # Both number the same paragraphs: the phone's view holds the blocks the extension read.
    pc_blocks = int(await page_until(driver, "document.documentElement.dataset.peerbeamBlocks"))
    phone_blocks = await phone.eval("document.querySelectorAll('#reader-blocks [data-block]').length")
    assert pc_blocks == phone_blocks and pc_blocks > 40
    texts = await phone.eval("[...document.querySelectorAll('#reader-blocks [data-block]')].map((el) => el.textContent)")
    assert any(t.startswith("Paragraph 20.") for t in texts) and not any("Footer links" in t for t in texts)
    await phone.shot("70-e2e-reader")

    # Scroll on the PC tab: the phone's reader view moves to the same paragraph.
    await in_page(driver, """[...document.querySelectorAll('p')].find((p) => p.textContent.startsWith('Paragraph 20.'))
                             .scrollIntoView({ block: 'start' })""")
    pc_top = await page_until(driver, f"{TOP} && [...document.querySelectorAll('p')].find((p) => "
                                      "p.textContent.startsWith('Paragraph 20.')).getBoundingClientRect().top < 5 && "
                                      f"{TOP}")
    assert texts[int(pc_top)].startswith("Paragraph 20.")
    await phone.do("wait", js=f"{TOP} === '{pc_top}'", timeout=20)
    top_text = await phone.eval(f"document.querySelector('[data-block=\"{pc_top}\"]').textContent")
    assert top_text.startswith("Paragraph 20.")
    await phone.shot("71-e2e-followed-pc-scroll")

    # Find on the phone: the PC tab highlights the same matches, the current one apart.
    await phone.tap("#bar-find")
    await phone.do("fill", selector="#find-input", text="zebra")
    await phone.do("wait", js="document.getElementById('find-count').textContent === '1 of 3'")
    await page_until(driver, "document.documentElement.dataset.peerbeamFind === '3'")
    sizes = await in_page(driver, "['peerbeam-find', 'peerbeam-find-current'].map((n) => CSS.highlights.get(n)?.size ?? 0)")
    assert sizes == [2, 1]
    current = await in_page(driver, """(() => { const [range] = CSS.highlights.get('peerbeam-find-current');
      const r = range.getBoundingClientRect(); return { text: range.toString(), visible: r.top >= 0 && r.bottom <= innerHeight }; })()""")
    assert current == {"text": "zebra", "visible": True}
    await phone.tap("#find-next")
    await page_until(driver, "document.documentElement.dataset.peerbeamFindCurrent === '1'")
    await phone.tap("#find-close")
    await page_until(driver, "document.documentElement.dataset.peerbeamFind === '0' || "
                             "!document.documentElement.dataset.peerbeamFind")

    # A bookmark on each side: on the phone with its button, on the PC in the browser's own
    # "peerbeam" bookmark folder. Both see both.
    await phone.tap("#bar-bookmarks")
    await phone.tap("#bookmark-add")
    await phone.do("wait", js="document.querySelectorAll('#bookmark-list .bookmark').length === 1")
    await in_worker(driver, f"""(async () => {{
      const [root] = await chrome.bookmarks.getTree();
      const other = root.children.find((c) => c.id === '2') ?? root.children[root.children.length - 1];
      let folder = (await chrome.bookmarks.getChildren(other.id)).find((c) => !c.url && c.title === 'peerbeam');
      for (let i = 0; !folder && i < 100; i++) {{
        await new Promise((r) => setTimeout(r, 100));
        folder = (await chrome.bookmarks.getChildren(other.id)).find((c) => !c.url && c.title === 'peerbeam');
      }}
      await chrome.bookmarks.create({{ parentId: folder.id, title: 'Tide tables (PC)', url: {json.dumps(page_url + '#tides')} }});
    }})()""")
    await phone.do("wait", js="document.querySelectorAll('#bookmark-list .bookmark').length === 2", timeout=20)
    titles = await phone.eval("[...document.querySelectorAll('#bookmark-list .row-title')].map((t) => t.textContent)")
    assert "Tide tables (PC)" in titles
    folder = await in_worker(driver, BOOKMARKS_FOLDER)
    assert folder is not None and len(folder) == 2, folder
    assert {b["url"] for b in folder} == {page_url, page_url + "#tides"}
    await phone.shot("72-e2e-bookmarks")
    shown = await run_cli(pc, tmp_path / "pc", "sync", "show")
    bookmarks = shown[1][-1]["state"]["bookmarks"]
    assert sorted(b["by"] for b in bookmarks.values()) == ["pc", "phone"]
