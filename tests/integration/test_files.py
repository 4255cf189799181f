"""File transfers end to end: real `peerbeam` processes in two namespaces, real aiortc.

`agent` runs in "pc" and `join` in "phone"; `peerbeam send FILE` talks to the running process
through its control socket, as a user's second terminal would. Where a transfer must still be
running when the test acts (cancel, kill), the sender's link is slowed with a real traffic
shaper (tc) instead of hoping the machine is slow enough.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_pairing import start_agent, start_signal
from tests.lab import REPO_ROOT, Host, Lab
from tests.peer_process import PeerProcess

pytestmark = pytest.mark.netns

MB = 1024 * 1024


def make_file(path: Path, size: int) -> str:
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def visible(folder: Path) -> list[str]:
    """What a user sees in the downloads folder (the resume index is a dot-folder)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.exists() else []


async def paired(pc: Host, phone: Host, tmp: Path, *phone_args: str) -> tuple[PeerProcess, PeerProcess]:
    origin = await start_signal(pc, tmp)
    agent, url = await start_agent(pc, tmp / "pc", origin, "--downloads", str(tmp / "pc-dl"))
    joiner = await phone.peerbeam(["--json", "join", url, "--name", "Test Phone", "--downloads",
                                   str(tmp / "phone-dl"), *phone_args], home=tmp / "phone")
    await agent.expect("connected", name="Test Phone")
    await joiner.expect("connected", name="Desk PC")
    return agent, joiner


async def send(host: Host, home: Path, *args: str) -> PeerProcess:
    return await host.peerbeam(["--json", "send", *args], home=home)


async def test_20_mb_both_ways_with_progress_and_matching_hash(lan_pair, tmp_path):
    pc, phone = lan_pair
    agent, joiner = await paired(pc, phone, tmp_path, "--auto-accept")
    for host, home, receiver, dl, size in ((pc, "pc", joiner, "phone-dl", 20 * MB),
                                           (phone, "phone", agent, "pc-dl", 20 * MB + 12345)):
        src = tmp_path / f"from-{home}.bin"
        digest = make_file(src, size)
        sender = await send(host, tmp_path / home, str(src))
        assert await sender.wait(timeout=120) == 0, sender.stderr_tail
        sent = await sender.expect("sent_file")
        assert sent["sha256"] == digest and sent["size"] == size and sent["resumed_from"] == 0
        # The sender's progress is what the receiver confirmed, with a rate and an ETA.
        progress = [e for e in sender.events if e["event"] == "progress"]
        assert progress and progress[-1]["done"] == size
        assert any(e["rate"] and e["rate"] > 0 for e in progress)
        got = await receiver.expect("received_file", file=src.name)
        assert got["sha256"] == digest
        assert sha256_of(Path(got["path"])) == digest
        assert Path(got["path"]).parent == tmp_path / dl
        assert visible(tmp_path / dl) == [src.name]  # no .part left behind
        assert [e for e in receiver.events if e["event"] == "progress" and e["id"] == sent["id"]]

    # The same name again never overwrites: it gets a suffix.
    src = tmp_path / "from-pc.bin"
    sender = await send(pc, tmp_path / "pc", str(src))
    assert await sender.wait(timeout=120) == 0
    got = await joiner.expect("received_file", file="from-pc (1).bin")
    assert sha256_of(Path(got["path"])) == sha256_of(src)


async def test_receiver_is_asked_and_can_decline(lan_pair, tmp_path):
    pc, phone = lan_pair
    agent, joiner = await paired(pc, phone, tmp_path)  # the phone peer asks about each file
    src = tmp_path / "holiday.jpg"
    make_file(src, 300_000)

    sender = await send(pc, tmp_path / "pc", str(src))
    asked = await joiner.expect("confirm_file", file="holiday.jpg")
    assert asked["size"] == 300_000 and asked["name"] == "Desk PC"
    await joiner.write_line("n")
    assert await sender.wait(timeout=30) == 1
    await sender.expect("transfer_rejected", by="peer")
    assert visible(tmp_path / "phone-dl") == []

    sender = await send(pc, tmp_path / "pc", str(src))
    await joiner.expect("confirm_file", file="holiday.jpg")
    await joiner.write_line("y")
    assert await sender.wait(timeout=30) == 0
    got = await joiner.expect("received_file", file="holiday.jpg")
    assert sha256_of(Path(got["path"])) == sha256_of(src)


