"""The foundation, end to end: real `peerbeam` processes in two network namespaces.

`signal` and `agent` run in "pc", `join` / `connect` in "phone"; real aiortc on both sides. The
pairing link always comes from decoding the agent's QR PNG with zxing-cpp, as a phone camera
would read it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from crypto.keys import generate_identity, public_bytes
from crypto.records import decode_records, encode_records
from tests.lab import Host
from tests.peer_process import PeerProcess

pytestmark = pytest.mark.netns

PORT = 8443
HERE = Path(__file__).parent


def read_qr(png: Path) -> str:
    results = zxingcpp.read_barcodes(Image.open(png))
    assert len(results) == 1, f"expected one QR code in {png}, found {len(results)}"
    return results[0].text


async def run_cli(host: Host, home: Path, *args: str) -> tuple[int, list[dict]]:
    """A short-lived command (send, devices, unpair): its exit code and JSON events."""
    proc = await host.peerbeam(["--json", *args], home=home)
    code = await proc.wait(timeout=30)
    return code, proc.events


async def start_signal(pc: Host, tmp: Path, port: int = PORT) -> str:
    server = await pc.peerbeam(["--json", "signal", "--host", pc.address, "--port", str(port)], home=tmp / "srv")
    event = await server.expect("server")
    return event["url"]


async def start_agent(pc: Host, home: Path, server: str | None, *extra: str,
                      auto_accept: bool = True) -> tuple[PeerProcess, str]:
    png = home / "qr.png"
    args = ["--json", "agent", "--name", "Desk PC", "--qr-png", str(png), "--connect-timeout", "8", *extra]
    if server is not None:
        args += ["--server", server]
    if auto_accept:
        args.append("--auto-accept")
    agent = await pc.peerbeam(args, home=home)
    qr_event = await agent.expect("qr")
    url = read_qr(png)
    assert url == qr_event["url"]
    return agent, url


async def pair(pc: Host, phone: Host, tmp: Path) -> tuple[PeerProcess, PeerProcess, str]:
    origin = await start_signal(pc, tmp)
    agent, url = await start_agent(pc, tmp / "pc", origin)
    joiner = await phone.peerbeam(["--json", "join", url, "--name", "Test Phone"], home=tmp / "phone")
    joined = await agent.expect("joined")
    assert joined["name"] == "Test Phone"  # the bind notification names the device
    assert (await joiner.expect("joined"))["name"] == "Desk PC"
    code_agent = (await agent.expect("paired", name="Test Phone"))["code"]
    code_phone = (await joiner.expect("paired", name="Desk PC"))["code"]
    assert code_agent == code_phone and len(code_agent) == 6
    for proc, other in ((agent, "Test Phone"), (joiner, "Desk PC")):
        connected = await proc.expect("connected", name=other)
        assert connected["path"]["kind"] == "lan"
        assert connected["path"]["local_type"] == "host"
        assert connected["path"]["rtt_ms"] > 0
    return agent, joiner, url


async def test_qr_pairing_text_both_ways_devices_and_unpair(lan_pair, tmp_path):
    pc, phone = lan_pair
    agent, joiner, _ = await pair(pc, phone, tmp_path)

    code, events = await run_cli(phone, tmp_path / "phone", "send", "--text", "hello from the phone")
    assert code == 0 and events[-1]["event"] == "sent" and events[-1]["name"] == "Desk PC"
    got = await agent.expect("message", text="hello from the phone")
    assert got["from"] == "Test Phone"

    code, events = await run_cli(pc, tmp_path / "pc", "send", "--text", "hello from the PC", "--to", "Test Phone")
    assert code == 0
    await joiner.expect("message", text="hello from the PC")

    code, events = await run_cli(pc, tmp_path / "pc", "send", "--text", "x", "--to", "Nobody")
    assert code == 1 and events[-1]["code"] == "unknown_device"

    for host, home, other in ((pc, "pc", "Test Phone"), (phone, "phone", "Desk PC")):
        code, events = await run_cli(host, tmp_path / home, "devices")
        assert code == 0
        (device,) = [e for e in events if e["event"] == "device"]
        assert device["name"] == other and device["connected"] is True and device["last_seen"] > 0

    pairings = tmp_path / "pc" / "pairings.json"
    assert oct(pairings.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "pc" / "identity.key").stat().st_mode & 0o777) == "0o600"

    code, events = await run_cli(phone, tmp_path / "phone", "unpair", "Desk PC")
    assert code == 0 and events[-1]["told_peer"] is True
    await agent.expect("unpaired", name="Test Phone")
    for host, home in ((pc, "pc"), (phone, "phone")):
        code, events = await run_cli(host, tmp_path / home, "devices")
        assert [e for e in events if e["event"] == "device"] == []
    # The side that unpaired does not take the agent's goodbye for a drop: no reconnect attempt.
    assert not [e for e in joiner.events if e["event"] in ("disconnected", "waiting")]


async def test_reconnect_without_qr_and_after_the_agent_is_killed(lan_pair, tmp_path):
    pc, phone = lan_pair
    agent, joiner, _ = await pair(pc, phone, tmp_path)
    await joiner.stop()
    await agent.expect("disconnected", name="Test Phone")

    peer = await phone.peerbeam(["--json", "connect", "Desk PC", "--timeout", "20"], home=tmp_path / "phone")
    first = await peer.expect("connected", name="Desk PC")
    assert first["path"]["kind"] == "lan"
    await agent.expect("connected", name="Test Phone")
    code, _ = await run_cli(phone, tmp_path / "phone", "send", "--text", "after reconnect")
    assert code == 0
    await agent.expect("message", text="after reconnect")

    # Kill the agent without a chance to say goodbye; the peer notices and waits for it.
    agent.kill_now()
    await peer.expect("disconnected", name="Desk PC", timeout=30)
    agent2, _ = await start_agent(pc, tmp_path / "pc", f"http://{pc.address}:{PORT}")
    await peer.expect("connected", name="Desk PC", timeout=40)
    await agent2.expect("connected", name="Test Phone")
    code, _ = await run_cli(pc, tmp_path / "pc", "send", "--text", "the agent is back")
    assert code == 0
    await peer.expect("message", text="the agent is back")


async def test_replayed_qr_is_refused_and_the_agent_is_told(lan_pair, tmp_path):
    pc, phone = lan_pair
    agent, joiner, url = await pair(pc, phone, tmp_path)
    second = await phone.peerbeam(["--json", "join", url, "--name", "Replayer"], home=tmp_path / "replay")
    error = await second.expect("error")
    assert error["code"] == "token_used"
    assert await second.wait(timeout=20) == 1
    refused = await agent.expect("join_refused")
    assert refused["code"] == "token_used"
    # The first pairing is untouched.
    code, _ = await run_cli(phone, tmp_path / "phone", "send", "--text", "still here")
    assert code == 0


async def test_tampered_qr_fragment_is_refused_before_contact(lan_pair, tmp_path):
    pc, phone = lan_pair
    origin = await start_signal(pc, tmp_path)
    agent, url = await start_agent(pc, tmp_path / "pc", origin)
    # Another agent key in the fragment (a swapped QR sticker): the agent refuses the handshake.
    head, _, _ = url.rpartition(".")
    from crypto.keys import b64u_encode

    forged = f"{head}.{b64u_encode(public_bytes(generate_identity()))}"
    joiner = await phone.peerbeam(["--json", "join", forged, "--name", "Test Phone"], home=tmp_path / "phone")
    assert (await joiner.expect("error"))["code"] == "interception"
    assert (await agent.expect("error"))["code"] == "interception"
    assert not [e for e in agent.events + joiner.events if e["event"] in ("paired", "connected")]
    # A fragment that does not parse is refused by the CLI at once.
    bad = await phone.peerbeam(["--json", "join", url[:-3]], home=tmp_path / "phone2")
    assert await bad.wait(timeout=20) == 2
    assert bad.events[-1]["code"] == "bad_link"


@pytest.mark.parametrize("mode", ["swap-ephemeral", "flip-response", "flip-transport"])
async def test_hostile_server_cannot_pair_or_read(lan_pair, tmp_path, mode):
    pc, phone = lan_pair
    origin = await start_signal(pc, tmp_path)
    mitm = await pc.spawn([sys.executable, str(HERE / "mitm_server.py"), "--listen", f"{pc.address}:9000",
                           "--upstream", origin, "--mode", mode])
    proxy = (await mitm.expect("listening"))["url"]
    agent, url = await start_agent(pc, tmp_path / "pc", proxy)
    joiner = await phone.peerbeam(["--json", "join", url, "--name", "Test Phone"], home=tmp_path / "phone")
    await mitm.expect("tampered", mode=mode)
    assert (await joiner.expect("error"))["code"] == "interception"
    assert (await agent.expect("error"))["code"] == "interception"
    assert await joiner.wait(timeout=20) == 1
    assert not [e for e in agent.events + joiner.events if e["event"] in ("paired", "connected", "message")]
    records = tmp_path / "pc" / "pairings.json"
    assert not records.exists() or decode_records(records.read_bytes()) == []
    assert not (tmp_path / "phone" / "pairings.json").exists()


async def test_reconnect_with_a_wrong_pairing_is_refused(lan_pair, tmp_path):
    pc, phone = lan_pair
    agent, joiner, _ = await pair(pc, phone, tmp_path)
    await joiner.stop()
    await agent.expect("disconnected", name="Test Phone")
    # Same pair secret (so the rendezvous id matches) but the agent's key is not the one the
    # pairing was made with: the KK handshake fails on both sides; nothing connects.
    path = tmp_path / "phone" / "pairings.json"
    (record,) = decode_records(path.read_bytes())
    import msgspec

    path.write_bytes(encode_records([msgspec.structs.replace(record, peer_key=public_bytes(generate_identity()))]))
    peer = await phone.peerbeam(["--json", "connect", "Desk PC", "--timeout", "6"], home=tmp_path / "phone")
    assert (await peer.expect("error", timeout=30))["code"] in ("interception", "connect_timeout")
    assert (await agent.expect("error", name="Test Phone"))["code"] == "interception"
    assert await peer.wait(timeout=30) == 1
    assert not [e for e in peer.events if e["event"] == "connected"]


async def test_reconnect_to_an_agent_that_deleted_the_pairing_is_refused(lan_pair, tmp_path):
    pc, phone = lan_pair
    agent, joiner, _ = await pair(pc, phone, tmp_path)
    await joiner.stop()
    await agent.expect("disconnected", name="Test Phone")
    code, events = await run_cli(pc, tmp_path / "pc", "unpair", "Test Phone")
    assert code == 0 and events[-1]["told_peer"] is False
    # The agent keeps a tombstone: when the phone comes back it is told, not left waiting.
    peer = await phone.peerbeam(["--json", "connect", "Desk PC", "--timeout", "15"], home=tmp_path / "phone")
    removed = await peer.expect("unpaired", name="Desk PC", timeout=30)
    assert removed["by"] == "peer"
    assert await peer.wait(timeout=30) == 1
    assert not [e for e in peer.events if e["event"] == "connected"]
    told = await agent.expect("unpaired", name="Test Phone")
    assert told["told_peer"] is True
    for host, home in ((pc, "pc"), (phone, "phone")):
        code, events = await run_cli(host, tmp_path / home, "devices")
        assert [e for e in events if e["event"] == "device"] == []
    assert decode_records((tmp_path / "pc" / "pairings.json").read_bytes()) == []  # tombstone gone


async def test_blocked_network_path_fails_within_the_bound(lan_pair, tmp_path):
    """Signaling works (TCP) but every UDP packet is dropped: ICE cannot succeed. The join must
    say so within its connect timeout, not after aioice's ~64 s."""
    pc, phone = lan_pair
    origin = await start_signal(pc, tmp_path)
    agent, url = await start_agent(pc, tmp_path / "pc", origin)
    phone.run(["iptables", "-A", "OUTPUT", "-p", "udp", "-j", "DROP"], check=True)
    phone.run(["iptables", "-A", "INPUT", "-p", "udp", "-j", "DROP"], check=True)
    joiner = await phone.peerbeam(["--json", "join", url, "--name", "Test Phone", "--connect-timeout", "5"],
                                  home=tmp_path / "phone")
    error = await joiner.expect("error", timeout=25)
    assert error["code"] == "connect_timeout"
    assert "within 5 s" in error["message"]
    assert await joiner.wait(timeout=20) == 1


