"""The browser extension end to end, in real Chromium: toolbar button -> native host -> agent
-> data channel -> phone.

In the "pc" namespace: the signaling server, `peerbeam agent`, and Debian's Chromium with the
unpacked extension and a fresh profile (extension_driver.py), which also serves the test page.
The native host is installed into that profile with `peerbeam install-extension-host
--browser-dir PROFILE` (Chromium on Linux reads <user-data-dir>/NativeMessagingHosts; nothing
is written to the real home). In "phone": `peerbeam join`, the headless phone.

The toolbar click is CDP `Extensions.triggerAction` on the tab: the real action path, which is
what grants activeTab. The extension has no host permissions, so reading the page's DOM works
only through that grant; the images the phone receives are the ones it read there.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from random import Random
from typing import Any

import pytest
from PIL import Image

from tests.integration.test_pairing import run_cli, start_agent, start_signal
from tests.lab import REPO_ROOT, Host
from tests.peer_process import PeerProcess

pytestmark = pytest.mark.netns

EXTENSION = REPO_ROOT / "browser_client" / "extension"
DRIVER = Path(__file__).parent / "extension_driver.py"
SITE_PORT = 8080
TITLE = "Tide pools of the north coast"
# Chromium stops an extension's service worker after 30 s without events; idle longer than that.
IDLE_SECONDS = 40

# What the card must hold: largest first (images.select), the 16 px icon and the 90x60 ad
# dropped. Three of them are not loaded when the button is clicked: a native lazy image below
# the fold, a script-lazy one (data-src, with a 1x1 placeholder in src), and a lazy srcset whose
# largest candidate (1600w) is what the extension must report, not its 400w one.
EXPECTED = [
    ("set-1600.jpg", (1600, 1000)),
    ("hero.jpg", (1280, 960)),
    ("lazy.jpg", (1000, 800)),
    ("datasrc.jpg", (600, 800)),
    ("second.jpg", (640, 400)),
]
PAGE = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{TITLE}</title></head>
<body>
<img src="icon.png" alt="">
<h1>{TITLE}</h1>
<img src="hero.jpg" width="640" height="480" alt="">
<img src="ad.png" alt="">
<img src="second.jpg" alt="">
<div style="height: 8000px"></div>
<img loading="lazy" src="lazy.jpg" width="500" height="400" alt="">
<img src="pixel.gif" data-src="datasrc.jpg" alt="">
<img loading="lazy" src="set-400.jpg" srcset="set-400.jpg 400w, set-1600.jpg 1600w" sizes="400px" alt="">
</body></html>
"""


def make_site(root: Path) -> None:
    """The page and its images: distinct photos (smooth random colour fields, so that no two
    look alike to the de-duplication), an icon, an ad, a placeholder pixel."""
    root.mkdir(parents=True)
    photos = [*EXPECTED, ("set-400.jpg", (400, 250))]
    for seed, (name, size) in enumerate(photos):
        rnd = Random(seed)
        grid = Image.new("RGB", (8, 6))
        grid.putdata([(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)) for _ in range(48)])
        grid.resize(size, Image.Resampling.BICUBIC).save(root / name, quality=85)
    Image.new("RGB", (16, 16), (200, 30, 30)).save(root / "icon.png")
    Image.new("RGB", (90, 60), (30, 200, 30)).save(root / "ad.png")
    Image.new("RGB", (1, 1), (255, 255, 255)).save(root / "pixel.gif")
    (root / "index.html").write_text(PAGE, encoding="utf-8")


def fitted(size: tuple[int, int], edge: int = 320) -> tuple[int, int]:
    scale = edge / max(size)
    return round(size[0] * scale), round(size[1] * scale)


def assert_expected_thumbnails(page: dict[str, Any]) -> None:
    thumbs = page["thumbs"]
    assert [t["source"].rsplit("/", 1)[1] for t in thumbs] == [name for name, _ in EXPECTED]
    assert [(t["natural_width"], t["natural_height"]) for t in thumbs] == [size for _, size in EXPECTED]
    assert [(t["width"], t["height"]) for t in thumbs] == [fitted(size) for _, size in EXPECTED]
    assert all(t["kind"] == "image" for t in thumbs)  # no screenshot unless asked for
    for thumb in thumbs:
        with Image.open(thumb["file"]) as image:
            assert image.size == (thumb["width"], thumb["height"])


async def command(driver: PeerProcess, event: str, timeout: float = 60, **cmd: Any) -> dict[str, Any]:
    await driver.write_line(json.dumps(cmd))
    return await driver.expect(event, timeout=timeout)


async def beam_setup(pc: Host, phone: Host, tmp: Path, via: str
                     ) -> tuple[PeerProcess, PeerProcess, PeerProcess, dict[str, Any]]:
    """Agent and phone paired and connected; Chromium on the test page with the extension
    linked to the agent. Returns (agent, phone, driver, the driver's "ready" event)."""
    make_site(tmp / "site")
    origin = await start_signal(pc, tmp)
    agent, url = await start_agent(pc, tmp / "pc", origin)
    joiner = await phone.peerbeam(["--json", "join", url, "--name", "Test Phone", "--downloads",
                                   str(tmp / "phone-dl")], home=tmp / "phone")
    await agent.expect("connected", name="Test Phone")
    await joiner.expect("connected", name="Desk PC")

    profile = tmp / "profile"
    code, events = await run_cli(pc, tmp / "pc", "install-extension-host", "--browser-dir", str(profile))
    assert code == 0, events
    assert [e["path"] for e in events if e["event"] == "installed"][-1] == str(
        profile / "NativeMessagingHosts" / "org.peerbeam.agent.json")

    (tmp / "chromium-home").mkdir()
    driver = await pc.spawn(
        [sys.executable, str(DRIVER), "--via", via, "--extension", str(EXTENSION), "--profile", str(profile),
         "--site", str(tmp / "site"), "--listen", f"{pc.address}:{SITE_PORT}"],
        env={"HOME": str(tmp / "chromium-home")}, cwd=REPO_ROOT)
    ready = await driver.expect("ready", timeout=90)
    # The service worker opened its native port at start-up; the host said hello to the agent.
    await agent.expect("extension", connected=True, timeout=30)
    return agent, joiner, driver, ready