async def test_sender_cancels_with_ctrl_c_and_nothing_is_left(lab: Lab, tmp_path):
    pc, phone = lab.lan_pair()
    agent, joiner = await paired(pc, phone, tmp_path, "--auto-accept")
    lab.shape(pc, "16mbit")  # 20 MB now takes ~10 s
    src = tmp_path / "big.bin"
    make_file(src, 20 * MB)
    sender = await send(pc, tmp_path / "pc", str(src))
    await joiner.expect("incoming", file="big.bin")
    await joiner.expect("progress", timeout=30)
    os.killpg(sender.pid, signal.SIGINT)
    await sender.wait(timeout=10)
    cancelled = await joiner.expect("transfer_cancelled", by="peer", timeout=15)
    assert "stopped" in cancelled["message"]
    await agent.expect("transfer_cancelled", by="local")
    assert visible(tmp_path / "phone-dl") == []
    assert list((tmp_path / "phone-dl" / ".peerbeam").iterdir()) == []  # no resume index either


async def test_receiver_cancels_and_the_sender_is_told(lab: Lab, tmp_path):
    pc, phone = lab.lan_pair()
    agent, joiner = await paired(pc, phone, tmp_path, "--auto-accept")
    lab.shape(pc, "16mbit")
    src = tmp_path / "big.bin"
    make_file(src, 20 * MB)
    sender = await send(pc, tmp_path / "pc", str(src))
    incoming = await joiner.expect("incoming", file="big.bin")
    await joiner.expect("progress", timeout=30)
    proc = await phone.peerbeam(["--json", "cancel", incoming["id"]], home=tmp_path / "phone")
    assert await proc.wait() == 0
    assert await sender.wait(timeout=15) == 1
    stopped = await sender.expect("transfer_cancelled", by="peer")
    assert stopped["file"] == "big.bin"
    await joiner.expect("transfer_cancelled", by="local")
    assert visible(tmp_path / "phone-dl") == []

    proc = await phone.peerbeam(["--json", "cancel", "0123456789abcdef"], home=tmp_path / "phone")
    assert await proc.wait() == 1
    assert proc.events[-1]["code"] == "unknown_transfer"


async def test_killed_sender_resumes_after_restart_and_the_hash_matches(lab: Lab, tmp_path):
    pc, phone = lab.lan_pair()
    origin = await start_signal(pc, tmp_path)
    agent, url = await start_agent(pc, tmp_path / "pc", origin)
    joiner = await phone.peerbeam(["--json", "join", url, "--name", "Test Phone", "--auto-accept",
                                   "--downloads", str(tmp_path / "phone-dl")], home=tmp_path / "phone")
    await joiner.expect("connected", name="Desk PC")
    lab.shape(pc, "16mbit")
    src = tmp_path / "big.bin"
    digest = make_file(src, 20 * MB)

    sender = await send(pc, tmp_path / "pc", str(src))
    await joiner.expect("incoming", file="big.bin", offset=0)
    progress = await joiner.expect("progress", timeout=30)
    while progress["done"] < 4 * MB:
        progress = await joiner.expect("progress", timeout=30)
    os.killpg(agent.pid, signal.SIGKILL)  # the sender dies mid-transfer, no goodbye
    await agent.wait(timeout=10)
    await sender.wait(timeout=10)
    interrupted = await joiner.expect("transfer_interrupted", timeout=40)
    assert interrupted["done"] >= 4 * MB
    assert (tmp_path / "phone-dl" / "big.bin.part").exists()  # kept for the resume
    assert not (tmp_path / "phone-dl" / "big.bin").exists()

    lab.shape(pc, "1gbit")
    agent = await pc.peerbeam(["--json", "agent", "--name", "Desk PC", "--server", origin, "--auto-accept",
                               "--qr-png", str(tmp_path / "pc" / "qr2.png")], home=tmp_path / "pc")
    await agent.expect("connected", name="Test Phone", timeout=60)
    sender = await send(pc, tmp_path / "pc", str(src))
    assert await sender.wait(timeout=120) == 0, sender.stdout_tail
    accepted = await sender.expect("accepted")
    assert accepted["offset"] >= 4 * MB  # resumed, not restarted
    resumed = await joiner.expect("incoming", file="big.bin")
    assert resumed["offset"] == accepted["offset"]
    got = await joiner.expect("received_file", file="big.bin")
    assert got["sha256"] == digest and sha256_of(Path(got["path"])) == digest
    assert visible(tmp_path / "phone-dl") == ["big.bin"]


