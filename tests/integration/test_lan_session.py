"""Same LAN, no server needed (issue 5): real `peerbeam` processes in the LAN lab.

lan1 runs the agent (no --server: its embedded signaling server runs, but the peer's pairing
record is pointed at a port where nothing listens, so the peer cannot have used it), lan2 the
paired peer, lan3 a stranger. The peer finds the agent by mDNS, connects to its LAN port, runs
the KK handshake there, and files then take the LAN fast path.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from crypto.records import decode_records, encode_records
from tests.integration.test_pairing import start_agent
from tests.lab import REPO_ROOT, Host, Lab
from tests.lan_lab import LanLab
from tests.peer_process import PeerProcess

pytestmark = pytest.mark.netns

MB = 1024 * 1024
HERE = Path(__file__).parent
FAST = "LAN fast path"
# Nothing listens on port 9 of lan1: a record pointing there has no reachable server.
DEAD_SERVER = "http://198.51.100.1:9"


def make_file(path: Path, size: int) -> str:
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def set_server(home: Path, server: str) -> None:
    """Point the pairing record(s) in `home` at another signaling origin ("" for none)."""
    path = home / "pairings.json"
    records = decode_records(path.read_bytes())
    path.write_bytes(encode_records([msgspec.structs.replace(r, server=server) for r in records]))


async def agent_on_lan(lan: LanLab, tmp: Path, *extra: str) -> tuple[PeerProcess, dict[str, Any], str]:
    """`peerbeam agent` in lan1, embedded server, LAN port advertised; returns its "lan" event."""
    agent, url = await start_agent(lan.lan1, tmp / "pc", None, "--downloads", str(tmp / "pc-dl"), *extra)
    lan_event = await agent.expect("lan")
    assert lan_event["addresses"][0] == lan.lan1.address and lan_event["port"] > 0
    return agent, lan_event, url


async def pair_then_part(lan: LanLab, tmp: Path, *agent_args: str) -> tuple[PeerProcess, dict[str, Any]]:
    """Pair lan2 with the agent through the QR, then stop lan2's process: the next contact is
    a reconnect."""
    agent, lan_event, url = await agent_on_lan(lan, tmp, *agent_args)
    joiner = await lan.lan2.peerbeam(["--json", "join", url, "--name", "Test Phone", "--auto-accept",
                                      "--downloads", str(tmp / "phone-dl")], home=tmp / "phone")
    await joiner.expect("connected", name="Desk PC")
    await agent.expect("connected", name="Test Phone")
    await joiner.stop()
    await agent.expect("disconnected", name="Test Phone", timeout=30)
    return agent, lan_event


async def connect(host: Host, tmp: Path, *args: str) -> PeerProcess:
    return await host.peerbeam(["--json", "connect", "Desk PC", "--auto-accept", "--connect-timeout", "8",
                                "--downloads", str(tmp / "phone-dl"), *args], home=tmp / "phone")


async def send_and_check(host: Host, home: Path, src: Path, digest: str, receiver: PeerProcess) -> None:
    sender = await host.peerbeam(["--json", "send", str(src)], home=home)
    assert await sender.wait(timeout=120) == 0, sender.stdout_tail + sender.stderr_tail
    accepted = await sender.expect("accepted")
    sent = await sender.expect("sent_file")
    assert accepted["via"] == sent["via"] == FAST
    assert sent["sha256"] == digest
    assert all(e["via"] == FAST for e in sender.events if e["event"] == "progress")
    got = await receiver.expect("received_file", file=src.name, timeout=30)
    # The receiver says where the frames really came from.
    assert got["via"] == FAST and got["sha256"] == digest
    assert hashlib.sha256(Path(got["path"]).read_bytes()).hexdigest() == digest


async def test_peer_finds_the_agent_by_mdns_connects_without_a_server_and_files_take_the_fast_path(
        lan_lab: LanLab, tmp_path: Path) -> None:
    agent, lan_event = await pair_then_part(lan_lab, tmp_path)
    set_server(tmp_path / "phone", DEAD_SERVER)

    peer = await connect(lan_lab.lan2, tmp_path)
    path = (await peer.expect("connected", name="Desk PC", timeout=30))["path"]
    assert path["rendezvous"] == "lan" and path["files_via"] == FAST
    assert path["lan_peer"] == f"{lan_lab.lan1.address}:{lan_event['port']}"
    assert path["kind"] == "lan" and path["local_type"] == path["remote_type"] == "host"
    agent_path = (await agent.expect("connected", name="Test Phone"))["path"]
    assert agent_path["rendezvous"] == "lan" and agent_path["files_via"] == FAST
    # It never went near a server: no waiting at a rendezvous, no error about one.
    assert not [e for e in peer.events if e["event"] in ("waiting", "error")]

    src = tmp_path / "from-pc.bin"
    await send_and_check(lan_lab.lan1, tmp_path / "pc", src, make_file(src, 20 * MB), peer)
    src = tmp_path / "from-phone.bin"
    await send_and_check(lan_lab.lan2, tmp_path / "phone", src, make_file(src, 20 * MB + 4321), agent)

    # Text (control messages) still flows on the data channel of the same session.
    sender = await lan_lab.lan2.peerbeam(["--json", "send", "--text", "over the LAN"], home=tmp_path / "phone")
    assert await sender.wait() == 0
    await agent.expect("message", text="over the LAN")


async def test_sender_without_the_fast_path_uses_the_data_channel(lan_lab: LanLab, tmp_path: Path) -> None:
    """The fast path is the sender's choice; the receiver takes frames either way."""
    agent, _ = await pair_then_part(lan_lab, tmp_path)
    set_server(tmp_path / "phone", DEAD_SERVER)
    peer = await connect(lan_lab.lan2, tmp_path, "--no-fast-path")
    path = (await peer.expect("connected", name="Desk PC", timeout=30))["path"]
    assert path["rendezvous"] == "lan" and path["files_via"] == "data channel"
    src = tmp_path / "slow.bin"
    digest = make_file(src, 3 * MB)
    sender = await lan_lab.lan2.peerbeam(["--json", "send", str(src)], home=tmp_path / "phone")
    assert await sender.wait(timeout=60) == 0
    assert (await sender.expect("sent_file"))["via"] == "data channel"
    got = await agent.expect("received_file", file=src.name)
    assert got["via"] == "data channel" and got["sha256"] == digest


