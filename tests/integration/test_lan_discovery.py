"""LAN discovery with real mDNS in the LAN lab (issue 5): lan1 advertises, lan2 is paired with
it, lan3 is a stranger. Every zeroconf instance, dig and mdns-scan runs inside a lab namespace;
nothing mDNS touches the host namespace.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from crypto.kdf import LAN_EPOCH_PERIOD, lan_epoch_of, lan_tag
from tests.lab import REPO_ROOT, Host
from tests.lan_lab import LanLab, link_local
from tests.peer_process import PeerProcess

pytestmark = pytest.mark.netns

MDNS_PEER = Path(__file__).with_name("mdns_peer.py")
NAME = re.compile(r"peerbeam-[0-9a-f]{16}\._peerbeam\._tcp\.local\.")
# Goodbye packets go out the moment the agent closes, and a browser drops the service on the
# first one (zeroconf removes a record whose TTL is 0 from its cache at once). 2 s is loss-free
# LAN latency plus scheduling many times over — and far below anything else that could remove
# the service: the PTR record's TTL is 4500 s, the SRV and address records' 120 s (RFC 6762 §10).
REMOVAL_BOUND = 2.0


async def advertise(host: Host, secret: bytes, *extra: str) -> PeerProcess:
    return await host.spawn([sys.executable, str(MDNS_PEER), "advertise", secret.hex(), *extra],
                            env={"PYTHONUNBUFFERED": "1"}, cwd=REPO_ROOT)


async def browse(host: Host, secret: bytes, *extra: str) -> PeerProcess:
    proc = await host.spawn([sys.executable, str(MDNS_PEER), "browse", secret.hex(), *extra],
                            env={"PYTHONUNBUFFERED": "1"}, cwd=REPO_ROOT)
    await proc.expect("browsing")
    return proc


async def next_tags(proc: PeerProcess, name: str, old: list[str], timeout: float) -> dict[str, Any]:
    """The next "updated" event of `name` whose tags differ from `old` (an update may also
    just add an address, e.g. once the scope of a link-local one is known)."""
    deadline = time.monotonic() + timeout
    while True:
        ev = await proc.expect("updated", timeout=max(0.1, deadline - time.monotonic()), name=name)
        if ev["tags"] != old:
            return ev


async def test_paired_peer_finds_its_agent_on_ipv4_and_ipv6(lan_lab: LanLab) -> None:
    secret = secrets.token_bytes(32)
    peer = await browse(lan_lab.lan2, secret, "--find", "20")
    agent = await advertise(lan_lab.lan1, secret)
    adv = await agent.expect("advertising")
    assert NAME.fullmatch(adv["name"]), adv["name"]
    lan1_v6 = link_local(lan_lab.lan1)
    assert adv["addresses"] == [lan_lab.lan1.address, lan1_v6]

    found = await peer.expect("found", timeout=20)
    # lan1's address and the port of its listener; the link-local IPv6 address with its scope.
    assert (found["name"], found["address"], found["port"]) == (adv["name"], lan_lab.lan1.address,
                                                                adv["port"])
    assert found["addresses"][0] == lan_lab.lan1.address
    assert any(a.startswith(lan1_v6 + "%") for a in found["addresses"]), found["addresses"]
    # ...and they are right: lan2 connects to each and lan1's listener greets it.
    for address in found["addresses"]:
        connected = await peer.expect("connected", address=address)
        assert connected["greeting"] == "peerbeam lan lab\n"
    await agent.expect("accepted", peer=f"::ffff:{lan_lab.lan2.address}")  # dual-stack socket
    await agent.expect("accepted", peer=link_local(lan_lab.lan2))

    # The responder joined the mDNS group of both families on its lab interface (kernel view).
    (ifname,) = lan_lab.lan1.interfaces
    groups = lan_lab.lan1.run(["ip", "maddr", "show", "dev", ifname]).stdout
    assert "224.0.0.251" in groups and "ff02::fb" in groups, groups


async def test_stranger_sees_the_service_but_only_rotating_tags(lan_lab: LanLab) -> None:
    secret = secrets.token_bytes(32)
    stranger = await browse(lan_lab.lan3, secrets.token_bytes(32))
    # The agent's injected clock starts 4 s before the boundary of epoch `epoch`.
    epoch = lan_epoch_of(time.time()) + 5
    boundary = epoch * LAN_EPOCH_PERIOD
    agent = await advertise(lan_lab.lan1, secret, "--clock-start", str(boundary - 4.0))
    clock = await agent.expect("clock")
    adv = await agent.expect("advertising")

    before = await stranger.expect("added", name=adv["name"])
    after = await next_tags(stranger, adv["name"], before["tags"], timeout=15)
    # lan3 sees the service, with 16 tags both times (the number of pairings does not show)...
    assert len(before["tags"]) == len(after["tags"]) == 16
    # ...all 16 replaced at the boundary: nothing carries over that could link the epochs...
    assert not set(before["tags"]) & set(after["tags"])
    # ...and the rotation is the real one: the pairing's tag of each epoch, under a name that
    # stayed the same (random per start, not per epoch).
    assert lan_tag(secret, epoch - 1).hex() in before["tags"]
    assert lan_tag(secret, epoch).hex() in after["tags"]
    assert after["name"] == before["name"] == adv["name"]
    # The new tags came at the boundary of the agent's own clock, not before and not late.
    at = clock["start"] + (after["mono"] - clock["mono0"])
    assert boundary <= at < boundary + 1.0, at - boundary
    # A stranger's own pairing matches neither set.
    assert before["matched"] is False and after["matched"] is False


async def test_stopping_the_agent_withdraws_the_service(lan_lab: LanLab) -> None:
    secret = secrets.token_bytes(32)
    peer = await browse(lan_lab.lan2, secret)
    agent = await advertise(lan_lab.lan1, secret)
    adv = await agent.expect("advertising")
    added = await peer.expect("added", name=adv["name"])
    assert added["matched"] is True

    stop_at = time.monotonic()
    os.kill(agent.pid, signal.SIGTERM)  # the agent's own PID: it unregisters, then exits
    removed = await peer.expect("removed", timeout=REMOVAL_BOUND + 5, name=adv["name"])
    assert removed["mono"] - stop_at < REMOVAL_BOUND
    await agent.expect("withdrawn")
    assert await agent.wait() == 0

    # A restart is a new service under a new random name; the paired peer recognises it again.
    again = await advertise(lan_lab.lan1, secret)
    adv2 = await again.expect("advertising")
    assert adv2["name"] != adv["name"] and NAME.fullmatch(adv2["name"])
    assert (await peer.expect("added", name=adv2["name"]))["matched"] is True


def _dig(host: Host, server: str) -> str:
    done = host.run(["dig", "-p", "5353", f"@{server}", "_peerbeam._tcp.local", "PTR",
                     "+time=2", "+tries=2"], timeout=15)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _records(dig_output: str) -> dict[str, list[str]]:
    """Answer and additional records of dig's output, by type: {"PTR": [rdata, ...], ...}."""
    found: dict[str, list[str]] = {}
    for line in dig_output.splitlines():
        fields = line.split(None, 4)
        if line.startswith(";") or len(fields) < 5 or fields[2] != "IN":
            continue
        found.setdefault(fields[3], []).append(fields[4])
    return found


