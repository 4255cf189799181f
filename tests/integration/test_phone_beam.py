"""What the connected phone does, in real Chromium as a phone against the real agent: page
cards, pulls (button and shake), files both ways.

Same lab as test_phone_app.py (signal server and agent in "pc", Chromium in "phone"); the test
site (page_site.py, hostile images) runs on 127.0.0.1 inside "pc", where the agent fetches it.
Screenshots go to tests/artifacts/phone/.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from tests.integration.test_pairing import run_cli
from tests.integration.test_phone_app import pair_phone
from tests.lab import REPO_ROOT, Host

pytestmark = pytest.mark.netns

MB = 1024 * 1024

THUMBS = """[...document.querySelectorAll('#cards .card')].map((card) => ({
  title: card.querySelector('.card-title').textContent,
  url: card.querySelector('.card-url').textContent,
  pull: card.dataset.pull,
  open: card.querySelector('a.open') && { href: card.querySelector('a.open').href, rel: card.querySelector('a.open').rel,
                                          target: card.querySelector('a.open').target },
  images: [...card.querySelectorAll('img')].map((img) => ({ complete: img.complete, natural: img.naturalWidth,
                                                            src: img.src.slice(0, 5) })),
}))"""


async def start_site(pc: Host) -> str:
    site = await pc.spawn([sys.executable, "-m", "tests.integration.page_site", "127.0.0.1", "8080"], cwd=REPO_ROOT)
    return str((await site.expect("site"))["url"])


async def test_a_beamed_page_becomes_a_card_with_its_thumbnails_and_actions(lan_pair, tmp_path):
    pc, phone_host = lan_pair
    site = await start_site(pc)
    agent, phone, _ = await pair_phone(pc, phone_host, tmp_path)

    code, events = await run_cli(pc, tmp_path / "pc", "send", f"{site}/page.html", "--to", "Android phone")
    assert code == 0, events
    beamed = next(e for e in events if e["event"] == "beamed")
    assert beamed["thumbnails"] == 3
    # Every thumbnail arrived (size and sha-256 checked in the page) and decodes as an image.
    await phone.do("wait", js="document.querySelectorAll('#cards .card img').length === 3 && "
                              "[...document.querySelectorAll('#cards .card img')].every((i) => i.complete && i.naturalWidth > 0)")
    (card,) = await phone.eval(THUMBS)
    assert card["title"] == "Bad images" and card["url"] == f"{site}/page.html" and card["pull"] == ""
    assert len(card["images"]) == 3 and all(i["natural"] > 0 and i["src"] == "blob:" for i in card["images"])
    # Open: the page's own address, in a new tab, without opener or referrer.
    assert card["open"] == {"href": f"{site}/page.html", "rel": "noopener noreferrer", "target": "_blank"}
    await phone.shot("20-card")

    # Save an image: a real download of exactly the bytes the agent sent (its sha-256 is in the
    # card the agent built; the page checked it on arrival; here we check what was saved).
    saved = await phone.do("download", selector="#cards .card .save-image")
    assert saved["name"].endswith(".webp") and saved["name"].startswith("Bad images")
    first = await phone.eval("""(async () => {
      const img = document.querySelector('#cards .card img');
      return { width: img.naturalWidth };
    })()""")
    assert first["width"] > 0 and saved["size"] > 0

    # Copy, over plain HTTP (no async Clipboard API there): the execCommand fallback, and the
    # card says so. Share: headless Chromium has no navigator.share, so the fallback copies and
    # says that sharing is not available.
    assert await phone.eval("typeof navigator.share") == "undefined"
    await phone.tap("#cards .card .copy")
    await phone.do("wait", js="document.querySelector('#cards .card .card-note').textContent === 'Link copied.'")
    await phone.tap("#cards .card .share")
    note = (await phone.do("wait", js="document.querySelector('#cards .card .card-note').textContent.includes('Sharing')"))
    assert "copied instead" in note["value"] if isinstance(note["value"], str) else True
    await phone.shot("21-card-shared-fallback")
    # A stub of navigator.share, ONLY to check what the card hands to the Web Share API (the
    # real share sheet cannot run headless): the title and the page's address.
    await phone.eval("""(() => { window.shared = []; navigator.share = async (data) => { window.shared.push(data); }; })()""")
    await phone.tap("#cards .card .share")
    shared = (await phone.do("wait", js="window.shared.length && window.shared[0]"))["value"]
    assert shared == {"title": "Bad images", "url": f"{site}/page.html"}


async def test_pull_by_button_refused_then_answered(lan_pair, tmp_path):
    pc, phone_host = lan_pair
    site = await start_site(pc)
    agent, phone, _ = await pair_phone(pc, phone_host, tmp_path)

    # No browser extension on the PC: the agent cannot tell its page, and the phone says so.
    await phone.tap("#pull")
    refused = await phone.do("wait", js="document.getElementById('pull-status').dataset.state === 'refused' && "
                                        "document.getElementById('pull-status').dataset.code")
    assert refused["value"] == "no_page"
    text = await phone.eval("document.getElementById('pull-status').textContent")
    assert "extension" in text
    await agent.expect("pull_refused", code="no_page")
    await phone.shot("22-pull-no-page")

    # The extension's link to the agent (a stand-in speaking its native-host protocol on the
    # control socket; the real extension is tested in test_extension.py): the pull now comes
    # back as a card naming the pull.
    standin = await pc.spawn([sys.executable, "-m", "tests.integration.extension_standin",
                              str(tmp_path / "pc" / "control.sock"), f"{site}/page.html"], cwd=REPO_ROOT)
    await standin.expect("extension")
    await phone.tap("#pull")
    await phone.do("wait", js="document.querySelector('#cards .card')?.dataset.pull.length > 0 && "
                              "document.querySelectorAll('#cards .card img').length === 3 && "
                              "[...document.querySelectorAll('#cards .card img')].every((i) => i.complete && i.naturalWidth > 0)",
                   timeout=60)
    pulled = await agent.expect("pulled", timeout=30)
    assert pulled["url"] == f"{site}/page.html" and pulled["thumbnails"] == 3
    assert await phone.eval("document.getElementById('pull-status').dataset.state") == "done"
    await phone.shot("23-pulled")


RECEIVED_SHA = """(async () => {
  const { sha256 } = await import('/app/vendor/noble.js');
  const db = await new Promise((ok, no) => { const r = indexedDB.open('peerbeam-files'); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
  const get = (store, q) => new Promise((ok) => { const r = db.transaction(store).objectStore(store).getAll(q); r.onsuccess = () => ok(r.result); });
  const files = await get('files');
  const out = [];
  for (const file of files) {
    const pieces = await get('pieces', IDBKeyRange.bound([file.id, 0], [file.id, Infinity]));
    const hash = sha256.create();
    let size = 0;
    for (const piece of pieces) { const bytes = new Uint8Array(await piece.arrayBuffer()); hash.update(bytes); size += bytes.length; }
    out.push({ id: file.id, name: file.name, size, sha256: [...hash.digest()].map((b) => b.toString(16).padStart(2, '0')).join('') });
  }
  const all = await get('pieces');
  return { files: out, pieces: all.length };
})()"""


def make_file(path: Path, size: int) -> str:
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


async def test_20_mb_both_ways_with_matching_sha256(lan_pair, tmp_path):
    pc, phone_host = lan_pair
    downloads = tmp_path / "pc-dl"
    agent, phone, _ = await pair_phone(pc, phone_host, tmp_path, agent_args=("--downloads", str(downloads)))

    # Phone -> PC: picked in the file input, offered, accepted by the PC's user, verified there.
    src = tmp_path / "from-phone.bin"
    digest = make_file(src, 20 * MB)
    await phone.do("files", selector="#file-input", paths=[str(src)])
    asked = await agent.expect("confirm_file", timeout=60)
    assert asked["file"] == "from-phone.bin" and asked["size"] == 20 * MB
    await agent.write_line("y")
    got = await agent.expect("received_file", timeout=120)
    assert got["sha256"] == digest and hashlib.sha256(Path(got["path"]).read_bytes()).hexdigest() == digest
    await phone.do("wait", js="document.querySelector('#transfers li.out')?.dataset.state === 'completed'")

    # PC -> phone: streamed into IndexedDB, verified incrementally, offered as a download; the
    # bytes read back out of the page's store hash to the file's sha-256.
    src2 = tmp_path / "from-pc.bin"
    digest2 = make_file(src2, 20 * MB)
    code, events = await run_cli(pc, tmp_path / "pc", "send", str(src2), "--to", "Android phone")
    assert code == 0, events
    await phone.do("wait", js="document.querySelector('#transfers li.in')?.dataset.state === 'completed'", timeout=60)
    stored = await phone.eval(RECEIVED_SHA)
    assert [(f["name"], f["size"], f["sha256"]) for f in stored["files"]] == [("from-pc.bin", 20 * MB, digest2)]
    saved = await phone.do("download", selector="#transfers li.in .save-file")
    assert (saved["name"], saved["size"], saved["sha256"]) == ("from-pc.bin", 20 * MB, digest2)
    await phone.shot("24-files")
