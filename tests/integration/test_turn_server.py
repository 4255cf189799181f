"""Real coturn with the shipped config, real aioice TURN clients, in the NAT lab.

Every client runs inside a lab namespace (tests/integration/turn_probe.py); credentials are
minted by signaling/turn.py exactly as `peerbeam signal` mints them.
"""

from __future__ import annotations

import ipaddress
import json
import re
import sys
import time
from pathlib import Path

import pytest

from signaling.turn import turn_credentials
from tests.lab import Host, Lab
from tests.nat_lab import (
    LAB_ALLOWED_PEERS,
    SECRET_PLACEHOLDER,
    SHIPPED_CONF,
    TURN_PORT,
    TURNS_PORT,
    Coturn,
    NatLab,
    NatMode,
    build_nat_lab,
    start_coturn,
)
from tests.peer_process import PeerProcess

PROBE = Path(__file__).with_name("turn_probe.py")
ECHO_PORT = 40000  # below coturn's relay range (49152-65535): no clash with relayed ports
TTL = 3600.0

# What an attacker would ask the relay to reach: loopback, RFC 1918, CGNAT, cloud metadata,
# "this network", benchmarking, multicast, reserved and broadcast.
FORBIDDEN_V4 = ["127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1",
                "169.254.169.254", "0.0.0.1", "198.18.0.1", "224.0.0.1", "240.0.0.1",
                "255.255.255.255"]
FORBIDDEN_V6 = ["::1", "fc00::1", "fd00:ec2::254", "fe80::1", "::ffff:10.0.0.1",
                "::ffff:127.0.0.1", "64:ff9b::a00:1", "2002:a00:1::1", "ff02::1"]


def shipped_options(name: str) -> list[str]:
    return re.findall(rf"^{re.escape(name)}=(\S+)$", SHIPPED_CONF.read_text(), re.MULTILINE)


def in_ranges(address: str, ranges: list[str]) -> bool:
    addr = ipaddress.ip_address(address)
    for r in ranges:
        lo, _, hi = r.partition("-")
        first, last = ipaddress.ip_address(lo), ipaddress.ip_address(hi or lo)
        if first.version == addr.version and first <= addr <= last:  # type: ignore[operator]
            return True
    return False


async def probe(host: Host, *args: str) -> PeerProcess:
    return await host.spawn([sys.executable, str(PROBE), *args])


async def turn_client(host: Host, server: Coturn, username: str, password: str,
                      transport: str = "udp") -> PeerProcess:
    port = TURNS_PORT if transport == "tls" else TURN_PORT
    return await probe(host, "turn", "--server", server.address, "--port", str(port),
                       "--transport", transport, "--username", username,
                       "--password", password, "--cafile", str(server.pki.ca_file))


async def command(client: PeerProcess, op: str, **fields: object) -> None:
    await client.write_line(json.dumps({"op": op, **fields}))


async def echo_in(host: Host, bind: str = "0.0.0.0") -> PeerProcess:
    echo = await probe(host, "echo", "--bind", bind, "--port", str(ECHO_PORT))
    await echo.expect("listening")
    return echo


def fresh_credentials(server: Coturn, user: str) -> tuple[str, str]:
    creds = turn_credentials(server.secret, time.time(), TTL, user)
    return creds.username, creds.password


# -- the shipped file -------------------------------------------------------------------------