async def test_a_full_disk_refuses_the_offer_and_writes_nothing(lan_pair, tmp_path):
    pc, phone = lan_pair
    small = tmp_path / "small-disk"
    small.mkdir()
    # Mounted here, before the agent starts: `ip netns exec` gives each command its own copy
    # of the mount table, so a mount made through it would be invisible to the agent.
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        origin = await start_signal(pc, tmp_path)
        agent, url = await start_agent(pc, tmp_path / "pc", origin, "--downloads", str(small))
        joiner = await phone.peerbeam(["--json", "join", url, "--name", "Test Phone"], home=tmp_path / "phone")
        await joiner.expect("connected", name="Desk PC")
        src = tmp_path / "video.bin"
        make_file(src, 3 * MB)
        sender = await send(phone, tmp_path / "phone", str(src))
        assert await sender.wait(timeout=30) == 1
        refused = await sender.expect("transfer_rejected", by="peer")
        assert "space" in refused["message"]
        await agent.expect("transfer_rejected", code="disk_full")
        assert visible(small) == []
    finally:
        subprocess.run(["umount", str(small)], check=False)


async def test_sending_what_is_not_a_file_is_a_clear_error(lan_pair, tmp_path):
    pc, phone = lan_pair
    await paired(pc, phone, tmp_path, "--auto-accept")
    proc = await send(pc, tmp_path / "pc", str(tmp_path / "nope.bin"))
    assert await proc.wait() == 2
    assert proc.events[-1]["event"] == "error" and "Not a file" in proc.events[-1]["message"]


HOSTILE = Path(__file__).with_name("hostile_sender.py")


@pytest.mark.parametrize(("mode", "code"), [("lie-hash", "hash_mismatch"), ("lie-size", "bad_frame")])
async def test_a_lying_sender_gets_nothing_saved(lan_pair, tmp_path, mode, code):
    pc, phone = lan_pair
    origin = await start_signal(pc, tmp_path)
    dl = tmp_path / "pc-dl"
    agent, url = await start_agent(pc, tmp_path / "pc", origin, "--downloads", str(dl))
    hostile = await phone.spawn([sys.executable, str(HOSTILE), url, str(tmp_path / "phone"), mode], cwd=REPO_ROOT)
    failed = await agent.expect("transfer_failed", code=code, timeout=30)
    assert failed["by"] == "local" and failed["message"]
    told = await hostile.expect("got", t="transfer.failed", timeout=10)
    assert told["code"] == code
    assert visible(dl) == []  # no file, no .part: nothing looks received
    assert not [e for e in agent.events if e["event"] == "received_file"]


async def test_a_stalled_sender_is_stopped_and_the_partial_kept_for_a_resume(lan_pair, tmp_path):
    pc, phone = lan_pair
    origin = await start_signal(pc, tmp_path)
    dl = tmp_path / "pc-dl"
    agent, url = await start_agent(pc, tmp_path / "pc", origin, "--downloads", str(dl), "--stall-timeout", "2")
    hostile = await phone.spawn([sys.executable, str(HOSTILE), url, str(tmp_path / "phone"), "stall"],
                                cwd=REPO_ROOT)
    failed = await agent.expect("transfer_failed", code="stalled", timeout=30)
    assert "kept" in failed["message"]
    await hostile.expect("got", t="transfer.failed", code="stalled")
    assert visible(dl) == ["honest.bin.part"]
    assert (dl / "honest.bin.part").stat().st_size > 0


@pytest.mark.parametrize(("mode", "code"), [("oversize", "frame_too_large"), ("junk", "rate_limited")])
async def test_oversized_messages_and_junk_frames_are_refused_and_the_session_goes_on(lan_pair, tmp_path, mode,
                                                                                       code):
    pc, phone = lan_pair
    origin = await start_signal(pc, tmp_path)
    agent, url = await start_agent(pc, tmp_path / "pc", origin)
    hostile = await phone.spawn([sys.executable, str(HOSTILE), url, str(tmp_path / "phone"), mode], cwd=REPO_ROOT)
    refused = await hostile.expect("got", t="error", code=code, timeout=60)
    assert refused["message"]
    await agent.expect("message", text="still here", timeout=30)  # the session survived