STRANGER = HERE / "lan_stranger.py"


async def test_a_stranger_is_refused_learns_nothing_and_the_agent_keeps_working(
        lan_lab: LanLab, tmp_path: Path) -> None:
    agent, lan_event = await pair_then_part(lan_lab, tmp_path)
    agent_key = (decode_records((tmp_path / "phone" / "pairings.json").read_bytes())[0]).peer_key
    target = f"{lan_lab.lan1.address}:{lan_event['port']}"
    # lan3 runs a full KK initiator with its own identity and pair secret — it even knows the
    # agent's public key (it saw a QR once) — then junk, then silence.
    stranger = await lan_lab.lan3.spawn([sys.executable, str(STRANGER), target, agent_key.hex()],
                                        env={"PYTHONUNBUFFERED": "1"}, cwd=REPO_ROOT)
    for mode in ("handshake", "junk", "silence"):
        result = await stranger.expect("result", mode=mode, timeout=20)
        assert result["closed"] is True and result["received"] == 0, result
    assert await stranger.wait(timeout=10) == 0
    refused = [e for e in agent.events if e["event"] == "lan_refused"]
    assert [e["reason"] for e in refused] == ["handshake refused: no pairing matches",
                                             "not the peerbeam LAN protocol", "no handshake in time"]
    assert all(e["address"].startswith(f"{lan_lab.lan3.address}:") for e in refused)
    assert not [e for e in agent.events if e["event"] == "connected" and e["name"] != "Test Phone"]

    # The agent is unharmed: the paired peer connects over the LAN and a file goes through.
    set_server(tmp_path / "phone", DEAD_SERVER)
    peer = await connect(lan_lab.lan2, tmp_path)
    assert (await peer.expect("connected", name="Desk PC", timeout=30))["path"]["rendezvous"] == "lan"
    src = tmp_path / "after.bin"
    await send_and_check(lan_lab.lan1, tmp_path / "pc", src, make_file(src, 2 * MB), peer)


ROGUE = HERE / "lan_rogue.py"