async def test_dig_reads_ptr_srv_and_txt_from_the_agent(lan_lab: LanLab) -> None:
    """An independent reader of the records: dig (BIND), as a legacy unicast query (RFC 6762
    §6.7) sent straight to the responder, over IPv4 and over IPv6 link-local."""
    secret = secrets.token_bytes(32)
    agent = await advertise(lan_lab.lan1, secret)
    adv = await agent.expect("advertising")
    instance, host = adv["name"], adv["host"]
    txt = bytes.fromhex(adv["txt"])
    strings = []
    while txt:
        strings.append(txt[1:1 + txt[0]].decode())
        txt = txt[1 + txt[0]:]
    (lan2_if,) = lan_lab.lan2.interfaces
    for server in (lan_lab.lan1.address, f"{link_local(lan_lab.lan1)}%{lan2_if}"):
        records = _records(_dig(lan_lab.lan2, server))
        assert records["PTR"] == [instance], (server, records)
        assert records["SRV"] == [f"0 0 {adv['port']} {host}"], (server, records)
        assert records["TXT"] == [" ".join(f'"{s}"' for s in strings)], (server, records)
        assert strings[0] == "v=1" and len(strings) == 17
        assert records["A"] == [lan_lab.lan1.address]
        assert records["AAAA"] == [link_local(lan_lab.lan1)]
    epoch = lan_epoch_of(time.time())
    tags = {s.split("=", 1)[1] for s in strings[1:]}
    assert tags & {lan_tag(secret, e).hex() for e in (epoch, epoch - 1)}


# Runs mdns-scan (which browses until killed and draws a spinner with "\r" on stderr) and turns
# each "+ name" line into {"event": "service", "name": ...}. A SIGTERM to the process group
# (PeerProcess.stop: the wrapper's PID is the group id) ends both.
_MDNS_SCAN = textwrap.dedent(r"""
    import json, subprocess, sys
    proc = subprocess.Popen(["mdns-scan"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, errors="replace")
    print(json.dumps({"event": "started", "pid": proc.pid}), flush=True)
    for line in proc.stderr:  # universal newlines: "\r" ends a line too
        if line.startswith("+ "):
            print(json.dumps({"event": "service", "name": line[2:].strip()}), flush=True)
    sys.exit(proc.wait())
""")


async def test_mdns_scan_lists_the_service(lan_lab: LanLab) -> None:
    agent = await advertise(lan_lab.lan1, secrets.token_bytes(32))
    adv = await agent.expect("advertising")
    scan = await lan_lab.lan2.spawn([sys.executable, "-c", _MDNS_SCAN])
    try:
        await scan.expect("started")
        await scan.expect("service", timeout=15, name=adv["name"].rstrip("."))
    finally:
        await scan.stop()