def test_shipped_config_denies_internal_ranges_and_keeps_public_ones() -> None:
    text = SHIPPED_CONF.read_text()
    denied = shipped_options("denied-peer-ip")
    for address in FORBIDDEN_V4 + FORBIDDEN_V6:
        assert in_ranges(address, denied), f"{address} is not in any denied-peer-ip range"
    # Public addresses stay reachable (a relay that reaches nobody is no relay).
    for address in ["1.1.1.1", "8.8.8.8", "2606:4700:4700::1111", "2a00:1450:4001::1"]:
        assert not in_ranges(address, denied), address
    # Production must not re-open anything: "allowed" would beat "denied".
    assert "allowed-peer-ip" not in re.sub(r"#.*", "", text)
    for flag in ("use-auth-secret", "fingerprint", "no-cli", "no-multicast-peers",
                 "no-tcp-relay", "no-tlsv1", "no-tlsv1_1", "no-stdout-log"):
        assert re.search(rf"^{flag}$", text, re.MULTILINE), flag
    for dangerous in ("allow-loopback-peers", "server-relay", "no-auth", "lt-cred-mech",
                      "web-admin", "cli-password"):
        assert not re.search(rf"^{dangerous}(=|$)", text, re.MULTILINE), dangerous
    assert shipped_options("static-auth-secret") == [SECRET_PLACEHOLDER]
    for quota in ("user-quota", "total-quota", "max-bps", "stale-nonce"):
        assert int(shipped_options(quota)[0]) > 0, quota


async def test_coturn_accepts_every_line_of_the_shipped_config(coturn: Coturn) -> None:
    """coturn does not stop on a bad line, it logs and ignores it: start-up would have failed
    on such a line (start_coturn checks), and every deny range is echoed as accepted."""
    log = "\n".join(coturn.log_lines())
    for r in shipped_options("denied-peer-ip"):
        assert f"Black listing: {r}" in log, r
    for r in LAB_ALLOWED_PEERS:
        assert f"White listing: {r}" in log, r
    assert "TLS cipher suite: " + shipped_options("cipher-list")[0] in log
    assert "Bad configuration format" not in log


# -- allocations and credentials --------------------------------------------------------------


async def test_valid_credentials_allocate_and_relay_to_a_peer(nat_lab: NatLab,
                                                              coturn: Coturn) -> None:
    echo = await echo_in(nat_lab.pub)
    user, password = fresh_credentials(coturn, "alice")
    client = await turn_client(nat_lab.a.host, coturn, user, password)
    allocated = await client.expect("allocated")
    # The relay lives on pub; coturn saw the client through routerA's NAT.
    assert allocated["relayed"][0] == coturn.address
    assert allocated["mapped"][0] == nat_lab.a.public_address
    relayed = allocated["relayed"]

    await command(client, "send", peer=[nat_lab.pub.address, ECHO_PORT], data="via relay")
    await client.expect("sent")
    # The echo saw the datagram come FROM the relayed address, and its answer came back
    # through the allocation's channel.
    seen = await echo.expect("datagram", data="via relay")
    assert seen["from"] == relayed
    back = await client.expect("received", peer=[nat_lab.pub.address, ECHO_PORT])
    assert json.loads(back["data"]) == {"data": "via relay", "from": relayed}

    await command(client, "close")
    await client.expect("closed")
    log = "\n".join(coturn.log_lines())
    assert f"username=<{user}>" in log and "ALLOCATE processed, success" in log


async def test_two_natted_sites_talk_relay_to_relay_when_only_turn_udp_passes(
        nat_lab: NatLab, coturn: Coturn) -> None:
    """natA and natB, each behind a symmetric NAT whose router passes UDP only to the TURN
    port: the only path is relay to relay, as ICE would pick it."""
    nat_lab.set_mode(NatMode.UDP_ONLY_TO_TURN)
    a = await turn_client(nat_lab.a.host, coturn, *fresh_credentials(coturn, "site-a"))
    b = await turn_client(nat_lab.b.host, coturn, *fresh_credentials(coturn, "site-b"))
    relay_a = (await a.expect("allocated"))["relayed"]
    relay_b = (await b.expect("allocated"))["relayed"]
    # Each side binds a channel to the other's relayed address, which installs the permission
    # that lets the other's datagrams in (RFC 8656 §9). B's "knock" installs B's permission;
    # A's relay drops it unless A's permission happens to be in place by then (coturn's
    # threads do not order the two), so it is not waited for.
    await command(b, "send", peer=relay_a, data="knock")
    await b.expect("sent")
    await command(a, "send", peer=relay_b, data="hello from A")
    await a.expect("sent")
    await b.expect("received", peer=relay_a, data="hello from A")
    await command(b, "send", peer=relay_a, data="hello from B")
    await a.expect("received", peer=relay_b, data="hello from B")
    # Nothing but TURN's port was let through: the filter is really on.
    assert nat_lab.mode is NatMode.UDP_ONLY_TO_TURN
    for client in (a, b):
        await command(client, "close")
        await client.expect("closed")