@pytest.mark.parametrize("answer", ["garbage", "silence"])
async def test_a_rogue_copying_the_advert_gets_nothing_and_the_peer_still_reaches_its_agent(
        lan_lab: LanLab, tmp_path: Path, answer: str) -> None:
    agent, lan_event = await pair_then_part(lan_lab, tmp_path)
    set_server(tmp_path / "phone", DEAD_SERVER)
    phone_key = decode_records((tmp_path / "pc" / "pairings.json").read_bytes())[0].peer_key
    # The rogue in lan3 copies the agent's TXT record (its tags) into an advert of its own,
    # for a port where it answers the handshake with `answer`.
    rogue = await lan_lab.lan3.spawn([sys.executable, str(ROGUE), answer], env={"PYTHONUNBUFFERED": "1"},
                                     cwd=REPO_ROOT)
    copied = await rogue.expect("advertising", timeout=20)
    assert copied["copied_from"] == lan_event["service"] and copied["name"] != lan_event["service"]
    # The agent leaves for a while: the rogue is the only match the peer can find, so it is
    # certainly tried.
    await agent.stop()
    peer = await connect(lan_lab.lan2, tmp_path, "--timeout", "90")
    skipped = await peer.expect("lan_refused", side="peer", timeout=30)
    assert skipped["address"] == f"{lan_lab.lan3.address}:{copied['port']}"
    assert skipped["authenticated"] is False
    # The agent is back (new port, new name, same pairing tag): the peer reaches it, even
    # though the rogue is still there and still matches.
    _, lan_event2, _ = await agent_on_lan(lan_lab, tmp_path)
    path = (await peer.expect("connected", name="Desk PC", timeout=60))["path"]
    assert path["rendezvous"] == "lan" and path["lan_peer"] == f"{lan_lab.lan1.address}:{lan_event2['port']}"
    src = tmp_path / "private.bin"
    await send_and_check(lan_lab.lan1, tmp_path / "pc", src, make_file(src, 2 * MB), peer)
    await rogue.stop()
    # What reached the rogue, on every connection: the preamble, one handshake message that
    # hides the peer's name and key, and at most the peer's unauthenticated "abort" — no
    # signal, no frame.
    seen = [e for e in rogue.events if e["event"] == "connection"]
    assert seen
    for connection in seen:
        kinds = connection["kinds"]
        assert kinds[0] == 1 and kinds.count(1) == 1 and set(kinds) <= {1, 3}, connection
        assert connection["first_record"] < 400
        received = bytes.fromhex(connection["received"])
        assert b"Test Phone" not in received and phone_key not in received


def mdns_blocked(host: Host) -> None:
    """Client isolation, as far as mDNS goes: no UDP 5353 in or out, IPv4 and IPv6."""
    for tool in ("iptables", "ip6tables"):
        for chain, direction in (("INPUT", "--dport"), ("OUTPUT", "--dport"), ("INPUT", "--sport")):
            host.run([tool, "-w", "5", "-A", chain, "-p", "udp", direction, "5353", "-j", "DROP"], check=True)


async def test_mdns_blocked_falls_back_to_the_server(lan_lab: LanLab, tmp_path: Path) -> None:
    agent, _ = await pair_then_part(lan_lab, tmp_path)
    mdns_blocked(lan_lab.lan2)
    peer = await connect(lan_lab.lan2, tmp_path)
    path = (await peer.expect("connected", name="Desk PC", timeout=40))["path"]
    # Met through the agent's embedded server; ICE still finds the LAN path, files the channel.
    assert path["rendezvous"] == "server" and path["kind"] == "lan"
    assert path["files_via"] == "data channel"
    await peer.expect("waiting", name="Desk PC")


async def test_mdns_blocked_and_no_server_says_to_connect_by_address_which_works(
        lan_lab: LanLab, tmp_path: Path) -> None:
    agent, lan_event = await pair_then_part(lan_lab, tmp_path)
    mdns_blocked(lan_lab.lan2)
    set_server(tmp_path / "phone", "")
    peer = await connect(lan_lab.lan2, tmp_path, "--timeout", "5")
    error = await peer.expect("error", timeout=30)
    assert await peer.wait(timeout=20) == 1
    assert "--address" in error["message"] and "not found on the local network" in error["message"]
    # The agent said where it listens; connecting there works without mDNS or a server.
    assert "--address" in lan_event["message"]
    address = f"{lan_event['addresses'][0]}:{lan_event['port']}"
    peer = await connect(lan_lab.lan2, tmp_path, "--address", address)
    path = (await peer.expect("connected", name="Desk PC", timeout=30))["path"]
    assert path["rendezvous"] == "lan" and path["lan_peer"] == address and path["files_via"] == FAST
    src = tmp_path / "by-address.bin"
    await send_and_check(lan_lab.lan2, tmp_path / "phone", src, make_file(src, 5 * MB), agent)
    # A wrong address is reported as such.
    await peer.stop()
    wrong = await connect(lan_lab.lan2, tmp_path, "--address", f"{lan_lab.lan1.address}:9", "--timeout", "3")
    error = await wrong.expect("error", timeout=30)
    assert f"{lan_lab.lan1.address}:9" in error["message"]
    assert await wrong.wait(timeout=20) == 1


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.exists() else []


