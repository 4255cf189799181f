"""Cancelling a file mid-way, from either side, in either direction, in real Chromium as a
phone against the real agent: nothing partial is left as received, and both sides say so.

The sender's link is slowed with a real traffic shaper (`lab.shape(host, "16mbit")`: 20 MB
then take ~10 s), so the transfer is still running when the test acts; it acts once the
receiving side has reported progress. "Nothing left": the agent's downloads folder shows no
file and no .part, and the page's IndexedDB store `peerbeam-files` holds no file and no piece
(the page marks a row cancelled only after it removed the pieces, net/files.js).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_phone_app import Phone, pair_phone
from tests.integration.test_phone_beam import make_file
from tests.lab import Host, Lab
from tests.peer_process import PeerProcess

pytestmark = pytest.mark.netns

MB = 1024 * 1024

STORED = """(async () => {
  const db = await new Promise((ok, no) => { const r = indexedDB.open('peerbeam-files'); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
  const count = (store) => new Promise((ok) => { const r = db.transaction(store).objectStore(store).count(); r.onsuccess = () => ok(r.result); });
  return { files: await count('files'), pieces: await count('pieces') };
})()"""


def visible(folder: Path) -> list[str]:
    """What a user sees in the downloads folder (the resume index is a dot-folder)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.exists() else []


async def paired(lab: Lab, tmp: Path) -> tuple[Host, Host, PeerProcess, Phone]:
    pc, phone_host = lab.lan_pair()
    agent, phone, _ = await pair_phone(pc, phone_host, tmp, agent_args=("--downloads", str(tmp / "pc-dl")))
    return pc, phone_host, agent, phone


async def phone_to_pc(lab: Lab, tmp: Path) -> tuple[Host, PeerProcess, Phone, dict[str, Any]]:
    """A 20 MB file from the phone, accepted by the PC's user, running (the agent reported
    progress) over a slowed phone link."""
    pc, phone_host, agent, phone = await paired(lab, tmp)
    lab.shape(phone_host, "16mbit")
    src = tmp / "from-phone.bin"
    make_file(src, 20 * MB)
    await phone.do("files", selector="#file-input", paths=[str(src)])
    asked = await agent.expect("confirm_file", file="from-phone.bin", timeout=60)
    await agent.write_line("y")
    running = await agent.expect("progress", direction="in", timeout=30)
    assert 0 < running["done"] < 20 * MB
    return pc, agent, phone, asked


async def pc_to_phone(lab: Lab, tmp: Path) -> tuple[Host, PeerProcess, Phone, PeerProcess, dict[str, Any]]:
    """`peerbeam send` of 20 MB to the phone over a slowed PC link, running (the page shows
    some of it arrived)."""
    pc, _, agent, phone = await paired(lab, tmp)
    lab.shape(pc, "16mbit")
    src = tmp / "from-pc.bin"
    make_file(src, 20 * MB)
    sender = await pc.peerbeam(["--json", "send", str(src), "--to", "Android phone"], home=tmp / "pc")
    offered = await sender.expect("offered", timeout=60)
    await phone.do("wait", js="Number(document.querySelector('#transfers li.in')?.dataset.done) > 0", timeout=30)
    return pc, agent, phone, sender, offered


async def assert_nothing_left(phone: Phone, tmp: Path) -> None:
    assert visible(tmp / "pc-dl") == []
    assert await phone.eval(STORED) == {"files": 0, "pieces": 0}
    # And the page offers nothing to save.
    assert await phone.eval("document.querySelectorAll('#transfers .save-file').length") == 0


async def test_phone_cancels_its_own_upload(lab, tmp_path):
    pc, agent, phone, asked = await phone_to_pc(lab, tmp_path)
    await phone.tap("#transfers li.out .cancel")
    cancelled = await agent.expect("transfer_cancelled", by="peer", timeout=20)
    assert cancelled["file"] == "from-phone.bin" and cancelled["id"] == asked["id"]
    row = await phone.do("wait", js="document.querySelector('#transfers li.out[data-state=cancelled]')?.innerText")
    assert "You cancelled" in row["value"]
    await phone.shot("30-cancel-upload")
    await assert_nothing_left(phone, tmp_path)


async def test_phone_cancels_a_download(lab, tmp_path):
    pc, agent, phone, sender, offered = await pc_to_phone(lab, tmp_path)
    await phone.tap("#transfers li.in .cancel")
    stopped = await sender.expect("transfer_cancelled", by="peer", timeout=20)
    assert stopped["file"] == "from-pc.bin" and stopped["id"] == offered["id"]
    assert await sender.wait(timeout=20) == 1
    await agent.expect("transfer_cancelled", by="peer", timeout=20)
    row = await phone.do("wait", js="document.querySelector('#transfers li.in[data-state=cancelled]')?.innerText")
    assert "You cancelled" in row["value"]
    await phone.shot("31-cancel-download")
    await assert_nothing_left(phone, tmp_path)


async def test_pc_cancels_an_upload_from_the_phone(lab, tmp_path):
    pc, agent, phone, asked = await phone_to_pc(lab, tmp_path)
    proc = await pc.peerbeam(["--json", "cancel", asked["id"]], home=tmp_path / "pc")
    assert await proc.wait() == 0 and proc.events[-1]["ids"] == [asked["id"]]
    await agent.expect("transfer_cancelled", by="local", timeout=20)
    row = await phone.do("wait", js="document.querySelector('#transfers li.out[data-state=cancelled]')?.innerText")
    assert "Desk PC cancelled" in row["value"]
    await assert_nothing_left(phone, tmp_path)


async def test_pc_cancels_a_download_to_the_phone(lab, tmp_path):
    pc, agent, phone, sender, offered = await pc_to_phone(lab, tmp_path)
    proc = await pc.peerbeam(["--json", "cancel", offered["id"]], home=tmp_path / "pc")
    assert await proc.wait() == 0 and proc.events[-1]["ids"] == [offered["id"]]
    assert await sender.wait(timeout=20) == 1
    await agent.expect("transfer_cancelled", by="local", timeout=20)
    row = await phone.do("wait", js="document.querySelector('#transfers li.in[data-state=cancelled]')?.innerText")
    assert "Desk PC cancelled" in row["value"]
    await phone.shot("32-pc-cancelled-download")
    await assert_nothing_left(phone, tmp_path)