@pytest.mark.parametrize("case", ["expired", "wrong-secret"])
async def test_bad_credentials_are_refused_with_401(nat_lab: NatLab, coturn: Coturn,
                                                    case: str) -> None:
    if case == "expired":
        # Minted two TTLs ago: valid MAC, expiry one TTL in the past.
        creds = turn_credentials(coturn.secret, time.time() - 2 * TTL, TTL, "late")
    else:
        creds = turn_credentials("not-the-" + coturn.secret, time.time(), TTL, "forger")
    client = await turn_client(nat_lab.a.host, coturn, creds.username, creds.password)
    failed = await client.expect("allocate-failed")
    # The 401 answered the authenticated retry, not just the initial challenge.
    assert failed == {"event": "allocate-failed", "stage": "allocate", "authenticated": True,
                      "code": 401, "reason": "Unauthorized"}
    assert await client.wait() == 3
    assert f"user <{creds.username}>: incoming packet message processed, error 401" in \
        "\n".join(coturn.log_lines())


async def test_a_second_static_secret_lets_the_secret_rotate(nat_lab: NatLab,
                                                             tmp_path: Path) -> None:
    """deploy/coturn/README.md: add the new secret as a second line, switch `peerbeam signal`,
    drop the old line later. Both work meanwhile; any other secret does not."""
    server = await start_coturn(nat_lab.pub, tmp_path / "coturn", secret="old-secret",
                                extra_lines=["static-auth-secret=new-secret"])
    try:
        for secret, outcome in [("old-secret", "allocated"), ("new-secret", "allocated"),
                                ("other-secret", "allocate-failed")]:
            creds = turn_credentials(secret, time.time(), TTL, secret)
            client = await turn_client(nat_lab.a.host, server, creds.username, creds.password)
            result = await client.expect(outcome)
            assert outcome == "allocated" or result["code"] == 401, result
            await client.stop()
    finally:
        await server.stop()


# -- the deny list ----------------------------------------------------------------------------


async def test_relay_to_internal_addresses_is_forbidden(nat_lab: NatLab,
                                                        coturn: Coturn) -> None:
    # The echo listens on every address of pub, loopback included: a refusal below is
    # coturn's deny list, not an unreachable peer.
    echo = await echo_in(nat_lab.pub)
    client = await turn_client(nat_lab.a.host, coturn, *fresh_credentials(coturn, "mallory"))
    await client.expect("allocated")

    await command(client, "permit", peer=nat_lab.pub.address)
    assert (await client.expect("permit", peer=nat_lab.pub.address))["code"] is None
    for address in FORBIDDEN_V4:
        await command(client, "permit", peer=address)
        refused = await client.expect("permit", peer=address)
        assert (refused["code"], refused["reason"]) == (403, "Forbidden IP"), refused
        await command(client, "bind", peer=[address, ECHO_PORT])
        refused = await client.expect("bind", peer=[address, ECHO_PORT])
        assert (refused["code"], refused["reason"]) == (403, "Forbidden IP"), refused
    # Channel data: the binding itself is refused, so nothing can be sent.
    await command(client, "send", peer=["127.0.0.1", ECHO_PORT], data="leak-channel")
    refused = await client.expect("send-failed", peer=["127.0.0.1", ECHO_PORT])
    assert refused["code"] == 403
    # aioice allocates IPv4 relays only (no REQUESTED-ADDRESS-FAMILY), and coturn checks the
    # family before its deny list: an IPv6 peer gets 443. The IPv6 deny ranges are checked in
    # the file (test above) and as accepted by coturn (its "Black listing" lines).
    for address in FORBIDDEN_V6:
        await command(client, "permit", peer=address)
        refused = await client.expect("permit", peer=address)
        assert refused["code"] == 443, refused

    # Send indications carry no answer: send one to loopback (denied) and then one to pub's
    # public address (permitted above), in this order on one flow; the second arrives, the
    # first never does.
    await command(client, "indicate", peer=["127.0.0.1", ECHO_PORT], data="leak-indication")
    await command(client, "indicate", peer=[nat_lab.pub.address, ECHO_PORT], data="control")
    await echo.expect("datagram", data="control")
    assert not [e for e in echo.events if str(e.get("data", "")).startswith("leak")]
    log = "\n".join(coturn.log_lines())
    assert log.count("CREATE_PERMISSION processed, error 403: Forbidden IP") >= len(FORBIDDEN_V4)
    assert log.count("CHANNEL_BIND processed, error 403: Forbidden IP") >= len(FORBIDDEN_V4)