async def test_cancel_on_the_fast_path_stops_both_sides_and_leaves_nothing(lan_lab: LanLab, lab: Lab,
                                                                            tmp_path: Path) -> None:
    agent, _ = await pair_then_part(lan_lab, tmp_path)
    set_server(tmp_path / "phone", DEAD_SERVER)
    peer = await connect(lan_lab.lan2, tmp_path)
    await peer.expect("connected", name="Desk PC", timeout=30)
    lab.shape(lan_lab.lan1, "16mbit")  # 20 MB take ~10 s: the cancel lands mid-transfer
    src = tmp_path / "big.bin"
    make_file(src, 20 * MB)
    sender = await lan_lab.lan1.peerbeam(["--json", "send", str(src)], home=tmp_path / "pc")
    incoming = await peer.expect("incoming", file="big.bin")
    progress = await peer.expect("progress", timeout=30)
    assert progress["via"] == FAST
    proc = await lan_lab.lan2.peerbeam(["--json", "cancel", incoming["id"]], home=tmp_path / "phone")
    assert await proc.wait() == 0
    assert await sender.wait(timeout=20) == 1
    await sender.expect("transfer_cancelled", by="peer")
    await peer.expect("transfer_cancelled", by="local")
    assert visible(tmp_path / "phone-dl") == []
    # Frames that were still in flight on the LAN connection when the cancel went out on the
    # channel are dropped quietly: nobody is told to slow down, the session goes on.
    lab.shape(lan_lab.lan1, "1gbit")
    small = tmp_path / "after.bin"
    await send_and_check(lan_lab.lan1, tmp_path / "pc", small, make_file(small, 1 * MB), peer)
    assert not [e for e in agent.events + peer.events if e["event"] == "error"]


async def test_a_transfer_cut_on_the_fast_path_resumes_on_the_fast_path(lan_lab: LanLab, lab: Lab,
                                                                        tmp_path: Path) -> None:
    agent, _ = await pair_then_part(lan_lab, tmp_path)
    set_server(tmp_path / "phone", DEAD_SERVER)
    peer = await connect(lan_lab.lan2, tmp_path, "--timeout", "120")
    await peer.expect("connected", name="Desk PC", timeout=30)
    lab.shape(lan_lab.lan1, "16mbit")
    src = tmp_path / "big.bin"
    digest = make_file(src, 20 * MB)
    sender = await lan_lab.lan1.peerbeam(["--json", "send", str(src)], home=tmp_path / "pc")
    await peer.expect("incoming", file="big.bin", offset=0)
    progress = await peer.expect("progress", timeout=30)
    while progress["done"] < 4 * MB:
        progress = await peer.expect("progress", timeout=30)
    os.killpg(agent.pid, signal.SIGKILL)  # the sender dies mid-transfer, no goodbye
    await agent.wait(timeout=10)
    await sender.wait(timeout=10)
    interrupted = await peer.expect("transfer_interrupted", timeout=40)
    assert interrupted["done"] >= 4 * MB
    assert (tmp_path / "phone-dl" / "big.bin.part").exists()

    lab.shape(lan_lab.lan1, "1gbit")
    agent, _, _ = await agent_on_lan(lan_lab, tmp_path)
    path = (await peer.expect("connected", name="Desk PC", timeout=60))["path"]
    assert path["rendezvous"] == "lan"
    sender = await lan_lab.lan1.peerbeam(["--json", "send", str(src)], home=tmp_path / "pc")
    assert await sender.wait(timeout=120) == 0, sender.stdout_tail
    accepted = await sender.expect("accepted")
    assert accepted["offset"] >= 4 * MB and accepted["via"] == FAST  # resumed, not restarted
    got = await peer.expect("received_file", file="big.bin")
    assert got["sha256"] == digest and got["via"] == FAST
    assert hashlib.sha256(Path(got["path"]).read_bytes()).hexdigest() == digest
    assert visible(tmp_path / "phone-dl") == ["big.bin"]