@pytest.mark.parametrize("answer", ["y", "n"])
async def test_agent_asks_before_accepting(lan_pair, tmp_path, answer):
    pc, phone = lan_pair
    origin = await start_signal(pc, tmp_path)
    agent, url = await start_agent(pc, tmp_path / "pc", origin, auto_accept=False)
    joiner = await phone.peerbeam(["--json", "join", url, "--name", "Test Phone"], home=tmp_path / "phone")
    ask = await agent.expect("confirm", name="Test Phone")
    shown = await joiner.expect("verify", name="Desk PC")
    assert ask["code"] == shown["code"]  # the user compares these two numbers
    assert not [e for e in joiner.events if e["event"] == "paired"]
    await agent.write_line(answer)
    if answer == "y":
        await joiner.expect("connected", name="Desk PC")
        await agent.expect("connected", name="Test Phone")
    else:
        assert (await joiner.expect("error"))["code"] == "pairing_rejected"
        assert (await agent.expect("error"))["code"] == "pairing_rejected"
        assert await joiner.wait(timeout=20) == 1
        assert not (tmp_path / "phone" / "pairings.json").exists()


async def test_qr_is_refreshed_before_the_token_expires(lan_pair, tmp_path):
    pc, phone = lan_pair
    server = await pc.peerbeam(["--json", "signal", "--host", pc.address, "--port", str(PORT),
                                "--token-ttl", "23"], home=tmp_path / "srv")
    origin = (await server.expect("server"))["url"]
    agent, first_url = await start_agent(pc, tmp_path / "pc", origin)
    first = agent.events[-1]
    # The agent refreshes 20 s before expiry: with a 23 s token that is within a few seconds.
    second = await agent.expect("qr", timeout=15)
    assert second["url"] != first_url and second["expires_at"] > first["expires_at"]
    url = read_qr(tmp_path / "pc" / "qr.png")
    assert url == second["url"]  # the PNG on disk follows
    joiner = await phone.peerbeam(["--json", "join", url, "--name", "Test Phone"], home=tmp_path / "phone")
    await joiner.expect("connected", name="Desk PC")