# -- the NAT modes ----------------------------------------------------------------------------


async def test_open_mode_nat_is_symmetric(nat_lab: NatLab) -> None:
    """One socket in natA, two destinations: two different public ports (address- and
    port-dependent mapping). natB cannot use the mapping pub learned; pub can."""
    pub_echo = await echo_in(nat_lab.pub)
    await echo_in(nat_lab.b.router, bind=nat_lab.b.public_address)
    udp = await probe(nat_lab.a.host, "udp", "--to", f"{nat_lab.pub.address}:{ECHO_PORT}",
                      "--to", f"{nat_lab.b.public_address}:{ECHO_PORT}")
    via_pub = await udp.expect("reply", to=[nat_lab.pub.address, ECHO_PORT])
    via_b = await udp.expect("reply", to=[nat_lab.b.public_address, ECHO_PORT])
    assert via_pub["seen"][0] == via_b["seen"][0] == nat_lab.a.public_address
    assert via_pub["seen"][1] != via_b["seen"][1]

    # A mapping opened towards pub lets pub in, and only pub.
    a_echo = await echo_in(nat_lab.a.host)
    await command(a_echo, "send", to=[nat_lab.pub.address, ECHO_PORT], data="open a mapping")
    mapped = (await pub_echo.expect("datagram", data="open a mapping"))["from"]
    # natB learns the mapping (as through signaling) and tries it: dropped by routerA's NAT.
    intruder = await probe(nat_lab.b.host, "udp", "--to", f"{mapped[0]}:{mapped[1]}",
                           "--data", "from natB", "--wait", "1.5")
    await intruder.expect("no-reply")
    # pub, the endpoint the mapping was made for, gets through on the same mapping.
    await command(pub_echo, "send", to=mapped, data="from pub")
    await a_echo.expect("datagram", data="from pub")
    assert not [e for e in a_echo.events if e.get("data") == "from natB"]


async def test_lan_pair_shares_a_switch_behind_its_own_nat(lab: Lab) -> None:
    nat = build_nat_lab(lab, with_lan=True)
    assert nat.lan is not None
    pc, phone = nat.lan.pc, nat.lan.phone
    await echo_in(nat.pub)
    phone_echo = await echo_in(phone)
    udp = await probe(pc, "udp", "--to", f"{phone.address}:{ECHO_PORT}",
                      "--to", f"{nat.pub.address}:{ECHO_PORT}")
    # On the switch the phone sees the pc's own address; pub sees the LAN router's.
    assert (await udp.expect("reply", to=[phone.address, ECHO_PORT]))["seen"][0] == pc.address
    seen_by_pub = (await udp.expect("reply", to=[nat.pub.address, ECHO_PORT]))["seen"]
    assert seen_by_pub[0] == nat.lan.public_address
    await phone_echo.expect("datagram", data="probe")


