"""The namespace lab itself: isolation, reachability, teardown, PeerProcess, real WebRTC."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.lab import IP, Host, Lab, LabError, addresses_in, list_namespaces

pytestmark = pytest.mark.netns

DOC_RANGES = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
RTC_ECHO = Path(__file__).with_name("rtc_echo.py")

# A TCP echo server that announces its port as a JSON event, then echoes one connection.
ECHO_SERVER = textwrap.dedent("""
    import json, socket, sys
    srv = socket.create_server((sys.argv[1], 0))
    print(json.dumps({"event": "listening", "port": srv.getsockname()[1]}), flush=True)
    conn, peer = srv.accept()
    data = conn.recv(1024)
    conn.sendall(data)
    print(json.dumps({"event": "echoed", "peer": peer[0], "data": data.decode()}), flush=True)
""")
ECHO_CLIENT = textwrap.dedent("""
    import json, socket, sys
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as s:
        s.sendall(sys.argv[3].encode())
        reply = s.recv(1024).decode()
        print(json.dumps({"event": "reply", "data": reply, "local": s.getsockname()[0]}))
""")


def ping(src: Host, dst: str) -> subprocess.CompletedProcess[str]:
    return src.run(["ping", "-n", "-c1", "-W1", dst], timeout=10)


def interfaces(ns: str | None) -> set[str]:
    args = [IP, "-o", "link", "show"] if ns is None else [IP, "-n", ns, "-o", "link", "show"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    # "2: veth3a@if2: <...>": the name is the second field, up to "@".
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def test_lan_pair_hosts_reach_each_other(lan_pair: tuple[Host, Host]) -> None:
    pc, phone = lan_pair
    assert (pc.address, phone.address) == ("198.51.100.1", "198.51.100.2")
    there, back = ping(pc, phone.address), ping(phone, pc.address)
    assert there.returncode == 0, there.stdout + there.stderr
    assert back.returncode == 0, back.stdout + back.stderr


async def test_tcp_echo_between_namespaces(lan_pair: tuple[Host, Host]) -> None:
    pc, phone = lan_pair
    server = await phone.spawn([sys.executable, "-c", ECHO_SERVER, phone.address])
    port = (await server.expect("listening"))["port"]
    client = await pc.spawn([sys.executable, "-c", ECHO_CLIENT, phone.address, str(port),
                             "hello lab"])
    reply = await client.expect("reply")
    assert reply == {"event": "reply", "data": "hello lab", "local": "198.51.100.1"}
    # The server saw the pc's lab address: the bytes crossed the veth, not some other path.
    await server.expect("echoed", peer="198.51.100.1", data="hello lab")
    assert await server.wait() == 0 and await client.wait() == 0


def test_lab_is_not_linked_to_the_host_network(lan_pair: tuple[Host, Host]) -> None:
    """The lab is a closed graph: each namespace holds only `lo` and its veth, each veth's
    peer sits in the other lab namespace, and no lab interface exists in the host namespace.

    Proved from the link table, not by sending packets from the host namespace: on this
    machine the host's own uplink is numbered in 192.0.2.0/24 too (eth0 192.0.2.2, gateway
    192.0.2.1), so such packets would mean nothing about the lab — or leave the machine."""
    pc, phone = lan_pair
    assert interfaces(pc.name) == {"lo", *pc.interfaces}
    assert interfaces(phone.name) == {"lo", *phone.interfaces}
    assert not (set(pc.interfaces) | set(phone.interfaces)) & interfaces(None)
    for host, other in ((pc, phone), (phone, pc)):
        (ifname,) = host.interfaces
        detail = subprocess.run([IP, "-n", host.name, "-o", "-d", "link", "show", ifname],
                                capture_output=True, text=True, check=True).stdout
        assert re.search(rf"link-netns {re.escape(other.name)}\b", detail), detail
        addrs = host.run(["ip", "-o", "addr"]).stdout
        assert addresses_in(addrs, ["0.0.0.0/0"]) == ["127.0.0.1", host.address], addrs



async def test_spawned_process_runs_inside_the_namespace(lan_pair: tuple[Host, Host]) -> None:
    _, phone = lan_pair
    proc = await phone.spawn([sys.executable, "-c", (
        "import json, os; print(json.dumps("
        "{'event': 'ns', 'ns': os.readlink('/proc/self/ns/net')}))")])
    inside = (await proc.expect("ns"))["ns"]
    assert inside.startswith("net:[") and inside != os.readlink("/proc/self/ns/net")
    # ...and it is the phone's namespace: the same one `ip netns exec` gives any command.
    readlink = await phone.spawn(["readlink", "/proc/self/ns/net"])
    assert await readlink.wait() == 0
    assert list(readlink.stdout_lines) == [inside]


def test_bridge_joins_hosts_with_netfilter_off(lab: Lab) -> None:
    pc, phone, laptop = lab.bridge("pc", "phone", "laptop", subnet="198.51.100.0/24")
    assert [h.address for h in (pc, phone, laptop)] == ["198.51.100.1", "198.51.100.2",
                                                        "198.51.100.3"]
    for src, dst in ((pc, phone), (phone, laptop), (laptop, pc)):
        done = ping(src, dst.address)
        assert done.returncode == 0, f"{src.role} -> {dst.role}: {done.stdout}{done.stderr}"
    switch = next(h for h in lab.hosts if h.role == "switch")
    sysctl = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
    value = switch.run(["sh", "-c", f"cat {sysctl} 2>/dev/null || echo absent"]).stdout
    assert value.strip() in ("0", "absent")


async def test_bridge_carries_link_local_multicast(lab: Lab) -> None:
    """mDNS needs 224.0.0.251 to reach every host on the segment."""
    pc, phone, laptop = lab.bridge("pc", "phone", "laptop")
    listener = textwrap.dedent("""
        import json, socket, struct
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("", 5353))
        mreq = struct.pack("4s4s", socket.inet_aton("224.0.0.251"), socket.inet_aton("0.0.0.0"))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        print(json.dumps({"event": "joined"}), flush=True)
        data, peer = s.recvfrom(1024)
        print(json.dumps({"event": "got", "data": data.decode(), "peer": peer[0]}), flush=True)
    """)
    listeners = [await h.spawn([sys.executable, "-c", listener]) for h in (phone, laptop)]
    for proc in listeners:
        await proc.expect("joined")
    sender = pc.run([sys.executable, "-c", textwrap.dedent("""
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"who is there", ("224.0.0.251", 5353))
    """)])
    assert sender.returncode == 0, sender.stderr
    for proc in listeners:
        await proc.expect("got", data="who is there", peer=pc.address)


def test_teardown_removes_namespaces_when_the_body_raises() -> None:
    with pytest.raises(RuntimeError, match="test body failed"), Lab() as lab:
        lab.lan_pair()
        names = lab.namespaces
        assert len(names) == 2 and set(names) <= set(list_namespaces())
        raise RuntimeError("test body failed")
    assert not set(names) & set(list_namespaces())


def test_teardown_after_setup_failed_halfway() -> None:
    lab = Lab()
    try:
        pc, phone = lab.host("pc"), lab.host("phone")
        # Pull the phone's namespace away under the lab: the veth cannot be made.
        subprocess.run([IP, "netns", "del", phone.name], check=True)
        with pytest.raises(LabError, match="failed"):
            lab.link(pc, phone, "192.0.2.1/24", "192.0.2.2/24")
        assert pc.name in list_namespaces()
    finally:
        lab.close()
    assert not {pc.name, phone.name} & set(list_namespaces())
    lab.close()  # idempotent


async def test_teardown_kills_spawned_process_group() -> None:
    with Lab() as lab:
        host = lab.host("pc")
        # A shell with a grandchild in the same process group.
        proc = await host.spawn(["sh", "-c", ('sleep 600 & echo "{\\"event\\":\\"child\\",'
                                              '\\"pid\\":$!}"; wait')])
        child = (await proc.expect("child"))["pid"]
        child_fd = os.pidfd_open(child)
        name = host.name
    try:
        assert await proc.wait(timeout=5) < 0  # killed by a signal, not exited
        # The pidfd turns readable when the grandchild has terminated.
        assert select.select([child_fd], [], [], 5)[0], "grandchild survived teardown"
    finally:
        os.close(child_fd)
    assert name not in list_namespaces()


async def test_expect_matches_consumes_and_reports(lab: Lab) -> None:
    host = lab.host("pc")
    script = textwrap.dedent("""
        import json, sys
        print("plain text for people")
        print(json.dumps({"event": "hello", "n": 1}))
        print(json.dumps({"event": "hello", "n": 2}), flush=True)
        line = sys.stdin.readline().strip()
        print(json.dumps({"event": "echo", "text": line}), flush=True)
        print("bye from stderr", file=sys.stderr)
        sys.exit(3)
    """)
    proc = await host.spawn([sys.executable, "-c", script])
    assert (await proc.expect("hello", n=2))["n"] == 2  # skips the non-matching first one
    assert (await proc.expect("hello"))["n"] == 1       # first not yet consumed
    await proc.write_line("abc")
    assert await proc.expect("echo", text="abc") == {"event": "echo", "text": "abc"}
    assert await proc.wait() == 3
    assert proc.returncode == 3
    assert "plain text for people" in proc.stdout_lines
    assert [e["event"] for e in proc.events] == ["hello", "hello", "echo"]
    with pytest.raises(AssertionError) as failure:
        await proc.expect("hello", timeout=5)  # both consumed; the process is gone
    message = str(failure.value)
    assert "exited with code 3" in message and "bye from stderr" in message
    assert "bye from stderr" in proc.stderr_tail


async def test_expect_timeout_then_stop_is_idempotent(lab: Lab) -> None:
    host = lab.host("pc")
    proc = await host.spawn([sys.executable, "-c",
                             "import sys; print('waiting', flush=True); sys.stdin.read()"])
    with pytest.raises(AssertionError, match=r"(?s)within 0.5 s.*waiting"):
        await proc.expect("never", timeout=0.5)
    assert proc.returncode is None
    code = await proc.stop()
    assert code is not None and code < 0
    assert await proc.stop() == code


async def test_aiortc_data_channel_between_namespaces(lan_pair: tuple[Host, Host]) -> None:
    pc, phone = lan_pair
    offerer = await pc.spawn([sys.executable, str(RTC_ECHO), "offer"])
    answerer = await phone.spawn([sys.executable, str(RTC_ECHO), "answer"])

    offer = await offerer.expect("offer")
    # Only the lab address is offered: no host-namespace interface, no STUN (srflx) candidate.
    candidates = [line for line in offer["sdp"].splitlines() if line.startswith("a=candidate")]
    assert candidates, offer["sdp"]
    for line in candidates:
        fields = line.split()
        assert fields[7] == "host", line
        assert fields[4] == "198.51.100.1" or fields[4].startswith("fe80:"), line
    await answerer.write_line(json.dumps(offer))
    answer = await answerer.expect("answer")
    await offerer.write_line(json.dumps(answer))

    opened = await offerer.expect("open", label="echo")
    if opened["pair"] is not None:
        assert opened["pair"]["local"].startswith("198.51.100.1:")
        assert opened["pair"]["remote"].startswith("198.51.100.2:")
    ping = await answerer.expect("received")
    assert ping["data"].startswith("ping ")
    done = await offerer.expect("done")
    assert done["result"] == "pong " + ping["data"]
    await answerer.expect("done", result="closed")
    assert await offerer.wait() == 0
    assert await answerer.wait() == 0