async def test_embedded_default_agent_runs_its_own_server(lan_pair, tmp_path):
    """`peerbeam agent` with no --server: the signaling server runs inside the agent and the QR
    carries the agent's LAN address."""
    pc, phone = lan_pair
    agent, url = await start_agent(pc, tmp_path / "pc", None)
    server = next(e for e in agent.events if e["event"] == "server")
    assert server["embedded"] is True and server["url"] == f"http://{pc.address}:{PORT}"
    assert url.startswith(f"http://{pc.address}:{PORT}/p#1.")
    joiner = await phone.peerbeam(["--json", "join", url, "--name", "Test Phone"], home=tmp_path / "phone")
    await joiner.expect("connected", name="Desk PC")
    code, _ = await run_cli(phone, tmp_path / "phone", "send", "--text", "via the embedded server")
    assert code == 0
    await agent.expect("message", text="via the embedded server")


async def test_a_flooding_device_is_rate_limited_and_the_session_survives(lan_pair, tmp_path):
    pc, phone = lan_pair
    origin = await start_signal(pc, tmp_path)
    agent, url = await start_agent(pc, tmp_path / "pc", origin)
    flooder = await phone.spawn([sys.executable, str(HERE / "flood_peer.py"), url, str(tmp_path / "phone"), "2000"],
                                env={"PYTHONUNBUFFERED": "1"})
    await flooder.expect("flooded", timeout=30)
    limited = await flooder.expect("error", timeout=20)
    assert limited["code"] == "rate_limited"
    # The budget refills with time (100 messages a second): a second after the flood there is
    # room again. (`peerbeam send` now starts fast enough to land while the agent is still
    # working through the flood's backlog, when a text is rightly dropped too.)
    await asyncio.sleep(1.0)
    code, _ = await run_cli(phone, tmp_path / "phone", "send", "--text", "after the flood")
    assert code == 0
    await agent.expect("message", text="after the flood")
    received = [e for e in agent.events if e["event"] == "message" and e["text"].startswith("flood ")]
    assert 0 < len(received) < 1000  # burst of 200 plus the refill, not all 2000