async def test_udp_only_to_turn_mode(nat_lab: NatLab, coturn: Coturn) -> None:
    await echo_in(nat_lab.pub)
    await echo_in(nat_lab.b.router, bind=nat_lab.b.public_address)
    nat_lab.set_mode(NatMode.UDP_ONLY_TO_TURN)
    stun = await probe(nat_lab.a.host, "stun", "--server", coturn.address,
                       "--port", str(TURN_PORT))
    mapped = await stun.expect("mapped")
    assert mapped["address"][0] == nat_lab.a.public_address
    assert NatLab.dropped_udp(nat_lab.a) == 0
    udp = await probe(nat_lab.a.host, "udp", "--to", f"{nat_lab.b.public_address}:{ECHO_PORT}",
                      "--to", f"{nat_lab.pub.address}:{ECHO_PORT}", "--wait", "1.5")
    await udp.expect("no-reply", to=[nat_lab.b.public_address, ECHO_PORT])
    # Even pub is reachable over UDP only on the TURN port.
    await udp.expect("no-reply", to=[nat_lab.pub.address, ECHO_PORT])
    assert NatLab.dropped_udp(nat_lab.a) > 0


async def test_no_udp_mode_leaves_turn_over_tcp_and_tls(nat_lab: NatLab,
                                                         coturn: Coturn) -> None:
    echo = await echo_in(nat_lab.pub)
    nat_lab.set_mode(NatMode.NO_UDP)
    stun = await probe(nat_lab.a.host, "stun", "--server", coturn.address,
                       "--port", str(TURN_PORT), "--wait", "1.5")
    await stun.expect("no-reply")
    assert NatLab.dropped_udp(nat_lab.a) > 0

    for transport in ("tcp", "tls"):
        user, password = fresh_credentials(coturn, f"over-{transport}")
        client = await turn_client(nat_lab.a.host, coturn, user, password, transport)
        allocated = await client.expect("allocated")
        assert allocated["mapped"][0] == nat_lab.a.public_address
        # A UDP relay behind a TCP (or TLS) control connection: the peer side is still UDP.
        await command(client, "send", peer=[nat_lab.pub.address, ECHO_PORT], data=transport)
        seen = await echo.expect("datagram", data=transport)
        assert seen["from"] == allocated["relayed"]
        await client.expect("received", peer=[nat_lab.pub.address, ECHO_PORT])
        await command(client, "close")
        await client.expect("closed")


async def test_tls_listener_refuses_old_versions_and_weak_ciphers(nat_lab: NatLab,
                                                                  coturn: Coturn) -> None:
    async def handshake(*extra: str) -> dict[str, object]:
        tls = await probe(nat_lab.a.host, "tls", "--server", coturn.address,
                          "--port", str(TURNS_PORT), "--cafile", str(coturn.pki.ca_file),
                          "--timeout", "3", *extra)
        await tls.wait()
        (result,) = [e for e in tls.events if e["event"] in ("tls", "tls-failed")]
        return result

    allowed = shipped_options("cipher-list")[0].split(":")
    # What a default client (aiortc's turns: included) gets. coturn 4.6.1 negotiates TLS 1.2
    # at most; cipher-list governs exactly that version.
    best = await handshake()
    assert best["event"] == "tls" and best["version"] in ("TLSv1.2", "TLSv1.3"), best
    tls12 = await handshake("--tls-max", "TLSv1_2")
    assert tls12["event"] == "tls" and tls12["cipher"] in allowed, tls12
    # TLS 1.0 and 1.1, offered with our side's security level lowered: no handshake (coturn
    # with no-tlsv1/no-tlsv1_1 does not even answer them; without, it would send an alert).
    for old in ("TLSv1_1", "TLSv1"):
        refused = await handshake("--tls-max", old)
        assert refused["event"] == "tls-failed", refused
    # TLS 1.2 with CBC suites outside the list, which coturn's default list would accept:
    # refused.
    for weak in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384"):
        refused = await handshake("--tls-max", "TLSv1_2", "--ciphers", weak)
        assert refused["event"] == "tls-failed", refused
