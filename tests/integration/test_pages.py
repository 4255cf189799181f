"""Page cards end to end without a browser: `peerbeam send URL`, `pull`, `activate`.

The hostile test site (generated images: icons, an ad, a decompression bomb, a GIF with
thousands of frames, HTML labelled image/jpeg, a 404, a never-ending response, 50 MB...)
is served on 127.0.0.1 *inside* the pc namespace, where the agent fetches it. The phone peer
gets the card over the real data channel and saves it. The browser extension's capture path
is proven in test_extension.py with real Chromium.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.integration.test_pairing import start_agent, start_signal
from tests.lab import REPO_ROOT, Host
from tests.peer_process import PeerProcess

pytestmark = pytest.mark.netns


async def start_site(pc: Host) -> str:
    site = await pc.spawn([sys.executable, "-m", "tests.integration.page_site", "127.0.0.1", "8080"],
                          cwd=REPO_ROOT)
    return (await site.expect("site"))["url"]


async def paired(pc: Host, phone: Host, tmp: Path, *agent_args: str) -> tuple[PeerProcess, PeerProcess]:
    origin = await start_signal(pc, tmp)
    agent, url = await start_agent(pc, tmp / "pc", origin, *agent_args)
    joiner = await phone.peerbeam(["--json", "join", url, "--name", "Test Phone", "--downloads",
                                   str(tmp / "phone-dl")], home=tmp / "phone")
    await agent.expect("connected", name="Test Phone")
    await joiner.expect("connected", name="Desk PC")
    return agent, joiner


async def run(host: Host, home: Path, *args: str, timeout: float = 60) -> PeerProcess:
    proc = await host.peerbeam(["--json", *args], home=home)
    await proc.wait(timeout=timeout)
    return proc


async def test_send_url_gives_the_phone_exactly_the_good_thumbnails(lan_pair, tmp_path):
    pc, phone = lan_pair
    site = await start_site(pc)
    agent, joiner = await paired(pc, phone, tmp_path)

    proc = await run(pc, tmp_path / "pc", "send", f"{site}/page.html")
    assert proc.returncode == 0, proc.stdout_tail
    beamed = await proc.expect("beamed")
    assert beamed["name"] == "Test Phone" and beamed["thumbnails"] == 3

    page = await joiner.expect("page", timeout=30)
    assert page["url"] == f"{site}/page.html" and page["title"] == "Bad images"
    # Largest first; the recompressed and copied duplicates of big1 gone; the icon, the ad, the
    # bombs, the fake JPEG, the 404, the slow and the 50 MB responses dropped; of the GIF with
    # 5000 frames, the first frame.
    assert [(t["natural_width"], t["natural_height"]) for t in page["thumbs"]] == [
        (2000, 1200), (1200, 800), (200, 200)]
    assert [t["source"].rsplit("/", 1)[1] for t in page["thumbs"]] == ["big2.jpg", "big1.jpg", "frames.gif"]
    assert [(t["width"], t["height"]) for t in page["thumbs"]] == [(320, 192), (320, 213), (200, 200)]
    for thumb in page["thumbs"]:
        with Image.open(thumb["file"]) as im:
            assert im.size == (thumb["width"], thumb["height"])
            assert im.format == "WEBP" and not im.info.get("exif")
    card = json.loads((Path(page["folder"]) / "card.json").read_text())
    assert card["url"] == page["url"] and len(card["thumbs"]) == 3


@pytest.mark.parametrize(("address", "code"), [
    ("/data.json", "not_html"),
    ("/img/missing.jpg", "page_unreachable"),
    ("ftp://198.51.100.1/x", "bad_scheme"),
])
async def test_send_url_errors_are_clear_and_send_nothing(lan_pair, tmp_path, address, code):
    pc, phone = lan_pair
    site = await start_site(pc)
    agent, joiner = await paired(pc, phone, tmp_path)
    target = address if "://" in address else f"{site}{address}"
    proc = await run(pc, tmp_path / "pc", "send", target)
    assert proc.returncode == 1
    error = proc.events[-1]
    assert error["event"] == "error" and error["code"] == code and error["message"]
    assert not [e for e in joiner.events if e["event"] == "page"]


async def test_pull_needs_the_extension_and_an_active_agent(lan_pair, tmp_path):
    pc, phone = lan_pair
    agent, joiner = await paired(pc, phone, tmp_path, "--idle-timeout", "3")

    proc = await run(phone, tmp_path / "phone", "pull")
    assert proc.returncode == 1
    assert proc.events[-1]["code"] == "no_page"
    assert "extension" in proc.events[-1]["message"]

    await agent.expect("inactive", timeout=20)  # 3 s without use
    proc = await run(phone, tmp_path / "phone", "pull")
    assert proc.returncode == 1 and proc.events[-1]["code"] == "inactive"
    assert "peerbeam activate" in proc.events[-1]["message"]
    await agent.expect("pull_refused", code="inactive")

    proc = await run(pc, tmp_path / "pc", "activate")
    assert proc.returncode == 0 and proc.events[-1]["woke"] is True
    await agent.expect("active")
    proc = await run(phone, tmp_path / "phone", "pull")
    assert proc.events[-1]["code"] == "no_page"  # active again: refused only for the missing extension
