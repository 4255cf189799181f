"""Off the LAN: real peerbeam processes in the NAT lab, real coturn, 20 MB each way it matters.

natA and natB sit behind symmetric NATs (tests/nat_lab.py): no direct path exists, so every
connection between them is relayed by coturn in `pub`, next to `peerbeam signal`. The router
filters then take UDP away (except to the relay, or entirely) and the peers must still pair and
transfer — over TURN/UDP, TURN/TCP or TURN/TLS — and say which. Failures must come within the
connect timeout with a sentence that names the cause.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import time
from pathlib import Path

import pytest

from tests.integration.test_pairing import read_qr
from tests.lab import Host, Lab
from tests.nat_lab import Coturn, NatLab, NatMode, TURN_PORT, build_nat_lab, start_coturn
from tests.peer_process import PeerProcess

pytestmark = pytest.mark.netns

MB = 1024 * 1024
SIGNAL_PORT = 8443
CONNECT_TIMEOUT = 8  # seconds per attempt (the product default is 15)


def make_file(path: Path, size: int) -> str:
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


async def start_signal(pub: Host, tmp: Path, coturn: Coturn | None, *urls: str,
                       secret: str | None = None, ttl: float | None = None) -> str:
    args = ["--json", "signal", "--host", pub.address, "--port", str(SIGNAL_PORT)]
    if coturn is not None:
        args += ["--turn-secret", secret or coturn.secret]
        args += [a for url in urls for a in ("--turn-url", coturn.urls()[url])]
    if ttl is not None:
        args += ["--turn-ttl", str(ttl)]
    server = await pub.peerbeam(args, home=tmp / "srv")
    return str((await server.expect("server"))["url"])


def tls_env(coturn: Coturn | None) -> dict[str, str]:
    # aioice verifies turns: against the default CA store only; the lab's CA is a test CA.
    return {"SSL_CERT_FILE": str(coturn.pki.ca_file)} if coturn is not None else {}


async def start_pair(agent_host: Host, phone_host: Host, tmp: Path, origin: str,
                     coturn: Coturn | None, auto_accept: bool = True) -> tuple[PeerProcess, PeerProcess]:
    png = tmp / "pc" / "qr.png"
    args = ["--json", "agent", "--server", origin, "--name", "Desk PC", "--qr-png", str(png),
            "--connect-timeout", str(CONNECT_TIMEOUT), "--downloads", str(tmp / "pc-dl")]
    if auto_accept:
        args.append("--auto-accept")
    agent = await agent_host.peerbeam(args, home=tmp / "pc", env=tls_env(coturn))
    await agent.expect("qr")
    joiner = await phone_host.peerbeam(
        ["--json", "join", read_qr(png), "--name", "Test Phone", "--auto-accept",
         "--connect-timeout", str(CONNECT_TIMEOUT), "--downloads", str(tmp / "phone-dl")],
        home=tmp / "phone", env=tls_env(coturn))
    return agent, joiner


async def transfer_20_mb(sender_host: Host, tmp: Path, receiver: PeerProcess) -> None:
    src = tmp / "photos.bin"
    digest = make_file(src, 20 * MB)
    sender = await sender_host.peerbeam(["--json", "send", str(src)], home=tmp / "pc")
    assert await sender.wait(timeout=180) == 0, sender.stderr_tail
    got = await receiver.expect("received_file", file=src.name, timeout=30)
    assert got["sha256"] == digest
    assert hashlib.sha256(Path(got["path"]).read_bytes()).hexdigest() == digest


def relayed_bytes(coturn: Coturn) -> int:
    """Bytes coturn relayed to and from peers, from its per-session usage log lines."""
    total = 0
    for line in coturn.log_lines():
        m = re.search(r"peer usage: .*rb=(\d+), sp=\d+, sb=(\d+)", line)
        if m:
            total += int(m.group(1)) + int(m.group(2))
    return total


async def assert_relayed(coturn: Coturn, procs: tuple[PeerProcess, ...], at_least: int) -> None:
    """coturn's own accounting: the sessions' usage is logged when they close."""
    for proc in procs:
        await proc.stop()
    await coturn.stop()
    assert any("ALLOCATE processed, success" in line for line in coturn.log_lines())
    assert relayed_bytes(coturn) >= at_least, "coturn did not carry the transfer"


async def connected_path(proc: PeerProcess, name: str) -> dict[str, object]:
    event = await proc.expect("connected", name=name, timeout=90)
    path = event["path"]
    assert isinstance(path, dict)
    return path


@pytest.fixture
async def relay(nat_lab: NatLab, tmp_path: Path) -> Coturn:
    # The shipped per-allocation cap (3 MB/s) would make every 20 MB test take 7 s or more.
    server = await start_coturn(nat_lab.pub, tmp_path / "coturn", secret=secrets.token_hex(16),
                                max_bps=200 * MB)
    return server


async def test_two_natted_sites_pair_and_transfer_through_the_relay_over_udp(nat_lab, relay, tmp_path):
    nat_lab.set_mode(NatMode.UDP_ONLY_TO_TURN)
    origin = await start_signal(nat_lab.pub, tmp_path, relay, "udp", "tcp", "tls")
    agent, joiner = await start_pair(nat_lab.a.host, nat_lab.b.host, tmp_path, origin, relay)
    for proc, other in ((agent, "Test Phone"), (joiner, "Desk PC")):
        path = await connected_path(proc, other)
        assert path["kind"] == "relay" and path["transport"] == "udp", path
        assert "relay" in (path["local_type"], path["remote_type"])
    await transfer_20_mb(nat_lab.a.host, tmp_path, joiner)
    assert NatLab.dropped_udp(nat_lab.a) + NatLab.dropped_udp(nat_lab.b) > 0  # direct tries were blocked
    await assert_relayed(relay, (agent, joiner), at_least=20 * MB)


async def test_udp_blocked_first_pairing_moves_to_the_relay_over_tcp(nat_lab, relay, tmp_path):
    nat_lab.set_mode(NatMode.NO_UDP)
    origin = await start_signal(nat_lab.pub, tmp_path, relay, "udp", "tcp", "tls")
    agent, joiner = await start_pair(nat_lab.a.host, nat_lab.b.host, tmp_path, origin, relay)
    # The QR token is single use: the first attempt (TURN over UDP) fails and the same pairing
    # carries on with the next transport instead of failing.
    retry = await joiner.expect("retry", timeout=60)
    assert retry["via"] == "tcp" and retry["relay"] == "unreachable"
    for proc, other in ((agent, "Test Phone"), (joiner, "Desk PC")):
        path = await connected_path(proc, other)
        assert path["kind"] == "relay" and path["transport"] == "tcp", path
    await transfer_20_mb(nat_lab.a.host, tmp_path, joiner)
    await assert_relayed(relay, (agent, joiner), at_least=20 * MB)


async def test_only_tls_gets_through_so_the_pairing_ends_on_turns(nat_lab, relay, tmp_path):
    nat_lab.set_mode(NatMode.NO_UDP)
    for site in (nat_lab.a, nat_lab.b):  # and plain TURN/TCP is blocked too: only 5349 passes
        site.router.run(["iptables", "-w", "5", "-I", "FORWARD", "-p", "tcp", "--dport", str(TURN_PORT),
                         "-j", "REJECT", "--reject-with", "tcp-reset"], check=True)
    origin = await start_signal(nat_lab.pub, tmp_path, relay, "udp", "tcp", "tls")
    agent, joiner = await start_pair(nat_lab.a.host, nat_lab.b.host, tmp_path, origin, relay)
    assert [(await joiner.expect("retry", timeout=60))["via"] for _ in range(2)] == ["tcp", "tls"]
    for proc, other in ((agent, "Test Phone"), (joiner, "Desk PC")):
        path = await connected_path(proc, other)
        assert path["kind"] == "relay" and path["transport"] == "tls", path
    await transfer_20_mb(nat_lab.a.host, tmp_path, joiner)
    await assert_relayed(relay, (agent, joiner), at_least=20 * MB)


async def test_a_lan_pair_stays_on_the_host_path_with_a_relay_configured(lab: Lab, tmp_path):
    nat = build_nat_lab(lab, with_lan=True)
    assert nat.lan is not None
    coturn = await start_coturn(nat.pub, tmp_path / "coturn", secret=secrets.token_hex(16))
    origin = await start_signal(nat.pub, tmp_path, coturn, "udp", "tcp", "tls")
    agent, joiner = await start_pair(nat.lan.pc, nat.lan.phone, tmp_path, origin, coturn)
    for proc, other in ((agent, "Test Phone"), (joiner, "Desk PC")):
        path = await connected_path(proc, other)
        assert path["kind"] == "lan" and path["local_type"] == "host", path
    await transfer_20_mb(nat.lan.pc, tmp_path, joiner)
    await agent.stop()
    await joiner.stop()
    await coturn.stop()
    assert relayed_bytes(coturn) < MB  # the relay was allocated, but the data went direct


async def failed_pairing(proc: PeerProcess) -> tuple[dict[str, object], float]:
    started = time.monotonic()
    event = await proc.expect("error", timeout=90)
    return event, time.monotonic() - started


async def test_no_relay_configured_fails_within_the_bound_and_says_why(nat_lab, tmp_path):
    origin = await start_signal(nat_lab.pub, tmp_path, None)
    agent, joiner = await start_pair(nat_lab.a.host, nat_lab.b.host, tmp_path, origin, None)
    await joiner.expect("verify", timeout=30)  # the handshake went through the server
    error, waited = await failed_pairing(joiner)
    assert error["code"] == "connect_timeout"
    assert "No relay (TURN server) is configured" in str(error["message"])
    # One attempt, bounded by the connect timeout — not aioice's ~64 s of silence.
    assert waited < CONNECT_TIMEOUT + 15
    assert await joiner.wait(timeout=10) != 0
    agent_error = await agent.expect("error", timeout=30)
    assert agent_error["code"] == "connect_timeout"


async def test_a_wrong_turn_secret_is_reported_as_refused_credentials(nat_lab, relay, tmp_path):
    nat_lab.set_mode(NatMode.UDP_ONLY_TO_TURN)
    origin = await start_signal(nat_lab.pub, tmp_path, relay, "udp", "tcp", "tls",
                                secret="not-the-relay-secret")
    agent, joiner = await start_pair(nat_lab.a.host, nat_lab.b.host, tmp_path, origin, relay)
    await joiner.expect("verify", timeout=30)
    error, waited = await failed_pairing(joiner)
    assert error["code"] == "relay_unavailable"
    assert "refused the credentials (401" in str(error["message"])
    # Credentials are the same for every transport: no point trying TCP and TLS too.
    assert not [e for e in joiner.events if e["event"] == "retry"]
    assert waited < CONNECT_TIMEOUT + 15
    assert (await agent.expect("error", timeout=30))["code"] == "relay_unavailable"


async def test_expired_credentials_are_refused_by_coturn_and_reported(nat_lab, relay, tmp_path):
    nat_lab.set_mode(NatMode.UDP_ONLY_TO_TURN)
    # Credentials live 2 s; the user on the PC takes longer than that to accept the pairing,
    # so both devices hold expired credentials when they gather candidates.
    origin = await start_signal(nat_lab.pub, tmp_path, relay, "udp", ttl=2)
    agent, joiner = await start_pair(nat_lab.a.host, nat_lab.b.host, tmp_path, origin, relay,
                                     auto_accept=False)
    await agent.expect("confirm", timeout=30)
    await asyncio.sleep(4)  # the user reading the code: longer than the credentials live
    await agent.write_line("y")
    error, _ = await failed_pairing(joiner)
    assert error["code"] == "relay_unavailable"
    assert "401" in str(error["message"]) and "expire" in str(error["message"])
    await relay.stop()
    assert any("401" in line or "Unauthorized" in line for line in relay.log_lines())


async def test_when_the_lan_path_dies_the_pair_moves_to_the_relay_and_the_transfer_resumes(lab: Lab, tmp_path):
    nat = build_nat_lab(lab, with_lan=True)
    assert nat.lan is not None
    pc, phone = nat.lan.pc, nat.lan.phone
    coturn = await start_coturn(nat.pub, tmp_path / "coturn", secret=secrets.token_hex(16), max_bps=200 * MB)
    origin = await start_signal(nat.pub, tmp_path, coturn, "udp", "tcp", "tls")
    agent, joiner = await start_pair(pc, phone, tmp_path, origin, coturn)
    assert (await connected_path(joiner, "Desk PC"))["kind"] == "lan"
    lab.shape(pc, "16mbit")  # 20 MB take ~10 s: the cut lands mid-transfer
    src = tmp_path / "video.bin"
    digest = make_file(src, 20 * MB)
    sender = await pc.peerbeam(["--json", "send", str(src)], home=tmp_path / "pc")
    await sender.expect("progress", timeout=30)
    # The Wi-Fi between the two stops carrying their traffic (client isolation switched on,
    # say); both can still reach the Internet, and so the relay.
    for host, other in ((pc, phone), (phone, pc)):
        for chain, flag in (("INPUT", "-s"), ("OUTPUT", "-d")):
            host.run(["iptables", "-w", "5", "-A", chain, flag, other.address, "-j", "DROP"], check=True)
    await sender.expect("waiting", timeout=60)
    path = await connected_path(joiner, "Desk PC")
    assert path["kind"] == "relay", path
    assert await sender.wait(timeout=120) == 0, sender.stderr_tail
    sent = await sender.expect("sent_file")
    assert sent["sha256"] == digest and 0 < sent["resumed_from"] < 20 * MB
    got = await joiner.expect("received_file", file=src.name, timeout=30)
    assert hashlib.sha256(Path(got["path"]).read_bytes()).hexdigest() == digest