async def test_toolbar_button_beams_the_tab_with_exactly_its_real_images_and_pulls_work(lan_pair, tmp_path):
    pc, phone = lan_pair
    agent, joiner, driver, ready = await beam_setup(pc, phone, tmp_path, via="playwright")
    page_url = f"http://{pc.address}:{SITE_PORT}/index.html"
    loaded = dict(ready["loaded"])
    # Before the click the DOM has not loaded the lazy images: the extension must find them.
    assert loaded["lazy.jpg"] == 0 and loaded["set-400.jpg"] == 0 and loaded["pixel.gif"] == 1
    assert loaded["hero.jpg"] == 1280

    await command(driver, "triggered", cmd="beam")
    (result,) = (await command(driver, "results", cmd="results", count=1))["results"]
    assert result["ok"] is True, result
    assert result["name"] == "Test Phone" and result["thumbnails"] == len(EXPECTED)
    page = await joiner.expect("page", timeout=60)
    assert page["url"] == page_url and page["title"] == TITLE and page["pull"] is None
    assert_expected_thumbnails(page)
    assert (await agent.expect("beamed"))["card"] == page["card"]

    # The phone pulls "the page the PC shows now": the agent asks the extension (capture); the
    # tab has not navigated since the click, so activeTab still lets it read the live DOM.
    code, events = await run_cli(phone, tmp_path / "phone", "pull")
    assert code == 0, events
    pulled = await joiner.expect("page", timeout=60)
    assert pulled["pull"] is not None and pulled["url"] == page_url
    assert_expected_thumbnails(pulled)

    # After a reload the grant is gone: the extension can name the tab but not read it, so the
    # agent fetches the page itself (as `send URL` does) and the card still has its pictures —
    # the ones the HTML names without script (the srcset and data-src ones need the live DOM).
    await command(driver, "reloaded", cmd="reload")
    code, events = await run_cli(phone, tmp_path / "phone", "pull")
    assert code == 0, events
    fetched = await joiner.expect("page", timeout=60)
    assert fetched["pull"] not in (None, pulled["pull"]) and fetched["url"] == page_url
    sources = [t["source"].rsplit("/", 1)[1] for t in fetched["thumbs"]]
    assert {"hero.jpg", "second.jpg"} <= set(sources) <= {name for name, _ in EXPECTED} | {"set-400.jpg"}
    assert sources != [name for name, _ in EXPECTED], "expected the agent's own fetch, not the live DOM"


def _host_pids(home: Path) -> list[int]:
    """PIDs of the native hosts Chromium started for this test's agent (their argv names its home)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"extension-host" in argv and os.fsencode(home) in argv:
            pids.append(int(entry.name))
    return pids


async def test_the_link_survives_idle_and_a_lost_host(lan_pair, tmp_path):
    """Driven over a bare CDP pipe (extension_driver.py --via pipe): Playwright would keep a
    debugger on the service worker, and Chromium never stops a worker that has one."""
    pc, phone = lan_pair
    agent, joiner, driver, _ = await beam_setup(pc, phone, tmp_path, via="pipe")
    await command(driver, "triggered", cmd="beam")
    first = await command(driver, "results", cmd="results", count=1)
    assert first["results"][0]["ok"] is True, first
    assert_expected_thumbnails(await joiner.expect("page", timeout=60))

    # Nothing touches the browser for longer than the worker's idle timeout. Time passing is
    # the point here: there is no event to await instead.
    await asyncio.sleep(IDLE_SECONDS)
    after = await command(driver, "results", cmd="results", count=1)
    assert after["worker"] == first["worker"] and after["started"] == first["started"]  # never restarted
    assert after["connects"] == 1  # the same native port all along
    assert after["state"]["type"] == "pong"  # its pings reached the agent and came back
    assert [e["connected"] for e in agent.events if e["event"] == "extension"] == [True]

    await command(driver, "triggered", cmd="beam")
    second = (await command(driver, "results", cmd="results", count=2))["results"][1]
    assert second["ok"] is True and second["name"] == "Test Phone", second
    assert_expected_thumbnails(await joiner.expect("page", timeout=60))

    # The host dies (as when it crashes): the extension reconnects with backoff, a new host says
    # hello, and the next beam goes through it.
    (host_pid,) = _host_pids(tmp_path / "pc")
    os.kill(host_pid, 9)
    await agent.expect("extension", connected=False, timeout=20)
    await agent.expect("extension", connected=True, timeout=20)
    await command(driver, "triggered", cmd="beam")
    results = await command(driver, "results", cmd="results", count=3)
    assert results["results"][2]["ok"] is True, results
    assert results["connects"] == 2
    assert_expected_thumbnails(await joiner.expect("page", timeout=60))
