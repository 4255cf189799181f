"""Page sync between two real peers over a real data channel: the agent (PC) and a headless
Python peer (the phone's stand-in, which holds the same document as the phone app does).

Lab: "pc" and "phone" on one link; the signaling server, the agent and the article site in
"pc" (the agent makes the reader view itself with readability-lxml: `sync start URL`), the
peer in "phone". Offline edits are made while iptables drops everything between the two.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_pairing import PORT, pair, run_cli, start_agent
from tests.lab import Host
from tests.peer_process import PeerProcess

pytestmark = pytest.mark.netns

SITE_PORT = 8081
PARAGRAPHS = 60


def write_article(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    body = "\n".join(
        f"<p>Paragraph {i}. The tide comes in twice a day and the moon pulls the water along the coast; "
        f"harbours empty and fill on a schedule that every sailor learns by heart, year after year.</p>"
        for i in range(PARAGRAPHS))
    (root / "article.html").write_text(
        "<!doctype html><html><head><meta charset=utf-8><title>Tides</title></head><body>"
        "<nav><a href='/'>Home</a> <a href='/about'>About</a></nav>"
        f"<article><h1>Tides of the North Sea</h1>{body}</article>"
        "<footer>Copyright Example News</footer></body></html>", encoding="utf-8")


async def start_site(pc: Host, root: Path) -> str:
    write_article(root)
    await pc.spawn([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(root),
                    str(SITE_PORT)])
    for _ in range(100):  # http.server prints nothing useful before it serves
        if pc.run(["python3", "-c", f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{SITE_PORT}/article.html')"]).returncode == 0:
            return f"http://127.0.0.1:{SITE_PORT}"
        await asyncio.sleep(0.1)
    raise AssertionError("the article site did not start")


async def sync_cli(host: Host, home: Path, *args: str) -> dict[str, Any]:
    code, events = await run_cli(host, home, "sync", *args)
    assert code == 0, events
    return events[-1]


async def show(host: Host, home: Path) -> dict[str, Any]:
    return await sync_cli(host, home, "show")


async def op(host: Host, home: Path, name: str, **args: Any) -> None:
    await sync_cli(host, home, "op", name, json.dumps(args))


async def until_equal(pc: Host, phone: Host, tmp: Path, check: Any = None, timeout: float = 15) -> dict[str, Any]:
    """Both documents hold the same state (and it passes ``check``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        a, b = await show(pc, tmp / "pc"), await show(phone, tmp / "phone")
        if a["state"] == b["state"] and (check is None or check(a["state"])):
            return a["state"]
        if loop.time() > deadline:
            raise AssertionError(f"documents differ:\n{a['state']}\n{b['state']}")
        await asyncio.sleep(0.2)


async def synced_pair(lan_pair: tuple[Host, Host], tmp: Path) -> tuple[PeerProcess, PeerProcess, str, dict[str, Any]]:
    pc, phone = lan_pair
    site = await start_site(pc, tmp / "site")
    agent, joiner, _ = await pair(pc, phone, tmp)
    started = await sync_cli(pc, tmp / "pc", "start", f"{site}/article.html")
    return agent, joiner, site, started


async def test_a_started_session_reaches_the_phone_with_its_reader_view_and_ops_flow_both_ways(lan_pair, tmp_path):
    pc, phone = lan_pair
    agent, joiner, site, started = await synced_pair(lan_pair, tmp_path)
    assert started["url"] == f"{site}/article.html" and started["blocks"] == PARAGRAPHS + 1
    tab = started["tab"]
    opened = await joiner.expect("sync_started", by="peer")
    assert opened["doc"] == started["doc"]
    reader = await joiner.expect("sync_reader")
    assert reader["blocks"] == PARAGRAPHS + 1 and reader["card"] == started["card"]
    shown = await show(phone, tmp_path / "phone")
    blocks = shown["readers"][started["card"]]["blocks"]
    assert blocks[0] == ["h1", "Tides of the North Sea", None]
    assert [b[1].split(".")[0] for b in blocks[1:]] == [f"Paragraph {i}" for i in range(PARAGRAPHS)]
    assert not any("Copyright" in b[1] or b[1] == "Home" for b in blocks)

    # PC → phone: a scroll; phone → PC: a bookmark and a highlight with a note.
    await op(pc, tmp_path / "pc", "scroll", tab=tab, fraction=0.5, block=30, offset=0.25)
    state = await until_equal(pc, phone, tmp_path, lambda s: tab in s["scroll"])
    assert state["scroll"][tab]["block"] == 30 and state["scroll"][tab]["by"] == "pc"
    assert any(e["event"] == "sync_applied" and tab in e["state"]["scroll"] for e in joiner.events)
    await op(phone, tmp_path / "phone", "add_bookmark", id="b" * 16, url=f"{site}/article.html", title="Tides",
             created=1.0)
    await op(phone, tmp_path / "phone", "add_highlight", id="a" * 16, url=f"{site}/article.html", block=3, start=0,
             end=11, quote="Paragraph 2", note="", color="yellow")
    await op(phone, tmp_path / "phone", "edit_highlight", id="a" * 16, note="check this")
    state = await until_equal(pc, phone, tmp_path, lambda s: s["highlights"].get("a" * 16, {}).get("note"))
    assert state["bookmarks"]["b" * 16]["by"] == "phone" and state["highlights"]["a" * 16]["note"] == "check this"
    assert state["scroll"][tab]["block"] == 30

    # Stop on the phone side: both drop the document.
    await sync_cli(phone, tmp_path / "phone", "stop")
    await agent.expect("sync_stopped")
    code, events = await run_cli(pc, tmp_path / "pc", "sync", "show")
    assert code == 1 and events[-1]["code"] == "not_syncing"


async def test_edits_made_while_apart_merge_when_the_devices_meet_again(lan_pair, tmp_path):
    pc, phone = lan_pair
    agent, joiner, site, started = await synced_pair(lan_pair, tmp_path)
    tab = started["tab"]
    await joiner.expect("sync_reader")
    url = f"{site}/article.html"
    await op(pc, tmp_path / "pc", "add_bookmark", id="1" * 16, url=url, title="shared", created=1.0)
    await op(pc, tmp_path / "pc", "add_highlight", id="2" * 16, url=url, block=5, start=0, end=9, quote="Paragraph",
             note="", color="yellow")
    await until_equal(pc, phone, tmp_path, lambda s: "2" * 16 in s["highlights"])

    # Apart: nothing passes between the namespaces; both sides notice and keep their documents.
    for host in (pc, phone):
        host.run(["iptables", "-I", "INPUT", "-s", (phone if host is pc else pc).address, "-j", "DROP"], check=True)
    await agent.expect("disconnected", name="Test Phone", timeout=40)
    await joiner.expect("disconnected", name="Desk PC", timeout=40)
    await op(pc, tmp_path / "pc", "rename_bookmark", id="1" * 16, title="renamed on the PC")
    await op(pc, tmp_path / "pc", "add_bookmark", id="3" * 16, url=url, title="from the PC", created=2.0)
    await op(pc, tmp_path / "pc", "edit_highlight", id="2" * 16, color="green")
    await op(pc, tmp_path / "pc", "scroll", tab=tab, fraction=0.2, block=12, offset=0.0)
    await op(phone, tmp_path / "phone", "delete_bookmark", id="1" * 16)
    await op(phone, tmp_path / "phone", "add_bookmark", id="4" * 16, url=url, title="from the phone", created=3.0)
    await op(phone, tmp_path / "phone", "edit_highlight", id="2" * 16, note="noted on the phone")
    assert "3" * 16 not in (await show(phone, tmp_path / "phone"))["state"]["bookmarks"]

    for host in (pc, phone):
        host.run(["iptables", "-D", "INPUT", "-s", (phone if host is pc else pc).address, "-j", "DROP"], check=True)
    await agent.expect("connected", name="Test Phone", timeout=60)
    state = await until_equal(pc, phone, tmp_path, lambda s: "4" * 16 in s["bookmarks"] and "3" * 16 in s["bookmarks"])
    # Both sides' new bookmarks, once each; the delete beat the concurrent rename; the
    # highlight kept the PC's colour and the phone's note; the scroll made apart is there.
    assert sorted(b["title"] for b in state["bookmarks"].values()) == ["from the PC", "from the phone"]
    assert state["highlights"]["2" * 16]["color"] == "green"
    assert state["highlights"]["2" * 16]["note"] == "noted on the phone"
    assert state["scroll"][tab]["block"] == 12


async def test_the_document_and_the_reader_view_survive_restarts_of_both_sides(lan_pair, tmp_path):
    pc, phone = lan_pair
    agent, joiner, site, started = await synced_pair(lan_pair, tmp_path)
    await joiner.expect("sync_reader")
    await op(phone, tmp_path / "phone", "add_bookmark", id="5" * 16, url=f"{site}/article.html", title="kept",
             created=1.0)
    await until_equal(pc, phone, tmp_path, lambda s: "5" * 16 in s["bookmarks"])
    await joiner.stop()
    await agent.stop()
    # Both come back from their disks. The agent kept the document but not the reader view's
    # card, which the phone asks for again: the agent makes the view anew, under a new card.
    agent2, _ = await start_agent(pc, tmp_path / "pc", f"http://{pc.address}:{PORT}")
    peer = await phone.peerbeam(["--json", "connect", "Desk PC", "--timeout", "20"], home=tmp_path / "phone")
    await peer.expect("connected", name="Desk PC")
    reader = await peer.expect("sync_reader", timeout=30)
    assert reader["card"] != started["card"] and reader["blocks"] == PARAGRAPHS + 1
    state = await until_equal(pc, phone, tmp_path, lambda s: s["reader"][started["tab"]]["card"] == reader["card"])
    assert state["bookmarks"]["5" * 16]["title"] == "kept"


async def test_unpairing_drops_the_shared_document_on_both_sides(lan_pair, tmp_path):
    pc, phone = lan_pair
    agent, joiner, site, started = await synced_pair(lan_pair, tmp_path)
    await joiner.expect("sync_started", by="peer")
    await sync_cli(pc, tmp_path / "pc", "show")
    code, _ = await run_cli(pc, tmp_path / "pc", "unpair", "Test Phone")
    assert code == 0
    await joiner.expect("unpaired")
    for host, home in ((pc, tmp_path / "pc"), (phone, tmp_path / "phone")):
        code, events = await run_cli(host, home, "sync", "show")
        assert code == 1 and events[-1]["code"] == "not_syncing"
        assert not list((home / "sync").glob("*.bin"))
